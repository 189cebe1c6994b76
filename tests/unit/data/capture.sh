#!/usr/bin/env bash
# Capture the output of the Slurm commands longrun runs, from the local cluster, for the parser
# tests. As root, with the cluster up (bash example/local-slurm.sh up); takes about two minutes
# and briefly takes the node down. Job ids go to jobs.json, by role.
#
#   bash tests/unit/data/capture.sh
set -euo pipefail
cd "$(dirname "$0")"
eval "$(bash ../../../example/local-slurm.sh env)"
export SLURM_CONF
NODE=$(sinfo -h -N -o %N | head -n 1)
QUEUE='JobID:|,State:|,Reason:|,TimeUsed:|,TimeLeft:|,StartTime:|,EndTime:|'
ACCT=JobID,State,ExitCode,Start,End,Elapsed,Reason
job() { sbatch --parsable -o /dev/null "$@"; }
state() { squeue -h -t all -j "$1" -o %T; }
show() { for id in "$@"; do scontrol --local show job "$id"; done; }  # the link's own look
wait_state() {  # wait_state JOB STATE...: poll until the job is in one of the states
  local job=$1 deadline=$((SECONDS + 180)) now
  shift
  while now=$(state "$job"); ! [[ " $* " == *" $now "* ]]; do
    [ $SECONDS -lt $deadline ] || { echo "capture: job $job stuck in $now" >&2; exit 1; }
    sleep 0.5
  done
}

# sbatch's output forms, with and without -M.
CLUSTER=$(scontrol show config | awk '$1 == "ClusterName" {print $3}')
sbatch -o /dev/null --wrap true >sbatch_plain.txt
sbatch --parsable -M "$CLUSTER" -o /dev/null --wrap true >sbatch_parsable_cluster.txt
held=$(sbatch -M "$CLUSTER" --hold -o /dev/null --comment="my | comment longrun:20261126-063000-abcd:1" \
  --wrap true | tee sbatch_clusters.txt | awk '{print $4}')
squeue -M "$CLUSTER" -h -t all -j "$held" -O "$QUEUE,PreemptTime:|" >squeue_queue_format_clusters.txt
squeue -h --me -t all -j "$held" -O 'JobID:|,State:|,Comment:|' >squeue_tag_format.txt
scancel "$held"

# The basic states.
# The running job's name and comment look like fields: the link must not be fooled by them.
running=$(job -J 'x JobState=COMPLETED' --comment='JobState=COMPLETED PreemptTime=2026-01-01T00:00:00' \
  --wrap 'sleep 120')
pending=$(job --dependency=afterany:"$running" --wrap true)
failed=$(job --wrap 'exit 3')
completed=$(job --wrap true)
cancelled=$(job --wrap 'sleep 100')
wait_state "$cancelled" RUNNING
scancel "$cancelled"
wait_state "$cancelled" CANCELLED
wait_state "$failed" FAILED
wait_state "$completed" COMPLETED
ids=$running,$pending,$failed,$completed,$cancelled
squeue -h -t all -j "$ids" -O "$QUEUE" >squeue_queue_format.txt
show "$running" "$pending" "$failed" "$completed" "$cancelled" >scontrol_job.txt
sleep 2  # slurmdbd records a moment later
sacct -n -X -P -j "$ids" -o "$ACCT" >sacct_accounting.txt
scancel "$running" "$pending"

# Preemption with a GraceTime: a step that exits on SIGTERM (FAILED 15:0 with PreemptTime), and
# a job whose shell ignores it (still RUNNING with PreemptTime during the grace time).
step=$(job -p main --wrap 'srun bash -c "trap \"exit 143\" TERM; while true; do sleep 0.2; done"')
graced=$(job -p main --time=1-02:03:00 --wrap 'trap "" TERM; sleep 200')
wait_state "$step" RUNNING
wait_state "$graced" RUNNING
job -p high -c "$(sinfo -h -N -o %c | head -n 1)" --wrap 'sleep 2' >/dev/null
wait_state "$step" FAILED
squeue -h -t all -j "$step,$graced" -O "$QUEUE" >squeue_queue_format_preempted.txt
show "$step" "$graced" >scontrol_job_preempted.txt
wait_state "$graced" PREEMPTED
sleep 2
sacct -n -X -P -j "$step,$graced" -o "$ACCT" >sacct_accounting_preempted.txt

# Time limit, node failure, requeue preemption.
nodefail=$(job --no-requeue --wrap 'sleep 300')
requeued=$(job -p requeue --wrap 'sleep 300')
wait_state "$nodefail" RUNNING
wait_state "$requeued" RUNNING
# The node failure requeues $requeued (same id, PENDING) and ends $nodefail NODE_FAIL; the
# node returns to service by itself (ReturnToService=2).
scontrol update nodename="$NODE" state=down reason=capture
wait_state "$nodefail" NODE_FAIL
timeout=$(job --no-requeue --time=1 --wrap 'sleep 300')
wait_state "$requeued" RUNNING
wait_state "$timeout" RUNNING
# Past its one-minute limit but not yet killed by the periodic check: TimeLeft is INVALID.
until squeue -h -j "$timeout" -O 'TimeLeft:|' | grep -q INVALID; do
  [ "$(state "$timeout")" = RUNNING ] || { echo "capture: missed INVALID TimeLeft" >&2; break; }
  sleep 1
done
squeue -h -t all -j "$timeout,$nodefail,$requeued" -O "$QUEUE" >squeue_queue_format_ends.txt
show "$timeout" "$nodefail" "$requeued" >scontrol_job_ends.txt
wait_state "$timeout" TIMEOUT
scancel "$requeued"
wait_state "$requeued" CANCELLED
sleep 2
sacct -n -X -P -j "$timeout,$nodefail,$requeued" -o "$ACCT" >sacct_accounting_ends.txt
sacct -n -X -P -D -j "$requeued" -o "$ACCT" >sacct_accounting_requeue_duplicates.txt
sacct -n -X -P -D -j "$requeued" -o State,Start,End >sacct_link_format_requeue.txt

cat >jobs.json <<JSON
{"running": "$running", "pending": "$pending", "failed": "$failed", "completed": "$completed",
 "cancelled": "$cancelled", "preempted_step": "$step", "preempted_graced": "$graced",
 "timeout": "$timeout", "node_fail": "$nodefail", "requeued": "$requeued"}
JSON
echo "capture: done ($(date -Iseconds)); $(sinfo --version)"
