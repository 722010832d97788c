"""Topology files: valid ones load; every kind of mistake names file, line and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.sim.topology import TopologyError, load

GOOD = """\
[sim]
virtual_time = true
seed = 3
duration = "10s"
clients = ["b/tick"]

[segments.lan]
latency = "2ms"
loss = 0.01

[hosts.a]
[[hosts.a.nics]]
segment = "lan"
addresses = ["10.0.0.1/24", "fd00::1/64"]

[hosts.b]
routes = [{ to = "0.0.0.0/0", via = "10.0.0.1" }]
[[hosts.b.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
mtu = 9000
[[hosts.b.guests]]
name = "tick"
module = "MODULE"
args = ["x", "3"]
env = { A = "1" }
start = "250ms"
"""


@pytest.fixture()
def module(tmp_path: Path) -> Path:
    wasm = tmp_path / "t.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0")
    return wasm


def write(tmp_path: Path, text: str, module: Path) -> Path:
    path = tmp_path / "topo.toml"
    path.write_text(text.replace("MODULE", str(module)))
    return path


def test_a_good_topology_loads(tmp_path: Path, module: Path) -> None:
    topo = load(write(tmp_path, GOOD, module))
    assert topo.virtual_time and topo.seed == 3 and topo.duration_ns == 10_000_000_000
    assert topo.segments["lan"].latency_ns == 2_000_000 and topo.segments["lan"].loss == 0.01
    assert [n.addresses for n in topo.hosts["a"].nics] == [["10.0.0.1/24", "fd00::1/64"]]
    b = topo.hosts["b"]
    assert b.nics[0].mtu == 9000 and b.routes == [("0.0.0.0/0", "10.0.0.1", None)]
    guest = b.guests[0]
    assert (guest.name, guest.args, guest.env, guest.start_ns) == (
        "tick", ["x", "3"], [("A", "1")], 250_000_000)
    assert topo.clients == ["b/tick"]


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    seen = 0
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(needle)


@pytest.mark.parametrize("mutate,needle,occurrence,reason", [
    (lambda t: t.replace('loss = 0.01', 'los = 0.01'), "los = 0.01", 1, "unknown key 'los'"),
    (lambda t: t.replace('"10.0.0.2/24"', '"10.0.0.300/24"'), "10.0.0.300", 1,
     "bad address '10.0.0.300/24'"),
    (lambda t: t.replace('"10.0.0.2/24"', '"10.0.0.1/24"'), 'addresses = ["10.0.0.1/24"]', 1,
     "address 10.0.0.1 is used twice"),
    (lambda t: t.replace('"10.0.0.2/24"', '"10.0.0.2"'), '"10.0.0.2"', 1, "needs a prefix"),
    (lambda t: t.replace('module = "MODULE"', 'module = "missing.wasm"'), "missing.wasm", 1,
     "guest module missing.wasm not found"),
    (lambda t: t.replace('segment = "lan"\naddresses = ["10.0.0.2/24"]',
                         'segment = "wan"\naddresses = ["10.0.0.2/24"]'), 'segment = "wan"', 1,
     "segment 'wan' is not defined"),
    (lambda t: t.replace('clients = ["b/tick"]', 'clients = ["b/nope"]'), "clients", 1,
     "client 'b/nope' is not a guest"),
    (lambda t: t.replace('latency = "2ms"', 'latency = "fast"'), "latency", 1,
     "bad duration 'fast'"),
    (lambda t: t.replace('loss = 0.01', 'loss = 1.5'), "loss = 1.5", 1, "probability"),
    (lambda t: t.replace("mtu = 9000", "mtu = 12"), "mtu = 12", 1, "mtu must be"),
    (lambda t: t.replace('seed = 3', 'seed = "three"'), "seed", 1, "seed must be a int"),
    (lambda t: t.replace('[segments.lan]', '[segments.lan\n'), "[segments.lan", 1,
     "TOML syntax error"),
])
def test_mistakes_name_file_line_and_reason(tmp_path: Path, module: Path,
                                            mutate: Callable[[str], str], needle: str,
                                            occurrence: int, reason: str) -> None:
    text = mutate(GOOD).replace("MODULE", str(module))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TopologyError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    assert reason in message, message
    expected_line = _line_of(text, needle, occurrence)
    assert caught.value.line is not None and abs(caught.value.line - expected_line) <= 1, (
        message, expected_line)


def test_missing_file_and_empty_topology(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="no such file"):
        load(tmp_path / "nope.toml")
    empty = tmp_path / "empty.toml"
    empty.write_text("[sim]\nseed = 1\n")
    with pytest.raises(TopologyError, match="no hosts"):
        load(empty)
