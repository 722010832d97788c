"""The examples are documentation: each says what it is and how to build and run it."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COVERED = ["tcp_echo_server", "tcp_echo_client", "udp_echo", "chat_server", "chat_client",
           "lobby", "http_server", "udp_rtt", "bulk", "ipaddr", "stun_server", "stun_client",
           "holepunch", "registration"]


@pytest.mark.parametrize("name", COVERED)
def test_example_opens_with_usage_and_both_builds(name: str) -> None:
    text = (EXAMPLES / f"{name}.c").read_text()
    header = text[: text.index("*/")]
    assert header.startswith(f"/* {name}"), "the first line names the program and its usage"
    assert f"gcc -O2 -Wall examples/{name}.c -o {name}" in header
    assert f"vnet build examples/{name}.c -o {name}.wasm" in header
    assert "__wasi__" not in text and "VNET" not in text, "one portable source, no vnet #ifdefs"


def test_every_covered_example_is_in_the_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for name in COVERED:
        assert f"`{name}.c`" in readme
