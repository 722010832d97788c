"""Running the NAT examples (stun_server, stun_client, holepunch) as wasm guests, and natively.

`Program` starts an example guest on a virtual host and keeps its output;
`run_until` runs the network's virtual time until the given guests exit;
`result` reads the `RESULT` line an example prints as `key=value` fields.
`native_loopback` is a throwaway network namespace with only `lo` (through
vnet.testing.netns) and `native_build` a gcc build of an example, for the
same programs on the Linux kernel.

Touches: guests on the networks the tests build; gcc and `ip netns` for the
native side (inside namespaces it creates and deletes).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vnet.guest.runtime import Guest, GuestConfig
from vnet.network import Host, Network
from vnet.testing import netns

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Program:
    """An example guest on a virtual host, its stdout and stderr collected."""

    def __init__(self, net: Network, host: Host, module: Path, *args: str,
                 name: str | None = None) -> None:
        self.out = bytearray()
        label = name or f"{module.stem.split('-')[0]}@{host.name}"
        config = GuestConfig(module=str(module), args=[label, *args], host=host, name=label)
        config.stdout = self.out.extend
        config.stderr = self.out.extend
        self.guest = Guest(net.scheduler, config)
        self.guest.start()

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")

    @property
    def done(self) -> bool:
        return self.guest.done


def run_until(net: Network, *programs: Program, timeout_s: float = 120) -> None:
    """Run virtual time until every program has exited (servers may go on running)."""
    net.scheduler.run(until=lambda: all(p.done for p in programs), timeout_s=timeout_s)
    for p in programs:
        assert p.done, f"still running:\n{p.text}"


def result(text: str) -> dict[str, str]:
    """The fields of the one `RESULT` line in an example's output."""
    lines = [line for line in text.splitlines() if " RESULT " in line]
    assert len(lines) == 1, text
    fields = lines[0].split(" RESULT ", 1)[1].split()
    return {key: value for key, _, value in (f.partition("=") for f in fields)}


def native_build(name: str, out_dir: Path) -> Path:
    """examples/NAME.c built with `gcc -O2 -Wall` (no warnings allowed)."""
    out = out_dir / name
    proc = subprocess.run(["gcc", "-O2", "-Wall", str(EXAMPLES / f"{name}.c"), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"gcc {name}.c:\n{proc.stderr}", pytrace=False)
    return out


@contextmanager
def native_loopback(tag: str) -> Iterator[netns.Namespace]:
    """A network namespace holding only `lo`, checked to have no way out."""
    problem = netns.namespace_problem()
    if problem:
        netns.refuse(f"native example test: {problem}")
    with netns.Namespace(f"vst{tag}{os.getpid()}") as ns:
        ns.check_isolated([], prefixes=())
        yield ns
