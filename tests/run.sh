#!/usr/bin/env bash
# longrun's test command (the one the README and .ci/run use): a virtual environment with the
# package and its test dependencies, the local Slurm cluster, then unit and end-to-end tests.
# The cluster is left as it was found: brought down again only if this script brought it up.
#
#   bash tests/run.sh                 everything
#   bash tests/run.sh -m 'not slurm'  unit tests only (pytest arguments pass through)
#   bash tests/run.sh -m slurm        end-to-end tests only
#   bash tests/run.sh e2e/test_chain.py   these tests only (paths relative to tests/)
#   bash tests/run.sh --slurm 24.11 [pytest arguments]
#                                     the same on Slurm 24.11: the suite runs inside the
#                                     cluster's Debian 13 root (example/local-slurm.sh)
#
# Settings (environment): LONGRUN_VENV (default .venv), LONGRUN_TEST_WORKERS (default 8: the
# end-to-end tests mostly wait for Slurm, so more workers than cores pays off).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

case ${1:-} in
  --slurm|--slurm=*)
    if [ "$1" = --slurm ]; then version=${2:-}; shift $(($# < 2 ? 1 : 2)); else version=${1#*=}; shift; fi
    [ -n "$version" ] || { echo "tests: --slurm needs a version: 22.05 or 24.11" >&2; exit 2; }
    if [ "$version" != 22.05 ]; then
      # The other Slurm runs in a root of its own: bring its cluster up (and down again if we
      # did), then run this script in there, where that cluster is the local one.
      bash example/local-slurm.sh status --slurm "$version" >/dev/null 2>&1 && was_up=1 || was_up=0
      [ "$was_up" -eq 1 ] || trap 'bash "$ROOT/example/local-slurm.sh" down --slurm "$version" || true' EXIT
      bash example/local-slurm.sh up --slurm "$version"
      bash example/local-slurm.sh run --slurm "$version" -- bash tests/run.sh "$@"
      exit 0
    fi ;;
esac
if [ -r /etc/longrun-slurm-root ]; then
  # Inside the root of another Slurm: pytest's folders apart from a suite running outside.
  PYTEST_DEBUG_TEMPROOT=/tmp/longrun-slurm-$(cat /etc/longrun-slurm-root)
  export PYTEST_DEBUG_TEMPROOT
  mkdir -p "$PYTEST_DEBUG_TEMPROOT"
fi
VENV=${LONGRUN_VENV:-$ROOT/.venv}
WORKERS=${LONGRUN_TEST_WORKERS:-8}

# What the tests need besides Python packages: shellcheck (every rendered link script is
# checked), venv support, zsh and tcsh (scripts in other shells). On Debian as root they are
# installed; elsewhere we say what is missing.
missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# Batch scripts in other shells, as users write them (tests/e2e/test_wild_scripts.py).
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v tcsh >/dev/null 2>&1 || missing+=(tcsh)
# cron, for the keeper installed in a crontab (tests/e2e/test_login_keeper.py).
command -v cron >/dev/null 2>&1 || missing+=(cron)
# A locale with a decimal comma (tests/unit/test_notify.py: events stay JSON under de_DE); the
# root of another Slurm runs the end-to-end tests only.
[ -e /usr/share/i18n/locales/de_DE ] || [ -r /etc/longrun-slurm-root ] || missing+=(locales)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tests: installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "tests: missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

LONGRUN_VENV=$VENV bash example/install-longrun.sh --test

was_up=0
if bash example/local-slurm.sh status >/dev/null 2>&1; then
  was_up=1
fi
cleanup() {
  if [ "$was_up" -eq 0 ]; then
    bash "$ROOT/example/local-slurm.sh" down || true
  fi
}
trap cleanup EXIT
bash example/local-slurm.sh up
eval "$(bash example/local-slurm.sh env)"
export SLURM_CONF
export PATH="$VENV/bin:$PATH"

# Run from tests/ so that `import longrun` finds the installed package, not the checkout.
# Test paths among the arguments (relative to tests/) choose what runs; else everything does.
cd tests
where=.
for argument in "$@"; do
  [ -e "${argument%%::*}" ] && where=
done
# The 20 slowest tests are listed before the summary: where the suite's time goes.
"$VENV/bin/python" -m pytest -c ../pyproject.toml --rootdir .. -n "$WORKERS" --durations=20 "$@" $where
