"""Shared fixtures: building C guests once per session, finding example guests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.build import build_wasm

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GUEST_C = Path(__file__).resolve().parent / "guest" / "c"


@pytest.fixture(scope="session")
def wasm_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wasm")


@pytest.fixture(scope="session")
def build_guest(wasm_build_dir: Path) -> Callable[..., Path]:
    """build_guest("name") compiles tests/guest/c/name.c (or a path) to wasm, cached."""
    built: dict[tuple[str, tuple[str, ...]], Path] = {}

    def build(source: str | os.PathLike[str], *flags: str) -> Path:
        src = Path(source)
        if not src.suffix:
            src = GUEST_C / f"{source}.c"
        key = (str(src), flags)
        if key not in built:
            out = wasm_build_dir / f"{src.stem}-{abs(hash(key)) % 10**8}.wasm"
            built[key] = build_wasm([src], out, flags=list(flags), quiet=True)
        return built[key]

    return build


@pytest.fixture(scope="session")
def example_wasm(build_guest: Callable[..., Path]) -> Callable[[str], Path]:
    """example_wasm("name") builds examples/name.c."""

    def get(name: str) -> Path:
        return build_guest(EXAMPLES / f"{name}.c")

    return get
