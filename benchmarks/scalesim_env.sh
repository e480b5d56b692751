#!/usr/bin/env bash
# Create (idempotently) the separate virtual env that holds SCALE-Sim 3.0.0.
#
# SCALE-Sim 3.0.0 needs numpy < 2.3, so it lives apart from the project's own
# environment. The env is created at benchmarks/.venv-scalesim; the script
# prints the absolute path of its python on stdout (and nothing else there).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${SCALESIM_VENV:-$here/.venv-scalesim}"
py="$venv/bin/python"

if [ ! -x "$py" ]; then
    python3 -m venv "$venv" >&2
fi

if ! "$py" -c 'import importlib.metadata as m, sys; sys.exit(m.version("scalesim") != "3.0.0")' 2>/dev/null; then
    "$py" -m pip install --quiet --disable-pip-version-check \
        "scalesim==3.0.0" "numpy<2.3" >&2
fi

echo "$py"
