"""Which build of the stack runs: the mypyc-compiled modules, or the pure-Python sources.

`scripts/compile-stack` (and scripts/demo, test and bench, when a C compiler and the
Python headers are present, unless `VNET_COMPILE_STACK=0`) compiles the hot modules of
this package, and the hot host-call modules of vnet/ that drive it, with mypyc as one
group into ``build/compiled-stack/`` at the repository root, beside a ``manifest.json``
that records the module list and a SHA-256 of the ``stack/**/*.py``, of the compiled
vnet/ sources it was built from and of the uncompiled vnet/ modules they call into
(listed as ``reads``: compiled code checks what they return against their annotations).
`activate` (called once, from ``stack/__init__.py``, before any submodule loads; and
``vnet/__init__.py`` imports this package first) puts a finder first on ``sys.meta_path``
that loads those modules from their extension files — only when the build is whole and
current:

- ``VNET_PURE_PYTHON=1`` forces the pure-Python sources;
- ``VNET_COMPILED_STACK=DIR`` reads the build from DIR instead of the default place;
- a build made for another Python (cache tag, extension suffix), or from sources that
  differ in any byte from the ones beside this file, is not used at all: every module of
  a mypyc group calls the others' compiled code directly, so a group is all or nothing.

The decision is in `STATE` (one line, for `vnet --version` and the benchmark header) and
`ACTIVE`. Both builds behave alike to the byte: the same seed gives the same pcaps
(tests/test_compiled_stack.py). This is the one module of the stack that reads files —
the manifest, the stack's own sources and the vnet/ sources the manifest names,
at import — and it touches nothing else.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository root: the compiled modules outside stack/ are named from here.
SOURCE_ROOT = PACKAGE_DIR.parent
DEFAULT_BUILD_DIR = PACKAGE_DIR.parent / "build" / "compiled-stack"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

#: True when the compiled modules are the ones imported.
ACTIVE = False
#: What runs, in one line: "mypyc-compiled (N modules)" or "pure Python (why)".
STATE = "pure Python (not activated)"


def build_dir() -> Path:
    """Where the compiled build is read from (and where scripts/compile-stack writes)."""
    override = os.environ.get("VNET_COMPILED_STACK")
    return Path(override) if override else DEFAULT_BUILD_DIR


def sources_digest(package_dir: Path = PACKAGE_DIR, outside: Sequence[str] = ()) -> str:
    """SHA-256 over every ``*.py`` of the package (relative path and bytes), sorted; all
    but this file, which no compiled module depends on; then over the compiled sources
    `outside` the package (paths relative to its parent, as `outside_sources` gives)."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        if path.relative_to(package_dir).as_posix() == "compiled.py":
            continue
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    for rel in sorted(outside):
        digest.update(b"outside\0" + rel.encode() + b"\0")
        digest.update((package_dir.parent / rel).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def outside_sources(module_names: Iterable[str]) -> list[str]:
    """The source files (relative to the repository root) of the compiled modules that are
    not in this package: ``vnet.guest.abi`` → ``vnet/guest/abi.py``."""
    return sorted(name.replace(".", "/") + ".py" for name in module_names
                  if not name.startswith("stack.") and not name.endswith("__mypyc"))


def platform_tag() -> dict[str, str]:
    """What an extension module is built for: it loads only into the same."""
    return {"cache_tag": sys.implementation.cache_tag or "",
            "ext_suffix": importlib.machinery.EXTENSION_SUFFIXES[0]}


class _CompiledModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the listed modules as extension files; leaves every other name alone."""

    def __init__(self, modules: dict[str, Path]) -> None:
        self.modules = modules

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        so = self.modules.get(fullname)
        if so is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(so))
        return importlib.util.spec_from_file_location(fullname, so, loader=loader)


def check_build(directory: Path) -> tuple[dict[str, Path] | None, str]:
    """The build's modules (name → extension file) if it may be used, and why (not)."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return None, "pure Python (no compiled build)"
    try:
        manifest = json.loads(manifest_path.read_text())
        modules = {str(name): directory / str(rel)
                   for name, rel in dict(manifest["modules"]).items()}
        fmt, built_for, digest = manifest["format"], manifest["platform"], manifest["sources"]
        # the uncompiled modules the build compiled calls into (vnet.compile_stack.read_sources)
        reads = [str(rel) for rel in manifest.get("reads", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, "pure Python (unreadable compiled build manifest)"
    if fmt != MANIFEST_FORMAT or built_for != platform_tag():
        return None, "pure Python (the compiled build is for another Python)"
    try:
        current = sources_digest(outside=outside_sources(modules) + reads)
    except OSError:
        current = ""
    if digest != current:
        return None, "pure Python (a compiled source changed since the build)"
    missing = [name for name, so in modules.items() if not so.is_file()]
    if missing:
        return None, f"pure Python (compiled build incomplete: {missing[0]} missing)"
    compiled = sum(1 for name in modules if not name.endswith("__mypyc"))
    return modules, f"mypyc-compiled ({compiled} modules)"


def activate() -> None:
    """Decide once, before the stack's submodules load, which build runs."""
    global ACTIVE, STATE
    if any(isinstance(f, _CompiledModuleFinder) for f in sys.meta_path):
        return
    if os.environ.get("VNET_PURE_PYTHON", "") not in ("", "0"):
        STATE = "pure Python (VNET_PURE_PYTHON is set)"
        return
    modules, STATE = check_build(build_dir())
    if modules is not None:
        sys.meta_path.insert(0, _CompiledModuleFinder(modules))
        ACTIVE = True
