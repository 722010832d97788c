"""Build every example guest: `python -m vnet.examples_build EXAMPLES_DIR OUT_DIR`.

Each `examples/NAME.c` becomes `OUT_DIR/NAME.wasm` (a directory
`examples/NAME/` with its .c files becomes one module, built with the
third-party sources its `third_party.toml` names: vnet/third_party.py). Used by
scripts/demo, scripts/test and scripts/bench; builds are cached, so a second
run is fast. On a terminal (or with -v) it prints `building 7/15 lobby` per
example on stderr. Touches the file system and the compiler, through vnet.build.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vnet.asyncify import BinaryenMissing
from vnet.build import BuildError, Progress, build_wasm
from vnet.third_party import Fetched, ThirdPartyError, fetch


def example_sources(examples: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(examples.glob("*.c")):
        found[path.stem] = [path]
    for directory in sorted(p for p in examples.iterdir() if p.is_dir()):
        sources = sorted(directory.glob("*.c"))
        if sources and directory.name != "build":
            found[directory.name] = sources
    return found


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    argv = [a for a in argv if a != "-v"]
    if len(argv) != 2:
        print("usage: python -m vnet.examples_build [-v] EXAMPLES_DIR OUT_DIR", file=sys.stderr)
        return 2
    examples, out = Path(argv[0]), Path(argv[1])
    failed = []
    found = example_sources(examples)
    progress = Progress(len(found), True if verbose else None)
    for name, sources in found.items():
        progress.step(name)
        try:
            extra = Fetched() if sources[0].parent == examples else fetch(sources[0].parent)
            build_wasm([*sources, *extra.sources], out / f"{name}.wasm",
                       flags=[f"-I{d}" for d in extra.include_dirs], quiet=True,
                       threads=any("<pthread.h>" in s.read_text() for s in sources))
        except BinaryenMissing as e:  # a threaded example; the others still build
            print(f"vnet: example {name} not built: {e}", file=sys.stderr)
        except (BuildError, ThirdPartyError) as e:
            print(f"vnet: example {name}: {e}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
