#!/usr/bin/env python3
"""A small training loop that continues across links with longrun.job: no GPU, no numpy.

It fits y = 3x + 1 by stochastic gradient descent, one sample per step. When Slurm's pre-timeout
signal arrives (longrun passes it on with --signal=B:USR1@N), it finishes the step it is in,
saves a checkpoint and exits with the continue code: the chain's next link resumes from the
checkpoint. Outside a chain it runs the same, from the start.

    python3 train_loop.py --steps 400 --step-seconds 0.25
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

from longrun import job

CHECKPOINT = "train_loop.checkpoint.json"


def load() -> dict[str, float]:
    try:
        with open(CHECKPOINT) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {"step": 0, "w": 0.0, "b": 0.0}


def save(state: dict[str, float]) -> None:
    with open(CHECKPOINT + ".tmp", "w") as handle:
        json.dump(state, handle)
    os.replace(CHECKPOINT + ".tmp", CHECKPOINT)  # whole, or not at all


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument(
        "--step-seconds", type=float, default=0.25, help="pretend each step is slow"
    )
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args()

    job.install_handler()  # the pre-timeout signal (and SIGTERM) now set stop_requested()
    state = load()
    job_id = os.environ.get("SLURM_JOB_ID")
    where = f"link {job.restart_count()} of chain {job.chain_id()}, job {job_id}"
    previous = job.previous_state() or "none"
    print(f"{where} (previous link: {previous}): resuming at step {int(state['step'])}", flush=True)
    while state["step"] < args.steps:
        rng = random.Random(int(state["step"]))  # the same samples whatever the links
        x = rng.uniform(-1, 1)
        y = 3 * x + 1 + rng.gauss(0, 0.1)
        error = state["w"] * x + state["b"] - y
        state["w"] -= args.learning_rate * error * x
        state["b"] -= args.learning_rate * error
        state["step"] += 1
        time.sleep(args.step_seconds)
        if job.stop_requested():
            save(state)
            print(f"{'+'.join(job.signals_received())} at step {int(state['step'])}: checkpoint "
                  "saved; the next link goes on from here", flush=True)  # fmt: skip
            job.request_continue()
        if state["step"] % 50 == 0:
            save(state)
    save(state)
    print(
        f"done after {int(state['step'])} steps: w={state['w']:.2f} b={state['b']:.2f}", flush=True
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
