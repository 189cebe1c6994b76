#!/bin/bash
#SBATCH --signal=B:USR1@300
##SBATCH --dependency=afterok:41 --time=4:00:00
# longrun: --dependency=afterok:41 applies to the first link only (on its command line)
#SBATCH --time=4:00:00
# ==========================================================================================
# longrun: generated directives (everything from here to "your script" was added by longrun)
# ==========================================================================================
#SBATCH --open-mode=append
# For shellcheck: your values are single-quoted on purpose (SC2016), trap handlers are
# called from traps (SC2317).
# shellcheck disable=SC2016,SC2317
#
# This is one link of longrun chain 20261125-120000-abcd: your script (unchanged, below) runs
# as its own process; around it, this link keeps a successor queued with
# --dependency=afterany on itself, so the chain goes on after a time limit, a preemption or a
# node failure, and ends when your script ends on its own (exit 0: done; non-zero: failed).
# Chain folder: /home/user/.longrun/chains/20261125-120000-abcd

# ==========================================================================================
# longrun: generated prologue
# ==========================================================================================
LONGRUN_CHAIN_ID=20261125-120000-abcd
LONGRUN_CHAIN_DIR=/home/user/.longrun/chains/20261125-120000-abcd
LONGRUN_STATE_DIR=/home/user/.longrun
LONGRUN_SUBMIT_DIR=/home/user/project
LONGRUN_SLURM_BIN=/usr/bin
LONGRUN_MAX_RESTARTS=5
LONGRUN_RETRY_FAILED=1
LONGRUN_CONTINUE_CODE=75
# The signal this link traps before the time limit, and whether your script gets it too.
LONGRUN_CHECK_SIGNAL=USR1
LONGRUN_FORWARD_SIGNAL=1
# --signal without B: goes to job steps only; an exit 0 within this many seconds of the
# time limit is taken as "checkpointed on the signal", not as "finished".
LONGRUN_STEP_SIGNAL_WINDOW=0
LONGRUN_VERBOSE=0
# sbatch options of every later link (the first link's, without one-time options).
LONGRUN_SBATCH_OPTIONS=( -p gpu -J 'my run' --gres=gpu:1 )
# Your script's arguments.
LONGRUN_SCRIPT_ARGS=( --lr 0.1 'two words' )
# How your script is started: its #! line, applied as the kernel would.
LONGRUN_INTERPRETER=(/usr/bin/env python3)
LONGRUN_SCRIPT_NAME=train.sbatch

# --- helpers ------------------------------------------------------------------------------
# Slurm's commands may live outside the job's PATH (e.g. with --export=NONE).
if ! command -v sbatch >/dev/null 2>&1 && [ -n "$LONGRUN_SLURM_BIN" ]; then
    PATH="$LONGRUN_SLURM_BIN:${PATH:-/usr/bin:/bin}"
fi

lr_say() {
    # One line for the job's log. Silent with --use-verbosity SILENT.
    [ "$LONGRUN_VERBOSE" = 1 ] && printf 'longrun: %s\n' "$*" >&2
    return 0
}

lr_json() {
    # A JSON string for any text: escapes \ " and control characters.
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=${s//[[:cntrl:]]/?}
    LR_JSON="\"$s\""
}

lr_event() {
    # lr_event NAME [KEY VALUE]...: append one line to the chain's event log.
    local line now epoch
    printf -v now '%(%Y-%m-%dT%H:%M:%S)T' -1
    printf -v epoch '%(%s)T' -1
    lr_json "$1"
    line="{\"time\":\"$now\",\"epoch\":$epoch,\"event\":$LR_JSON,\"job\":\"${SLURM_JOB_ID:-}\",\"link\":${LR_COUNT:-0}"
    shift
    while [ $# -ge 2 ]; do
        lr_json "$1"
        line+=",$LR_JSON:"
        lr_json "$2"
        line+=$LR_JSON
        shift 2
    done
    printf '%s}\n' "$line" >>"$LONGRUN_CHAIN_DIR/events.jsonl" \
        || printf 'longrun: cannot write to %s\n' "$LONGRUN_CHAIN_DIR/events.jsonl" >&2
}

lr_write() {
    # lr_write FILE TEXT: replace a small file as a whole (temporary file, then rename).
    printf '%s\n' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

lr_set_verdict() {
    LR_VERDICT=$1
    lr_write "$LR_LINK_DIR/verdict" "$1"
}

lr_secs() {
    # Seconds in a Slurm duration ([D-][[H:]M:]S); empty for UNLIMITED or anything else.
    local t=$1 days=0 h=0 m=0 s=0
    LR_SECS=
    [[ $t =~ ^([0-9]+-)?([0-9]+)(:([0-9]+))?(:([0-9]+))?$ ]] || return 1
    [ -n "${BASH_REMATCH[1]}" ] && days=${BASH_REMATCH[1]%-}
    if [ -n "${BASH_REMATCH[6]}" ]; then
        h=${BASH_REMATCH[2]} m=${BASH_REMATCH[4]} s=${BASH_REMATCH[6]}
    elif [ -n "${BASH_REMATCH[4]}" ]; then
        m=${BASH_REMATCH[2]} s=${BASH_REMATCH[4]}
    else
        m=${BASH_REMATCH[2]}
    fi
    LR_SECS=$(( 10#$days * 86400 + 10#$h * 3600 + 10#$m * 60 + 10#$s ))
}

lr_job_info() {
    # Slurm's view of one job: LR_STATE, LR_PREEMPTED (0/1), LR_TIME_LEFT, LR_START, LR_END
    # (squeue -O fields hold no user-typed text). Fails when slurmctld no longer knows the job.
    local out preempt_time
    LR_STATE='' LR_PREEMPTED=0 LR_TIME_LEFT='' LR_START='' LR_END=''
    out=$(squeue -h -t all -j "$1" -O 'State:|,PreemptTime:|,TimeLeft:|,StartTime:|,EndTime:|' 2>/dev/null) || out=
    out=${out%%$'\n'*}
    [ -n "$out" ] || return 1
    IFS='|' read -r LR_STATE preempt_time LR_TIME_LEFT LR_START LR_END _ <<<"${out// /}"
    case $preempt_time in ''|N/A|None|Unknown) LR_PREEMPTED=0 ;; *) LR_PREEMPTED=1 ;; esac
    return 0
}

lr_sacct_state() {
    # The accounting record of a job's allocation: LR_STATE ("CANCELLED by 0" -> CANCELLED),
    # LR_START, LR_END. A requeued job has one record per run; the last one counts.
    local out
    out=$(sacct -n -X -P -j "$1" -o State,Start,End 2>/dev/null) || out=
    out=${out##*$'\n'}
    IFS='|' read -r LR_STATE LR_START LR_END <<<"$out"
    LR_STATE=${LR_STATE%% *}
    LR_STATE=${LR_STATE%+}
    [ -n "$LR_STATE" ]
}

lr_final_state() {
    # lr_final_state JOB SECONDS: Slurm's end state of JOB, asking slurmctld then the
    # accounting database, for at most SECONDS while the record is missing or not final.
    local job=$1 deadline=$((SECONDS + $2)) preempted=0
    while :; do
        if lr_job_info "$job"; then
            [ "$LR_PREEMPTED" = 1 ] && preempted=1
            case $LR_STATE in TIMEOUT|PREEMPTED|NODE_FAIL|DEADLINE|REVOKED|BOOT_FAIL|FAILED|OUT_OF_MEMORY|CANCELLED|COMPLETED) LR_PREEMPTED=$preempted; return 0 ;; esac
        fi
        if lr_sacct_state "$job"; then
            case $LR_STATE in TIMEOUT|PREEMPTED|NODE_FAIL|DEADLINE|REVOKED|BOOT_FAIL|FAILED|OUT_OF_MEMORY|CANCELLED|COMPLETED) LR_PREEMPTED=$preempted; return 0 ;; esac
        fi
        if [ $SECONDS -ge $deadline ]; then
            LR_STATE='' LR_START='' LR_END='' LR_PREEMPTED=$preempted
            return 1
        fi
        sleep 2
    done
}

# --- the successor ------------------------------------------------------------------------
lr_load_env() {
    # The submission environment, NUL-separated NAME=VALUE entries, into LR_ENV.
    local entry
    LR_ENV=()
    while IFS= read -r -d '' entry; do
        LR_ENV+=("$entry")
    done <"$LONGRUN_CHAIN_DIR/env"
    # The running job's SLURM_CONF points at this cluster's configuration (configless sites).
    [ -n "${SLURM_CONF:-}" ] && LR_ENV+=("SLURM_CONF=$SLURM_CONF")
}

lr_submit_standby() {
    # Submit the next link, held back by --dependency=afterany on this job, from the original
    # submit directory with the original environment. Transient failures are retried with
    # back-off for a bounded time.
    local next=$((LR_COUNT + 1)) delay=2 deadline=$((SECONDS + 300))
    local sbatch_path out rc id err_file="$LR_LINK_DIR/sbatch.err"
    sbatch_path=$(command -v sbatch) || { lr_event standby_failed error "sbatch not found on PATH"; return 1; }
    lr_load_env
    while :; do
        out=$(
            cd "$LONGRUN_SUBMIT_DIR" 2>/dev/null || cd / || exit 1
            exec env -i "${LR_ENV[@]}" "$sbatch_path" --parsable \
                "--dependency=afterany:$SLURM_JOB_ID" "${LONGRUN_SBATCH_OPTIONS[@]}" \
                "$LONGRUN_CHAIN_DIR/link.sh" "$next" "$LR_INITIAL" "$SLURM_JOB_ID" "$LR_RETRIES" \
                2>"$err_file"
        )
        rc=$?
        id=${out%%;*}
        id=${id##*$'\n'}
        if [ $rc -eq 0 ] && [[ $id =~ ^[0-9]+$ ]]; then
            LR_STANDBY=$id
            lr_write "$LR_LINK_DIR/standby" "$id"
            lr_write "$LONGRUN_STATE_DIR/jobs/$id" "$LONGRUN_CHAIN_ID"
            lr_event standby_submitted standby "$id" next_link "$next"
            lr_say "$LR_LABEL: successor job $id queued (it runs after this job ends)"
            return 0
        fi
        out=$(<"$err_file")
        if [ $SECONDS -ge $deadline ]; then
            lr_event standby_failed exit_code "$rc" error "$out"
            lr_say "$LR_LABEL: could not queue a successor: $out"
            return 1
        fi
        lr_event standby_retry exit_code "$rc" error "$out" retry_in "$delay"
        sleep "$delay"
        delay=$((delay * 2 > 60 ? 60 : delay * 2))
    done
}

lr_ensure_standby() {
    # Keep exactly one successor queued: reuse the one on record if Slurm still has it pending.
    [ "$LR_COUNT" -lt "$LONGRUN_MAX_RESTARTS" ] || return 0
    # `longrun cancel` (or an earlier link) has ended the chain: queue nothing more.
    [ -e "$LONGRUN_CHAIN_DIR/ended" ] && return 0
    local id
    if [ -s "$LR_LINK_DIR/standby" ]; then
        id=$(<"$LR_LINK_DIR/standby")
        if lr_job_info "$id"; then
            case $LR_STATE in
                PENDING|CONFIGURING|RUNNING|REQUEUED|REQUEUE_HOLD|SUSPENDED)
                    LR_STANDBY=$id
                    return 0 ;;
            esac
        elif ! squeue -h -j "$id" >/dev/null 2>&1 && ! scontrol ping >/dev/null 2>&1; then
            # The controller does not answer: do not risk a second successor.
            lr_event standby_unchecked standby "$id"
            LR_STANDBY=$id
            return 0
        fi
        lr_event standby_missing standby "$id" state "${LR_STATE:-gone}"
    fi
    lr_submit_standby
}

lr_cancel_standby() {
    [ -n "${LR_STANDBY:-}" ] || return 0
    if scancel "$LR_STANDBY" 2>/dev/null; then
        lr_event standby_cancelled standby "$LR_STANDBY"
    else
        lr_event standby_cancel_failed standby "$LR_STANDBY"
    fi
}

lr_end_chain() {
    # lr_end_chain STATE WHY: this link decides that the chain is over.
    lr_write "$LONGRUN_CHAIN_DIR/ended" "$1"
    lr_event chain_ended state "$1" reason "$2"
    lr_say "chain $LONGRUN_CHAIN_ID ended: $1 ($2)"
}

# --- signals ------------------------------------------------------------------------------
lr_tree() {
    # LR_TREE: a process and all its descendants, read from /proc (no ps needed).
    local -A children=()
    local stat line rest ppid pid queue
    for stat in /proc/[0-9]*/stat; do
        { read -r line <"$stat"; } 2>/dev/null || continue
        rest=${line##*) }
        rest=${rest#* }
        ppid=${rest%% *}
        children[$ppid]+=" ${line%% *}"
    done
    LR_TREE=()
    queue=$1
    while [ -n "$queue" ]; do
        pid=${queue%% *}
        queue=${queue#"$pid"}
        queue=${queue# }
        LR_TREE+=("$pid")
        queue+="${children[$pid]:-}"
        queue=${queue# }
    done
}

lr_forward() {
    # Send signal $1 to every process of the body: the script, its children, srun (which
    # passes it on to the tasks of its step).
    [ -n "${LR_BODY_PID:-}" ] || return 0
    lr_tree "$LR_BODY_PID"
    kill -s "$1" "${LR_TREE[@]}" 2>/dev/null
    lr_event signal_forwarded signal "$1" processes "${#LR_TREE[@]}"
}

lr_on_check_signal() {
    # The pre-timeout signal: check (or re-submit) the successor; forward it if asked to.
    LR_INTERRUPTED=1
    lr_event pretimeout_signal signal "$LONGRUN_CHECK_SIGNAL"
    if [ "$LONGRUN_FORWARD_SIGNAL" = 1 ]; then
        lr_forward "$LONGRUN_CHECK_SIGNAL"
        LR_FORWARDED=1
    fi
    lr_ensure_standby
}

lr_on_term() {
    # SIGTERM to the batch shell: a time limit, a preemption or scancel. Record it at once
    # (SIGKILL follows after KillWait), then let the body finish; never cancel the successor.
    LR_INTERRUPTED=1
    lr_job_info "$SLURM_JOB_ID" || LR_STATE=''
    if [ "$LR_STATE" = RUNNING ] && [ "$LONGRUN_CHECK_SIGNAL" = TERM ]; then
        lr_on_check_signal
        return
    fi
    [ "${LR_TERMINATED:-0}" = 1 ] && return
    LR_TERMINATED=1
    lr_set_verdict terminated
    lr_event sigterm slurm_state "${LR_STATE:-unknown}"
    lr_say "$LR_LABEL: SIGTERM (${LR_STATE:-state unknown}); waiting for the script to stop"
    if [ "$LR_STATE" = RUNNING ] && [ -n "${LR_BODY_PID:-}" ]; then
        # Only the batch shell was signalled (Slurm signals every process when it ends a
        # job): pass it on to the script, which plain sbatch would have run as this shell.
        kill -s TERM "$LR_BODY_PID" 2>/dev/null
        lr_event signal_forwarded signal TERM processes 1
    fi
}

# --- prologue -----------------------------------------------------------------------------
lr_prologue() {
    LR_COUNT=${1:-0} LR_INITIAL=${2:-} LR_PREVIOUS=${3:-} LR_RETRIES=${4:-0}
    [[ $LR_COUNT =~ ^[0-9]+$ && $LR_RETRIES =~ ^[0-9]+$ && $LR_INITIAL =~ ^[0-9]*$ && $LR_PREVIOUS =~ ^[0-9]*$ ]] || {
        printf 'longrun: this link script takes: COUNT INITIAL_JOB PREVIOUS_JOB RETRIES\n' >&2
        exit 2
    }
    [ -n "$LR_INITIAL" ] || LR_INITIAL=$SLURM_JOB_ID
    LR_LABEL="link $((LR_COUNT + 1))/$((LONGRUN_MAX_RESTARTS + 1))"
    LR_LINK_DIR=$LONGRUN_CHAIN_DIR/links/$SLURM_JOB_ID
    LR_STANDBY='' LR_FORWARDED=0 LR_TERMINATED=0 LR_VERDICT='' LR_PREV_STATE='' LR_PREV_VERDICT=''
    mkdir -p "$LR_LINK_DIR" || { printf 'longrun: cannot write to %s\n' "$LR_LINK_DIR" >&2; exit 1; }
    rm -f "$LR_LINK_DIR/verdict"
    lr_write "$LONGRUN_STATE_DIR/jobs/$SLURM_JOB_ID" "$LONGRUN_CHAIN_ID"
    lr_event link_started previous "$LR_PREVIOUS" slurm_restarts "${SLURM_RESTART_COUNT:-0}" \
        node "${SLURMD_NODENAME:-}" retries "$LR_RETRIES"
    if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
        lr_say "$LR_LABEL: restarted by Slurm with the same job id (restart ${SLURM_RESTART_COUNT})"
    fi

    trap lr_on_term TERM
    if [ "$LR_COUNT" -gt 0 ] && [ -n "$LR_PREVIOUS" ]; then
        lr_judge_previous
    fi
    lr_say "$LR_LABEL of chain $LONGRUN_CHAIN_ID is job $SLURM_JOB_ID${LR_PREVIOUS:+ (job $LR_PREVIOUS before it ended ${LR_PREV_STATE:-in an unknown state})}"
    lr_ensure_standby
    [ "$LR_COUNT" -lt "$LONGRUN_MAX_RESTARTS" ] || lr_event no_successor reason max_restarts
    if [ "$LONGRUN_CHECK_SIGNAL" != TERM ]; then
        trap lr_on_check_signal "$LONGRUN_CHECK_SIGNAL"
    fi

    export SLURM_LONGRUN_INITIAL_JOB_ID=$LR_INITIAL
    export SLURM_LONGRUN_RESTART_COUNT=$LR_COUNT
    export SLURM_LONGRUN_MAX_RESTARTS=$LONGRUN_MAX_RESTARTS
    export SLURM_LONGRUN_PREVIOUS_JOB_ID=$LR_PREVIOUS
    export SLURM_LONGRUN_PREVIOUS_STATE=$LR_PREV_STATE
    export SLURM_LONGRUN_PREVIOUS_VERDICT=$LR_PREV_VERDICT
    export SLURM_LONGRUN_CHAIN_ID=$LONGRUN_CHAIN_ID
    export SLURM_LONGRUN_CHAIN_DIR=$LONGRUN_CHAIN_DIR
    export SLURM_LONGRUN_CONTINUE_CODE=$LONGRUN_CONTINUE_CODE
    export SLURM_LONGRUN_RETRIES=$LR_RETRIES
}

lr_judge_previous() {
    # Why did the previous link end? Its own verdict first, then Slurm's final state.
    local verdict wait_s outcome why
    LR_PREV_VERDICT=$(cat "$LONGRUN_CHAIN_DIR/links/$LR_PREVIOUS/verdict" 2>/dev/null)
    verdict=$LR_PREV_VERDICT
    # A decisive verdict needs Slurm's word only for the record: wait less for it.
    case $verdict in completed|continue|failed|ended) wait_s=10 ;; *) wait_s=60 ;; esac
    lr_final_state "$LR_PREVIOUS" "$wait_s"
    LR_PREV_STATE=$LR_STATE
    lr_decide "$verdict" "$LR_STATE" "$LR_PREEMPTED"
    outcome=$LR_OUTCOME why=$LR_WHY
    lr_event judged previous "$LR_PREVIOUS" verdict "${verdict:-none}" slurm_state "${LR_STATE:-unknown}" \
        preempted "$LR_PREEMPTED" outcome "$outcome" reason "$why" start "$LR_START" end "$LR_END"
    case $outcome in
        run) ;;
        run-warn)
            lr_event warning message "state of job $LR_PREVIOUS unknown after 60s; running" ;;
        retry-or-fail)
            if [ "$LR_RETRIES" -lt "$LONGRUN_RETRY_FAILED" ]; then
                LR_RETRIES=$((LR_RETRIES + 1))
                lr_event retry attempt "$LR_RETRIES" of "$LONGRUN_RETRY_FAILED"
            else
                lr_skip_body FAILED "$why"
            fi ;;
        end-as-recorded)
            lr_skip_body "$(cat "$LONGRUN_CHAIN_DIR/ended" 2>/dev/null || echo COMPLETED)" "$why" ;;
        end:*)
            lr_skip_body "${outcome#end:}" "$why" ;;
    esac
}

lr_skip_body() {
    # End the chain without running the body; this job itself ends COMPLETED.
    lr_cancel_standby
    lr_set_verdict ended
    lr_end_chain "$1" "$2"
    exit 0
}

# --- the body and the epilogue ------------------------------------------------------------
lr_run_body() {
    local body=$LR_LINK_DIR/$LONGRUN_SCRIPT_NAME
    printf '%s' "$LONGRUN_SCRIPT_TEXT" >"$body" || { lr_event body_not_written path "$body"; exit 1; }
    unset LONGRUN_SCRIPT_TEXT
    # A background job of a non-interactive shell starts with SIGINT and SIGQUIT ignored;
    # give the script the dispositions plain sbatch would.
    (trap - INT QUIT; exec "${LONGRUN_INTERPRETER[@]}" "$body" "${LONGRUN_SCRIPT_ARGS[@]}") &
    LR_BODY_PID=$!
    lr_event body_started pid "$LR_BODY_PID"
    local rc again
    while :; do
        LR_INTERRUPTED=0
        wait "$LR_BODY_PID"
        rc=$?
        if [ "$LR_INTERRUPTED" = 1 ]; then
            # A trapped signal ended the wait: wait again while the script lives; if it has
            # just ended, its status is still waiting to be collected.
            kill -0 "$LR_BODY_PID" 2>/dev/null && continue
            wait "$LR_BODY_PID" 2>/dev/null
            again=$?
            [ $again -ne 127 ] && rc=$again
        fi
        break
    done
    LR_BODY_RC=$rc
    lr_event body_exited exit_code "$rc"
}

lr_in_step_signal_window() {
    # With --signal=SIG@T (no B:), Slurm signals the steps only, so an exit 0 in the last
    # T(+slack) seconds may be a checkpoint on that signal. Only on a time limit longer than
    # twice that window: otherwise every exit 0 would look like one.
    [ "$LONGRUN_STEP_SIGNAL_WINDOW" -gt 0 ] && lr_secs "$LR_TIME_LEFT" || return 1
    [ "$LR_SECS" -le "$LONGRUN_STEP_SIGNAL_WINDOW" ] \
        && [ $((SECONDS + LR_SECS)) -gt $((2 * LONGRUN_STEP_SIGNAL_WINDOW)) ]
}

lr_epilogue() {
    local rc=$LR_BODY_RC why
    if [ "$LR_TERMINATED" = 1 ]; then
        lr_say "$LR_LABEL: stopped from outside (exit $rc); the next link decides from Slurm's record"
        exit "$rc"
    fi
    # Ask Slurm whether it is ending this job (time limit, preemption, scancel): the
    # script may have exited on a signal that reached it before this shell's own SIGTERM.
    lr_job_info "$SLURM_JOB_ID" || LR_STATE=''
    if [ -n "$LR_STATE" ] && [ "$LR_STATE" != RUNNING ]; then
        lr_set_verdict terminated
        lr_event decision verdict terminated reason "Slurm is ending the job ($LR_STATE)" exit_code "$rc"
        exit "$rc"
    fi
    if [ "$LR_PREEMPTED" = 1 ]; then
        why="preempted (the script exited during the grace time)"
        lr_set_verdict continue
    elif [ "$rc" -eq "$LONGRUN_CONTINUE_CODE" ]; then
        why="the script asked for a new allocation (exit $LONGRUN_CONTINUE_CODE)"
        lr_set_verdict continue
    elif [ "$rc" -eq 0 ] && [ "$LR_FORWARDED" = 1 ]; then
        why="the script exited after the forwarded $LONGRUN_CHECK_SIGNAL (checkpoint)"
        lr_set_verdict continue
    elif [ "$rc" -eq 0 ] && lr_in_step_signal_window; then
        why="the script exited ${LR_SECS}s before the time limit, after --signal went to its steps"
        lr_set_verdict continue
    elif [ "$rc" -eq 0 ]; then
        why="the script finished (exit 0)"
        lr_set_verdict completed
    else
        why="the script failed (exit $rc)"
        lr_set_verdict failed
    fi
    lr_event decision verdict "$LR_VERDICT" reason "$why" exit_code "$rc" start "$LR_START"
    case $LR_VERDICT in
        completed)
            lr_cancel_standby
            lr_end_chain COMPLETED "$why"
            exit 0 ;;
        continue)
            if [ "$LR_COUNT" -ge "$LONGRUN_MAX_RESTARTS" ]; then
                lr_end_chain MAX_RESTARTS "$why, but no restarts are left"
            else
                lr_say "$LR_LABEL: $why; the chain continues"
            fi
            # A preempted script's own exit code stays in Slurm's record (e.g. FAILED 143).
            [ "$LR_PREEMPTED" = 1 ] && exit "$rc"
            exit 0 ;;
        *)
            if [ "$LR_RETRIES" -lt "$LONGRUN_RETRY_FAILED" ] && [ "$LR_COUNT" -lt "$LONGRUN_MAX_RESTARTS" ]; then
                lr_say "$LR_LABEL: $why; retrying ($((LR_RETRIES + 1))/$LONGRUN_RETRY_FAILED)"
            else
                lr_cancel_standby
                lr_end_chain FAILED "$why"
            fi
            exit "$rc" ;;
    esac
}

lr_decide() {
    # lr_decide VERDICT STATE PREEMPTED: how to go on after the previous link, from the
    # previous link's own verdict ("" if none), Slurm's end state and whether slurmctld shows
    # a PreemptTime. Rendered row by row from longrun's rule table (longrun/states.py).
    case "$1:$2:$3" in
        completed:*:*)
            LR_OUTCOME=end:COMPLETED LR_WHY='the previous link finished the work' ;;
        ended:*:*)
            LR_OUTCOME=end-as-recorded LR_WHY='the previous link ended the chain' ;;
        failed:*:*)
            LR_OUTCOME=retry-or-fail LR_WHY='the work of the previous link failed' ;;
        continue:*:*)
            LR_OUTCOME=run LR_WHY='the previous link asked to continue' ;;
        terminated:CANCELLED:*)
            LR_OUTCOME=end:CANCELLED LR_WHY='the previous link was cancelled' ;;
        terminated:*:*)
            LR_OUTCOME=run LR_WHY='the previous link was stopped from outside' ;;
        :TIMEOUT:*|:PREEMPTED:*|:NODE_FAIL:*|:DEADLINE:*|:REVOKED:*|:BOOT_FAIL:*)
            LR_OUTCOME=run LR_WHY='the previous link was interrupted by Slurm' ;;
        :CANCELLED:*)
            LR_OUTCOME=end:CANCELLED LR_WHY='the previous link was cancelled' ;;
        :FAILED:1|:OUT_OF_MEMORY:1|:COMPLETED:1)
            LR_OUTCOME=run LR_WHY='the previous link was preempted' ;;
        :FAILED:0|:OUT_OF_MEMORY:0)
            LR_OUTCOME=end:FAILED LR_WHY='the previous link failed' ;;
        :COMPLETED:0)
            LR_OUTCOME=end:COMPLETED LR_WHY='the previous link completed' ;;
        *:*:*)
            LR_OUTCOME=run-warn LR_WHY='how the previous link ended could not be determined' ;;
    esac
}

lr_prologue "$@"

# ==========================================================================================
# your script, unchanged; it runs as its own process with the arguments given above
# ==========================================================================================
IFS= read -r -d '' LONGRUN_SCRIPT_TEXT <<'LONGRUN_SCRIPT_END'
#!/usr/bin/env python3
#SBATCH --signal=B:USR1@300
#SBATCH --dependency=afterok:41 --time=4:00:00
import os
print(os.environ['SLURM_LONGRUN_RESTART_COUNT'])
LONGRUN_SCRIPT_END

# ==========================================================================================
# longrun: generated epilogue
# ==========================================================================================
lr_run_body
lr_epilogue
