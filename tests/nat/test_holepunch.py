"""The hole-punching example (examples/holepunch.c) between two NATs, in virtual time.

Topology: `alice` (10.0.1.2) behind router `r1` (203.0.113.1 outside) and
`bob` (10.0.2.2) behind `r2` (203.0.113.2), each router NATting its `eth1`
with a preset; the rendezvous server `s` (203.0.113.10) on the shared
segment `wan`. The peers register, learn each other's public endpoint,
punch and say HELLO. The standard matrix: they connect for every pair of
presets except port-restricted cone with symmetric and symmetric with
symmetric (symmetric NATs allocate random ports), where both time out
after registering, having heard nothing from the other. The same seed twice
gives byte-identical captures and output.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP

from firewall.nat_router import PRESETS
from vnet.network import Network
from vnet.testing.pcap import read_pcapng

from .example_support import Program, native_build, native_loopback, result, run_until

SERVER = "203.0.113.10"
ORDER = ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric"]
PAIRS = list(itertools.combinations_with_replacement(ORDER, 2))
FAILS = {("port-restricted-cone", "symmetric"), ("symmetric", "symmetric")}


def punch(alice_nat: str, bob_nat: str, example_wasm: Callable[[str], Path], seed: int = 1,
          capture: bool = False) -> tuple[Program, Program, Program, bytes]:
    net = Network(virtual_time=True, seed=seed)
    wan = net.segment("wan")
    cap = net.capture() if capture else None
    s = net.host("s")
    s.connect(wan, f"{SERVER}/24")
    module = example_wasm("holepunch")
    rendezvous = Program(net, s, module, "rendezvous", "7400")
    peers = []
    for i, (name, other, preset) in enumerate((("alice", "bob", alice_nat),
                                              ("bob", "alice", bob_nat)), 1):
        lan = net.segment(f"lan{i}")
        r = net.router(f"r{i}")
        r.connect(lan, f"10.0.{i}.1/24")
        r.connect(wan, f"203.0.113.{i}/24")
        r.nat("eth1", preset)
        host = net.host(name)
        host.connect(lan, f"10.0.{i}.2/24")
        host.add_route("0.0.0.0/0", f"10.0.{i}.1")
        peers.append(Program(net, host, module, "peer", SERVER, "7400", name, other, "5"))
    run_until(net, *peers)
    data = cap.getvalue() if cap is not None else b""
    net.close()
    return peers[0], peers[1], rendezvous, data


def test_the_matrix_covers_every_pair_of_presets() -> None:
    assert set(ORDER) == set(PRESETS) and len(PAIRS) == 10


@pytest.mark.parametrize(("alice_nat", "bob_nat"), PAIRS, ids=[f"{a}--{b}" for a, b in PAIRS])
def test_hole_punching_matrix(alice_nat: str, bob_nat: str,
                              example_wasm: Callable[[str], Path]) -> None:
    alice, bob, rendezvous, _ = punch(alice_nat, bob_nat, example_wasm)
    # the server introduced both, by their routers' addresses only
    assert "alice registered from 203.0.113.1:" in rendezvous.text
    assert "bob registered from 203.0.113.2:" in rendezvous.text
    assert "10.0." not in rendezvous.text
    connects = (alice_nat, bob_nat) not in FAILS
    for peer, other_public in ((alice, "203.0.113.2"), (bob, "203.0.113.1")):
        assert peer.guest.exit_code == (0 if connects else 1), peer.text
        found = result(peer.text)
        if connects:
            assert "connected" in found, peer.text
            assert found["via"].startswith(f"{other_public}:")
        else:
            assert "timeout" in found, peer.text
            assert (found["registered"], found["heard"]) == ("1", "0")


def test_symmetric_peer_is_answered_where_it_really_is(
        example_wasm: Callable[[str], Path]) -> None:
    """Behind a symmetric NAT bob's punches come from another port than the server saw:
    alice's filter lets them in (restricted cone: by address) and she answers that port;
    her mapping is endpoint-independent, so bob reaches her where the server saw her."""
    alice, bob, rendezvous, _ = punch("restricted-cone", "symmetric", example_wasm)
    registered = rendezvous.text.split("bob registered from ", 1)[1].split(",", 1)[0]
    assert "bob answers from 203.0.113.2:" in alice.text
    assert result(alice.text)["via"].startswith("203.0.113.2:")
    assert result(alice.text)["via"] != registered
    alice_registered = rendezvous.text.split("alice registered from ", 1)[1].split(",", 1)[0]
    assert result(bob.text)["via"] == alice_registered
    assert "not the endpoint the server saw" not in bob.text


def test_rerun_gives_identical_captures(example_wasm: Callable[[str], Path]) -> None:
    first = punch("port-restricted-cone", "restricted-cone", example_wasm, seed=9, capture=True)
    again = punch("port-restricted-cone", "restricted-cone", example_wasm, seed=9, capture=True)
    assert first[3] == again[3] and len(first[3]) > 0
    assert [p.text for p in first[:3]] == [p.text for p in again[:3]]
    packets = read_pcapng(first[3])
    # the server sees only public addresses; alice only her own and public ones
    public = [p for p in packets if IP in p and UDP in p and p.interface == "s/eth0"]
    assert public and all(not a.startswith("10.") for p in public
                          for a in (p[IP].src, p[IP].dst))
    inside = [p for p in packets if IP in p and UDP in p and p.interface == "alice/eth0"]
    assert inside and {p[IP].src for p in inside} <= {"10.0.1.2", SERVER, "203.0.113.2"}
    hellos = [p for p in packets if UDP in p and bytes(p[UDP].payload).startswith(b"HELLO")]
    assert hellos


def test_hole_punching_without_nat_natively(tmp_path: Path) -> None:
    """The gcc build on the loopback of a namespace with only `lo`: no NAT, so each
    peer reaches the other at the endpoint the rendezvous server saw."""
    binary = native_build("holepunch", tmp_path)
    with native_loopback("h") as ns:
        server = subprocess.Popen(ns.command(str(binary), "rendezvous", "7400"),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert server.stdout is not None
            assert b"rendezvous on port 7400" in server.stdout.readline()
            peers = [subprocess.Popen(ns.command(str(binary), "peer", "127.0.0.1", "7400",
                                                 name, other, "10", port),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
                     for name, other, port in (("alice", "bob", "5001"),
                                               ("bob", "alice", "5002"))]
            outputs = [p.communicate(timeout=30)[0] for p in peers]
        finally:
            server.kill()
            server.wait()
    for peer, text, other_port in zip(peers, outputs, ("5002", "5001"), strict=True):
        assert peer.returncode == 0, text
        assert result(text)["via"] == f"127.0.0.1:{other_port}"
        assert "not the endpoint the server saw" not in text


@pytest.mark.parametrize("hairpin", [True, False], ids=["hairpin", "no-hairpin"])
def test_peers_behind_one_nat_meet_through_the_hairpin(
        hairpin: bool, example_wasm: Callable[[str], Path]) -> None:
    """Both peers on one LAN behind one port-restricted cone: the server gives each the
    other's public endpoint, which only a hairpinning NAT turns back inside (RFC 4787
    REQ-9); without it the punches leave for the router's own address and die there."""
    net = Network(virtual_time=True, seed=3)
    lan, wan = net.segment("lan"), net.segment("wan")
    s = net.host("s")
    s.connect(wan, f"{SERVER}/24")
    r = net.router("r")
    r.connect(lan, "10.0.0.1/24")
    r.connect(wan, "203.0.113.1/24")
    nat = r.nat("eth1", "port-restricted-cone", hairpin=hairpin)
    module = example_wasm("holepunch")
    Program(net, s, module, "rendezvous", "7400")
    peers = []
    for i, (name, other) in enumerate((("alice", "bob"), ("bob", "alice")), 2):
        host = net.host(name)
        host.connect(lan, f"10.0.0.{i}/24")
        host.add_route("0.0.0.0/0", "10.0.0.1")
        peers.append(Program(net, host, module, "peer", SERVER, "7400", name, other, "3"))
    run_until(net, *peers)
    for peer in peers:
        found = result(peer.text)
        assert ("connected" in found) == hairpin, peer.text
        if hairpin:
            assert found["via"].startswith("203.0.113.1:")  # the other's public endpoint
    assert (nat.counters["nat.hairpin"] > 0) == hairpin
    net.close()
