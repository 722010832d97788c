# Sourced by scripts/demo, scripts/test and scripts/bench: create or update
# .venv at the repository root with the project installed editable, then build
# the example guests. Idempotent: a second run re-installs only when
# pyproject.toml changed.
set -euo pipefail
VNET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$VNET_ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "vnet: creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.vnet-installed"
if [ ! -f "$STAMP" ] || [ "$VNET_ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "vnet: installing vnet and its dependencies into .venv" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$VNET_ROOT[test]"
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
"$VNET_ROOT/scripts/install-binaryen" || true  # wasm-opt for -pthread guests
echo "vnet: building example guests" >&2
"$VENV/bin/python" -m vnet.examples_build "$VNET_ROOT/examples" "$VNET_ROOT/examples/build"
