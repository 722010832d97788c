"""A header added where it shadows another is seen by the next build.

vnet keys its object cache on every header a source can see, and passes that key
to zig, whose own cache otherwise checks only the headers a source included
last time: a new `a/value.h` in front of `b/value.h` would leave zig handing
back the object compiled with the old one (this is how the SDK's new
`__header_fcntl.h` went unseen once: modules kept calling wasi-libc's fcntl).
"""

from __future__ import annotations

from pathlib import Path

from vnet.build import build_wasm
from vnet.guest.runtime import run_module

SOURCE = '#include <stdio.h>\n#include "value.h"\nint main(void) { printf("%d\\n", VALUE); }\n'


def test_a_header_added_in_front_of_another_is_used(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "value.h").write_text("#define VALUE 1\n")
    source = tmp_path / "show.c"
    source.write_text(SOURCE)
    flags = [f"-I{first}", f"-I{second}"]
    before = build_wasm([source], tmp_path / "before.wasm", flags=flags, quiet=True)
    assert run_module(before, ["show"]).stdout == b"1\n"
    (first / "value.h").write_text("#define VALUE 2\n")  # now found first
    after = build_wasm([source], tmp_path / "after.wasm", flags=flags, quiet=True)
    assert run_module(after, ["show"]).stdout == b"2\n"
