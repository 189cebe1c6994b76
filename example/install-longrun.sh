#!/usr/bin/env bash
# Install longrun from this checkout into a virtual environment (default: .venv in the checkout),
# as users get it: a regular install of the built wheel, templates included.
#
#   bash example/install-longrun.sh          the package
#   bash example/install-longrun.sh --test   the package and its test dependencies
#
# Settings (environment): LONGRUN_VENV (default <checkout>/.venv).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${LONGRUN_VENV:-$ROOT/.venv}
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || {
    echo "install-longrun: cannot create a virtual environment with python3 -m venv" >&2
    echo "install-longrun: on Debian: apt-get install python3-venv; longrun needs Python 3.9+" >&2
    exit 1
  }
fi
"${PIP[@]}" hatchling
# Reinstall on every call: the checkout may have changed since the last install.
"${PIP[@]}" --no-build-isolation --force-reinstall --no-deps "$ROOT"
if [ "${1:-}" = --test ]; then
  "${PIP[@]}" "${ROOT}[test]"
else
  "${PIP[@]}" "$ROOT"
fi
echo "install-longrun: longrun $("$VENV/bin/python" -c 'import longrun; print(longrun.__version__)') is in $VENV/bin"
