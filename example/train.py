#!/usr/bin/env python3
"""A stand-in for a long training run: it counts steps, checkpoints, and resumes.

It saves its progress to a checkpoint file every few steps, on SIGTERM (time limit, preemption)
and on SIGUSR1 (the pre-timeout signal longrun forwards with --signal=B:USR1@N), then resumes
from the checkpoint in the next link. On SIGUSR1 it exits after saving (exit 0 after a forwarded
signal means "checkpointed, continue"); on SIGTERM it exits 143 like an interrupted program.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time


def load(path: str) -> int:
    try:
        with open(path) as handle:
            return int(json.load(handle)["step"])
    except FileNotFoundError:
        return 0


def save(path: str, step: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump({"step": step}, handle)
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, required=True, help="steps the whole run needs")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--result", required=True, help="written once, when all steps are done")
    parser.add_argument("--step-seconds", type=float, default=1.0)
    parser.add_argument(
        "--max-steps-per-link",
        type=int,
        default=0,
        help="stop working after this many steps in one link and wait for the time limit "
        "(a 1-minute link lasts 60 to 90 s, so this makes the number of links predictable)",
    )
    args = parser.parse_args()

    step = load(args.checkpoint)
    link = os.environ.get("SLURM_LONGRUN_RESTART_COUNT", "?")
    print(f"link {link}: resuming at step {step} of {args.steps}", flush=True)
    stop = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGUSR1, on_signal)

    done_here = 0
    while step < args.steps:
        if stop["signal"] is not None:
            save(args.checkpoint, step)
            name = signal.Signals(stop["signal"]).name
            print(f"link {link}: {name} at step {step}: checkpoint saved", flush=True)
            return 0 if stop["signal"] == signal.SIGUSR1 else 128 + stop["signal"]
        time.sleep(args.step_seconds)
        if args.max_steps_per_link and done_here >= args.max_steps_per_link:
            continue  # this link's share is done: idle until the time limit
        step += 1
        done_here += 1
        if step % 5 == 0:
            save(args.checkpoint, step)

    save(args.checkpoint, step)
    if os.path.exists(args.result):
        print(f"link {link}: already finished earlier", flush=True)
        return 0
    with open(args.result, "a") as handle:
        handle.write(f"finished {args.steps} steps in link {link}\n")
    print(f"link {link}: done, {args.steps} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
