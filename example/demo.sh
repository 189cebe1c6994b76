#!/usr/bin/env bash
# longrun's demo, as root on a fresh Debian machine: bring up the local Slurm cluster, install
# longrun, and run a training job that needs three one-minute links as one chain. Takes about
# four minutes; the watcher prints one line per event, then the result and the chain's links.
#
#   bash example/demo.sh
#
# Settings (environment): LONGRUN_DEMO_DIR (default /tmp/longrun-demo; emptied first).
# The cluster stays up afterwards; `bash example/local-slurm.sh down` stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${LONGRUN_DEMO_DIR:-/tmp/longrun-demo}
BIN=${LONGRUN_VENV:-$ROOT/.venv}/bin

step() { printf '\n=== %s\n' "$*"; }

step "local Slurm cluster"
bash "$ROOT/example/local-slurm.sh" up
eval "$(bash "$ROOT/example/local-slurm.sh" env)"
export SLURM_CONF

step "longrun"
bash "$ROOT/example/install-longrun.sh"

step "the chain (watching it; Ctrl-C stops only the watcher)"
# Only ever empty a folder this demo made.
if [ -e "$DEMO" ] && [ ! -e "$DEMO/.longrun-demo" ]; then
  echo "demo: $DEMO exists and was not made by this demo; set LONGRUN_DEMO_DIR elsewhere" >&2
  exit 2
fi
rm -rf "$DEMO"
mkdir -p "$DEMO"
touch "$DEMO/.longrun-demo"
cp "$ROOT/example/train.py" "$DEMO/train.py"
cd "$DEMO"
export LONGRUN_HOME=$DEMO/state
status=0
"$BIN/sbatch_longrun" "$ROOT/example/train.sbatch" "$DEMO/train.py" || status=$?

step "what the links wrote ($DEMO/train.out)"
cat train.out
step "result ($DEMO/result.txt)"
cat result.txt 2>/dev/null || echo "(no result: the chain did not complete)"
step "longrun status"
"$BIN/longrun" status
step "longrun usage (what the chain cost, from sacct)"
"$BIN/longrun" usage || echo "(sacct did not answer; try again in a moment)"
echo
echo "Try: LONGRUN_HOME=$LONGRUN_HOME $BIN/longrun list   (and usage, logs, show, watch, cancel)"
exit "$status"
