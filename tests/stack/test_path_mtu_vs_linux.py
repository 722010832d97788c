"""UDP through a 1280-byte hop: the host learns the path MTU from ICMP, as Linux does.

Topology, built twice -- three network namespaces joined by veth pairs
(created and deleted here, no route out), and three vnet hosts in virtual
time -- with the same addresses:

    a 10.1.0.1 fd01::1 --1500-- r (router) --1280-- b 10.2.0.{1,3,5} fd02::{1,3}

a sends datagrams to b (tests/stack/path_mtu_probe.py). Linux's behaviour,
which vnet must reproduce send for send and datagram for datagram:

- IPv6: a 4000-byte datagram goes out in 1500-byte fragments; r answers
  Packet Too Big (1280) and the datagram is lost; a learns the path MTU, and
  the next datagrams are fragmented at the source to 1280 and arrive;
- IPv4, 1400 bytes (fits a's link): sent with DF (IP_PMTUDISC_WANT); r
  answers "fragmentation needed" and it is lost; the next ones are
  fragmented at the source, without DF, and arrive;
- IPv4, 4000 bytes: fragmented at the source without DF; r fragments
  further before anything is learned; every one arrives;
- on a connected socket the ICMP error is also reported: the send after it
  fails with EMSGSIZE.

Before the host kept a path MTU cache, every IPv6 datagram after the first
was lost too (a black hole). Needs root and iproute2; fails, rather than
skips, without them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.path_mtu import EXPIRES_NS, PathMtuCache
from tests.stack.linux_reference import require_root
from tests.stack.path_mtu_probe import PORT, receive, send
from vnet.network import Network

PROBE = Path(__file__).with_name("path_mtu_probe.py")

OPS: list[list[Any]] = [
    ["sendto", "fd02::1", 4000, 3],
    ["sendto", "10.2.0.1", 1400, 3],
    ["sendto", "10.2.0.1", 4000, 3],
    ["send", "fd02::3", 4000, 3],
    ["send", "10.2.0.3", 1400, 3],
    ["sendto", "10.2.0.5", 4000, 2],  # nothing learned yet for .5: r fragments
]

# (namespace role, interface, IPv4, IPv6 addresses, MTU)
LINKS = [
    ("a", "a0", ["10.1.0.1/24"], ["fd01::1/64"], 1500),
    ("r", "r0", ["10.1.0.2/24"], ["fd01::2/64"], 1500),
    ("r", "r1", ["10.2.0.2/24"], ["fd02::2/64"], 1280),
    ("b", "b0", ["10.2.0.1/24", "10.2.0.3/24", "10.2.0.5/24"], ["fd02::1/64", "fd02::3/64"],
     1280),
]
ROUTES = [
    ("a", "10.2.0.0/24", "10.1.0.2"), ("a", "fd02::/64", "fd01::2"),
    ("b", "10.1.0.0/24", "10.2.0.2"), ("b", "fd01::/64", "fd02::2"),
]


def _run(*argv: str, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


@pytest.fixture
def linux_path() -> Iterator[dict[str, str]]:
    require_root()
    names = {role: f"vnpmtu-{role}-{os.getpid()}" for role in ("a", "r", "b")}
    try:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            _run("ip", "netns", "add", ns)
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                 "net.ipv6.conf.default.accept_dad=0")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", names["a"], "link", "add", "a0", "type", "veth", "peer", "name", "r0",
             "netns", names["r"])
        _run("ip", "-n", names["r"], "link", "add", "r1", "type", "veth", "peer", "name", "b0",
             "netns", names["b"])
        for role, dev, v4, v6, mtu in LINKS:
            ns = names[role]
            _run("ip", "-n", ns, "link", "set", dev, "mtu", str(mtu))
            for cidr in v4:
                _run("ip", "-n", ns, "addr", "add", cidr, "dev", dev)
            for cidr in v6:
                _run("ip", "-n", ns, "addr", "add", cidr, "dev", dev, "nodad")
            _run("ip", "-n", ns, "link", "set", dev, "up")
        _run("ip", "netns", "exec", names["r"], "sysctl", "-qw", "net.ipv4.ip_forward=1",
             "net.ipv6.conf.all.forwarding=1")
        for role, prefix, gateway in ROUTES:
            _run("ip", "-n", names[role], "route", "add", prefix, "via", gateway)
        for ns in names.values():  # the only routes are between these three
            for family in ("-4", "-6"):
                for line in _run("ip", "-n", ns, family, "route", "show").splitlines():
                    assert not line.startswith("default"), line
        yield names
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def on_linux(names: dict[str, str]) -> tuple[list[Any], list[str], str]:
    # warm the neighbour caches, so the first datagram is not lost to resolution
    _run("ip", "netns", "exec", names["a"], "ping", "-c", "1", "-W", "2", "10.2.0.1")
    _run("ip", "netns", "exec", names["a"], "ping", "-6", "-c", "1", "-W", "2", "fd02::1")
    listener = subprocess.Popen(["ip", "netns", "exec", names["b"], sys.executable, "-I",
                                 str(PROBE), "listen"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline() == "ready\n"
        outcomes = json.loads(_run("ip", "netns", "exec", names["a"], sys.executable, "-I",
                                   str(PROBE), stdin=json.dumps(OPS)))
        arrived, _ = listener.communicate("done\n", timeout=30)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.communicate()
    route = _run("ip", "-n", names["a"], "-6", "route", "get", "fd02::1")
    return outcomes, json.loads(arrived), route


def on_vnet() -> tuple[list[Any], list[str], int]:
    net = Network(virtual_time=True, seed=1)
    try:
        segments = {"a0": net.segment("l1"), "b0": net.segment("l2")}
        segments["r0"], segments["r1"] = segments["a0"], segments["b0"]
        hosts = {"a": net.host("a"), "r": net.router("r"), "b": net.host("b")}
        for role, dev, v4, v6, mtu in LINKS:
            hosts[role].connect(segments[dev], *v4, *v6, ifname=dev, mtu=mtu)
        for role, prefix, gateway in ROUTES:
            hosts[role].add_route(prefix, gateway=gateway)
        s4 = hosts["b"].socket(socket.AF_INET, socket.SOCK_DGRAM)
        s4.bind(("0.0.0.0", PORT))
        s6 = hosts["b"].socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::", PORT))
        hosts["a"].ping("10.2.0.1")
        hosts["a"].ping("fd02::1")
        outcomes = json.loads(json.dumps(send(OPS, hosts["a"].socket, net.run_for)))
        net.run_for(1)
        learned = hosts["a"].stack.path_mtus.mtu(socket.inet_pton(socket.AF_INET6, "fd02::1"),
                                                 1500, net.scheduler.now_ns())
        return outcomes, receive([s4, s6]), learned
    finally:
        net.close()


def test_udp_learns_the_path_mtu_from_icmp_and_later_datagrams_arrive_as_on_linux(
        linux_path: dict[str, str]) -> None:
    linux_outcomes, linux_arrived, route = on_linux(linux_path)
    ours_outcomes, ours_arrived, learned = on_vnet()
    assert "mtu 1280" in route, route
    assert learned == 1280
    assert ours_outcomes == linux_outcomes, f"vnet {ours_outcomes} but Linux {linux_outcomes}"
    assert ours_arrived == linux_arrived, f"vnet {ours_arrived} but Linux {linux_arrived}"
    # the second and third IPv6 datagrams get through (the black hole this guards against)
    assert {"0-1", "0-2"} <= set(linux_arrived)


# --- the cache's rules, without a kernel ---------------------------------------------------
def test_path_mtu_reports_only_lower_and_are_clamped_as_linux_clamps_them() -> None:
    cache = PathMtuCache()
    v4, v6 = bytes((10, 2, 0, 1)), bytes(15) + b"\x01"
    assert cache.learn(v6, 1400, 1500, 0) and cache.mtu(v6, 1500, 0) == 1400
    assert not cache.learn(v6, 1450, 1500, 1)  # never raised by a report
    assert cache.learn(v6, 600, 1500, 2) and cache.mtu(v6, 1500, 2) == 1280  # IPv6 minimum
    assert not cache.learn(v4, 0, 1500, 0)  # a pre-RFC 1191 router says nothing useful
    assert cache.allows_df(v4, 0)
    assert cache.learn(v4, 68, 1500, 0) and cache.mtu(v4, 1500, 0) == 552  # min_pmtu
    assert not cache.allows_df(v4, 0)  # ... and locked: no DF, routers fragment
    assert cache.mtu(v4, 1000, 0) == 552 and cache.mtu(v4, 500, 0) == 500  # link is a cap
    assert cache.mtu(v4, 1500, EXPIRES_NS) == 1500  # forgotten after 600 s


def test_a_flood_of_forged_reports_costs_bounded_memory() -> None:
    cache = PathMtuCache(max_entries=100)
    for i in range(10_000):
        cache.learn(i.to_bytes(4, "big"), 1000, 1500, i)
    assert len(cache) == 100
    assert cache.mtu((9_999).to_bytes(4, "big"), 1500, 10_000) == 1000  # the newest stay
    assert cache.mtu((0).to_bytes(4, "big"), 1500, 10_000) == 1500
