"""The kill rate of the behavioural unit tests: each mutation below (a small change of meaning
in longrun's code or its job-side library) is applied alone to a copy of the checkout, and the
unit tests run against the copy without the tests that only compare text (golden files, lint,
packaging). A mutation no test notices is a behaviour nothing checks.

    .venv/bin/python tests/mutations.py [--only NAME ...] [--workers N]

A report, not a gate: it prints one line per mutation and the kill rate, and exits 0. Keep the
list current: a mutation whose text no longer occurs exactly once is reported as stale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Tests that compare text rather than behaviour: they fail on any change, meant or not.
TEXT_ONLY = ["--ignore=unit/test_lint.py", "--ignore=unit/test_packaging.py",
             "-k", "not golden_file"]  # fmt: skip


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str


LIBRARY = "templates/library.sh.j2"  # and its parts, included by concern:
LIBRARY_HELPERS = "templates/library/helpers.sh.j2"
LIBRARY_LEARNING = "templates/library/learning.sh.j2"
LIBRARY_SIGNALS = "templates/library/signals.sh.j2"
LIBRARY_SLURM = "templates/library/slurm.sh.j2"
LIBRARY_STEPS = "templates/library/steps.sh.j2"
LIBRARY_SUCCESSOR = "templates/library/successor.sh.j2"

MUTATIONS = [
    # The rule table and what a link's end means (longrun/states.py).
    Mutation("state_after_verdict: a preempted link is never FAILED", "longrun/states.py",
             "return FAILED if preempted and exit_code not in (None, 0) else COMPLETED",
             "return COMPLETED"),
    Mutation("link_kind: PreemptTime ignored", "longrun/states.py",
             "if preempted or base == PREEMPTED:", "if base == PREEMPTED:"),
    Mutation("rules: a failed link runs again without the retry budget", "longrun/states.py",
             "Rule(VERDICT_FAILED, ANY, None, RETRY_OR_FAIL,", "Rule(VERDICT_FAILED, ANY, None, RUN,"),
    Mutation("rules: NODE_FAIL no longer continues", "longrun/states.py",
             'CONTINUE_STATES = (TIMEOUT, PREEMPTED, NODE_FAIL, "REVOKED", "BOOT_FAIL")',
             'CONTINUE_STATES = (TIMEOUT, PREEMPTED, "REVOKED", "BOOT_FAIL")'),
    Mutation("base_state: 'CANCELLED by 0' kept whole", "longrun/states.py",
             'word = raw.strip().split(" ", 1)[0] if raw.strip() else ""', "word = raw.strip()"),
    # sbatch's grammar (longrun/sbatch_options.py).
    Mutation("-d read as --distribution", "longrun/sbatch_options.py",
             '"d": "dependency"', '"d": "distribution"'),
    Mutation("-b read as --batch", "longrun/sbatch_options.py", '"b": "begin"', '"b": "batch"'),
    Mutation("--hold repeated on every link", "longrun/sbatch_options.py",
             '{"dependency", "begin", "hold",', '{"dependency", "begin",'),
    # How a chain is read (longrun/chain_view.py).
    Mutation("chain_view: MAX_RESTARTS before CANCELLED", "longrun/chain_view.py",
             "    elif last.state in states.CANCELLED_STATES:\n",
             "    elif last.state in states.CANCELLED_STATES and last.restart_count < view.max_restarts:\n"),
    Mutation("chain_view: sacct wins over the queue", "longrun/chain_view.py",
             "if row is not None and states.is_active(row.state):",
             "if row is not None and states.is_active(row.state) and job not in final_states:"),
    Mutation("chain_view: the first running job is current", "longrun/chain_view.py",
             "running[-1] if running", "running[0] if running"),
    Mutation("chain_view: Slurm's final state before our own cancel", "longrun/chain_view.py",
             "if view.state in states.OPEN_STATES and job in cancelled_by_us:",
             "if view.state in states.OPEN_STATES and job in cancelled_by_us and job not in final_states:"),
    Mutation("chain_view: our cancel of a successor read as the user's", "longrun/chain_view.py",
             "        if state in states.CANCELLED_STATES and successor in cancelled_by_us:",
             "        if False:"),
    # The order of the links: the links' own facts, never the hosts' clocks (issue 19, item 11).
    Mutation("link_order: the links as the clocks merged them", "longrun/chain_view.py",
             "    return sorted(counts, key=lambda job: (counts[job], depths[job], listed[job]))",
             "    return list(counts)"),
    Mutation("chain_view: a judgement overruled by the verdict stamped after it", "longrun/chain_view.py",
             "            judged.append(event)\n",
             '            _judge(links.get(event.text("previous")), event)\n'),
    Mutation("event merge: a file's own order lost", "longrun/chain_store.py",
             "latest = max(latest, event_time(event))", "latest = event_time(event)"),
    Mutation("repair: the grown memory with the latest stamp", "longrun/chain_actions.py",
             "key=lambda item: (rank.get(item[1].job, -1), item[0])", "key=lambda item: item[0]"),
    # The watcher's decisions (longrun/chain_actions.py).
    Mutation("needs_repair: past --max-restarts", "longrun/chain_actions.py",
             "    if last.restart_count >= view.restart_limit:\n        return False\n    state =",
             "    state ="),
    Mutation("needs_repair: a queued job ignored", "longrun/chain_actions.py",
             "if any(states.is_active(row.state) for row in queue.values()):",
             "if any(states.is_pending(row.state) for row in queue.values()):"),
    Mutation("needs_repair: retries not counted", "longrun/chain_actions.py",
             "        return retries_left\n", "        return True\n"),
    # The job side (templates/library.sh.j2).
    Mutation("job side: the claim's loser runs the body", LIBRARY_STEPS,
             "this job ends without running the script\"\n            exit 0",
             "this job ends without running the script\"\n            return 0"),
    Mutation("job side: a requeued link loses its own claim", LIBRARY_STEPS,
             '[ "$owner" = "$SLURM_JOB_ID" ] && return 0', '[ "$owner" = "x$SLURM_JOB_ID" ] && return 0'),
    Mutation("job side: --retry-failed off by one", LIBRARY_STEPS,
             'if [ "$LR_RETRIES" -lt "$LONGRUN_RETRY_FAILED" ]; then\n        LR_RETRIES=',
             'if [ "$LR_RETRIES" -le "$LONGRUN_RETRY_FAILED" ]; then\n        LR_RETRIES='),
    Mutation("job side: an end found by the judge is not recorded", LIBRARY_STEPS,
             '    lr_set_verdict {{ verdicts.ended }}\n    lr_end_chain "$1" "$2"\n',
             "    lr_set_verdict {{ verdicts.ended }}\n"),
    Mutation("job side: a recorded end does not stop the body", LIBRARY_STEPS,
             "    if lr_ended; then\n        lr_cancel_successor\n",
             "    if false; then\n        lr_cancel_successor\n"),
    Mutation("job side: no answer taken as 'unknown job'", LIBRARY_SLURM,
             '[[ $out == *"Invalid job id"* ]] && return 1', "return 1"),
    Mutation("job side: sacct's answer leaves slurmctld's PreemptTime stale", LIBRARY_SLURM,
             "    LR_STATE='' LR_PREEMPTED=0 LR_TIME_LEFT='' LR_START='' LR_END='' LR_REASON=''\n    if ! out=",
             "    LR_STATE='' LR_START='' LR_END=''\n    if ! out="),
    Mutation("job side: a failed look queues a second successor", LIBRARY_SUCCESSOR,
             "        if [ $rc -eq 2 ]; then\n            lr_event successor_unchecked",
             "        if [ $rc -eq 9 ]; then\n            lr_event successor_unchecked"),
    Mutation("job side: a later end overwrites the first", LIBRARY_SUCCESSOR,
             'if ln "$tmp" "$LR_ENDED_FILE" 2>/dev/null; then',
             'if ln -f "$tmp" "$LR_ENDED_FILE" 2>/dev/null; then'),
    Mutation("job side: a successor removed at --deadline replaced", "longrun/states.py",
             '    DEADLINE: (CHAIN_DEADLINE, "could not end before the --deadline"),\n', ""),
    # What another user could do (issue 25; tests/unit/test_security.py).
    Mutation("job side: the path to the chain folder not checked", LIBRARY_STEPS,
             "    LR_PROBLEM=''\n    [[ $rest == /* ]]", "    LR_PROBLEM=''; return 0\n    [[ $rest == /* ]]"),
    Mutation("job side: relative PATH entries kept", LIBRARY,
             "}\nlr_absolute_path\n", "}\n"),
    Mutation("job side: files made under the job's umask", LIBRARY,
             "fi\numask 077\n", "fi\n"),
    Mutation("job side: sacct's silence taken as 'gone'", LIBRARY_SUCCESSOR,
             "            if [ $? -eq 2 ]; then\n                # slurmctld no longer knows it",
             "            if false; then\n                # slurmctld no longer knows it"),
    Mutation("watcher: repairs while sacct does not answer", "longrun/chain_actions.py",
             "    if rows is None:\n        return None\n", "    rows = rows or {}\n"),
    Mutation("job side: the streak file evaluated as arithmetic", LIBRARY_SUCCESSOR,
             "        [[ $before =~ ^[0-9]{1,4}$ ]] || before=0\n", ""),
    Mutation("job side: any environment name given to env", LIBRARY_SUCCESSOR,
             "        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue", "        :"),
    Mutation("the path to the state directory not checked", "longrun/chain_store.py",
             '    uid = os.getuid()\n    current = Path("/")', '    return\n    uid = os.getuid()\n    current = Path("/")'),
    Mutation("Slurm's commands found through the snapshot's PATH", "longrun/slurm.py",
             '    if "/" in name:\n        return name\n    folders', '    return name\n    folders'),
    Mutation("a link repaired twice", "longrun/chain_actions.py",
             "        refuse_another_repair(events, last.job_id)\n", ""),
    Mutation("a header line bash would run copied as it is", "longrun/plan.py",
             "header.append(bash_comment(line))", "header.append(line)"),
    Mutation("a script named claim written as claim", "longrun/plan.py",
             "and name not in LINK_FILES else", "else"),
    # What a chain cost, who is told (issue 22).
    Mutation("notify: every event told, not the ones asked for", LIBRARY_HELPERS,
             '        *" $name "*)\n            if [ "${LR_NOTICES_HELD',
             '        *)\n            if [ "${LR_NOTICES_HELD'),
    Mutation("notify: a notifier without a bound", LIBRARY_HELPERS,
             '${timeout_path:+"$timeout_path" -k 5 "$LONGRUN_NOTIFY_SECONDS"} ', ""),
    Mutation("notify: the notifier in the foreground holds a SIGTERM back", LIBRARY_HELPERS,
             "        ) </dev/null 1>&2 &\n        lr_wait_for $!\n", "        ) </dev/null 1>&2\n"),
    Mutation("notify: a failed notifier leaves no trace", LIBRARY_HELPERS,
             "            lr_event notify_failed notifier command", "            : notify_failed notifier command"),
    Mutation("stall: a link without a successor says nothing", LIBRARY_STEPS,
             "                lr_backoff\n                lr_check_stalled\n            fi",
             "                lr_backoff\n            fi"),
    Mutation("stall: said even with a successor queued", LIBRARY_STEPS,
             '    [ -z "${LR_SUCCESSOR:-}" ] && [ "$LR_RESTART_COUNT"', '    [ "$LR_RESTART_COUNT"'),
    Mutation("progress: the next link's look counted for itself", "longrun/usage.py",
             'job = event.text("previous")\n', "pass\n"),
    Mutation("usage: longrun's time after the script not counted", "longrun/usage.py",
             "            after = min(self.elapsed - before, max(0, round(end - self.body.end)))",
             "            after = 0"),
    Mutation("usage: a requeued job's earlier runs dropped", "longrun/usage.py",
             "        by_job.setdefault(row.job_raw, []).append(row)", "        by_job[row.job_raw] = [row]"),
    Mutation("usage: runs before the chain's submit time counted", "longrun/usage.py",
             "r.submit is None or r.submit >= created]", "True]"),
    Mutation("notify: notices told before the successor is queued", LIBRARY_STEPS,
             "    LR_NOTICES_HELD=1 LR_HELD=()", "    LR_NOTICES_HELD=0 LR_HELD=()"),
    Mutation("notify: the URL given to curl on its command line", LIBRARY_HELPERS,
             '-K /dev/fd/3 3<<<"url = \\"$url\\""', '--url "$LONGRUN_NOTIFY_URL"'),
    Mutation("notify: curl reads [] in the URL as a pattern", LIBRARY_HELPERS,
             "curl -sS -f -g -o", "curl -sS -f -o"),
    Mutation("events: the locale's decimal comma kept", LIBRARY_HELPERS, "    t=${t/[!0-9]/.}\n", ""),
    Mutation("stall: a successor found missing still counted", LIBRARY_SUCCESSOR,
             "        lr_event successor_missing successor \"$id\" state \"${LR_STATE:-gone}\"\n        LR_SUCCESSOR=''\n",
             "        lr_event successor_missing successor \"$id\" state \"${LR_STATE:-gone}\"\n"),
    Mutation("stall: an unanswered look taken for no successor", LIBRARY_SUCCESSOR,
             "            [ $submit = 0 ] && LR_SUBMIT_UNKNOWN=1", "            :"),
    Mutation("max restarts: a time-limited last link leaves the end unrecorded", LIBRARY_STEPS,
             "                && lr_never_requeued", "                && false && lr_never_requeued"),
    Mutation("notify: an unsafe notifier run", LIBRARY_HELPERS,
             '-gt 0 ] && ! lr_trusted_path "${LONGRUN_NOTIFY_COMMAND[0]}"', '-gt 0 ] && false'),
    Mutation("usage: the step's peak memory ignored", "longrun/slurm_output.py",
             "                peaks[-1] = max(peaks[-1] or 0, rss)", "                pass"),
    # A chain that learns (issue 21).
    Mutation("learn: a node failure teaches nothing", LIBRARY_LEARNING,
             '{{ states.node_lost | join(\'|\') }}) lr_avoid', 'NOTHING) lr_avoid'),
    Mutation("learn: a link on an avoided node runs the body", LIBRARY_STEPS,
             "    [ -z \"$LR_HANDOVER\" ] || lr_hand_over\n", ""),
    Mutation("learn: a hand-over counts against --max-restarts", LIBRARY_LEARNING,
             "        LR_FREE=$((LR_FREE + 1)) LR_LIMIT=$((LR_LIMIT + 1))", "        :"),
    Mutation("learn: the user's --exclude dropped", LIBRARY_LEARNING,
             '("--exclude=${LONGRUN_USER_EXCLUDE:+$LONGRUN_USER_EXCLUDE,}$LR_AVOID")',
             '("--exclude=$LR_AVOID")'),
    Mutation("learn: an exclusion that empties the partition kept", LIBRARY_LEARNING,
             '    if [ "$left" -lt "${need:-1}" ]; then', '    if false; then'),
    Mutation("learn: --nodelist nodes excluded", LIBRARY_LEARNING,
             "            [[ $all == *\" $node \"* ]] && all=${all/ $node / } dropped+=\" $node\"", "            :"),
    Mutation("learn: a failed --node-check ignored", LIBRARY_LEARNING,
             '    [ "$rc" -eq 0 ] && return 0\n    lr_event node_check_failed', '    return 0\n    lr_event node_check_failed'),
    Mutation("learn: the grown memory not carried on", LIBRARY_LEARNING,
             '        LR_NEXT_ARGUMENTS+=("{{ arguments.memory }}=$LR_MEMORY")', "        :"),
    Mutation("learn: memory grown past the maximum", LIBRARY_LEARNING,
             '    [ "$max" -gt 0 ] && [ "$grown" -gt "$max" ] && grown=$max', "    :"),
    Mutation("learn: a step out of memory not seen", LIBRARY_LEARNING,
             "        [[ $'\\n'$out$'\\n' == *$'\\n'{{ states.out_of_memory | first }}$'\\n'* ]] && return 0",
             "        :"),
    Mutation("learn: idle links never end the chain", LIBRARY_LEARNING,
             '        if [ "$LR_MTIME" = "$LR_MTIME0" ] && [ $((LR_IDLE + 1)) -ge "$LONGRUN_MAX_IDLE" ]; then',
             "        if false; then"),
    Mutation("learn: a killed idle link not counted", LIBRARY_LEARNING,
             '|| [ "$LR_P_HANDOVER" = 1 ] || LR_IDLE=$((LR_IDLE + 1))', '|| true'),
    Mutation("learn: a preempted link counted idle", LIBRARY_LEARNING,
             '        lr_not_the_works_fault "$LR_PREV_STATE" "$LR_PREV_PREEMPTED" ||', "        false ||"),
    Mutation("learn: hand-overs without end", LIBRARY_LEARNING,
             '        if [ "$LR_HANDOVERS" -gt "$LONGRUN_MAX_HANDOVERS" ]; then', "        if false; then"),
    Mutation("learn: a requeued link's first run forgotten", LIBRARY_LEARNING,
             "    LR_USED=$((LR_USED + LR_RERUN))\n", ""),
    Mutation("learn: a killed link's end not taken from Slurm", LIBRARY_STEPS,
             '    LR_PREV_STATE=$LR_STATE LR_PREV_END=$LR_END', '    LR_PREV_STATE=$LR_STATE LR_PREV_END='),
    Mutation("learn: an unanswered accounting taken for no step out of memory", LIBRARY_STEPS,
             '        [ "$steps" = 0 ] && judged=', '        false && judged='),
    Mutation("repair: the grown memory forgotten", "longrun/chain_actions.py",
             "        memory = _grown_memory([e for e in events if element is None or e.job in jobs])\n",
             '        memory = ""\n'),
    Mutation("repair: the link's own retry forgotten", "longrun/chain_actions.py",
             'for kind, key in ((protocol.RETRY, "attempt"), (protocol.LINK_STARTED, "retries")):',
             'for kind, key in ((protocol.LINK_STARTED, "retries"),):'),
    Mutation("repair: the link's own command ignored", "longrun/chain_actions.py",
             "        if request is not None and request.carries(tag):",
             "        if request is not None and request.carries(tag) and False:"),
    Mutation("view: a node range expanded without bound", "longrun/slurm_output.py",
             "            if not valid or len(names) + int(high or low) - int(low) >= MAX_HOSTNAMES:",
             "            if not valid:"),
    Mutation("learn: the previous links' run time forgotten", LIBRARY_LEARNING,
             "        LR_USED=$(( ${LR_P_USED:-0} + end - LR_P_STARTED ))", "        LR_USED=0"),
    Mutation("learn: the time limit never cut", LIBRARY_LEARNING,
             '    [ -n "$LR_DEADLINE" ] && [ $((LR_DEADLINE - EPOCHSECONDS)) -gt "$left" ] || return 0',
             "    return 0"),
    Mutation("learn: SLURM_JOB_END_TIME ignored", LIBRARY_LEARNING,
             "    LR_DEADLINE=${SLURM_JOB_END_TIME:-}", "    LR_DEADLINE="),
    Mutation("learn: file contents evaluated as numbers unchecked", LIBRARY_LEARNING,
             "    [[ ${!1} =~ ^[0-9]{1,15}$ ]] || printf -v \"$1\" '%s' ''", "    :"),
    Mutation("view: a hand-over not free for the watcher", "longrun/chain_view.py",
             "free_links=max((links[job].free_links + (job in handovers) for job in order), default=0)",
             "free_links=max((int(job in handovers) for job in order), default=0)"),
    # When Slurm is slow, silent or says no (issue 19; tests/unit/test_link_answers.py).
    Mutation("judge: no answer taken as 'Slurm forgot the job'", LIBRARY_STEPS,
             "1) answer={{ answers.forgotten }} ;; *) answer={{ answers.none }} ;;",
             "1) answer={{ answers.forgotten }} ;; *) answer={{ answers.forgotten }} ;;"),
    Mutation("rules: a cancel no longer wins over the verdict before it", "longrun/states.py",
             'Rule("*", CANCELLED_STATES, None, END_CANCELLED, "the previous link was cancelled")',
             'Rule("", CANCELLED_STATES, None, END_CANCELLED, "the previous link was cancelled")'),
    Mutation("SIGTERM: the link's own end time unused without an answer", LIBRARY_SIGNALS,
             "        LR_CAUSE={{ states.time_limit_reason }}", "        LR_CAUSE=''"),
    Mutation("SIGTERM: a cancel of the running link not seen", LIBRARY_SIGNALS,
             "    elif [ $info -eq 0 ] && lr_cancelled_now; then", "    elif false; then"),
    Mutation("SIGTERM: a requeue taken for a cancel", LIBRARY_SIGNALS,
             '[ "$LR_RESTARTS" = "${SLURM_RESTART_COUNT:-0}" ] || return 1', ":"),
    Mutation("orphan: a claim on the running link ignored", LIBRARY_STEPS,
             '            if [ -L "$claim" ]; then', "            if false; then"),
    Mutation("orphan: the successor does not wait for the old script", LIBRARY_STEPS,
             '        [ "$after" = "$before" ] && return 0', "        return 0"),
    Mutation("claim: any failure taken for a lost claim", LIBRARY_STEPS,
             "        if [[ $owner =~ ^[0-9]+$ ]]; then", "        if true; then"),
    Mutation("verdict: a failure without Slurm's answer is final", LIBRARY_STEPS,
             '        verdict="{{ verdicts.undecided }}"', '        verdict="{{ verdicts.failed }}"'),
    Mutation("signals: a signal to the batch shell not passed on", LIBRARY_SIGNALS,
             '        kill -s "$1" "$LR_BODY_PID" 2>/dev/null\n        LR_SIGNALLED=$1',
             "        LR_SIGNALLED=$1"),
    Mutation("successor: a refusal for a limit retried before the script", LIBRARY_SUCCESSOR,
             '        if [ $submit = 1 ] && lr_submission_limited "$out"; then', "        if false; then"),
    Mutation("node wait: a time limit during it makes a failure a lost node", LIBRARY_STEPS,
             "            case $LR_TERM_CAUSE in {{ states.node_lost_causes | join('|') }}) return 0 ;; esac\n            return 1",
             "            return 0"),
    Mutation("orphan: the wait goes on after a SIGTERM", LIBRARY_STEPS,
             '            [ "$LR_TERMINATED" = 1 ] && return 1\n', ""),
    Mutation("orphan: the wait comes before the successor is queued", LIBRARY_STEPS,
             "LR_ORPHANS=$LR_PREVIOUS ;; esac", "LR_ORPHANS=$LR_PREVIOUS; lr_wait_for_orphans; LR_ORPHANS='' ;; esac"),
    Mutation("orphan: the previous link's unfinished wait not inherited", LIBRARY_STEPS,
             "    lr_inherit_orphans\n", "\n"),
    Mutation("orphan: a pause cut short by a signal counts as a beat", LIBRARY_STEPS,
             "        while [ $SECONDS -lt $until ]; do", "        while false; do"),
    Mutation("orphan: a claim found after the wait ignored", LIBRARY_STEPS,
             "    if lr_claimed_by_another; then\n        # Slurm gave up", "    if false; then\n        # Slurm gave up"),
    Mutation("orphan: the successor not looked at again after the wait", LIBRARY_STEPS,
             '    [ "$LR_WAITED" = 1 ] && lr_ensure_successor', "    :"),
    Mutation("orphan: a requeued run forgets the list its first run wrote", LIBRARY_STEPS,
             '    [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && folders+=("$LR_LINK_DIR")', "    :"),
    Mutation("orphan: the retrier of the wait left running", LIBRARY_STEPS,
             "    lr_stop_retrier  # (what it queued during the wait", "    :  # (what it queued during the wait"),
    Mutation("claim: an unreadable claim on this link taken for none", LIBRARY_STEPS,
             '        [ -L "$claim" ] || return 1\n', "        return 1\n"),
    Mutation("SIGTERM before the script: a refused successor not said", LIBRARY_STEPS,
             "        lr_check_stalled  # (a successor refused for a limit", "        :  # (a successor refused for a limit"),
    Mutation("judge: a requeued run keeps a judgement made without Slurm's answer", LIBRARY_STEPS,
             '    [ "$kept" = 1 ] && [ "$answer" != {{ answers.none }} ] \\\n',
             '    [ "$kept" = 1 ] \\\n'),
]  # fmt: skip


def copy_checkout(target: Path) -> None:
    """The checkout's tracked and new files (as `git ls-files` lists them), no virtualenv."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def run_unit_tests(copy: Path, workers: int) -> tuple[bool, str]:
    """Whether the behavioural unit tests pass on the copy, and the first failure's name."""
    env = {**os.environ, "PYTHONPATH": str(copy)}  # `import longrun` finds the copy first
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(copy / "pyproject.toml"), "--rootdir", str(copy),
         "-q", "-x", "-p", "no:cacheprovider", "-n", str(workers), "-m", "not slurm",
         "--timeout", "120",  # a test that hangs under a mutation has noticed it
         *TEXT_ONLY, "unit"],
        cwd=copy / "tests", env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED ")]
    return result.returncode == 0, failed[0][len("FAILED ") :].split(" - ")[0] if failed else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="mutations whose name contains one of these")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or any(w in m.name for w in args.only)]
    with tempfile.TemporaryDirectory(prefix="longrun-mutations-") as base:
        Path(base).chmod(0o755)  # some tests run as nobody, who must reach the copy
        pristine = Path(base) / "pristine"
        copy_checkout(pristine)
        passed, failure = run_unit_tests(pristine, args.workers)
        if not passed:
            print(f"mutations: the unmutated copy fails ({failure}): fix that first")
            return 1
        killed = stale = 0
        for mutation in chosen:
            copy = Path(base) / "mutant"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(pristine, copy)
            path = copy / mutation.path
            text = path.read_text()
            if text.count(mutation.old) != 1:
                stale += 1
                print(f"STALE    {mutation.name}: its text occurs {text.count(mutation.old)} times")
                continue
            path.write_text(text.replace(mutation.old, mutation.new))
            started = time.monotonic()
            passed, failure = run_unit_tests(copy, args.workers)
            killed += not passed
            verdict = "survived" if passed else "killed  "
            seconds = time.monotonic() - started
            by = f" by {failure}" if failure else ""
            print(f"{verdict} {mutation.name} ({seconds:.0f} s){by}")
        tried = len(chosen) - stale
        print(f"kill rate: {killed}/{tried} ({100 * killed / max(tried, 1):.0f}%), {stale} stale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
