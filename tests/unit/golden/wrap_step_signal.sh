#!/bin/bash
# This script was created by sbatch --wrap.

# >>> longrun 0.2.0: every line from here to "<<< longrun" was generated.
# shellcheck disable=SC2016,SC2034  # values single-quoted on purpose; the library reads them
# A signal that comes before the handlers exist is remembered, not fatal.
trap 'LR_EARLY_TERM=1' TERM; trap 'LR_EARLY_SIGNALS+=(HUP)' HUP; trap 'LR_EARLY_SIGNALS+=(INT)' INT; trap 'LR_EARLY_SIGNALS+=(QUIT)' QUIT; trap 'LR_EARLY_SIGNALS+=(USR1)' USR1; trap 'LR_EARLY_SIGNALS+=(USR2)' USR2; trap 'LR_EARLY_SIGNALS+=(XCPU)' XCPU

#
# One link of longrun chain 20261125-120000-abcd. Your script (below, unchanged) runs as its own
# process. This link keeps a successor queued (--dependency=afterany on itself), so a time limit,
# preemption or node failure continues the chain; your script's own exit ends it (exit 0: done).
# The steps are in the helper library: `longrun show 20261125-120000-abcd --library`.
# Chain folder: /home/user/.longrun/chains/20261125-120000-abcd
# --- the chain's settings ------------------------------------------------------------------
LONGRUN_CHAIN_ID=20261125-120000-abcd
LONGRUN_CHAIN_DIR=/home/user/.longrun/chains/20261125-120000-abcd
LONGRUN_STATE_DIR=/home/user/.longrun
LONGRUN_SUBMIT_DIR=/home/user/project
LONGRUN_SLURM_BIN=/usr/bin
LONGRUN_MAX_RESTARTS=999 LONGRUN_RETRY_FAILED=0 LONGRUN_CONTINUE_CODE=75
LONGRUN_CHECK_SIGNAL='' LONGRUN_CHECK_SECONDS=0 LONGRUN_PRETIMEOUT_SIGNAL=USR2 LONGRUN_FORWARD_SIGNAL=0 LONGRUN_STEP_SIGNAL_WINDOW=150
LONGRUN_VERBOSE=1 LONGRUN_JUDGE_SECONDS=60 LONGRUN_ANSWER_SECONDS=300 LONGRUN_SUBMIT_RETRY_SECONDS=300 LONGRUN_REFUSED_RETRY_SECONDS=30
LONGRUN_BACKOFF_SECONDS=30 LONGRUN_NODE_WAIT_SECONDS=330 LONGRUN_HEARTBEAT_SECONDS=10 LONGRUN_ORPHAN_SECONDS=120
LONGRUN_CLUSTER_ARGS=()
LONGRUN_QUERY_ARGS=(--local)
LONGRUN_COMMENT_PREFIX=''
LONGRUN_MAIL_END=0 LONGRUN_MAIL_FAIL=0
LONGRUN_NOTIFY_COMMAND=( ) LONGRUN_NOTIFY_URL='' LONGRUN_NOTIFY_SECONDS=30
LONGRUN_NOTIFY_EVENTS=( )
LONGRUN_PROGRESS_FILE='' LONGRUN_MAX_IDLE=0 LONGRUN_TOTAL_SECONDS=0
LONGRUN_AVOID_SECONDS=86400 LONGRUN_FAST_FAIL_SECONDS=60 LONGRUN_NODE_CHECK_AVOID_SECONDS=86400
LONGRUN_USER_EXCLUDE='' LONGRUN_USER_NODELIST='' LONGRUN_PARTITION=''
LONGRUN_NODE_CHECK=( ) LONGRUN_NODE_CHECK_SECONDS=300
LONGRUN_GROW_PERCENT=0 LONGRUN_GROW_MAX_MB=0 LONGRUN_MAX_HANDOVERS=5
LONGRUN_SUBMIT_FROM=compute
LONGRUN_ARRAY=0 LONGRUN_OUTPUT_PATTERN='' LONGRUN_ERROR_PATTERN=''
LONGRUN_EXPORT_MODE=all LONGRUN_EXPORT_NAMES=( )
LONGRUN_SBATCH_OPTIONS=( --job-name=wrap --signal=USR2@90 --open-mode=truncate -t 30 )
LONGRUN_SBATCH_COMPONENTS=( )
LONGRUN_SCRIPT_ARGS=( )
LONGRUN_INTERPRETER=(/bin/sh)
LONGRUN_SCRIPT_NAME=script
# --- the helper library: run only if it is exactly the file longrun wrote -------------------
LONGRUN_LIBRARY=$LONGRUN_CHAIN_DIR/library.sh
LONGRUN_LIBRARY_SHA256=6687fe858e24b8091142e987925e49fe5bbaec723707919514397cb0e59aedee
{ LR_LIBRARY=$(<"$LONGRUN_LIBRARY"); } 2>/dev/null
if [ "$(printf '%s\n' "$LR_LIBRARY" | PATH=/usr/bin:/bin sha256sum)" != "$LONGRUN_LIBRARY_SHA256  -" ]; then
    printf 'longrun: refusing to run: %s is missing or altered; nothing of your script ran. The chain ends FAILED; resubmit it.\n' "$LONGRUN_LIBRARY" >&2
    if [ -O "$LONGRUN_CHAIN_DIR" ] && [ ! -L "$LONGRUN_CHAIN_DIR" ]; then  # only into a folder of your own
        LR_TMP=$LONGRUN_CHAIN_DIR/.ended.$SLURM_JOB_ID.$$
        (umask 077; set -C; printf 'FAILED\n' >"$LR_TMP") && ln "$LR_TMP" "$LONGRUN_CHAIN_DIR/ended" 2>/dev/null; rm -f "$LR_TMP"
    fi
    exit 1
fi
eval "$LR_LIBRARY"
# <<< longrun. Your script, unchanged, is read as text up to LONGRUN_SCRIPT_END; main runs it.
IFS= read -r -d '' LONGRUN_SCRIPT_TEXT <<'LONGRUN_SCRIPT_END'
#!/bin/sh
# This script was created by sbatch --wrap.

srun ./simulate --resume
LONGRUN_SCRIPT_END
main "$@"  # longrun: the link's ten steps (library.sh)
