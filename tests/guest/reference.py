"""Run a guest under wasmtime's own WASI (wasmtime-py WasiConfig): the reference.

Tests run the same module under vnet and here and compare what a user can
observe: exit status, stdout, stderr and the files left behind.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime


@dataclass
class ReferenceResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    trapped: bool


def run_reference(
    wasm_path: str | Path,
    args: list[str],
    env: list[tuple[str, str]] | None = None,
    preopens: list[tuple[str, str]] | None = None,
    stdin: bytes = b"",
) -> ReferenceResult:
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(wasm_path))
    with tempfile.TemporaryDirectory(prefix="vnet-ref-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "stdin").write_bytes(stdin)
        config = wasmtime.WasiConfig()
        config.argv = args
        config.env = [list(p) for p in (env or [])]
        config.stdin_file = str(tmpdir / "stdin")
        config.stdout_file = str(tmpdir / "stdout")
        config.stderr_file = str(tmpdir / "stderr")
        for host, guest in preopens or []:
            config.preopen_dir(host, guest)
        store = wasmtime.Store(engine)
        store.set_wasi(config)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        # vnet's own imports (vnet_v1, wasix_32v1) the SDK links in: wasmtime has none,
        # so each answers ENOSYS here, as a call into a missing extension would
        for imp in module.imports:
            if imp.module != "wasi_snapshot_preview1" and isinstance(imp.type,
                                                                     wasmtime.FuncType):
                linker.define_func(imp.module, imp.name or "", imp.type, _enosys(imp.type))
        instance = linker.instantiate(store, module)
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        code, trapped = 0, False
        try:
            start(store)
        except wasmtime.ExitTrap as e:
            code = e.code
        except (wasmtime.Trap, wasmtime.WasmtimeError):
            code, trapped = 134, True
        return ReferenceResult(
            code, (tmpdir / "stdout").read_bytes(), (tmpdir / "stderr").read_bytes(), trapped
        )


ENOSYS = 52  # WASI's errno number


def _enosys(ty: wasmtime.FuncType) -> Any:
    results = ty.results

    def call(*_args: Any) -> Any:
        return ENOSYS if results else None

    return call
