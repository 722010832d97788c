"""Hand-written wasm (text format) for ABI edge cases C cannot express."""

from __future__ import annotations

import hashlib
from pathlib import Path

import wasmtime


def compile_wat(directory: Path, body: str) -> Path:
    """Write `(module BODY)` as a .wasm file in directory and return its path."""
    text = f"(module {body})"
    path = directory / f"m{hashlib.sha1(text.encode()).hexdigest()[:12]}.wasm"
    path.write_bytes(wasmtime.wat2wasm(text))
    return path
