"""What a program sees when the firewall refuses it: vnet against Linux behind nftables.

Two hosts, a (10.0.0.1, fd00::1) and b (10.0.0.2, fd00::2), with b listening
on TCP port 81. Rules go on b's INPUT hook or a's OUTPUT hook, once in vnet's
syntax on a virtual network and once, translated by hand, as nftables rules
in a pair of network namespaces joined by a veth pair (created and deleted
here; no route out, no link to the host). The same socket operations run on
a (`errno_probe.py`): TCP connects, UDP sends before and after connect, a
ping. Every outcome -- ok, timeout, or the errno -- must be the kernel's.
Needs root, iproute2 and nftables; fails, rather than skips, without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from firewall import HostFirewall, Ruleset
from tests.firewall.errno_probe import probe
from tests.firewall.test_vs_nftables import _run, require_kernel_tools
from vnet.network import Network

PROBE = Path(__file__).with_name("errno_probe.py")

# Long enough for the SYN retransmission at 1 s: Linux reports an ICMPv6 error that
# arrives while connect() still holds the socket only at the next attempt.
CONNECTS = [["connect", "10.0.0.2", 81, 2.5], ["connect", "fd00::2", 81, 2.5]]

# name: (host, vnet rule, nft rule, ops)
CASES: dict[str, tuple[str, str, str, list[list[Any]]]] = {
    "b-input-drop": ("b", "tcp dport 81 drop", "tcp dport 81 drop", CONNECTS),
    "b-input-reject": ("b", "tcp dport 81 reject", "tcp dport 81 reject with tcp reset",
                       CONNECTS),
    "b-input-port-unreachable": ("b", "tcp dport 81 reject with icmpx port-unreachable",
                                 "tcp dport 81 reject with icmpx type port-unreachable",
                                 CONNECTS),
    "b-input-host-unreachable": (
        "b", "tcp dport 81 reject with icmp host-unreachable\n"
             "    tcp dport 81 reject with icmpv6 addr-unreachable",
        "tcp dport 81 reject with icmp type host-unreachable\n"
        "        tcp dport 81 reject with icmpv6 type addr-unreachable", CONNECTS),
    "b-input-admin-prohibited": ("b", "tcp dport 81 reject with icmpx admin-prohibited",
                                 "tcp dport 81 reject with icmpx type admin-prohibited",
                                 CONNECTS),
    "a-output-drop": (
        "a", "tcp dport 81 drop\n    udp dport 9 drop\n    icmp type echo-request drop\n"
             "    icmpv6 type echo-request drop",
        "tcp dport 81 drop\n        udp dport 9 drop\n        icmp type echo-request drop\n"
        "        icmpv6 type echo-request drop",
        [*CONNECTS, ["udp", "10.0.0.2", 9, 2, 2], ["udp", "fd00::2", 9, 2, 2],
         ["ping", "10.0.0.2"]]),
    "a-output-reject": (
        "a", "tcp dport 81 reject\n    udp dport 9 reject",
        "tcp dport 81 reject with tcp reset\n        udp dport 9 reject",
        [*CONNECTS, ["udp", "10.0.0.2", 9, 2, 3], ["udp", "fd00::2", 9, 2, 3]]),
    "a-output-admin-prohibited": (
        "a", "meta l4proto { tcp, udp } reject with icmpx admin-prohibited",
        "meta l4proto { tcp, udp } reject with icmpx type admin-prohibited",
        [*CONNECTS, ["udp", "10.0.0.2", 9, 1, 2], ["udp", "fd00::2", 9, 1, 2]]),
}


def hook_of(host: str) -> str:
    return "input" if host == "b" else "output"


def ours(host: str, rule: str) -> str:
    return f"chain {hook_of(host)} {{\n    {rule}\n}}\n"


def theirs(host: str, rule: str) -> str:
    hook = hook_of(host)
    return (f"table inet t {{\n    chain {hook} {{\n        type filter hook {hook} priority 0;"
            f" policy accept;\n        {rule}\n    }}\n}}\n")


LISTENER = """
import socket, time
s4 = socket.socket(); s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s4.bind(("0.0.0.0", 81)); s4.listen(64)
s6 = socket.socket(socket.AF_INET6); s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind(("::", 81)); s6.listen(64)
print("ready", flush=True)
time.sleep(120)
"""


@contextmanager
def linux_pair(tag: str) -> Iterator[tuple[str, str]]:
    pid = os.getpid()
    a, b = f"vnfw-a-{tag}-{pid}", f"vnfw-b-{tag}-{pid}"
    listener: subprocess.Popen[str] | None = None
    try:
        for name in (a, b):
            _run("ip", "netns", "del", name, check=False)
            _run("ip", "netns", "add", name)
            _run("ip", "netns", "exec", name, "sysctl", "-qw",
                 "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                 "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
                 "net.ipv4.ping_group_range=0 2147483647")
            _run("ip", "-n", name, "link", "set", "lo", "up")
        _run("ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
             "netns", b)
        for name, v4, v6 in ((a, "10.0.0.1/24", "fd00::1/64"), (b, "10.0.0.2/24", "fd00::2/64")):
            _run("ip", "-n", name, "addr", "add", v4, "dev", "eth0")
            _run("ip", "-n", name, "addr", "add", v6, "dev", "eth0", "nodad")
            _run("ip", "-n", name, "link", "set", "eth0", "up")
            links = _run("ip", "-n", name, "-o", "link", "show")
            names = sorted(line.split(":")[1].strip().split("@")[0]
                           for line in links.splitlines())
            assert names == ["eth0", "lo"], names
            for family in ("-4", "-6"):
                routes = _run("ip", "-n", name, family, "route", "show", "table", "all")
                assert not any(r.startswith("default") or " via " in r
                               for r in routes.splitlines()), routes
        # wait until the link carries traffic both ways (a fresh veth loses the first NS)
        warm = ("import socket, time\n"
                "for _ in range(50):\n"
                "    try:\n"
                "        socket.create_connection(('fd00::2', 7), 0.1).close(); break\n"
                "    except ConnectionRefusedError: break\n"
                "    except OSError: time.sleep(0.05)\n")
        _run("ip", "netns", "exec", a, sys.executable, "-I", "-c", warm)
        listener = subprocess.Popen(["ip", "netns", "exec", b, sys.executable, "-I", "-c",
                                     LISTENER], stdout=subprocess.PIPE, text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        yield a, b
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        for name in (a, b):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


Case = tuple[str, str, str, list[list[Any]]]


def on_linux(tag: str, case: Case) -> list[Any]:
    host, _, rule, ops = case
    with linux_pair(tag[:8]) as (a, b):
        _run("ip", "netns", "exec", b if host == "b" else a, "nft", "-f", "-",
             stdin=theirs(host, rule))
        out = _run("ip", "netns", "exec", a, sys.executable, "-I", str(PROBE),
                   stdin=json.dumps(ops))
    result: list[Any] = json.loads(out)
    return result


def on_vnet(case: Case) -> list[Any]:
    host, rule, _, ops = case
    net = Network(virtual_time=True, seed=1)
    lan = net.segment("lan")
    a, b = net.host("a"), net.host("b")
    a.connect(lan, "10.0.0.1/24", "fd00::1/64")
    b.connect(lan, "10.0.0.2/24", "fd00::2/64")
    HostFirewall(Ruleset.parse(ours(host, rule))).attach((b if host == "b" else a).stack)
    listeners = []
    for family, address in ((2, "0.0.0.0"), (10, "::")):
        sock = b.socket(family)
        if family == 10:
            sock.setsockopt(41, 26, 1)  # IPV6_V6ONLY
        sock.bind((address, 81))
        sock.listen(64)
        listeners.append(sock)
    try:
        return probe(ops, a.socket, net.run_for)
    finally:
        for sock in listeners:
            sock.close()
        net.close()


def test_ipv6_ping_dropped_by_output_reports_success_like_linux() -> None:
    """Linux quirk: icmpv6_push_pending_frames ignores the OUTPUT drop (IPv4 reports EPERM)."""
    require_kernel_tools()
    case: Case = ("a", "icmpv6 type echo-request drop", "icmpv6 type echo-request drop",
                  [["ping", "fd00::2"]])
    assert on_linux("ping6", case) == ["ok"]
    assert on_vnet(case) == ["ok"]


@pytest.mark.parametrize("case", list(CASES))
def test_guest_sees_what_linux_behind_the_same_rules_sees(case: str) -> None:
    require_kernel_tools()
    linux = on_linux(case, CASES[case])
    vnet = on_vnet(CASES[case])
    assert vnet == linux, f"{case}: vnet {vnet} but Linux {linux}"
