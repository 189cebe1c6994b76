# shellcheck shell=bash
# longrun 0.2.0: the helper library of every link script, the same for every chain.
#
# A link script sets the chain's settings (LONGRUN_*), checks this file's checksum, runs it
# (it only defines functions and the paths below) and calls `main`, which tells the story of a
# link in ten steps, each one function here. What Slurm's states mean comes from longrun's rule
# table (longrun/states.py), the names of files and events from longrun/protocol.py.
# Variables of the running link are LR_*; functions lr_*.

# Your script gets the PATH and umask the job started with (lr_run_body). longrun's own steps
# look commands up in absolute folders only (a relative entry such as '.' would find them in
# whatever folder the job runs in) and create files for you alone, whatever the umask (the
# successor is submitted with yours: sbatch passes it on to the job).
LR_USER_PATH=$PATH LR_USER_UMASK=$(umask)
lr_absolute_path() {
    local entry kept='' rest=$PATH:
    while [ -n "$rest" ]; do
        entry=${rest%%:*} rest=${rest#*:}
        [[ $entry == /* ]] && kept+=${kept:+:}$entry
    done
    PATH=${kept:-/usr/bin:/bin}
}
lr_absolute_path
# Slurm's commands may live outside the job's PATH (e.g. with --export=NONE).
if ! command -v sbatch >/dev/null 2>&1 && [ -n "$LONGRUN_SLURM_BIN" ]; then
    PATH="$LONGRUN_SLURM_BIN:$PATH" LR_USER_PATH="$LONGRUN_SLURM_BIN:${LR_USER_PATH:-/usr/bin:/bin}"
fi
umask 077
# The chain folder (see longrun/chain_store.py). LONGRUN_* are the link script's settings.
# shellcheck disable=SC2153  # (not misspelt: set by the link script before it runs this file)
LR_CHAIN_ENDED_FILE=$LONGRUN_CHAIN_DIR/ended  # the chain's end state, created once
LR_ENDED_FILE=$LR_CHAIN_ENDED_FILE  # this link's end state: an array element's own (lr_start)
LR_ENV_FILE=$LONGRUN_CHAIN_DIR/env          # the environment snapshot
LR_LINKS_DIR=$LONGRUN_CHAIN_DIR/links       # one folder per link: links/<job id>
LR_LINK_SCRIPT=$LONGRUN_CHAIN_DIR/link.sh
LR_JOBS_DIR=$LONGRUN_STATE_DIR/jobs         # jobs/<job id> names the job's chain
# This job as Slurm's commands name it (an array task: ARRAYJOB_TASK), the chain's tag, and the
# array element this link belongs to (empty for a chain that is not an array).
LR_SELF=${SLURM_JOB_ID:-} LR_TAG_ID=$LONGRUN_CHAIN_ID LR_ELEMENT='' LR_ARRAY_ELEMENT=''
# The restart count of the last link allowed (--max-restarts plus the free links that handed
# over), and what the successor gets besides your options (lr_placement); lr_start sets them.
LR_LIMIT=$LONGRUN_MAX_RESTARTS LR_FREE=0 LR_PLACEMENT=() LR_NEXT_ARGUMENTS=() LR_HANDOVER='' LR_ORPHANS='' LR_WAITED=0
declare -A LR_CHILDREN=()  # (lr_children)
LR_MEMORY_HINT='ask for more memory with --mem, or let the chain grow it: --grow-mem-on-oom 2'

# --- the story of a link ------------------------------------------------------------------
main() {
    lr_start "$@"           # 1. arguments, this link's folder, the real signal handlers
    lr_claim_previous       # 2. be the only link that continues the previous one
    lr_judge_previous       # 3. why the previous link ended: go on, or end the chain here
    lr_learn                #    (and what the chain learned: nodes, memory, progress, time)
    lr_ensure_successor     # 4. keep one successor queued (--dependency=afterany on this job)
    lr_release_notices      #    (then the notifiers hear what happened so far)
    lr_export_variables     # 5. SLURM_LONGRUN_* for your script
    lr_write_body           # 6. your script as a file of its own in this link's folder
    lr_check_go             # 7. the last look: a recorded end, a SIGTERM or a hand-over: no body
                            #    (after the scripts of links on lost nodes stopped)
    lr_run_body             # 8. run it, pass signals on as sbatch would, wait for it
    lr_record_verdict       # 9. why this link ended; final once written
    lr_go_on                # 10. end the chain, or leave the work to the successor
}

# --- helpers ------------------------------------------------------------------------------

lr_say() {
    # One line for the job's log. Silent with --use-verbosity SILENT.
    [ "$LONGRUN_VERBOSE" = 1 ] && printf 'longrun: %s\n' "$*" >&2
    return 0
}

lr_json() {
    # A JSON string for any text (at most 2000 characters, so that a record stays one write):
    # escapes \ " and control characters.
    local s=${1:0:2000}
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=${s//[[:cntrl:]]/?}
    LR_JSON="\"$s\""
}

lr_event() {
    # lr_event NAME [KEY VALUE]...: one line in this link's own event file (its only writer);
    # the notifiers hear of the events they asked for (lr_notify).
    local line now epoch t name=$1 state='' reason=''
    [ -n "${LR_LINK_DIR:-}" ] || return 0
    printf -v now '%(%Y-%m-%dT%H:%M:%S)T' -1
    printf -v epoch '%(%s)T' -1
    # $EPOCHREALTIME has the locale's decimal point (a comma in de_DE): JSON needs a dot.
    t=${EPOCHREALTIME:-$epoch}
    t=${t/[!0-9]/.}
    lr_json "$1"
    line="{\"time\":\"$now\",\"epoch\":$epoch,\"t\":$t,\"event\":$LR_JSON,\"job\":\"${SLURM_JOB_ID:-}\",\"restart_count\":${LR_RESTART_COUNT:-0}"
    shift
    while [ $# -ge 2 ]; do
        case $1 in state|slurm_state) state=$2 ;; reason) reason=$2 ;; esac
        lr_json "$1"
        line+=",$LR_JSON:"
        lr_json "$2"
        line+=$LR_JSON
        shift 2
    done
    printf '%s}\n' "$line" >>"$LR_LINK_DIR/events.jsonl" \
        || printf 'longrun: cannot write to %s\n' "$LR_LINK_DIR/events.jsonl" >&2
    case " ${LONGRUN_NOTIFY_EVENTS[*]} " in
        *" $name "*)
            if [ "${LR_NOTICES_HELD:-0}" = 1 ]; then
                LR_HELD+=("$name" "$line}" "$state" "$reason")
            else
                lr_notify "$name" "$line}" "$state" "$reason"
            fi ;;
    esac
}

lr_release_notices() {
    # Tell the notifiers what happened while they were held back: until this link has ensured
    # its successor (step 4), no notifier may delay it, or a preemption could kill the link
    # before it queued one.
    local i
    LR_NOTICES_HELD=0
    for ((i = 0; i + 3 < ${#LR_HELD[@]}; i += 4)); do
        lr_notify "${LR_HELD[i]}" "${LR_HELD[i + 1]}" "${LR_HELD[i + 2]}" "${LR_HELD[i + 3]}"
    done
    LR_HELD=()
}

lr_notify() {
    # lr_notify EVENT JSON STATE WHY: run --notify's command and POST to --notify-url, each
    # bounded by a timeout, in the background so that a SIGTERM or the pre-timeout signal is
    # handled at once. A notifier that fails or hangs costs a notify_failed event, never the
    # chain; it hears nothing of its own failures.
    [ "${LR_NOTIFYING:-0}" = 1 ] && return 0
    local LR_NOTIFYING=1 rc why payload timeout_path
    lr_json "$LONGRUN_CHAIN_ID"
    payload="{\"chain\":$LR_JSON,${2#\{}"
    timeout_path=$(command -v timeout) || timeout_path=''
    if [ ${#LONGRUN_NOTIFY_COMMAND[@]} -gt 0 ] && ! lr_trusted_path "${LONGRUN_NOTIFY_COMMAND[0]}"; then
        lr_event notify_failed notifier command notified "$1" exit_code 126 error "unsafe notifier: $LR_PROBLEM"
    elif [ ${#LONGRUN_NOTIFY_COMMAND[@]} -gt 0 ]; then
        (
            cd "$LONGRUN_SUBMIT_DIR" 2>/dev/null || cd / || exit 1
            PATH=$LR_USER_PATH
            umask "$LR_USER_UMASK"
            # Named in the environment, never through env(1): a path with "=" is no variable.
            export LONGRUN_EVENT="$1" LONGRUN_JOB_ID="$SLURM_JOB_ID" LONGRUN_LINK=$((LR_RESTART_COUNT + 1)) \
                LONGRUN_ELEMENT="$LR_ELEMENT" LONGRUN_STATE="${3:0:2000}" LONGRUN_REASON="${4:0:2000}" \
                LONGRUN_EVENT_JSON="$payload" LONGRUN_CHAIN_ID
            exec ${timeout_path:+"$timeout_path" -k 5 "$LONGRUN_NOTIFY_SECONDS"} "${LONGRUN_NOTIFY_COMMAND[@]}"
        ) </dev/null 1>&2 &
        lr_wait_for $!
        rc=$?
        if [ $rc -ne 0 ]; then
            why="exit $rc"
            [ $rc -eq 124 ] || [ $rc -eq 137 ] && why="no end in ${LONGRUN_NOTIFY_SECONDS}s"
            lr_event notify_failed notifier command notified "$1" exit_code "$rc" error "$why"
        fi
    fi
    if [ -n "$LONGRUN_NOTIFY_URL" ]; then
        lr_post "$payload" "$timeout_path"
        rc=$?
        [ $rc -eq 0 ] || lr_event notify_failed notifier url notified "$1" exit_code "$rc" error "$LR_POST_ERROR"
    fi
    return 0
}

lr_wait_for() {
    # lr_wait_for PID: wait for a background process and return its exit status. Unlike a
    # command in the foreground, a wait lets a trapped signal (SIGTERM, the pre-timeout signal)
    # be handled at once; then wait again while the process lives.
    local rc again
    wait "$1"
    rc=$?
    while kill -0 "$1" 2>/dev/null; do
        wait "$1"
        rc=$?
    done
    wait "$1" 2>/dev/null
    again=$?
    [ $again -ne 127 ] && rc=$again
    return $rc
}

lr_post() {
    # lr_post JSON BOUND: POST to --notify-url with curl, or Python's standard library where
    # the node has no curl; three tries, each bounded. The reason of a failure in LR_POST_ERROR.
    local attempt rc=1 each=$(( LONGRUN_NOTIFY_SECONDS / 3 > 2 ? LONGRUN_NOTIFY_SECONDS / 3 : 2 )) bound=()
    local err_file=$LR_LINK_DIR/notify.err url=${LONGRUN_NOTIFY_URL//\\/\\\\}
    url=${url//\"/\\\"}
    LR_POST_ERROR=''
    [ -n "$2" ] && bound=("$2" -k 2 "$each")
    for attempt in 1 2 3; do
        if command -v curl >/dev/null 2>&1; then
            # The URL (often itself the secret) in a config on a descriptor, not in the command
            # line every user can read; -g: [] and {} in it are no pattern.
            "${bound[@]}" curl -sS -f -g -o /dev/null -m $((each - 1)) -H 'Content-Type: application/json' \
                --data-binary @- -K /dev/fd/3 3<<<"url = \"$url\"" <<<"$1" >/dev/null 2>"$err_file" &
        elif command -v python3 >/dev/null 2>&1; then
            LR_URL=$LONGRUN_NOTIFY_URL "${bound[@]}" python3 -I -c 'import os, sys, urllib.request
request = urllib.request.Request(os.environ["LR_URL"], data=sys.stdin.buffer.read(), method="POST", headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=float(sys.argv[1])).close()' $((each - 1)) \
                <<<"$1" >/dev/null 2>"$err_file" &
        else
            LR_POST_ERROR="neither curl nor python3 on this node"
            return 127
        fi
        lr_wait_for $!
        rc=$?
        LR_POST_ERROR=$(tail -n 1 "$err_file" 2>/dev/null)
        [ $rc -eq 0 ] && return 0
        [ $attempt -lt 3 ] && sleep $attempt
    done
    return $rc
}

lr_write() {
    # lr_write FILE TEXT: replace a small file as a whole: a new temporary file (noclobber:
    # never written through a symbolic link), then a rename over the name itself (-T).
    local tmp=$1.tmp.$$
    rm -f "$tmp"
    (set -C; printf '%s\n' "$2" >"$tmp") && mv -fT "$tmp" "$1" && return 0
    rm -f "$tmp"  # (a full disk: nothing left behind)
    return 1
}

lr_set_verdict() {
    # A verdict becomes final once; a SIGTERM handler that runs later leaves it alone.
    [ "$LR_VERDICT_FINAL" = 1 ] && return 0
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
    # Slurm's view of one job: LR_STATE, LR_PREEMPTED (0/1), LR_TIME_LEFT (seconds, or empty),
    # LR_START, LR_END, LR_REASON, LR_RESTARTS. Returns 0 when slurmctld showed the job, 1 when it answered
    # that it does not know the job, 2 when it did not answer. One RPC: `scontrol --local show
    # job` (squeue would also load the partitions and, without --local, the federation).
    local out rc line word run_time='' time_limit='' preempt_time=''
    local -a words
    LR_STATE='' LR_PREEMPTED=0 LR_TIME_LEFT='' LR_START='' LR_END='' LR_REASON='' LR_RESTARTS=''
    out=$(scontrol "${LONGRUN_QUERY_ARGS[@]}" show job "$1" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        [[ $out == *"Invalid job id"* ]] && return 1
        return 2
    fi
    # The first record's own lines ("   Key=Value ..."), up to Partition=: the fields read here
    # come before any that hold user-typed text (Comment, Command, WorkDir, StdOut).
    while IFS= read -r line; do
        [[ $line == "   Partition="* ]] && break
        [[ $line == "   "[A-Z]*=* ]] || continue
        read -ra words <<<"$line"
        for word in "${words[@]}"; do
            case $word in
                JobState=*) LR_STATE=${word#*=} ;;
                Reason=*) LR_REASON=${word#*=} ;;
                RunTime=*) run_time=${word#*=} ;;
                TimeLimit=*) time_limit=${word#*=} ;;
                StartTime=*) LR_START=${word#*=} ;;
                EndTime=*) LR_END=${word#*=} ;;
                PreemptTime=*) preempt_time=${word#*=} ;;
                Restarts=*) LR_RESTARTS=${word#*=} ;;
            esac
        done
    done <<<"$out"
    [ -n "$LR_STATE" ] || return 1
    case $preempt_time in ''|N/A|None|Unknown) LR_PREEMPTED=0 ;; *) LR_PREEMPTED=1 ;; esac
    if lr_secs "$time_limit"; then
        LR_TIME_LEFT=$LR_SECS
        lr_secs "$run_time" && LR_TIME_LEFT=$((LR_TIME_LEFT > LR_SECS ? LR_TIME_LEFT - LR_SECS : 0))
    fi
    return 0
}

lr_job_info_sure() {
    # lr_job_info_sure JOB [SECONDS QUESTION]: lr_job_info, asked again while slurmctld does not
    # answer: once, 2 s later; or, given SECONDS, with back-off for at most that long (saying in
    # the job log and the events what the link waits for; a SIGTERM ends the wait).
    local rc limit=${2:-2} LR_DELAY=2 deadline waited=0
    deadline=$((SECONDS + limit))
    while :; do
        lr_job_info "$1"
        rc=$?
        [ $rc -eq 2 ] && [ $SECONDS -lt $deadline ] && [ "$LR_TERMINATED" != 1 ] || return $rc
        if [ $waited = 0 ] && [ -n "${3:-}" ]; then
            lr_waiting "$1" "$3" "$limit" "slurmctld did not answer"
        fi
        waited=1
        lr_back_off
    done
}

lr_back_off() {
    # The next pause of a wait for Slurm: LR_DELAY seconds (a local of the caller's), then twice
    # as long next time, up to 30 s. A trapped signal ends the pause (lr_pause).
    lr_pause "$LR_DELAY"
    LR_DELAY=$((LR_DELAY * 2 > 30 ? 30 : LR_DELAY * 2))
}

lr_pause() {
    # lr_pause SECONDS: a sleep that a trapped signal (SIGTERM, the pre-timeout signal) ends.
    sleep "$1" &
    wait $! 2>/dev/null
    return 0
}

lr_waiting() {
    # lr_waiting JOB QUESTION SECONDS WHY: say what this link waits for, and for how long at most.
    lr_event waiting about "$1" question "$2" seconds "$3" reason "$4"
    lr_say "$LR_LABEL: waiting up to ${3}s for Slurm's answer about job $1 ($2): $4"
}

lr_sacct_state() {
    # The accounting record of a job's allocation: LR_STATE (its first word: "<STATE> by 0" -> <STATE>),
    # LR_START, LR_END. A requeued job has one record per run; the last one counts.
    # Returns 0 with a record, 1 when sacct answered without one, 2 when it did not answer.
    # (What only slurmctld shows, LR_PREEMPTED, LR_TIME_LEFT and LR_REASON, is reset too.)
    local out
    LR_STATE='' LR_PREEMPTED=0 LR_TIME_LEFT='' LR_START='' LR_END='' LR_REASON=''
    if ! out=$(sacct "${LONGRUN_CLUSTER_ARGS[@]}" -n -X -P -j "$1" -o State,Start,End 2>&1); then
        # A cluster that keeps no accounting answers: there is no record.
        [[ $out == *'accounting storage is disabled'* ]] && return 1
        return 2
    fi
    out=${out##*$'\n'}
    IFS='|' read -r LR_STATE LR_START LR_END <<<"$out"
    LR_STATE=${LR_STATE%% *}
    LR_STATE=${LR_STATE%+}
    [ -n "$LR_STATE" ]
}

lr_final_state() {
    # lr_final_state JOB SECONDS: Slurm's end state of JOB, asking slurmctld then the accounting
    # database, with back-off: while they answer without a final state, for at most SECONDS;
    # while they do not answer, for at most LONGRUN_ANSWER_SECONDS. A SIGTERM ends the wait.
    # Returns 0 with a final state; 1 when both answered that they do not know the job
    # (slurmctld forgot it, the accounting has no record); 2 when no final answer came.
    local job=$1 preempted=0 info sacct LR_DELAY=2 started=$SECONDS limit=$2 waited=0 why
    LR_STATE='' LR_PREEMPTED=0 LR_TIME_LEFT='' LR_START='' LR_END='' LR_REASON=''
    while :; do
        lr_job_info "$job"
        info=$?
        if [ $info -eq 0 ]; then
            [ "$LR_PREEMPTED" = 1 ] && preempted=1
            case $LR_STATE in TIMEOUT|PREEMPTED|NODE_FAIL|REVOKED|BOOT_FAIL|DEADLINE|FAILED|OUT_OF_MEMORY|CANCELLED|COMPLETED) LR_PREEMPTED=$preempted; return 0 ;; esac
        fi
        lr_sacct_state "$job"
        sacct=$?
        if [ $sacct -eq 0 ]; then
            case $LR_STATE in TIMEOUT|PREEMPTED|NODE_FAIL|REVOKED|BOOT_FAIL|DEADLINE|FAILED|OUT_OF_MEMORY|CANCELLED|COMPLETED) LR_PREEMPTED=$preempted; return 0 ;; esac
        fi
        # No answer at all from one of them: wait longer, and say so once.
        if [ $info -eq 2 ] || [ $sacct -eq 2 ]; then
            limit=$(($2 > LONGRUN_ANSWER_SECONDS ? $2 : LONGRUN_ANSWER_SECONDS))
            if [ $waited = 0 ] && [ $((SECONDS - started)) -lt "$limit" ]; then
                why=''
                [ $info -eq 2 ] && why='slurmctld did not answer'
                [ $sacct -eq 2 ] && why+=${why:+; }'sacct did not answer'
                lr_waiting "$job" "how it ended" "$limit" "$why"
                waited=1
            fi
        fi
        if [ $((SECONDS - started)) -ge "$limit" ] || [ "$LR_TERMINATED" = 1 ]; then
            LR_STATE='' LR_START='' LR_END='' LR_PREEMPTED=$preempted
            [ $info -eq 1 ] && [ $sacct -eq 1 ] && return 1
            return 2
        fi
        lr_back_off
    done
}

lr_is_active() {
    case $1 in PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED|REQUEUED|REQUEUE_FED|REQUEUE_HOLD|RESIZING|SIGNALING|STAGE_OUT|STOPPED|SPECIAL_EXIT) return 0 ;; esac
    return 1
}

lr_interruption() {
    # Why Slurm is ending this job, from what slurmctld showed (lr_job_info): LR_CAUSE is empty
    # when nothing points to a time limit, preemption, node failure or deadline (a cancel).
    LR_CAUSE=''
    [ "$LR_PREEMPTED" = 1 ] && LR_CAUSE=preempted
    case $LR_REASON in TimeLimit|NodeDown|DeadLine|BootFail) LR_CAUSE=${LR_CAUSE:-$LR_REASON} ;; esac
    case $LR_STATE in TIMEOUT|PREEMPTED|NODE_FAIL|REVOKED|BOOT_FAIL) LR_CAUSE=${LR_CAUSE:-$LR_STATE} ;; esac
    [ -n "$LR_CAUSE" ]
}

# --- the successor ------------------------------------------------------------------------
lr_load_env() {
    # sbatch's own environment for the next link (see longrun/environment.py): its SBATCH_*
    # input variables, PATH and SLURM_CONF from the snapshot, and with --export=NAMES those
    # names; with ALL (the default) the job's environment comes whole from the snapshot, by
    # --export-file (no argument list to overflow, exported functions included).
    local entry name wanted
    LR_ENV=() LR_EXPORT_ARGS=()
    while IFS= read -r -d '' entry; do
        name=${entry%%=*}
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue  # env would take -S... as an option
        case $name in
            SBATCH_*|PATH|SLURM_CONF) LR_ENV+=("$entry") ;;
            *)
                [ "$LONGRUN_EXPORT_MODE" = list ] || continue
                for wanted in "${LONGRUN_EXPORT_NAMES[@]}"; do
                    [ "$wanted" = "$name" ] && LR_ENV+=("$entry")
                done ;;
        esac
    done <"$LR_ENV_FILE"
    # The running job's SLURM_CONF points at this cluster's configuration (configless sites).
    [ -n "${SLURM_CONF:-}" ] && LR_ENV+=("SLURM_CONF=$SLURM_CONF")
    [ "$LONGRUN_EXPORT_MODE" = all ] && LR_EXPORT_ARGS=("--export-file=$LR_ENV_FILE")
    return 0
}

lr_element_options() {
    # An array element's later links write the element's output files and know the element.
    LR_ELEMENT_OPTIONS=() LR_ELEMENT_ARGUMENTS=()
    [ -n "$LR_ELEMENT" ] || return 0
    lr_array_pattern "$LONGRUN_OUTPUT_PATTERN"
    LR_ELEMENT_OPTIONS+=("--output=$LR_PATTERN")
    if [ -n "$LONGRUN_ERROR_PATTERN" ]; then
        lr_array_pattern "$LONGRUN_ERROR_PATTERN"
        LR_ELEMENT_OPTIONS+=("--error=$LR_PATTERN")
    fi
    LR_ELEMENT_ARGUMENTS=("--array-element=$LR_ARRAY_ELEMENT")
}

lr_find_tagged() {
    # lr_find_tagged LINK: a queued job of this chain tagged for link number LINK (1-based, in
    # its --comment), into
    # LR_FOUND. Returns 0 found, 1 when slurmctld shows none, 2 when it did not answer.
    local out line id rest state comment tag="longrun:$LR_TAG_ID:$1"
    LR_FOUND=''
    out=$(squeue "${LONGRUN_CLUSTER_ARGS[@]}" -h --me -t all -O 'JobID:|,State:|,Comment:|' 2>/dev/null) || return 2
    while IFS= read -r line; do
        id=${line%%|*} rest=${line#*|}
        state=${rest%%|*} comment=${rest#*|}
        comment=${comment%|}
        comment=${comment%"${comment##*[![:space:]]}"}
        if [[ $comment == *"$tag" ]] && lr_is_active "$state" && [[ $id =~ ^[0-9]{1,18}$ ]]; then
            # The lowest id: a heterogeneous job's components all carry the tag; the first
            # component, its leader, has the lowest.
            [ -z "$LR_FOUND" ] || [ "$id" -lt "$LR_FOUND" ] && LR_FOUND=$id
        fi
    done <<<"$out"
    [ -n "$LR_FOUND" ]
}

lr_record_successor() {
    LR_SUCCESSOR=$1
    if ! lr_write "$LR_LINK_DIR/successor" "$1" 2>/dev/null; then
        lr_folder_full
        lr_say "$LR_LABEL: cannot record successor job $1 in the chain folder${LR_FULL:+: $LR_FULL}"
    fi
    lr_write "$LR_JOBS_DIR/$1" "$LONGRUN_CHAIN_ID" 2>/dev/null
}

lr_successor_command() {
    # The next link's sbatch arguments into LR_COMMAND: held back by --dependency=afterany on
    # this job, tagged for the look-up, with what the chain learned (all in a heterogeneous
    # job's first component; the others follow from `:` on). Used to submit it here, or to
    # leave it to a keeper on a login node (lr_request_successor): built in one place.
    LR_COMMAND=(--parsable "${LR_EXPORT_ARGS[@]}" "--dependency=afterany:$LR_SELF" "${LONGRUN_SBATCH_OPTIONS[@]}"
        "${LR_PLACEMENT[@]}" "${LR_ELEMENT_OPTIONS[@]}" "--comment=${LONGRUN_COMMENT_PREFIX}longrun:$LR_TAG_ID:$1"
        "${LONGRUN_SBATCH_COMPONENTS[@]}" "$LR_LINK_SCRIPT" "--restart-count=$((LR_RESTART_COUNT + 1))" "--initial-job=$LR_INITIAL"
        "--previous-job=$SLURM_JOB_ID" "--retries=$LR_RETRIES" "${LR_ELEMENT_ARGUMENTS[@]}"
        "${LR_NEXT_ARGUMENTS[@]}")
    [ "$LR_SUBMIT_FROM" = login ] && LR_COMMAND+=("--submit-from=login")
    return 0
}

lr_submission_refused() {
    # lr_submission_refused SBATCH_ERRORS: whether sbatch said this compute node may not submit.
    case $1 in
        *'Access/permission denied'*) return 0 ;;
    esac
    return 1
}

lr_submission_limited() {
    # lr_submission_limited SBATCH_ERRORS: whether sbatch refused the job for a limit or a
    # setting that does not pass with time (see SUBMIT_LIMITS in longrun/protocol.py).
    case $1 in
        *'Job violates accounting/QOS policy'*) return 0 ;;
        *MaxSubmitJob*) return 0 ;;
        *'Invalid account'*) return 0 ;;
        *'Invalid partition'*) return 0 ;;
        *'Invalid qos'*) return 0 ;;
    esac
    return 1
}

lr_start_retrier() {
    # The successor was refused for a limit (lr_submit_successor): keep trying in the
    # background while the script runs, every 30 s at first, then up to every 5 minutes.
    [ "$LR_SUBMIT_LATER" = 1 ] || return 0
    [ -n "$LR_RETRIER" ] && kill -0 "$LR_RETRIER" 2>/dev/null && return 0
    (
        delay=$LONGRUN_REFUSED_RETRY_SECONDS
        while :; do
            for ((waited = 0; waited < delay; waited++)); do
                sleep 1
                kill -0 $$ 2>/dev/null || exit 0  # (the link is gone)
            done
            lr_submit_successor again && exit 0
            delay=$((delay * 2 > 300 ? 300 : delay * 2))
        done
    ) &
    LR_RETRIER=$!
}

lr_stop_retrier() {
    # The script has ended: stop the retrier, then learn what it queued (its record, or the
    # tag: it may have been stopped between sbatch and the record).
    [ -n "$LR_RETRIER" ] || return 0
    kill "$LR_RETRIER" 2>/dev/null
    wait "$LR_RETRIER" 2>/dev/null
    LR_RETRIER=''
    LR_SUCCESSOR=$(cat "$LR_LINK_DIR/successor" 2>/dev/null) || LR_SUCCESSOR=''
    if [[ $LR_SUCCESSOR =~ ^[0-9]+$ ]]; then
        LR_SUBMIT_LATER=0
        return 0
    fi
    LR_SUCCESSOR=''
    lr_find_tagged $((LR_RESTART_COUNT + 2))
    case $? in
        0)
            lr_record_successor "$LR_FOUND"
            lr_event successor_found successor "$LR_FOUND"
            LR_SUBMIT_LATER=0 ;;
        2) LR_SUBMIT_UNKNOWN=1 ;;
    esac
    return 0
}

lr_write_request() {
    # lr_write_request FILE: the successor's submission as LR_COMMAND holds it (sbatch's
    # arguments, environment, folder and umask; format in longrun/protocol.py), replaced whole.
    # Read on a login node by a keeper (the request) or the watcher's repair (the command).
    local entry file=$1 fields=()
    for entry in "${LR_ENV[@]}"; do
        [[ $entry == SLURM_CONF=* ]] || fields+=("$entry")  # the reader's own is used
    done
    rm -f "$file.tmp.$$"
    (set -C; printf '%s\0' longrun-request-1 "$LR_USER_UMASK" "$LONGRUN_SUBMIT_DIR" \
        "${#fields[@]}" "${fields[@]}" "${LR_COMMAND[@]}" >"$file.tmp.$$") && mv -fT "$file.tmp.$$" "$file"
}

lr_request_successor() {
    # lr_request_successor WHY: leave the successor's submission to a keeper on a login node:
    # the request replaced whole, then an event; the keeper queues it while this link runs,
    # with the same tag.
    local next=$((LR_RESTART_COUNT + 2)) file="$LR_LINK_DIR/request"
    lr_successor_command "$next"
    if lr_write_request "$file"; then
        lr_event successor_requested next "$next" reason "$1"
        lr_say "$LR_LABEL: the successor is left to a keeper on a login node ($1); run \`longrun keeper\` there if none runs"
        return 0
    fi
    LR_SUBMIT_ERROR="cannot write $file"
    lr_event successor_failed error "$LR_SUBMIT_ERROR"
    return 1
}

lr_refused_here() {
    # lr_refused_here WORDS: this compute node may not submit: say so everywhere, and leave this
    # link's successor, and every later one's, to a keeper.
    LR_SUBMIT_FROM=login
    lr_event submit_refused error "$1"
    lr_say "$LR_LABEL: this cluster refuses submissions from compute nodes: $1; the chain needs a keeper on a login node: \`longrun keeper\`"
    lr_request_successor "this compute node may not submit"
}

lr_submit_successor() {
    # Submit the next link from the original submit directory with the original environment.
    # A failed sbatch may still have queued the job ("Socket timed out"): before every new
    # attempt, look for it by its tag. Bounded. A link that may not submit leaves it to a keeper.
    # lr_submit_successor again: a try of the retrier (lr_start_retrier), after a refusal.
    local next=$((LR_RESTART_COUNT + 2)) delay=2 deadline=$((SECONDS + LONGRUN_SUBMIT_RETRY_SECONDS))
    local sbatch_path out rc id line words submit=1
    LR_SUBMIT_UNKNOWN=0
    if lr_folder_problem; then
        # Checked again before every submission: the folder may have changed since the start.
        LR_SUBMIT_ERROR="unsafe chain folder: $LR_PROBLEM"
        lr_event successor_failed error "$LR_SUBMIT_ERROR"
        lr_say "$LR_LABEL: no successor queued: unsafe chain folder: $LR_PROBLEM"
        return 1
    fi
    lr_load_env
    lr_element_options
    if [ "$LR_SUBMIT_FROM" = login ]; then
        lr_request_successor "--submit-from=login"
        return
    fi
    sbatch_path=$(command -v sbatch) || {
        lr_refused_here "sbatch: command not found on node ${SLURMD_NODENAME:-?}"
        return
    }
    lr_successor_command "$next"
    # The command as built here, for the watcher's repair should every submission fail: a
    # successor is built by this code only (not written: the repair builds its own).
    # (not written: none at all, never an earlier run's; the repair then builds its own)
    lr_write_request "$LR_LINK_DIR/command" 2>/dev/null \
        || rm -f "$LR_LINK_DIR/command" "$LR_LINK_DIR/command.tmp.$$"
    while :; do
        if [ $submit = 1 ]; then
            # sbatch's words are kept in memory, not in a file: a full file system must not
            # keep sbatch from running, nor hide what it said.
            out=$(
                cd "$LONGRUN_SUBMIT_DIR" 2>/dev/null || cd / || exit 1
                umask "$LR_USER_UMASK"
                exec env -i -- "${LR_ENV[@]}" "$sbatch_path" "${LR_COMMAND[@]}" 2>&1
            )
            rc=$?
            id='' words=''
            while IFS= read -r line; do  # --parsable: "JOBID" or "JOBID;CLUSTER" on a line
                if [[ $line =~ ^([0-9]+)(;[^[:space:]]*)?$ ]]; then id=${BASH_REMATCH[1]}; else words+=${words:+$'\n'}$line; fi
            done <<<"$out"
            if [ $rc -eq 0 ] && [ -n "$id" ]; then
                lr_record_successor "$id"
                lr_event successor_queued successor "$id"
                lr_say "$LR_LABEL: successor job $id queued (it runs after this job ends)"
                # An end recorded while sbatch ran (a cancel seen by the SIGTERM handler).
                lr_ended && lr_cancel_successor
                return 0
            fi
            out=$words
            lr_event successor_retry exit_code "$rc" error "$out" retry_in "$delay"
        fi
        # Did the failed sbatch queue the job all the same?
        lr_find_tagged "$next"
        case $? in
            0)
                lr_record_successor "$LR_FOUND"
                lr_event successor_found successor "$LR_FOUND"
                lr_say "$LR_LABEL: successor job $LR_FOUND was queued although sbatch said otherwise"
                return 0 ;;
            1) submit=1 ;;
            *) submit=0 ;;  # unknown: never submit blindly; look again
        esac
        if [ $submit = 1 ] && lr_submission_refused "$out"; then
            # A definite no to this node, and nothing queued: a keeper submits from now on.
            lr_refused_here "$out"
            return
        fi
        if [ $submit = 1 ] && lr_submission_limited "$out"; then
            # A definite no for a limit, and nothing queued: not worth minutes of retries
            # before the script starts; tried again while it runs (lr_start_retrier).
            LR_SUBMIT_ERROR=$out
            [ "${1:-}" = again ] && return 1  # (the retrier: said once already)
            LR_SUBMIT_LATER=1
            lr_event successor_refused error "$out"
            lr_say "$LR_LABEL: sbatch refused the successor: $out; the script starts now, and this link keeps trying to queue it while the script runs"
            return 1
        fi
        if [ $SECONDS -ge $deadline ] || lr_ended; then
            LR_SUBMIT_ERROR=${out:-slurmctld did not answer}
            [ $submit = 0 ] && LR_SUBMIT_UNKNOWN=1  # the last look for it got no answer
            lr_event successor_failed exit_code "${rc:-}" error "${out:-}"
            lr_say "$LR_LABEL: could not queue a successor: ${out:-slurmctld did not answer}"
            return 1
        fi
        sleep "$delay"
        delay=$((delay * 2 > 60 ? 60 : delay * 2))
    done
}

lr_ensure_successor() {
    # Keep exactly one successor queued. Only a definite answer from Slurm makes the one on
    # record count as missing; a successor cancelled by the user means "stop after this link".
    [ "$LR_RESTART_COUNT" -lt "$LR_LIMIT" ] || return 0
    lr_ended && return 0
    [ -e "$LR_LINK_DIR/stop_after" ] && return 0
    lr_stopped_from_outside && return 0
    # The retrier is at it (a refused successor): never a second submission beside it.
    [ -n "$LR_RETRIER" ] && kill -0 "$LR_RETRIER" 2>/dev/null && return 0
    local id rc LR_STATE LR_PREEMPTED LR_TIME_LEFT LR_START LR_END LR_REASON
    if [ -s "$LR_LINK_DIR/successor" ] || [ -n "${LR_SUCCESSOR:-}" ]; then
        # (the one this link queued, should its file not have been written: a full disk)
        id=$(cat "$LR_LINK_DIR/successor" 2>/dev/null) || id=''
        [ -n "$id" ] || id=$LR_SUCCESSOR
        [[ $id =~ ^[0-9]+$ ]] || id=0  # not a job id: Slurm shows no such job
        lr_job_info_sure "$id"
        rc=$?
        if [ $rc -eq 2 ]; then
            lr_event successor_unchecked successor "$id"
            LR_SUCCESSOR=$id
            return 0
        fi
        if [ $rc -eq 0 ] && lr_is_active "$LR_STATE"; then
            LR_SUCCESSOR=$id
            return 0
        fi
        if [ $rc -eq 1 ]; then
            lr_sacct_state "$id"
            if [ $? -eq 2 ]; then
                # slurmctld no longer knows it and the accounting did not answer: not "gone".
                lr_event successor_unchecked successor "$id"
                LR_SUCCESSOR=$id
                return 0
            fi
        fi
        if lr_successor_stop "$LR_STATE"; then
            lr_write "$LR_LINK_DIR/stop_after" "$LR_STOP_STATE job $id $LR_STOP_PHRASE"
            lr_event successor_stopped successor "$id" state "$LR_STATE"
            lr_say "$LR_LABEL: successor job $id $LR_STOP_PHRASE: the chain stops after this link"
            return 0
        fi
        lr_event successor_missing successor "$id" state "${LR_STATE:-gone}"
        LR_SUCCESSOR=''
        rm -f "$LR_LINK_DIR/successor"  # (it names a job Slurm says is gone)
    fi
    lr_submit_successor
}

lr_stopped_from_outside() {
    # Stopped from outside (SIGTERM) while Slurm showed no sign of an interruption: nothing to
    # continue. Without Slurm's answer at the SIGTERM, a successor is kept all the same: it
    # judges this link from Slurm's record (a cancel ends the chain there).
    [ "$LR_TERM_VERDICT" = terminated ] && [ "$LR_TERM_ANSWERED" = 1 ]
}

lr_successor_stop() {
    # lr_successor_stop STATE: whether a successor that ended in STATE before it ran stops the
    # chain after this link; into LR_STOP_STATE (the chain's end) and LR_STOP_PHRASE.
    LR_STOP_STATE='' LR_STOP_PHRASE=''
    case $1 in
        CANCELLED) LR_STOP_STATE=CANCELLED LR_STOP_PHRASE='was cancelled' ;;
        DEADLINE) LR_STOP_STATE=DEADLINE LR_STOP_PHRASE='could not end before the --deadline' ;;
        *) return 1 ;;
    esac
}

lr_stopped_after() {
    # Whether this link found its successor ended (lr_ensure_successor): then it ends the chain
    # itself rather than leave it waiting for a successor that will never run.
    local stop
    stop=$(cat "$LR_LINK_DIR/stop_after" 2>/dev/null) || return 1
    [ -n "$stop" ] || return 1
    lr_end_chain "${stop%% *}" "the successor ${stop#* }: the chain stopped after $LR_LABEL"
}

lr_requested_successor() {
    # A successor left to a keeper (lr_request_successor) is known by its tag once queued: look
    # for it (one squeue) before this link acts on it at its end. Unknown stays unknown: the
    # keeper looks at the chain's end before it submits, and a successor that starts after the
    # end runs nothing (lr_check_go).
    [ -z "${LR_SUCCESSOR:-}" ] && [ -s "$LR_LINK_DIR/request" ] || return 0
    lr_find_tagged $((LR_RESTART_COUNT + 2))
    case $? in
        0)
            LR_SUCCESSOR=$LR_FOUND
            lr_write "$LR_LINK_DIR/successor" "$LR_FOUND"
            lr_event successor_found successor "$LR_FOUND" ;;  # (the keeper's answer may be lost)
        2)
            lr_event warning message "squeue did not answer the look for the successor a keeper may have queued; if one is queued, it runs nothing after an end"
            lr_say "$LR_LABEL: squeue did not answer the look for the successor a keeper may have queued" ;;
    esac
    return 0
}

lr_cancel_successor() {
    lr_requested_successor
    [ -n "${LR_SUCCESSOR:-}" ] && [ "$LR_SUCCESSOR" != "${LR_CANCELLED:-}" ] || return 0
    if scancel "${LONGRUN_CLUSTER_ARGS[@]}" "$LR_SUCCESSOR" 2>/dev/null; then
        LR_CANCELLED=$LR_SUCCESSOR  # (once: a trap and the main flow may both get here)
        lr_event successor_cancelled successor "$LR_SUCCESSOR"
    else
        lr_event successor_cancel_failed successor "$LR_SUCCESSOR"
    fi
}

lr_end_chain() {
    # lr_end_chain STATE WHY: this link ends the chain, unless an end is recorded already: the
    # first recorded end stands (a hard link fails when the file exists, on NFS too).
    local tmp=${LR_ENDED_FILE%/*}/.ended.$SLURM_JOB_ID.$$ recorded
    rm -f "$tmp"
    (set -C; printf '%s\n' "$1" >"$tmp")  # a new file, never written through a link
    if ln "$tmp" "$LR_ENDED_FILE" 2>/dev/null; then
        rm -f "$tmp"
        lr_event chain_ended state "$1" reason "$2"
        lr_say "chain $LONGRUN_CHAIN_ID${LR_ELEMENT:+ element $LR_ELEMENT} ended: $1 ($2)"
        lr_mail_at_end "$1"
    else
        rm -f "$tmp"
        recorded=$(cat "$LR_ENDED_FILE" 2>/dev/null)
        lr_event chain_end_kept state "$1" recorded "$recorded"
    fi
}

lr_mail_at_end() {
    # lr_mail_at_end STATE: the chain ends with this job: ask Slurm to mail when it ends, if
    # the user asked for mail at the end (END), or at a failure (FAIL) and STATE says one.
    if [ "$LONGRUN_MAIL_END" = 1 ] || { [ "$LONGRUN_MAIL_FAIL" = 1 ] && [ "$1" != COMPLETED ]; }; then
        if scontrol "${LONGRUN_CLUSTER_ARGS[@]}" update "JobId=$LR_SELF" MailType=END,FAIL >/dev/null 2>&1; then
            lr_event mail_requested state "$1"
        else
            lr_event mail_failed state "$1"
        fi
    fi
}

lr_backoff() {
    # Hold the successor back after 3 or more links in a row that ran under a minute.
    local streak=0 delay before
    lr_requested_successor
    if [ $((SECONDS - LR_T0)) -lt 60 ]; then
        # A number, read as digits: bash arithmetic on a file's text would run $(...) in it.
        before=$(cat "$LR_LINKS_DIR/${LR_PREVIOUS:-none}/streak" 2>/dev/null)
        [[ $before =~ ^[0-9]{1,4}$ ]] || before=0
        streak=$((10#$before + 1))
    fi
    lr_write "$LR_LINK_DIR/streak" "$streak"
    [ "$streak" -ge 3 ] && [ -n "${LR_SUCCESSOR:-}" ] || return 0
    delay=$((streak - 3 > 10 ? 600 : LONGRUN_BACKOFF_SECONDS << (streak - 3)))  # no overflow
    [ $delay -gt 600 ] && delay=600
    if scontrol "${LONGRUN_CLUSTER_ARGS[@]}" update "JobId=$LR_SUCCESSOR" "StartTime=now+$delay" >/dev/null 2>&1; then
        lr_event backoff successor "$LR_SUCCESSOR" seconds "$delay" short_links "$streak"
        lr_say "$LR_LABEL: $streak links in a row ran under a minute; the next one starts in ${delay}s"
    else
        lr_event backoff_failed successor "$LR_SUCCESSOR" seconds "$delay"
    fi
}

# --- signals ------------------------------------------------------------------------------
lr_catches() {
    # lr_catches PID SIGNUM: whether the process would survive the signal because it has a
    # handler for it (SigCgt) or blocks it to take it from a signal thread, as srun does (SigBlk).
    local line mask
    while IFS= read -r line; do
        case $line in SigCgt:*|SigBlk:*) ;; *) continue ;; esac
        mask=${line#*:}
        mask=${mask//[[:space:]]/}
        (( (16#$mask >> ($2 - 1)) & 1 )) && return 0
    done 2>/dev/null <"/proc/$1/status"
    return 1
}

lr_children() {
    # LR_CHILDREN: every process's children ("PARENT" -> " PID PID..."), from /proc.
    local stat line rest ppid
    LR_CHILDREN=()
    for stat in /proc/[0-9]*/stat; do
        { read -r line <"$stat"; } 2>/dev/null || continue
        rest=${line##*) }
        rest=${rest#* }
        ppid=${rest%% *}
        LR_CHILDREN[$ppid]+=" ${line%% *}"
    done
}

lr_catchers() {
    # LR_TARGETS: the processes to signal as plain sbatch would: the script if it catches the
    # signal, else those of its descendants that catch it (srun does, and passes it to its
    # tasks), never descending below a process that catches it.
    local pid queue signum
    LR_TARGETS=()
    signum=$(kill -l "$2" 2>/dev/null) || return 1
    lr_children
    queue=$1
    while [ -n "$queue" ]; do
        pid=${queue%% *}
        queue=${queue#"$pid"}
        queue=${queue# }
        if lr_catches "$pid" "$signum"; then
            LR_TARGETS+=("$pid")
        else
            queue+="${LR_CHILDREN[$pid]:-}"
        fi
        queue=${queue# }
    done
}

lr_forward() {
    # Deliver the pre-timeout signal to the body as plain sbatch would (see lr_catchers).
    local tries=${1:-1}
    [ -n "${LR_BODY_PID:-}" ] || return 0
    while :; do
        lr_catchers "$LR_BODY_PID" "$LONGRUN_CHECK_SIGNAL"
        [ ${#LR_TARGETS[@]} -gt 0 ] && break
        tries=$((tries - 1))
        if [ $tries -le 0 ] || ! kill -0 "$LR_BODY_PID" 2>/dev/null; then
            break
        fi
        sleep 1
    done
    LR_FORWARDED=1
    [ ${#LR_TARGETS[@]} -gt 0 ] && kill -s "$LONGRUN_CHECK_SIGNAL" "${LR_TARGETS[@]}" 2>/dev/null
    lr_event signal_forwarded signal "$LONGRUN_CHECK_SIGNAL" processes "${#LR_TARGETS[@]}"
}

lr_on_check_signal() {
    # The pre-timeout signal. Only flags and signals here: the successor is checked by the main
    # flow (never inside a trap, which may have interrupted a submission).
    LR_WOKEN=1
    LR_CHECK_PENDING=1
    lr_event pretimeout_signal signal "$LONGRUN_CHECK_SIGNAL"
    if [ "$LONGRUN_FORWARD_SIGNAL" = 1 ]; then
        if [ -n "${LR_BODY_PID:-}" ]; then
            lr_forward 1
        else
            LR_FORWARD_PENDING=1
        fi
    fi
}

lr_on_batch_signal() {
    # lr_on_batch_signal SIG: a signal sent to the batch shell alone (scancel --batch
    # --signal=SIG): your script gets it, as the batch shell it would be under plain sbatch, and
    # its own traps decide (without one, it ends as a plain job would). One that comes before
    # your script runs is given to it once it does (lr_deliver_pending).
    LR_WOKEN=1
    if [ -n "${LR_BODY_PID:-}" ]; then
        kill -s "$1" "$LR_BODY_PID" 2>/dev/null
        LR_SIGNALLED=$1
        lr_event signal_forwarded signal "$1" processes 1
    else
        LR_PENDING_SIGNALS+=("$1")
        lr_event signal_held signal "$1"
    fi
}

lr_deliver_pending() {
    # The signals held for your script (lr_on_batch_signal): each once it catches it, or after
    # 10 s, as a plain batch shell would have got it.
    local signal signum tries
    for signal in "${LR_PENDING_SIGNALS[@]}"; do
        signum=$(kill -l "$signal" 2>/dev/null) || continue
        for ((tries = 0; tries < 10; tries++)); do
            lr_catches "$LR_BODY_PID" "$signum" && break
            kill -0 "$LR_BODY_PID" 2>/dev/null || break
            sleep 1
        done
        lr_on_batch_signal "$signal"
    done
    LR_PENDING_SIGNALS=()
}

lr_on_term() {
    # SIGTERM to the batch shell: a time limit, a preemption, a node failure or a cancel.
    # Record why at once (SIGKILL follows after KillWait); never start the body after it.
    # slurmctld is asked twice; without an answer, what the link knows decides: its end time.
    local LR_STATE LR_PREEMPTED LR_TIME_LEFT LR_START LR_END LR_REASON LR_RESTARTS LR_CAUSE info
    LR_WOKEN=1
    lr_job_info "$LR_SELF"
    info=$?
    if [ $info -eq 2 ]; then
        sleep 1
        lr_job_info "$LR_SELF"
        info=$?
    fi
    if [ "$LONGRUN_CHECK_SIGNAL" = TERM ] && { [ "$LR_STATE" = RUNNING ] \
        || { [ $info -eq 2 ] && [ -n "$LR_DEADLINE" ] && [ "$EPOCHSECONDS" -lt "$LR_DEADLINE" ] \
            && [ "$EPOCHSECONDS" -ge $((LR_DEADLINE - LONGRUN_CHECK_SECONDS - 60)) ]; }; }; then
        # The pre-timeout TERM (--signal=B:TERM@N): while the job runs, or, without an answer,
        # when Slurm sends it: in the 60 s before N seconds ahead of the end time, or later.
        lr_on_check_signal
        return
    fi
    [ "$LR_TERMINATED" = 1 ] && return
    LR_TERMINATED=1
    # The last link allowed: whatever Slurm does with it, the chain ends with it.
    [ "$LR_RESTART_COUNT" -ge "$LR_LIMIT" ] && lr_mail_at_end MAX_RESTARTS
    if ! lr_interruption && [ $info -eq 2 ] && [ -n "$LR_DEADLINE" ] && [ "$EPOCHSECONDS" -ge "$LR_DEADLINE" ]; then
        LR_CAUSE=TimeLimit  # at or after its end time: a time limit, whatever Slurm says later
    fi
    if [ -n "$LR_CAUSE" ]; then
        LR_TERM_VERDICT=interrupted
    else
        LR_TERM_VERDICT=terminated
    fi
    lr_set_verdict "$LR_TERM_VERDICT"
    LR_TERM_CAUSE=$LR_CAUSE LR_TERM_ANSWERED=$((info != 2)) LR_TERM_AT=$SECONDS
    lr_event sigterm slurm_state "${LR_STATE:-unknown}" reason "$LR_REASON" preempted "$LR_PREEMPTED" \
        cause "$LR_CAUSE" verdict "$LR_TERM_VERDICT" final "$LR_VERDICT_FINAL" answered "$((info != 2))"
    lr_say "$LR_LABEL: SIGTERM (${LR_STATE:-state unknown}${LR_CAUSE:+, $LR_CAUSE})"
    if [ "$LR_STATE" = RUNNING ] && [ -n "${LR_BODY_PID:-}" ]; then
        # Only the batch shell was signalled (Slurm signals every process when it ends a
        # job): pass it on to the script, which plain sbatch would have run as this shell.
        kill -s TERM "$LR_BODY_PID" 2>/dev/null
        lr_event signal_forwarded signal TERM processes 1
    elif [ $info -eq 0 ] && lr_cancelled_now; then
        # Cancelled (scancel): the chain ends here, not when a successor gets a node to say so.
        lr_end_chain CANCELLED "job $SLURM_JOB_ID was cancelled while it ran (scancel)"
        lr_cancel_successor
    fi
}

lr_cancelled_now() {
    # Whether slurmctld, asked in the SIGTERM handler (lr_job_info), shows this job cancelled:
    # ending for no reason Slurm gives, no PreemptTime, the same run of the job (a
    # requeue shows Restarts one higher), ended before its time limit. As seen on 22.05 and 24.11.
    [ "$LR_VERDICT_FINAL" != 1 ] && [ "$LR_TERM_VERDICT" = terminated ] || return 1
    # (a link beyond --max-restarts is cancelled by the watcher: that end is MAX_RESTARTS)
    [ "$LR_RESTART_COUNT" -le "$LR_LIMIT" ] || return 1
    case $LR_STATE in COMPLETING|CANCELLED) ;; *) return 1 ;; esac
    [ "$LR_REASON" = None ] && [ "$LR_PREEMPTED" = 0 ] && [ "$LR_RESTARTS" = "${SLURM_RESTART_COUNT:-0}" ] || return 1
    [ -n "$LR_DEADLINE" ] && [ $((EPOCHSECONDS + 5)) -lt "$LR_DEADLINE" ]
}
# --- the link's steps ---------------------------------------------------------------------
lr_stat() {
    # lr_stat PATH [-L]: its owner, mode and kind, into the caller's owner, mode and kind. A
    # stat that fails is asked again twice, a second apart: one failed call decides nothing.
    local try out
    for try in 1 2 3; do
        if out=$(stat ${2:+"$2"} -c '%u %a %F' -- "$1" 2>/dev/null); then
            read -r owner mode kind <<<"$out"
            return 0
        fi
        [ $try -eq 3 ] || sleep 1
    done
    return 1
}

lr_trusted_path() {
    # lr_trusted_path PATH: whether nobody else can swap PATH, or a folder on the way to it, for
    # one of their own: every folder on the way belongs to you or root and is writable by no
    # one else unless sticky (like /tmp), and every symbolic link met belongs to you or root.
    # Else the problem is in LR_PROBLEM.
    local rest=$1 current='' part owner mode kind hops=0 target
    LR_PROBLEM=''
    [[ $rest == /* ]] || { LR_PROBLEM="$1 is not an absolute path"; return 1; }
    part=/
    while :; do
        if ! lr_stat "${current:-/}"; then
            LR_PROBLEM="${current:-/} cannot be read"
        elif [ "$owner" != 0 ] && [ "$owner" != "$UID" ]; then
            LR_PROBLEM="${current:-/} belongs to uid $owner, neither you (uid $UID) nor root"
        elif (( 8#$mode & 8#022 )) && ! (( 8#$mode & 8#1000 )); then
            LR_PROBLEM="${current:-/} is writable by other users (mode $mode)"
        fi
        [ -z "$LR_PROBLEM" ] || return 1
        while :; do
            rest=${rest#/}
            [ -n "$rest" ] || return 0
            part=${rest%%/*}
            if [[ $rest == */* ]]; then rest=/${rest#*/}; else rest=''; fi
            case $part in
                .) continue ;;
                ..) current=${current%/*}; continue ;;
            esac
            lr_stat "$current/$part" || break  # then reported as unreadable, above
            [ "$kind" = "symbolic link" ] || break
            if [ "$owner" != 0 ] && [ "$owner" != "$UID" ]; then
                LR_PROBLEM="$current/$part is a symbolic link of uid $owner, neither you (uid $UID) nor root"
                return 1
            fi
            hops=$((hops + 1))
            [ $hops -le 40 ] || { LR_PROBLEM="$1: too many symbolic links"; return 1; }
            target=$(readlink -- "$current/$part")
            [[ $target == /* ]] && current=''
            rest=/$target$rest
        done
        current=$current/$part
    done
}

lr_folder_problem() {
    # Whether the chain folder and the files a link trusts are safe: the whole path to them
    # trusted (lr_trusted_path), and each of them yours and writable by nobody else. Otherwise
    # someone else could choose what this job runs or submits. The problem in LR_PROBLEM.
    local path owner mode kind
    for path in "$LONGRUN_CHAIN_DIR" "$LR_JOBS_DIR"; do
        lr_trusted_path "$path" || return 0
    done
    for path in "$LONGRUN_STATE_DIR" "$LONGRUN_CHAIN_DIR" "$LR_LINKS_DIR" "$LR_JOBS_DIR" "$LR_ENV_FILE" "$LR_LINK_SCRIPT"; do
        if [ -L "$path" ] && [ -f "$path" ]; then
            LR_PROBLEM="$path is a symbolic link"
        elif ! lr_stat "$path" -L; then
            LR_PROBLEM="$path cannot be read"
        elif [ "$owner" != "$UID" ]; then
            LR_PROBLEM="$path belongs to uid $owner, not to you (uid $UID)"
        elif (( 8#$mode & 8#022 )); then
            LR_PROBLEM="$path is writable by other users (mode $mode)"
        fi
        [ -z "$LR_PROBLEM" ] || return 0
    done
    return 1
}

lr_check_folder() {
    # Refuse to run in a chain folder someone else could change (lr_folder_problem). The end
    # is still recorded, for `longrun status` and the watcher, but only as a new file (never
    # written through a link someone put there).
    lr_folder_problem || return 0
    printf 'longrun: refusing to run: %s. Someone else could change what this job runs; nothing of your script ran. Check the chain folder (chmod go-w), then resubmit.\n' "$LR_PROBLEM" >&2
    lr_end_chain FAILED "unsafe chain folder: $LR_PROBLEM"
    exit 1
}

lr_start() {
    local argument
    LR_RESTART_COUNT='' LR_INITIAL='' LR_PREVIOUS='' LR_RETRIES=0 LR_FREE=0 LR_MEMORY='' LR_SUBMIT_FROM=$LONGRUN_SUBMIT_FROM
    for argument in "$@"; do
        case $argument in
            --restart-count=*) LR_RESTART_COUNT=${argument#*=} ;;
            --initial-job=*) LR_INITIAL=${argument#*=} ;;
            --previous-job=*) LR_PREVIOUS=${argument#*=} ;;
            --retries=*) LR_RETRIES=${argument#*=} ;;
            --array-element=*) LR_ARRAY_ELEMENT=${argument#*=} ;;
            --free-links=*) LR_FREE=${argument#*=} ;;
            --memory=*) LR_MEMORY=${argument#*=} ;;
            --submit-from=*) LR_SUBMIT_FROM=${argument#*=} ;;
            *) LR_RESTART_COUNT=invalid ;;
        esac
    done
    [[ $LR_RESTART_COUNT =~ ^[0-9]+$ && $LR_RETRIES =~ ^[0-9]+$ && $LR_INITIAL =~ ^[0-9]*$ && $LR_PREVIOUS =~ ^[0-9]*$ \
        && $LR_FREE =~ ^[0-9]{1,6}$ && $LR_MEMORY =~ ^((mem|mem-per-cpu)=[1-9][0-9]{0,11})?$
        && $LR_SUBMIT_FROM =~ ^(compute|login)$ ]] || {
        printf 'longrun: this link script takes --restart-count=N [--initial-job=JOB] [--previous-job=JOB] [--retries=N] [--array-element=ARRAY] [--free-links=N] [--memory=mem|mem-per-cpu=MB] [--submit-from=login]\n' >&2
        exit 2
    }
    if [ "$LONGRUN_ARRAY" = 1 ] && ! lr_array_element; then
        printf 'longrun: this link belongs to a job array, but neither Slurm nor --array-element says which element\n' >&2
        exit 2
    fi
    [ -n "$LR_INITIAL" ] || LR_INITIAL=$SLURM_JOB_ID
    LR_T0=$SECONDS LR_STARTED=$EPOCHSECONDS LR_ENDED_AT=''
    LR_FREE=$((10#$LR_FREE)) LR_LIMIT=$((LONGRUN_MAX_RESTARTS + 10#$LR_FREE))
    LR_LABEL="link $((LR_RESTART_COUNT + 1))/$((LR_LIMIT + 1))"
    lr_check_folder
    LR_LINK_DIR=$LR_LINKS_DIR/$SLURM_JOB_ID
    LR_SUCCESSOR='' LR_SUBMIT_ERROR='' LR_FORWARDED=0 LR_VERDICT_FINAL=0 LR_PREV_STATE='' LR_PREV_END='' LR_PREV_PREEMPTED=0 LR_PREV_VERDICT=''
    LR_TERMINATED=0 LR_TERM_VERDICT='' LR_TERM_CAUSE='' LR_TERM_ANSWERED=1 LR_TERM_AT='' LR_BODY_ENDED='' LR_CHECK_PENDING=0 LR_FORWARD_PENDING=0 LR_BODY_PID=''
    LR_NOTICES_HELD=1 LR_HELD=() LR_SUBMIT_UNKNOWN=0 LR_SUBMIT_LATER=0 LR_RETRIER='' LR_BEATER='' LR_JUDGEMENT='' LR_CANCELLED='' LR_HANDOVER='' LR_PLACEMENT=() LR_NEXT_ARGUMENTS=()
    LR_AVOID='' LR_MTIME0='' LR_IDLE=0 LR_USED=0 LR_RERUN=0 LR_HANDOVERS=0 LR_DEADLINE=''
    mkdir -p "$LR_LINK_DIR" || { printf 'longrun: cannot write to %s\n' "$LR_LINK_DIR" >&2; exit 1; }
    if [ -L "$LR_LINK_DIR" ] || [ ! -O "$LR_LINK_DIR" ] || [ -L "$LR_LINK_DIR/events.jsonl" ]; then
        # Only this link writes there: something put in its place is not followed.
        printf 'longrun: refusing to run: %s is not a folder of your own; nothing of your script ran\n' "$LR_LINK_DIR" >&2
        exit 1
    fi
    # The real handlers replace the flag-only traps set on the first line.
    trap lr_on_term TERM
    if [ -n "$LONGRUN_CHECK_SIGNAL" ] && [ "$LONGRUN_CHECK_SIGNAL" != TERM ]; then
        trap lr_on_check_signal "$LONGRUN_CHECK_SIGNAL"
    fi
    LR_PENDING_SIGNALS=("${LR_EARLY_SIGNALS[@]}") LR_SIGNALLED=''
    for argument in HUP INT QUIT USR1 USR2 XCPU; do
        # shellcheck disable=SC2064  # (the signal's name, fixed now)
        [ "$argument" = "$LONGRUN_CHECK_SIGNAL" ] || trap "lr_on_batch_signal $argument" "$argument"
    done
    for argument in "${LR_PENDING_SIGNALS[@]}"; do lr_event signal_held signal "$argument"; done
    if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
        # A run of a requeued job: what an earlier run decided is not this run's.
        rm -f "$LR_LINK_DIR/verdict" "$LR_LINK_DIR/command"
    fi
    [ -e "$LR_JOBS_DIR/$SLURM_JOB_ID" ] || lr_write "$LR_JOBS_DIR/$SLURM_JOB_ID" "$LONGRUN_CHAIN_ID"
    local output output_offset error error_offset
    lr_stream 1 && output=$LR_PATH output_offset=$LR_SIZE
    lr_stream 2 && error=$LR_PATH error_offset=$LR_SIZE
    lr_deadline
    lr_rerun_time
    lr_save_learned
    lr_memory_asked
    lr_event link_started previous "$LR_PREVIOUS" slurm_restarts "${SLURM_RESTART_COUNT:-0}" \
        node "${SLURMD_NODENAME:-}" retries "$LR_RETRIES" element "$LR_ELEMENT" array "$LR_ARRAY_ELEMENT" \
        output "$output" output_offset "$output_offset" error "$error" error_offset "$error_offset" \
        nodes "${SLURM_JOB_NODELIST:-}" memory "${LR_MEM_KIND:+$LR_MEM_KIND=$LR_MEM_MB}" free_links "$LR_FREE" \
        deadline "$LR_DEADLINE"
    if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
        lr_say "$LR_LABEL: restarted by Slurm with the same job id (restart ${SLURM_RESTART_COUNT})"
    fi
    [ "${LR_EARLY_TERM:-0}" = 1 ] && lr_on_term
    [ "${LR_EARLY_CHECK:-0}" = 1 ] && lr_on_check_signal
    return 0
}

lr_stream() {
    # lr_stream FD: the file Slurm opened for this job's FD (its --output or --error, patterns
    # resolved) into LR_PATH, and its size now into LR_SIZE: where this link's output begins.
    LR_PATH='' LR_SIZE=''
    LR_PATH=$(readlink "/proc/$$/fd/$1" 2>/dev/null) && [ -f "$LR_PATH" ] || return 1
    LR_SIZE=$(stat -L -c %s "/proc/$$/fd/$1" 2>/dev/null) || LR_SIZE=''
}

lr_array_element() {
    # This link's array element: from Slurm in the element's first link (an array task), from
    # --array-element=ARRAYJOB,TASK,COUNT,MIN,MAX,STEP in its later links (plain jobs).
    local spec=$LR_ARRAY_ELEMENT
    if [ -z "$spec" ]; then
        spec=${SLURM_ARRAY_JOB_ID:-},${SLURM_ARRAY_TASK_ID:-},${SLURM_ARRAY_TASK_COUNT:-}
        spec+=,${SLURM_ARRAY_TASK_MIN:-},${SLURM_ARRAY_TASK_MAX:-},${SLURM_ARRAY_TASK_STEP:-}
        LR_SELF=${SLURM_ARRAY_JOB_ID:-}_${SLURM_ARRAY_TASK_ID:-}
    fi
    [[ $spec =~ ^[0-9]+,[0-9]+,[0-9]*,[0-9]*,[0-9]*,[0-9]*$ ]] || return 1
    IFS=, read -r LR_ARRAY_JOB LR_ELEMENT LR_ARRAY_COUNT LR_ARRAY_MIN LR_ARRAY_MAX LR_ARRAY_STEP <<<"$spec"
    LR_ARRAY_ELEMENT=$spec
    LR_TAG_ID=${LONGRUN_CHAIN_ID}_$LR_ELEMENT
    LR_ENDED_FILE=$LONGRUN_CHAIN_DIR/elements/$LR_ELEMENT/ended
    mkdir -p "${LR_ENDED_FILE%/*}"
}

lr_array_pattern() {
    # lr_array_pattern PATTERN: an --output/--error pattern with %A and %a (zero-padded as
    # %3a) resolved to this element, into LR_PATTERN, so that every link of the element writes
    # the file its first link wrote. "%%" stays; Slurm takes a pattern with a backslash as is.
    local rest=$1 value
    LR_PATTERN=''
    if [[ $rest == *\\* ]]; then LR_PATTERN=$rest; return 0; fi
    while [ -n "$rest" ]; do
        if [[ $rest =~ ^%([0-9]*)([Aa]) ]]; then
            value=$LR_ARRAY_JOB
            [ "${BASH_REMATCH[2]}" = a ] && value=$LR_ELEMENT
            printf -v value '%0*d' "${BASH_REMATCH[1]:-0}" "$value"
            LR_PATTERN+=$value
            rest=${rest:${#BASH_REMATCH[0]}}
        elif [[ $rest == %%* ]]; then
            LR_PATTERN+=%%
            rest=${rest:2}
        else
            LR_PATTERN+=${rest:0:1}
            rest=${rest:1}
        fi
    done
}

lr_ended() {
    # Has this chain (or this array element) ended? LR_RECORDED: the recorded end state.
    LR_RECORDED=$(cat "$LR_ENDED_FILE" 2>/dev/null || cat "$LR_CHAIN_ENDED_FILE" 2>/dev/null) || return 1
    [ -n "$LR_RECORDED" ]
}

lr_claim_previous() {
    # Exactly one link continues each link: the first to create the claim (a symbolic link,
    # created atomically, on NFS too). A Slurm requeue of the winner finds its own claim. Only
    # a claim that exists and names another job is lost; any other failure (a full or flaky
    # file system) is asked again, and if it stays, this link says so and runs nothing.
    [ -n "$LR_PREVIOUS" ] || return 0
    local dir=$LR_LINKS_DIR/$LR_PREVIOUS owner error try
    for try in 1 2 3 4 5; do
        mkdir -p "$dir" 2>/dev/null
        if error=$(ln -s "$SLURM_JOB_ID" "$dir/claim" 2>&1); then
            lr_event claimed previous "$LR_PREVIOUS"
            return 0
        fi
        owner=$(readlink "$dir/claim" 2>/dev/null)
        if [[ $owner =~ ^[0-9]+$ ]]; then
            [ "$owner" = "$SLURM_JOB_ID" ] && return 0
            lr_event claim_lost previous "$LR_PREVIOUS" owner "$owner"
            lr_say "$LR_LABEL: job $owner already continues job $LR_PREVIOUS; this job ends without running the script"
            exit 0
        fi
        [ $try -eq 5 ] || lr_pause $((try * 2))
    done
    lr_folder_full && error+=" ($LR_FULL)"
    lr_event claim_failed previous "$LR_PREVIOUS" error "$error"
    lr_say "$LR_LABEL: cannot claim job $LR_PREVIOUS in the chain folder: ${error:-no reason given}; nothing of your script ran"
    lr_end_chain FAILED "the chain folder could not be written: ${error:-no reason given}"
    exit 1
}

lr_folder_full() {
    # Whether the chain folder's file system has no space or no inodes left (LR_FULL says so).
    local blocks inodes
    LR_FULL=''
    read -r blocks inodes < <(stat -f -c '%a %d' -- "$LONGRUN_CHAIN_DIR" 2>/dev/null) || return 1
    [ "$blocks" = 0 ] && LR_FULL='the file system of the chain folder is full'
    [ "$inodes" = 0 ] && LR_FULL='the file system of the chain folder has no free inodes'
    [ -n "$LR_FULL" ]
}

lr_judge_previous() {
    # Why did the previous link end? Its own verdict first, then Slurm's final state.
    if [ "$LR_RESTART_COUNT" -eq 0 ] || [ -z "$LR_PREVIOUS" ]; then
        lr_announce
        return 0
    fi
    local verdict wait_s outcome why previous answer kept=0
    local kept_outcome kept_state kept_preempted kept_verdict
    if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] \
        && { read -r kept_outcome kept_state kept_preempted kept_verdict <"$LR_LINK_DIR/judgement"; } 2>/dev/null \
        && [ "$kept_outcome" = run ]; then
        # A run of a requeued job whose first run judged the previous link from Slurm's answer
        # and started the body: the previous link's record may be gone by now (MinJobAge), so
        # that judgement stands, with what it learned.
        [ "$kept_state" = - ] && kept_state=''
        [ "$kept_verdict" = - ] && kept_verdict=''
        LR_PREV_STATE=$kept_state LR_PREV_PREEMPTED=${kept_preempted:-0} LR_PREV_VERDICT=$kept_verdict
        lr_event judged previous "$LR_PREVIOUS" verdict "${kept_verdict:-none}" slurm_state "${kept_state:-unknown}" \
            preempted "$LR_PREV_PREEMPTED" outcome run reason "judged by this job's earlier run" kept 1
        lr_announce
        return 0
    fi
    LR_PREV_VERDICT=$(cat "$LR_LINKS_DIR/$LR_PREVIOUS/verdict" 2>/dev/null)
    verdict=$LR_PREV_VERDICT
    # A decisive verdict needs Slurm's word only for the record: wait less for it.
    case $verdict in completed|continue|failed|out_of_memory|ended) wait_s=10 ;; *) wait_s=$LONGRUN_JUDGE_SECONDS ;; esac
    # An array element's first link is an array task: Slurm names it ARRAYJOB_TASK.
    previous=$LR_PREVIOUS
    [ -n "$LR_ELEMENT" ] && [ "$LR_RESTART_COUNT" -eq 1 ] && previous=${LR_ARRAY_JOB}_$LR_ELEMENT
    # Slurm did not answer (or not finally): never an end; Slurm no longer knows it: "".
    lr_final_state "$previous" "$wait_s"
    case $? in 0) answer=final ;; 1) answer=forgotten ;; *) answer=none ;; esac
    LR_PREV_STATE=$LR_STATE LR_PREV_END=$LR_END LR_PREV_PREEMPTED=$LR_PREEMPTED
    # Its script may still run on a lost node, and so may those it still waited for when it
    # ended (its orphans file): wait for them before this link's script, once the successor is
    # queued (lr_check_go), so that this link never waits without one.
    case $answer:$LR_STATE in none:*|*:NODE_FAIL|*:BOOT_FAIL) LR_ORPHANS=$LR_PREVIOUS ;; esac
    lr_inherit_orphans
    # A failed link could not tell whether a step of it ran out of memory (the accounting did
    # not answer it): Slurm records that for the step only, so ask again now.
    local judged=$LR_STATE steps=''
    [ "$answer" = none ] && judged=NO_ANSWER
    if { [ "$verdict" = failed ] || [ "$verdict" = undecided ]; } \
        && [ "$LR_STATE" = FAILED ]; then
        lr_steps_out_of_memory "$previous"
        steps=$?
        [ "$steps" = 0 ] && judged=OUT_OF_MEMORY
    fi
    lr_rule_outcome "$verdict" "$judged" "$LR_PREEMPTED"
    outcome=$LR_OUTCOME why=$LR_WHY
    lr_event judged previous "$LR_PREVIOUS" verdict "${verdict:-none}" slurm_state "${LR_STATE:-unknown}" \
        answer "$answer" preempted "$LR_PREEMPTED" outcome "$outcome" reason "$why" start "$LR_START" \
        end "$LR_END" steps_out_of_memory "$steps"
    case $outcome in
        run) kept=1 ;;
        run-warn)
            kept=1
            lr_event warning message "how job $LR_PREVIOUS ended is unknown ($answer); running" ;;
        retry-or-fail)
            lr_retry_or_fail "$why" ;;
        out-of-memory)
            if [ "$LONGRUN_GROW_PERCENT" -gt 0 ]; then
                lr_grow_memory "$why"
            else
                lr_retry_or_fail "$why ($LR_MEMORY_HINT)"
            fi ;;
        end-as-recorded)
            lr_ended || LR_RECORDED=COMPLETED
        lr_skip_body "$LR_RECORDED" "$why" ;;
        end:*)
            lr_skip_body "${outcome#end:}" "$why" ;;
    esac
    # The chain goes on, unless its end is recorded already (then lr_check_go stops it).
    # Kept for a requeued run once the body starts (lr_run_body), if Slurm answered.
    [ "$kept" = 1 ] && [ "$answer" != none ] \
        && LR_JUDGEMENT="run ${LR_PREV_STATE:--} $LR_PREV_PREEMPTED ${LR_PREV_VERDICT:--}"
    lr_ended || lr_event link_interrupted previous "$LR_PREVIOUS" slurm_state "${LR_STATE:-unknown}" \
        verdict "${verdict:-none}" reason "$why"
    # Slurm's view of the previous link stays in LR_PREV_*: no later step may take it for
    # this link's own (a stale PreemptTime made a timed-out link look preempted).
    LR_STATE='' LR_PREEMPTED=0 LR_TIME_LEFT='' LR_START='' LR_END='' LR_REASON=''
    lr_announce
}

lr_retry_or_fail() {
    # lr_retry_or_fail WHY: run the body again while --retry-failed has retries left; else the
    # chain ends as failed, for WHY.
    if [ "$LR_RETRIES" -lt "$LONGRUN_RETRY_FAILED" ]; then
        LR_RETRIES=$((LR_RETRIES + 1))
        lr_event retry attempt "$LR_RETRIES" of "$LONGRUN_RETRY_FAILED"
    else
        lr_skip_body FAILED "$1"
    fi
}

lr_skip_body() {
    # End the chain without running the body; this job itself ends as completed. The end is
    # recorded before the successor is cancelled: nobody may take that cancel for a user's.
    lr_set_verdict ended
    lr_end_chain "$1" "$2"
    lr_cancel_successor
    lr_release_notices
    exit 0
}

lr_announce() {
    lr_say "$LR_LABEL of chain $LONGRUN_CHAIN_ID${LR_ELEMENT:+ (array element $LR_ELEMENT)} is job $SLURM_JOB_ID${LR_PREVIOUS:+ (job $LR_PREVIOUS before it ended ${LR_PREV_STATE:-in an unknown state})}"
}

lr_export_variables() {
    export SLURM_LONGRUN_INITIAL_JOB_ID=$LR_INITIAL
    export SLURM_LONGRUN_RESTART_COUNT=$LR_RESTART_COUNT
    export SLURM_LONGRUN_LINK=$((LR_RESTART_COUNT + 1))
    export SLURM_LONGRUN_MAX_RESTARTS=$LR_LIMIT
    export SLURM_LONGRUN_DEADLINE=$LR_DEADLINE
    export SLURM_LONGRUN_PROGRESS_FILE=$LONGRUN_PROGRESS_FILE
    export SLURM_LONGRUN_PREVIOUS_JOB_ID=$LR_PREVIOUS
    export SLURM_LONGRUN_PREVIOUS_STATE=$LR_PREV_STATE
    export SLURM_LONGRUN_PREVIOUS_VERDICT=$LR_PREV_VERDICT
    export SLURM_LONGRUN_CHAIN_ID=$LONGRUN_CHAIN_ID
    export SLURM_LONGRUN_CHAIN_DIR=$LONGRUN_CHAIN_DIR
    export SLURM_LONGRUN_CONTINUE_CODE=$LONGRUN_CONTINUE_CODE
    export SLURM_LONGRUN_RETRIES=$LR_RETRIES
    export SLURM_LONGRUN_SIGNAL=$LONGRUN_PRETIMEOUT_SIGNAL
    if [ -n "$LR_ELEMENT" ]; then
        # Every link of an element sees the original array, as its first link did.
        export SLURM_ARRAY_JOB_ID=$LR_ARRAY_JOB SLURM_ARRAY_TASK_ID=$LR_ELEMENT
        export SLURM_ARRAY_TASK_COUNT=$LR_ARRAY_COUNT SLURM_ARRAY_TASK_MIN=$LR_ARRAY_MIN
        export SLURM_ARRAY_TASK_MAX=$LR_ARRAY_MAX SLURM_ARRAY_TASK_STEP=$LR_ARRAY_STEP
        export SLURM_LONGRUN_ARRAY_TASK_ID=$LR_ELEMENT
    fi
}

lr_check_go() {
    # The last look before the body starts: a recorded end or a SIGTERM means no body. It
    # comes after the wait for the scripts of links on lost nodes, which may take minutes.
    lr_wait_for_orphans
    lr_stop_retrier  # (what it queued during the wait is this link's successor)
    if lr_claimed_by_another; then
        # Slurm gave up on this node while this link waited, and its successor has started.
        lr_event body_skipped reason "job $LR_OWNER continues this link already (Slurm gave up on its node)"
        lr_say "$LR_LABEL: job $LR_OWNER continues this link already (Slurm gave up on its node); the script does not run"
        exit 0
    fi
    # After a wait, which can last minutes: a successor cancelled meanwhile means "stop after
    # this link"; a lost one is queued again.
    [ "$LR_WAITED" = 1 ] && lr_ensure_successor
    if lr_ended; then
        lr_cancel_successor
        lr_set_verdict ended
        lr_event body_skipped reason "the chain has ended ($LR_RECORDED)"
        lr_say "$LR_LABEL: the chain has ended; the script does not run"
        exit 0
    fi
    if [ "$LR_TERMINATED" = 1 ]; then
        lr_event body_skipped reason "SIGTERM before the script started"
        lr_say "$LR_LABEL: SIGTERM before the script started; it does not run"
        lr_check_stalled  # (a successor refused for a limit: no word of it would come later)
        exit 0
    fi
    [ -z "$LR_HANDOVER" ] || lr_hand_over
}

lr_write_body() {
    LR_BODY=$LR_LINK_DIR/$LONGRUN_SCRIPT_NAME
    # Written as a new file (noclobber: O_EXCL), never through a symbolic link put in its place.
    rm -f "$LR_BODY"
    (set -C; printf '%s' "$LONGRUN_SCRIPT_TEXT" >"$LR_BODY") || { lr_event body_not_written path "$LR_BODY"; exit 1; }
    unset LONGRUN_SCRIPT_TEXT
}

lr_run_body() {
    # A background job of a non-interactive shell starts with SIGINT and SIGQUIT ignored and
    # standard input from /dev/null: give the script what plain sbatch would (the job's
    # standard input: --input, or /dev/null), and the PATH and umask the job started with.
    LR_BODY_RC=''
    (trap - INT QUIT; PATH=$LR_USER_PATH; umask "$LR_USER_UMASK"; exec "${LONGRUN_INTERPRETER[@]}" "$LR_BODY" "${LONGRUN_SCRIPT_ARGS[@]}") <&0 &
    LR_BODY_PID=$!
    lr_event body_started pid "$LR_BODY_PID"
    [ -z "$LR_JUDGEMENT" ] || lr_write "$LR_LINK_DIR/judgement" "$LR_JUDGEMENT"
    [ ${#LR_PENDING_SIGNALS[@]} -eq 0 ] || lr_deliver_pending
    lr_start_retrier
    lr_start_heartbeat
    if [ "$LR_FORWARD_PENDING" = 1 ]; then
        # The signal came before the script could catch it: give it 10 s to install a handler.
        LR_FORWARD_PENDING=0
        lr_forward 10
    fi
    local rc again
    while :; do
        LR_WOKEN=0
        wait "$LR_BODY_PID"
        rc=$?
        # The pre-timeout check, also for a signal that came before the wait began.
        if [ "$LR_CHECK_PENDING" = 1 ]; then
            LR_CHECK_PENDING=0
            lr_ensure_successor
            lr_start_retrier  # (should sbatch have refused it for a limit just now)
        fi
        if [ "$LR_WOKEN" = 1 ]; then
            # A trapped signal ended the wait: wait again while the script lives; if it has
            # just ended, its status is still waiting to be collected.
            kill -0 "$LR_BODY_PID" 2>/dev/null && continue
            wait "$LR_BODY_PID" 2>/dev/null
            again=$?
            [ $again -ne 127 ] && rc=$again
        fi
        break
    done
    LR_BODY_RC=$rc LR_BODY_ENDED=$SECONDS
    lr_stop_heartbeat
    lr_orphaned && exit 0
    lr_event body_exited exit_code "$rc"
    lr_stop_retrier
}

lr_start_heartbeat() {
    # While the script runs, this link touches its heartbeat every LONGRUN_HEARTBEAT_SECONDS,
    # and looks for its own claim: a link that continues this one while it runs means Slurm
    # has given up on this node (a node failure of a node cut off from slurmctld, its processes
    # alive). Then the script is stopped (SIGTERM, SIGKILL 10 s later) and the heartbeat too.
    local file=$LR_LINK_DIR/heartbeat claim=$LR_LINK_DIR/claim
    (
        while kill -0 $$ 2>/dev/null; do  # (while the link lives)
            if [ -L "$claim" ]; then
                kill -s TERM "$LR_BODY_PID" 2>/dev/null
                for _ in 1 2 3 4 5 6 7 8 9 10; do
                    kill -0 "$LR_BODY_PID" 2>/dev/null || exit 0
                    sleep 1
                done
                lr_kill_tree "$LR_BODY_PID"
                exit 0
            fi
            touch "$file" 2>/dev/null
            sleep "$LONGRUN_HEARTBEAT_SECONDS"
        done
    ) >/dev/null 2>&1 &
    LR_BEATER=$!
}

lr_kill_tree() {
    # lr_kill_tree PID: SIGKILL to a process and all its descendants (found in /proc).
    local queue=$1 pid
    lr_children
    while [ -n "${queue// /}" ]; do
        queue=${queue# }
        pid=${queue%% *}
        queue=${queue#"$pid"}
        kill -s KILL "$pid" 2>/dev/null
        queue+="${LR_CHILDREN[$pid]:-}"
    done
}

lr_stop_heartbeat() {
    [ -n "$LR_BEATER" ] || return 0
    kill "$LR_BEATER" 2>/dev/null
    wait "$LR_BEATER" 2>/dev/null
    LR_BEATER=''
}

lr_claimed_by_another() {
    # Whether another job claimed this link (its successor, after Slurm gave up on this node):
    # LR_OWNER is that job. A claim that is there but cannot be read (one failed readlink)
    # counts: only a successor ever claims this link's folder.
    local claim=$LR_LINK_DIR/claim
    LR_OWNER=$(readlink "$claim" 2>/dev/null) || LR_OWNER=''
    if [ -z "$LR_OWNER" ]; then
        [ -L "$claim" ] || return 1
        LR_OWNER='unknown'
    fi
    [ "$LR_OWNER" != "$SLURM_JOB_ID" ]
}

lr_orphaned() {
    # Whether another job claimed this link while its script ran (lr_start_heartbeat): then
    # this link's work is that job's; this one ends without a verdict, having said so.
    lr_claimed_by_another || return 1
    lr_event orphan_stopped successor "$LR_OWNER"
    lr_say "$LR_LABEL: job $LR_OWNER continues this link while it still ran (Slurm gave up on its node): the script was stopped; this job ends"
    return 0
}

lr_inherit_orphans() {
    # The jobs the previous link still waited for when it ended (killed or stopped during its
    # wait, lr_wait_for_orphans), and those an earlier run of this job (requeued) waited for:
    # this link waits for them in their stead.
    local job jobs=() folder folders=("$LR_LINKS_DIR/$LR_PREVIOUS")
    [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && folders+=("$LR_LINK_DIR")
    for folder in "${folders[@]}"; do
        jobs=()
        { read -r -a jobs <"$folder/orphans"; } 2>/dev/null  # (none: no words)
        for job in "${jobs[@]}"; do
            [[ $job =~ ^[0-9]+$ ]] && [[ " $LR_ORPHANS " != *" $job "* ]] && LR_ORPHANS+=${LR_ORPHANS:+ }$job
        done
    done
    return 0
}

lr_wait_for_orphans() {
    # Links on lost nodes (LR_ORPHANS: the previous one after its node was lost or without an
    # answer, and those it still waited for): their scripts may still run (slurmd hung, or cut
    # off from slurmctld). Each beats while its script runs and stops it once it sees its claim:
    # wait until every heartbeat has been still for two beats (a change, never clocks
    # compared), at most LONGRUN_ORPHAN_SECONDS each. The list is written down first: a link
    # that ends during the wait leaves it to its successor. A SIGTERM ends the wait (this link
    # then runs no script).
    # (LR_WAITED: this link waited; lr_check_go then looks at its successor again)
    LR_WAITED=0
    [ -n "$LR_ORPHANS" ] && [ "$LR_TERMINATED" != 1 ] || return 0
    local job file=$LR_LINK_DIR/orphans
    if ! lr_write "$file" "$LR_ORPHANS" 2>/dev/null && ! { lr_pause 1; lr_write "$file" "$LR_ORPHANS" 2>/dev/null; }; then
        lr_folder_full
        lr_event warning message "the jobs this link waits for (${LR_ORPHANS}) could not be written down${LR_FULL:+: $LR_FULL}: should it end during the wait, its successor will not wait for them"
        lr_say "$LR_LABEL: could not write down the jobs it waits for (${LR_ORPHANS})${LR_FULL:+: $LR_FULL}"
    fi
    lr_start_retrier  # (a successor refused for a limit is tried again meanwhile)
    for job in $LR_ORPHANS; do
        lr_wait_still "$job" || return 0
    done
    rm -f "$file"
}

lr_wait_still() {
    # lr_wait_still JOB: until JOB's heartbeat has been still for two beats and 2 s, by this
    # link's own elapsed time (a trapped signal that ends a pause early does not count as a
    # beat). Returns 1 after a SIGTERM.
    local file=$LR_LINKS_DIR/$1/heartbeat before after started=$SECONDS until
    before=$(stat -c %y -- "$file" 2>/dev/null) || { lr_pause 1; before=$(stat -c %y -- "$file" 2>/dev/null); } || return 0
    lr_event orphan_wait orphan "$1" seconds "$LONGRUN_ORPHAN_SECONDS"
    LR_WAITED=1
    while :; do
        until=$((SECONDS + 2 * LONGRUN_HEARTBEAT_SECONDS + 2))
        while [ $SECONDS -lt $until ]; do
            [ "$LR_TERMINATED" = 1 ] && return 1
            lr_pause $((until - SECONDS))
        done
        after=$(stat -c %y -- "$file" 2>/dev/null)
        [ "$after" = "$before" ] && return 0
        if [ $((SECONDS - started)) -ge "$LONGRUN_ORPHAN_SECONDS" ]; then
            lr_event warning message "the script of job $1 may still run on its lost node: its heartbeat still changed after ${LONGRUN_ORPHAN_SECONDS}s"
            return 0
        fi
        before=$after
    done
}

lr_node_lost() {
    # A job on several nodes whose script failed while Slurm still runs it: did one of its
    # nodes die? slurmctld notices a node that dies silently only after SlurmdTimeout, while
    # srun may give up on it at once; so wait for Slurm to mark a node down, failing or not
    # responding ("*"): up to the site's SlurmdTimeout + 30 s (at most LONGRUN_NODE_WAIT_SECONDS),
    # asking less often as it goes. A SIGTERM ends the wait: a node lost only if Slurm ends the
    # job for that (a time limit or preemption then leaves the script's failure standing).
    [ "${SLURM_JOB_NUM_NODES:-1}" -gt 1 ] || return 1
    local states limit=$LONGRUN_NODE_WAIT_SECONDS timeout LR_DELAY=5 started=$SECONDS
    timeout=$(scontrol "${LONGRUN_CLUSTER_ARGS[@]}" show config 2>/dev/null | sed -n 's/^SlurmdTimeout *= *\([0-9]*\) sec.*/\1/p')
    [[ $timeout =~ ^[0-9]{1,6}$ ]] && [ $((timeout + 30)) -lt "$limit" ] && limit=$((timeout + 30))
    lr_event node_check seconds "$limit"
    while :; do
        if states=$(sinfo "${LONGRUN_CLUSTER_ARGS[@]}" -h -N -n "$SLURM_JOB_NODELIST" -o %T 2>/dev/null) \
            && [[ $states == *down* || $states == *fail* || $states == *"*"* ]]; then
            return 0
        fi
        if [ "$LR_TERMINATED" = 1 ]; then
            case $LR_TERM_CAUSE in NODE_FAIL|BOOT_FAIL|NodeDown|BootFail) return 0 ;; esac
            return 1
        fi
        [ $((SECONDS - started)) -lt "$limit" ] || return 1
        lr_back_off
    done
}

lr_term_decides() {
    # Whether a SIGTERM decides this link's verdict: always, unless the script had failed on its
    # own well before it (> 5 s: not killed by it) and Slurm ended the job for something other
    # than a lost node (its time limit came while the link waited for lr_node_lost).
    [ "$LR_TERMINATED" = 1 ] || return 1
    [ "$LR_BODY_RC" -ne 0 ] && [ -n "$LR_BODY_ENDED" ] && [ $((LR_TERM_AT - LR_BODY_ENDED)) -gt 5 ] || return 0
    case $LR_TERM_CAUSE in NODE_FAIL|BOOT_FAIL|NodeDown|BootFail) return 0 ;; esac
    return 1
}

lr_in_step_signal_window() {
    # With --signal=SIG@T (no B:), Slurm signals the steps only, so an exit 0 in the last
    # T(+slack) seconds may be a checkpoint on that signal. Only on a time limit longer than
    # twice that window: otherwise every exit 0 would look like one.
    [ "$LONGRUN_STEP_SIGNAL_WINDOW" -gt 0 ] && [ -n "$LR_TIME_LEFT" ] || return 1
    [ "$LR_TIME_LEFT" -le "$LONGRUN_STEP_SIGNAL_WINDOW" ] \
        && [ $((SECONDS + LR_TIME_LEFT)) -gt $((2 * LONGRUN_STEP_SIGNAL_WINDOW)) ]
}

lr_record_verdict() {
    local rc=$LR_BODY_RC why verdict slurm=unknown signum=0
    LR_VERDICT=''
    # Does Slurm still run this job? An exit 0 while Slurm ends the job says nothing about the
    # work, so "completed" needs slurmctld to show the job running.
    if [ "$LR_TERMINATED" != 1 ]; then
        lr_job_info_sure "$LR_SELF" "$LONGRUN_JUDGE_SECONDS" "whether it still runs" && slurm=$LR_STATE
    fi
    [ "$LR_FORWARDED" = 1 ] && signum=$(kill -l "$LONGRUN_CHECK_SIGNAL" 2>/dev/null)
    if lr_term_decides; then
        verdict=$LR_TERM_VERDICT why="SIGTERM from outside"
    elif [ "$slurm" != unknown ] && [[ " RUNNING SIGNALING " != *" $slurm "* ]]; then
        if lr_interruption; then verdict="interrupted"; else verdict="terminated"; fi
        why="Slurm is ending the job ($slurm${LR_CAUSE:+, $LR_CAUSE})"
    elif [ "$LR_PREEMPTED" = 1 ]; then
        why="preempted (the script exited during the grace time)"
        verdict="continue"
    elif [ "$rc" -eq "$LONGRUN_CONTINUE_CODE" ]; then
        why="the script asked for a new allocation (exit $LONGRUN_CONTINUE_CODE)"
        verdict="continue"
    elif [ "$LR_FORWARDED" = 1 ] && { [ "$rc" -eq 0 ] || [ "$rc" -eq $((128 + signum)) ]; }; then
        why="the script exited ($rc) after the forwarded $LONGRUN_CHECK_SIGNAL (checkpoint)"
        verdict="continue"
    elif [ "$rc" -eq 0 ] && lr_in_step_signal_window; then
        why="the script exited ${LR_TIME_LEFT}s before the time limit, after --signal went to its steps"
        verdict="continue"
    elif [ "$rc" -eq 0 ] && [ "$slurm" = unknown ]; then
        why="the script exited 0 but Slurm could not confirm the job was still running"
        verdict="continue"
    elif [ "$rc" -eq 0 ]; then
        why="the script finished (exit 0)"
        verdict="completed"
    elif [ "$slurm" = unknown ]; then
        why="the script failed (exit $rc) but Slurm did not answer whether it was ending the job: the next link decides from Slurm's record"
        verdict="undecided"
    elif lr_node_lost; then
        why="the script exited $rc while a node of the job was lost"
        verdict="interrupted"
    elif lr_ran_out_of_memory; then
        why="the script failed (exit $rc): it ran out of memory"
        verdict="out_of_memory"
    elif [ -n "$LR_SIGNALLED" ] && [ "$rc" -eq $((128 + $(kill -l "$LR_SIGNALLED"))) ]; then
        why="the script was ended by SIG$LR_SIGNALLED, sent to the job (exit $rc)"
        verdict="failed"
    else
        why="the script failed (exit $rc)"
        verdict="failed"
    fi
    LR_ENDED_AT=$EPOCHSECONDS
    lr_save_learned
    lr_progress
    # From here on the verdict is final: a SIGTERM that arrived before this line wins.
    LR_VERDICT_FINAL=1
    if lr_term_decides; then
        verdict=$LR_TERM_VERDICT why="SIGTERM from outside"
    fi
    lr_write "$LR_LINK_DIR/verdict" "$verdict"
    lr_event verdict verdict "$verdict" reason "$why" exit_code "$rc" start "$LR_START" \
        slurm_state "$slurm" preempted "${LR_PREEMPTED:-0}"
    LR_VERDICT=$verdict LR_WHY=$why
}

lr_go_on() {
    local rc=$LR_BODY_RC why=$LR_WHY
    case $LR_VERDICT in
        completed)
            lr_end_chain COMPLETED "$why"
            lr_cancel_successor
            exit 0 ;;
        continue)
            if [ "$LR_RESTART_COUNT" -ge "$LR_LIMIT" ]; then
                lr_end_chain MAX_RESTARTS "$why, but no restarts are left"
            elif lr_stopped_after; then :
            elif lr_spent; then
                lr_end_chain "$LR_SPENT_STATE" "$why; $LR_SPENT_WHY"
                lr_cancel_successor
            else
                lr_say "$LR_LABEL: $why; the chain continues"
                lr_backoff
                lr_check_stalled
            fi
            # A preempted script's own exit code stays in Slurm's record (e.g. 143).
            [ "$LR_PREEMPTED" = 1 ] && exit "$rc"
            exit 0 ;;
        failed|out_of_memory)
            if { [ "$LR_RETRIES" -lt "$LONGRUN_RETRY_FAILED" ] || [ "$LONGRUN_GROW_PERCENT" -gt 0 ]; } \
                && [ "$LR_RESTART_COUNT" -lt "$LR_LIMIT" ] && ! [ -s "$LR_LINK_DIR/stop_after" ]; then
                if [ "$LONGRUN_GROW_PERCENT" -gt 0 ] && [ "$LR_VERDICT" = out_of_memory ]; then
                    lr_say "$LR_LABEL: $why; the next link asks for more memory"
                elif [ "$LR_RETRIES" -lt "$LONGRUN_RETRY_FAILED" ]; then
                    lr_say "$LR_LABEL: $why; retrying ($((LR_RETRIES + 1))/$LONGRUN_RETRY_FAILED)"
                else
                    # A job whose batch step ran out of memory is recorded so once it ended:
                    # the next link reads Slurm's record (--grow-mem-on-oom).
                    lr_say "$LR_LABEL: $why; the next link decides from Slurm's record whether it ran out of memory"
                fi
                lr_backoff
                lr_check_stalled
            elif [ "$LR_VERDICT" = out_of_memory ]; then
                lr_end_chain FAILED "$why ($LR_MEMORY_HINT)"
                lr_cancel_successor
            else
                lr_end_chain FAILED "$why"
                lr_cancel_successor
            fi
            exit "$rc" ;;
        *)
            if [ "$LR_RESTART_COUNT" -ge "$LR_LIMIT" ] && [ "$LR_VERDICT" = interrupted ] \
                && lr_never_requeued "${LR_TERM_CAUSE:-$LR_CAUSE}"; then
                # The last link allowed, ended by a time limit: Slurm never runs it again, so
                # the chain ends with it (and the notifiers hear it).
                lr_end_chain MAX_RESTARTS "$why (${LR_TERM_CAUSE:-$LR_CAUSE}), and no restarts are left"
            elif [ "$LR_RESTART_COUNT" -ge "$LR_LIMIT" ] && [ "$LR_VERDICT" = undecided ]; then
                # The last link allowed: no successor, so its end is the chain's, whatever
                # Slurm says of it later.
                lr_end_chain MAX_RESTARTS "$why, and no restarts are left"
            elif [ "$LR_VERDICT" = interrupted ] && lr_spent; then
                lr_end_chain "$LR_SPENT_STATE" "$why (${LR_TERM_CAUSE:-$LR_CAUSE}); $LR_SPENT_WHY"
                lr_cancel_successor
            elif lr_ended; then
                lr_cancel_successor  # an end recorded meanwhile (a cancel seen by the trap)
            else
                lr_say "$LR_LABEL: $why (exit $rc); the next link decides from Slurm's record"
                lr_check_stalled
            fi
            exit "$rc" ;;
    esac
}

lr_never_requeued() {
    # lr_never_requeued CAUSE: whether Slurm never requeues a job it ends for this cause (a
    # state or a reason, from lr_interruption): from longrun's rule table (longrun/states.py).
    case $1 in TIMEOUT|TimeLimit) return 0 ;; esac
    return 1
}

lr_check_stalled() {
    # The chain should go on after this link, but no successor is queued (every submission
    # failed): say so in the job log, the events (`longrun status`) and to the notifiers. The
    # watcher repairs such a chain; without one, resubmit.
    lr_requested_successor
    [ -z "${LR_SUCCESSOR:-}" ] && [ "$LR_RESTART_COUNT" -lt "$LR_LIMIT" ] || return 0
    lr_stopped_from_outside && return 0
    [ -e "$LR_LINK_DIR/stop_after" ] && return 0
    lr_ended && return 0
    if [ -s "$LR_LINK_DIR/request" ]; then
        # Left to a keeper on a login node: not a stall while one runs; say what it waits for.
        lr_event warning message "no successor is queued yet: it waits for a keeper on a login node (longrun keeper)"
        lr_say "$LR_LABEL: no successor is queued yet: it waits for a keeper on a login node (\`longrun keeper\`)"
        return 0
    fi
    if [ "$LR_SUBMIT_UNKNOWN" = 1 ]; then
        # sbatch failed, and Slurm did not answer the look for the job it may have queued all
        # the same: unknown, not missing (the watcher and `longrun status` ask again).
        lr_event warning message "whether a successor is queued is unknown: sbatch said ${LR_SUBMIT_ERROR:-nothing} and Slurm did not answer the look for it"
        lr_say "$LR_LABEL: whether a successor is queued is unknown (sbatch: ${LR_SUBMIT_ERROR:-nothing}; Slurm did not answer the look for it)"
        return 0
    fi
    lr_event chain_stalled reason "no successor is queued: ${LR_SUBMIT_ERROR:-sbatch failed}"
    lr_say "$LR_LABEL: the chain stalls here: no successor is queued (${LR_SUBMIT_ERROR:-sbatch failed})"
}

lr_progress() {
    # When --progress-file last changed, at this link's end, for `longrun status` and `longrun
    # usage` (the work at risk at an interruption; the look at a link's start, in
    # lr_learn_progress, tells of the previous link, even a killed one). idle: links in a row
    # without progress, this one included.
    [ -n "$LONGRUN_PROGRESS_FILE" ] || return 0
    local idle=0
    lr_progress_look
    [ "$LR_MTIME" = "$LR_MTIME0" ] && idle=$((LR_IDLE + 1))
    lr_event progress at end previous "$LR_PREVIOUS" mtime "$LR_MTIME" value "$LR_VALUE" idle "$idle"
}

# --- what the chain learned (README: A chain that learns) ---------------------------------

lr_learn() {
    # What the chain learned from how its links ended, before step 4 queues the successor
    # with it: the nodes to avoid, the progress made, the time budget. May end the chain here,
    # or make this link hand over (LR_HANDOVER: why; the body does not run here).
    lr_read_learned "$LR_PREVIOUS"
    lr_learn_progress
    lr_learn_budget
    lr_learn_nodes
    if [ -n "$LR_HANDOVER" ]; then
        LR_HANDOVERS=$(( ${LR_P_HANDOVERS:-0} + 1 ))
        if [ "$LR_HANDOVERS" -gt "$LONGRUN_MAX_HANDOVERS" ]; then
            # Free, but not for ever: no node the chain may use takes the work.
            lr_skip_body FAILED "$LR_HANDOVERS links in a row could not run the script where Slurm started them (the last: $LR_HANDOVER); see the job log, or resubmit with --no-avoid-failed-nodes or another --node-check"
        fi
        # A hand-over is free: it does not count against --max-restarts.
        LR_FREE=$((LR_FREE + 1)) LR_LIMIT=$((LR_LIMIT + 1))
    fi
    lr_save_learned
    lr_placement
    [ "$LR_RESTART_COUNT" -lt "$LR_LIMIT" ] || lr_event no_successor reason max_restarts
}

lr_number() {
    # lr_number NAME: empty the variable NAME unless it holds digits only (files are data,
    # never arithmetic: bash would evaluate an expression in them).
    [[ ${!1} =~ ^[0-9]{1,15}$ ]] || printf -v "$1" '%s' ''
}

lr_read_learned() {
    # lr_read_learned JOB: what link JOB learned (its learned file) into LR_P_<KEY>.
    local line key
    LR_P_NODES='' LR_P_MTIME='' LR_P_IDLE='' LR_P_STARTED='' LR_P_ENDED='' LR_P_USED='' LR_P_RERUN=''
    LR_P_HANDOVER='' LR_P_HANDOVERS=''
    [ -n "$1" ] && [ -f "$LR_LINKS_DIR/$1/learned" ] || return 0
    while IFS= read -r line; do
        key=${line%%=*}
        case $key in nodes|mtime|idle|started|ended|used|rerun|handover|handovers) printf -v "LR_P_${key^^}" '%s' "${line#*=}" ;; esac
    done <"$LR_LINKS_DIR/$1/learned"
    for key in LR_P_MTIME LR_P_IDLE LR_P_STARTED LR_P_ENDED LR_P_USED LR_P_RERUN LR_P_HANDOVER LR_P_HANDOVERS; do
        lr_number "$key"
    done
    [[ $LR_P_NODES =~ ^[][A-Za-z0-9._,-]*$ ]] || LR_P_NODES=''
}

lr_save_learned() {
    lr_write "$LR_LINK_DIR/learned" "nodes=${SLURM_JOB_NODELIST:-}
mtime=$LR_MTIME0
idle=$LR_IDLE
started=$LR_STARTED
ended=$LR_ENDED_AT
used=$LR_USED
rerun=$LR_RERUN
handover=${LR_HANDOVER:+1}
handovers=$LR_HANDOVERS"
}

lr_deadline() {
    # When Slurm will end this link (epoch seconds): Slurm gives it to the job; asked only if not.
    LR_DEADLINE=${SLURM_JOB_END_TIME:-}
    lr_number LR_DEADLINE
    if [ -n "$LR_DEADLINE" ] && [ "$LR_DEADLINE" -gt "$LR_STARTED" ]; then return 0; fi
    LR_DEADLINE=''
    local LR_STATE LR_PREEMPTED LR_TIME_LEFT LR_START LR_END LR_REASON
    lr_job_info "$LR_SELF" && [ -n "$LR_TIME_LEFT" ] && LR_DEADLINE=$((EPOCHSECONDS + LR_TIME_LEFT))
    return 0
}

lr_memory_asked() {
    # The memory this link has (Slurm's SLURM_MEM_PER_CPU or SLURM_MEM_PER_NODE, in MB):
    # LR_MEM_KIND (the sbatch option: mem-per-cpu or mem) and LR_MEM_MB; empty if neither.
    LR_MEM_KIND='' LR_MEM_MB=''
    if [[ ${SLURM_MEM_PER_CPU:-} =~ ^[1-9][0-9]{0,11}$ ]]; then
        LR_MEM_KIND=mem-per-cpu LR_MEM_MB=$SLURM_MEM_PER_CPU
    elif [[ ${SLURM_MEM_PER_NODE:-} =~ ^[1-9][0-9]{0,11}$ ]]; then
        LR_MEM_KIND=mem LR_MEM_MB=$SLURM_MEM_PER_NODE
    fi
}

lr_progress_look() {
    # --progress-file now: LR_MTIME (its mtime, empty if absent) and LR_VALUE (its first line,
    # for a small file: a step counter, or longrun.job.report_progress's value).
    LR_MTIME='' LR_VALUE=''
    local size
    read -r LR_MTIME size < <(stat -L -c '%Y %s' -- "$LONGRUN_PROGRESS_FILE" 2>/dev/null)
    lr_number LR_MTIME
    if [ -n "$LR_MTIME" ] && [[ $size =~ ^[0-9]+$ ]] && [ "$size" -le 4096 ]; then
        { IFS= read -r -n 200 LR_VALUE <"$LONGRUN_PROGRESS_FILE"; } 2>/dev/null
    fi
    return 0
}

lr_learn_progress() {
    # Links in a row that ended without progress (--progress-file unchanged): at
    # --max-idle-links the chain ends NO_PROGRESS. A hand-over is not a try: it passes the
    # count on. The previous link is judged by the file as this link finds it (it may have
    # been killed before it could look).
    [ -n "$LONGRUN_PROGRESS_FILE" ] || return 0
    lr_progress_look
    LR_MTIME0=$LR_MTIME LR_IDLE=0
    if [ -n "$LR_P_STARTED" ] && [ "$LR_MTIME" = "$LR_P_MTIME" ]; then
        LR_IDLE=${LR_P_IDLE:-0}
        # A hand-over, or a link Slurm preempted or lost with its node, did not try.
        lr_not_the_works_fault "$LR_PREV_STATE" "$LR_PREV_PREEMPTED" || [ "$LR_P_HANDOVER" = 1 ] || LR_IDLE=$((LR_IDLE + 1))
    fi
    [ -z "$LR_PREVIOUS" ] || lr_event progress at start previous "$LR_PREVIOUS" mtime "$LR_MTIME" \
        value "$LR_VALUE" idle "$LR_IDLE"
    if [ "$LONGRUN_MAX_IDLE" -gt 0 ] && [ "$LR_IDLE" -ge "$LONGRUN_MAX_IDLE" ]; then
        lr_skip_body NO_PROGRESS "no progress in $LR_IDLE links: $LONGRUN_PROGRESS_FILE did not change (--max-idle-links $LONGRUN_MAX_IDLE)"
    fi
}

lr_learn_budget() {
    # --total-time: the run time of the links before this one (the previous link's record,
    # its end from Slurm if it was killed). With less than a minute left the chain ends
    # TIME_BUDGET; with less than this link's time limit, the limit is cut to what is left.
    [ "$LONGRUN_TOTAL_SECONDS" -gt 0 ] || return 0
    local end left minutes
    LR_USED=0
    if [ -n "$LR_P_STARTED" ]; then
        end=$LR_P_ENDED
        # Slurm's end of the previous link (a killed one left none of its own)
        [ -n "$end" ] || [[ ! $LR_PREV_END =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]+$ ]] || end=$(date -d "$LR_PREV_END" +%s 2>/dev/null)
        lr_number end
        [ -n "$end" ] && [ "$end" -ge "$LR_P_STARTED" ] && [ "$end" -le "$LR_STARTED" ] || end=$LR_STARTED
        LR_USED=$(( ${LR_P_USED:-0} + end - LR_P_STARTED ))
    elif [ "$LR_RESTART_COUNT" -gt 0 ]; then
        lr_event warning message "time budget: the previous link left no record; counting the links on record only"
        LR_USED=$(lr_sum_run_times)
    fi
    LR_USED=$((LR_USED + LR_RERUN))
    left=$((LONGRUN_TOTAL_SECONDS - LR_USED))
    if [ "$left" -lt 60 ]; then
        lr_skip_body TIME_BUDGET "the time budget is used: the links ran $(lr_hours "$LR_USED") of --total-time $(lr_hours "$LONGRUN_TOTAL_SECONDS")"
    fi
    [ -n "$LR_DEADLINE" ] && [ $((LR_DEADLINE - EPOCHSECONDS)) -gt "$left" ] || return 0
    # Slurm counts time limits in minutes: never beyond the budget.
    minutes=$(( (EPOCHSECONDS - LR_STARTED + left) / 60 ))
    if scontrol "${LONGRUN_CLUSTER_ARGS[@]}" update "JobId=$LR_SELF" "TimeLimit=$minutes" >/dev/null 2>&1; then
        LR_DEADLINE=$((LR_STARTED + minutes * 60))
        lr_event time_cut used "$LR_USED" total "$LONGRUN_TOTAL_SECONDS" limit "$minutes"
        lr_say "$LR_LABEL: the last of the time budget: this link's time limit is cut to $minutes minutes"
    else
        lr_event warning message "time budget: could not cut this link's time limit to $minutes minutes; the chain ends after it"
    fi
}

lr_not_the_works_fault() {
    # lr_not_the_works_fault STATE-OR-CAUSE 0|1: whether Slurm ended a link for no fault of
    # its work (preempted, its node lost), from longrun's rule table (longrun/states.py).
    [ "$2" = 1 ] && return 0
    case $1 in PREEMPTED|NODE_FAIL|BOOT_FAIL|REVOKED|NodeDown|BootFail|preempted) return 0 ;; esac
    return 1
}

lr_rerun_time() {
    # A link that Slurm requeued (same job id) ran before: that run counts for --total-time
    # (up to now when it left no end of its own: the wait in the queue counts too).
    local end
    LR_RERUN=0
    [ "${SLURM_RESTART_COUNT:-0}" != 0 ] || return 0
    lr_read_learned "$SLURM_JOB_ID"
    [ -n "$LR_P_STARTED" ] || return 0
    end=${LR_P_ENDED:-$EPOCHSECONDS}
    [ "$end" -ge "$LR_P_STARTED" ] || end=$LR_P_STARTED
    LR_RERUN=$(( ${LR_P_RERUN:-0} + end - LR_P_STARTED ))
}

lr_sum_run_times() {
    # The run times of every link of this chain on record (start to end), for a chain whose
    # previous link left no record.
    local file line started ended total=0
    for file in "$LR_LINKS_DIR"/*/learned; do
        if [ ! -f "$file" ] || [ "$file" = "$LR_LINK_DIR/learned" ]; then continue; fi
        started='' ended=''
        while IFS= read -r line; do
            case $line in started=*) started=${line#*=} ;; ended=*) ended=${line#*=} ;; esac
        done <"$file"
        lr_number started; lr_number ended
        [ -n "$started" ] && [ -n "$ended" ] && [ "$ended" -ge "$started" ] && total=$((total + ended - started))
    done
    printf '%s\n' "$total"
}

lr_hours() {
    printf '%d:%02d h' $(($1 / 3600)) $(($1 % 3600 / 60))
}

lr_learn_nodes() {
    # Nodes to avoid (--avoid-failed-nodes): those of a previous link that lost its node, or
    # failed soon after its start; and this link's own node when --node-check fails. A link
    # that finds itself on an avoided node hands over to a successor that excludes it.
    local prev_ran=''
    if [ "$LONGRUN_AVOID_SECONDS" -gt 0 ] && [ -n "$LR_P_NODES" ]; then
        case $LR_PREV_STATE in
            NODE_FAIL|BOOT_FAIL) lr_avoid "$LR_P_NODES" "$LONGRUN_AVOID_SECONDS" "$LR_PREV_STATE" ;;
            OUT_OF_MEMORY) ;;  # the work's fault, not the node's
            *)
                [ -n "$LR_P_STARTED" ] && [ -n "$LR_P_ENDED" ] && prev_ran=$((LR_P_ENDED - LR_P_STARTED))
                if [ "$LR_PREV_VERDICT" = failed ] && [ -n "$prev_ran" ] && [ "$prev_ran" -lt "$LONGRUN_FAST_FAIL_SECONDS" ]; then
                    lr_avoid "$LR_P_NODES" "$LONGRUN_AVOID_SECONDS" failed_after_${prev_ran}s
                fi ;;
        esac
    fi
    lr_avoided
    local node mine=''
    [ -z "$LR_AVOID" ] || mine=$(lr_hostnames "${SLURM_JOB_NODELIST:-}")
    for node in $mine; do
        if [[ ,$LR_AVOID, == *,"$node",* ]]; then
            LR_HANDOVER="node $node is avoided by this chain"
            return 0
        fi
    done
    [ ${#LONGRUN_NODE_CHECK[@]} -gt 0 ] && [ -z "$LR_HANDOVER" ] || return 0
    local rc timeout_path
    timeout_path=$(command -v timeout) || timeout_path=''
    lr_say "$LR_LABEL: --node-check on ${SLURM_JOB_NODELIST:-this node}: ${LONGRUN_NODE_CHECK[*]}"
    if ! lr_trusted_path "${LONGRUN_NODE_CHECK[0]}"; then
        rc=126
        printf 'longrun: unsafe --node-check command: %s\n' "$LR_PROBLEM" >&2
    else
        (
            PATH=$LR_USER_PATH
            umask "$LR_USER_UMASK"
            cd "$LONGRUN_SUBMIT_DIR" 2>/dev/null || cd / || exit 1
            exec ${timeout_path:+"$timeout_path" -k 5 "$LONGRUN_NODE_CHECK_SECONDS"} "${LONGRUN_NODE_CHECK[@]}" </dev/null
        ) &
        lr_wait_for $!
        rc=$?
    fi
    [ "$rc" -eq 0 ] && return 0
    lr_event node_check_failed nodes "${SLURM_JOB_NODELIST:-}" exit_code "$rc"
    lr_avoid "${SLURM_JOB_NODELIST:-}" "$LONGRUN_NODE_CHECK_AVOID_SECONDS" node_check
    lr_avoided
    LR_HANDOVER="--node-check failed on ${SLURM_JOB_NODELIST:-this node} (exit $rc)"
}

lr_ran_out_of_memory() {
    # Whether this link's work ran out of memory: OOM kills the kernel counted in this link's
    # own cgroup (the batch step: Slurm records the job out of memory only once it ended), or
    # a step that Slurm recorded so (srun: the job itself then ends as failed).
    local path file key count
    path=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' /proc/self/cgroup 2>/dev/null)
    [ -n "$path" ] || path=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup 2>/dev/null)
    for file in "/sys/fs/cgroup/memory$path/memory.oom_control" "/sys/fs/cgroup$path/memory.events"; do
        if [ -z "$path" ] || [ ! -r "$file" ]; then continue; fi
        while read -r key count; do
            [ "$key" = oom_kill ] && [[ $count =~ ^[0-9]+$ ]] && [ "$count" -gt 0 ] && return 0
        done <"$file"
    done
    lr_steps_out_of_memory "$SLURM_JOB_ID"
    case $? in
        0) return 0 ;;
        2) lr_event warning message "whether a step of this job ran out of memory is unknown: the accounting did not answer (the next link asks again)" ;;
    esac
    return 1
}

lr_steps_out_of_memory() {
    # lr_steps_out_of_memory JOB: 0 when Slurm recorded a step of JOB out of memory, 1 when
    # none, 2 when the accounting did not answer. Asked again after 2 s: a step's record
    # reaches the accounting about a second after it ended.
    local out try rc=1
    for try in 1 2; do
        if out=$(sacct "${LONGRUN_CLUSTER_ARGS[@]}" -n -P -j "$1" -o State 2>/dev/null); then
            [[ $'\n'$out$'\n' == *$'\n'OUT_OF_MEMORY$'\n'* ]] && return 0
            rc=1
        else
            rc=2
        fi
        [ $try = 2 ] || sleep 2
    done
    return $rc
}

lr_hostnames() {
    # The node names in a Slurm host list (node[1-3] -> node1 node2 node3): a local command.
    [ -n "$1" ] && scontrol show hostnames "$1" 2>/dev/null
    return 0
}

lr_avoid() {
    # lr_avoid HOSTLIST SECONDS CAUSE: this link's record that the chain avoids these nodes.
    local node file=$LR_LINK_DIR/avoid lines='' until=$((EPOCHSECONDS + $2))
    [ -f "$file" ] && lines=$(<"$file")
    for node in $(lr_hostnames "$1"); do
        lines+=${lines:+$'\n'}"$node $until $3"
    done
    [ -n "$lines" ] || return 0
    lr_write "$file" "$lines"
    lr_event nodes_avoided nodes "$1" until "$until" cause "$3"
    lr_say "$LR_LABEL: the chain avoids node(s) $1 for $(lr_hours "$2") ($3)"
}

lr_avoided() {
    # The nodes the chain avoids now (every link's avoid lines still in force) into
    # LR_AVOID (a comma list), less what would leave the successor no place to run: nodes of
    # your --nodelist, or all of them when too few nodes of the partition would be left.
    local node until all=' ' dropped='' part out left=0 need=${SLURM_JOB_NUM_NODES:-1}
    LR_AVOID=''
    while read -r node until _; do
        [[ $until =~ ^[0-9]{1,15}$ && $node =~ ^[A-Za-z0-9._-]+$ ]] || continue
        [ "$until" -gt "$EPOCHSECONDS" ] || continue
        [[ $all == *" $node "* ]] || all+="$node "
    done < <(cat "$LR_LINKS_DIR"/*/avoid 2>/dev/null)
    [ "$all" != ' ' ] || return 0
    if [ -n "$LONGRUN_USER_NODELIST" ]; then
        for node in $(lr_hostnames "$LONGRUN_USER_NODELIST"); do
            [[ $all == *" $node "* ]] && all=${all/ $node / } dropped+=" $node"
        done
        [ -z "$dropped" ] || lr_dropped "${dropped# }" "your --nodelist asks for them"
    fi
    [ "$all" != ' ' ] || return 0
    part=${LONGRUN_PARTITION:-${SLURM_JOB_PARTITION:-}}
    if ! out=$(sinfo "${LONGRUN_CLUSTER_ARGS[@]}" -h ${part:+-p "$part"} -o %N 2>/dev/null); then
        lr_dropped "${all:1}" "sinfo did not answer, so whether other nodes are left is unknown"
        return 0
    fi
    local -A counted=()
    for node in $(lr_hostnames "${out//$'\n'/,}"); do
        [ -z "${counted[$node]:-}" ] || continue
        counted[$node]=1
        [[ $all == *" $node "* || ,$LONGRUN_USER_EXCLUDE, == *,"$node",* ]] || left=$((left + 1))
    done
    lr_number need
    if [ "$left" -lt "${need:-1}" ]; then
        lr_dropped "${all:1}" "only $left node(s) of partition ${part:-?} would be left for a job on ${need:-1}"
        return 0
    fi
    all=${all:1}
    LR_AVOID=${all% }
    LR_AVOID=${LR_AVOID// /,}
}

lr_dropped() {
    lr_event avoid_dropped nodes "${1% }" reason "$2"
    lr_say "$LR_LABEL: node(s) ${1% } not avoided after all: $2"
}

lr_grow_memory() {
    # lr_grow_memory WHY: after a link ran out of memory (--grow-mem-on-oom), hand over to a successor
    # that asks for LONGRUN_GROW_PERCENT % of this link's memory, up to the maximum; at the
    # maximum, or with no memory known to grow from, the chain ends as failed.
    local grown max=$LONGRUN_GROW_MAX_MB
    lr_memory_asked
    if [ -z "$LR_MEM_KIND" ]; then
        lr_skip_body FAILED "$1, and Slurm gives the job no memory size to grow from (give --mem or --mem-per-cpu)"
    fi
    grown=$((LR_MEM_MB * LONGRUN_GROW_PERCENT / 100))
    [ "$max" -gt 0 ] && [ "$grown" -gt "$max" ] && grown=$max
    if [ "$grown" -le "$LR_MEM_MB" ]; then
        lr_skip_body FAILED "$1 with --$LR_MEM_KIND=${LR_MEM_MB}M, the most --grow-mem-on-oom allows"
    fi
    LR_MEMORY=$LR_MEM_KIND=$grown
    LR_HANDOVER="the previous link ran out of memory: the next one asks for --$LR_MEM_KIND=${grown}M"
    lr_event memory_grown option "$LR_MEM_KIND" before "$LR_MEM_MB" after "$grown" maximum "$max"
}

lr_placement() {
    # What the successor is submitted with besides your options: the nodes the chain avoids
    # (with your own --exclude), the grown memory, and the arguments that carry them on.
    LR_PLACEMENT=() LR_NEXT_ARGUMENTS=()
    [ -n "$LR_AVOID" ] && LR_PLACEMENT+=("--exclude=${LONGRUN_USER_EXCLUDE:+$LONGRUN_USER_EXCLUDE,}$LR_AVOID")
    if [ -n "$LR_MEMORY" ]; then
        LR_PLACEMENT+=("--${LR_MEMORY%%=*}=${LR_MEMORY#*=}M")
        LR_NEXT_ARGUMENTS+=("--memory=$LR_MEMORY")
    fi
    [ "$LR_FREE" -gt 0 ] && LR_NEXT_ARGUMENTS+=("--free-links=$LR_FREE")
    return 0
}

lr_hand_over() {
    # This link does not run the body here (LR_HANDOVER says why): the successor, queued with
    # what the chain learned, continues. It costs a scheduling pass, not a restart.
    lr_set_verdict continue
    LR_ENDED_AT=$EPOCHSECONDS
    lr_save_learned
    lr_event verdict verdict continue reason "handed over: $LR_HANDOVER" exit_code 0 start '' \
        slurm_state '' preempted 0
    lr_event handed_over reason "$LR_HANDOVER" successor "${LR_SUCCESSOR:-}"
    lr_say "$LR_LABEL: $LR_HANDOVER: the script does not run here${LR_SUCCESSOR:+; job $LR_SUCCESSOR continues}"
    lr_check_stalled
    exit 0
}

lr_spent() {
    # Whether the chain ends after this link although its work goes on: no progress in
    # --max-idle-links links, or --total-time used. LR_SPENT_STATE and LR_SPENT_WHY.
    local used
    LR_SPENT_STATE='' LR_SPENT_WHY=''
    if [ -n "$LONGRUN_PROGRESS_FILE" ] && [ "$LONGRUN_MAX_IDLE" -gt 0 ] \
        && ! lr_not_the_works_fault "${LR_TERM_CAUSE:-$LR_CAUSE}" "${LR_PREEMPTED:-0}"; then
        lr_progress_look
        if [ "$LR_MTIME" = "$LR_MTIME0" ] && [ $((LR_IDLE + 1)) -ge "$LONGRUN_MAX_IDLE" ]; then
            LR_SPENT_STATE=NO_PROGRESS
            LR_SPENT_WHY="no progress in $((LR_IDLE + 1)) links: $LONGRUN_PROGRESS_FILE did not change (--max-idle-links $LONGRUN_MAX_IDLE)"
            return 0
        fi
    fi
    if [ "$LONGRUN_TOTAL_SECONDS" -gt 0 ]; then
        used=$((LR_USED + EPOCHSECONDS - LR_STARTED))
        if [ $((LONGRUN_TOTAL_SECONDS - used)) -lt 60 ]; then
            LR_SPENT_STATE=TIME_BUDGET
            LR_SPENT_WHY="the time budget is used: the links ran $(lr_hours "$used") of --total-time $(lr_hours "$LONGRUN_TOTAL_SECONDS")"
            return 0
        fi
    fi
    return 1
}

lr_rule_outcome() {
    # lr_rule_outcome VERDICT STATE 0|1: how to go on after the previous link, from the
    # previous link's own verdict ("" if none), Slurm's end state and whether slurmctld shows
    # a PreemptTime. Rendered row by row from longrun's rule table (longrun/states.py).
    LR_OUTCOME='' LR_WHY=''
    case "$1:$2:$3" in
        completed:*:*)
            LR_OUTCOME=end:COMPLETED LR_WHY='the previous link finished the work' ;;
        ended:*:*)
            LR_OUTCOME=end-as-recorded LR_WHY='the previous link ended the chain' ;;
        *:CANCELLED:*)
            LR_OUTCOME=end:CANCELLED LR_WHY='the previous link was cancelled' ;;
        out_of_memory:*:*)
            LR_OUTCOME=out-of-memory LR_WHY='the previous link ran out of memory' ;;
        failed:OUT_OF_MEMORY:*)
            LR_OUTCOME=out-of-memory LR_WHY='the previous link ran out of memory' ;;
        :OUT_OF_MEMORY:0)
            LR_OUTCOME=out-of-memory LR_WHY='the previous link ran out of memory' ;;
        failed:*:*)
            LR_OUTCOME=retry-or-fail LR_WHY='the work of the previous link failed' ;;
        undecided:OUT_OF_MEMORY:0)
            LR_OUTCOME=out-of-memory LR_WHY='the previous link ran out of memory' ;;
        undecided:FAILED:0)
            LR_OUTCOME=retry-or-fail LR_WHY='the work of the previous link failed' ;;
        undecided:FAILED:*|undecided:OUT_OF_MEMORY:*|undecided:TIMEOUT:*|undecided:PREEMPTED:*|undecided:NODE_FAIL:*|undecided:REVOKED:*|undecided:BOOT_FAIL:*)
            LR_OUTCOME=run LR_WHY='the previous link was interrupted by Slurm' ;;
        *:DEADLINE:*)
            LR_OUTCOME=end:DEADLINE LR_WHY='the previous link reached its --deadline' ;;
        continue:*:*)
            LR_OUTCOME=run LR_WHY='the previous link asked to continue' ;;
        interrupted:*:*)
            LR_OUTCOME=run LR_WHY='the previous link was interrupted by Slurm' ;;
        terminated::0)
            LR_OUTCOME=end:CANCELLED LR_WHY='the previous link was stopped from outside with no sign of a time limit, preemption or node failure, and Slurm answered that it no longer knows how it ended: taken as a cancel' ;;
        terminated:*:*)
            LR_OUTCOME=run LR_WHY='the previous link was stopped from outside' ;;
        :TIMEOUT:*|:PREEMPTED:*|:NODE_FAIL:*|:REVOKED:*|:BOOT_FAIL:*)
            LR_OUTCOME=run LR_WHY='the previous link was interrupted by Slurm' ;;
        :FAILED:1|:OUT_OF_MEMORY:1|:COMPLETED:1)
            LR_OUTCOME=run LR_WHY='the previous link was preempted' ;;
        :FAILED:0)
            LR_OUTCOME=end:FAILED LR_WHY='the previous link failed' ;;
        :COMPLETED:0)
            LR_OUTCOME=run-warn LR_WHY='the previous link exited 0 but left no verdict (could its folder not be written?): running' ;;
        *:*:*)
            LR_OUTCOME=run-warn LR_WHY='how the previous link ended could not be determined' ;;
    esac
}
