"""Shared pieces of the capture tests: a routed topology of example guests, tshark, vnet.

`routed_topology(directory, example_wasm, ...)` writes a topology file: host
``web`` on segment ``lan`` fetches a page from host ``server`` on segment
``dmz`` through the router ``gw`` (HTTP over IPv6, the examples http_get and
http_server), with a page of ``page_bytes`` so that TCP sends many segments.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.testing.netns import clean_env

TOPOLOGY = """\
[sim]
virtual_time = {virtual}
seed = 3
duration = "{duration}"
clients = ["web/get"]

[segments.lan]
latency = "1ms"

[segments.dmz]
latency = "2ms"

[hosts.web]
routes = [{{ to = "0.0.0.0/0", via = "10.0.0.1" }}, {{ to = "::/0", via = "fd00::1" }}]
[[hosts.web.nics]]
segment = "lan"
addresses = ["10.0.0.20/24", "fd00::20/64"]
[[hosts.web.guests]]
name = "get"
module = "http_get.wasm"
args = ["server", "8080", "/page.txt"]
start = "{start}"

[hosts.gw]
forwarding = true
[[hosts.gw.nics]]
segment = "lan"
addresses = ["10.0.0.1/24", "fd00::1/64"]
[[hosts.gw.nics]]
segment = "dmz"
addresses = ["10.0.1.1/24", "fd00:1::1/64"]

[hosts.server]
routes = [{{ to = "0.0.0.0/0", via = "10.0.1.1" }}, {{ to = "::/0", via = "fd00:1::1" }}]
[[hosts.server.nics]]
segment = "dmz"
addresses = ["10.0.1.10/24", "fd00:1::10/64"]
[[hosts.server.guests]]
name = "http"
module = "http_server.wasm"
args = ["/www", "8080"]
dirs = [".::/www"]
"""


def routed_topology(directory: Path, example_wasm: Callable[[str], Path], *,
                    virtual: bool = True, page_bytes: int = 100_000, start: str = "100ms",
                    duration: str = "30s") -> Path:
    """Write the web -> gw -> server topology and its files into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("http_get", "http_server"):
        shutil.copyfile(example_wasm(name), directory / f"{name}.wasm")
    rng = random.Random(1)
    (directory / "page.txt").write_text("".join(rng.choice("abcdefgh\n")
                                                for _ in range(page_bytes)))
    path = directory / "routed.toml"
    path.write_text(TOPOLOGY.format(virtual="true" if virtual else "false", start=start,
                                    duration=duration))
    return path


def tshark_exe() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: run scripts/install-test-tools (as root)")
    return exe


def tshark(*args: str) -> list[str]:
    """tshark's output lines (it must exit 0)."""
    proc = subprocess.run([tshark_exe(), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()]


#: What tshark's TCP analysis says about trouble that did not happen on a clean link.
TCP_TROUBLE = ("tcp.analysis.retransmission || tcp.analysis.spurious_retransmission || "
               "tcp.analysis.fast_retransmission || tcp.analysis.duplicate_ack || "
               "tcp.analysis.out_of_order || tcp.analysis.lost_segment")


def vnet_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vnet", *args]


def run_vnet(*args: str, cwd: Path | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(vnet_command(*args), capture_output=True, timeout=timeout,
                          cwd=cwd, env=clean_env())
