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
# By default, where a C compiler and the Python headers exist, the hot stack modules (and
# the host-call modules of vnet/guest and vnet/link, vnet/compile_stack.py) are compiled
# with mypyc into build/compiled-stack (only when one of them changed since the last
# build: two or three minutes; tests/test_compiled_stack.py then uses this build instead of
# making its own). Without a compiler, headers or mypy (or with VNET_PURE_PYTHON=1) it says
# so in one line and the pure-Python stack runs: it needs nothing but python3.
# VNET_COMPILE_STACK=0 skips the build (a build made earlier is used while it is current).
if [ "${VNET_COMPILE_STACK:-1}" != 0 ]; then
    "$VNET_ROOT/scripts/compile-stack" --if-possible \
        || echo "vnet: compiling the stack failed: the stack runs as pure Python" >&2
elif [ -d "$VNET_ROOT/build/compiled-stack" ]; then
    # Built earlier: say so in one line when its sources changed since (pure Python runs then).
    "$VENV/bin/python" -m vnet.compile_stack --check 2>&1 | grep -v "mypyc-compiled" >&2 || true
fi
export PATH="$VENV/bin:$PATH"
"$VNET_ROOT/scripts/install-binaryen" || true  # wasm-opt for -pthread guests
echo "vnet: building example guests" >&2
"$VENV/bin/python" -m vnet.examples_build "$VNET_ROOT/examples" "$VNET_ROOT/examples/build"
