"""Fixtures for the example tests: gcc builds, the native namespaces, and `lab`.

`lab` is parametrized: every test that takes it runs once natively (the
example compiled with gcc, in Linux network namespaces) and once on vnet (the
example built to wasm, on virtual hosts in virtual time). See harness.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import Lab, NativeLab, NativeNet, VnetLab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NATIVE_FLAGS = ["-O2", "-Wall"]


@pytest.fixture(scope="session")
def native_binaries(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """native_binaries("name") is examples/name.c built with `gcc -O2 -Wall` (no warnings)."""
    out_dir = tmp_path_factory.mktemp("native")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            out = out_dir / name
            proc = subprocess.run(["gcc", *NATIVE_FLAGS, str(EXAMPLES / f"{name}.c"), "-o",
                                   str(out)], capture_output=True, text=True, timeout=120)
            if proc.returncode != 0 or proc.stderr.strip():
                pytest.fail(f"gcc {name}.c:\n{proc.stderr}", pytrace=False)
            built[name] = out
        return built[name]

    return get


@pytest.fixture(scope="session")
def native_net() -> Iterator[NativeNet]:
    net = NativeNet()
    try:
        net.create()
        yield net
    finally:
        net.delete()


@pytest.fixture(params=["native", "vnet"])
def lab(request: pytest.FixtureRequest, example_wasm: Callable[[str], Path],
        native_binaries: Callable[[str], Path]) -> Iterator[Lab]:
    made: Lab
    if request.param == "native":
        made = NativeLab(request.getfixturevalue("native_net"), native_binaries)
    else:
        made = VnetLab(example_wasm)
    try:
        yield made
    finally:
        made.close()
