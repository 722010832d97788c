"""The NAT examples are documentation like the others: usage first, both builds, one source."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["stun_server", "stun_client", "holepunch"])
def test_example_opens_with_usage_and_both_builds(name: str) -> None:
    text = (EXAMPLES / f"{name}.c").read_text()
    header = text[: text.index("*/")]
    assert header.startswith(f"/* {name}"), "the first line names the program"
    assert f"gcc -O2 -Wall examples/{name}.c -o {name}" in header
    assert f"vnet build examples/{name}.c -o {name}.wasm" in header
    assert "__wasi__" not in text and "VNET" not in text, "one portable source, no vnet #ifdefs"
    assert "RESULT" in header or name == "stun_server", "the line to parse is documented"
