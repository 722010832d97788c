"""Spoofing: a guest tries to put loopback-sourced packets on its LAN, or to own foreign
addresses -- and the addresses that mean "this host".

Every op (tests/hostile/spoofing_support.py) runs on the Linux kernel in a
namespace shaped like the virtual host (tests/stack/linux_reference.py's
`LinuxNamespace`: eth0 with 10.0.0.1/24 and fd00::1/64, no route out) and on
a vnet host with the same addresses, in virtual time; the outcomes (errno
names, the addresses a bind or connect left) must be the kernel's:

- a TCP socket bound to 127/8 (or its IPv4-mapped form) connecting to a LAN
  address fails at once with EINVAL, as do UDP and ping sockets sending
  from there; a socket bound to ::1 may send towards the LAN as on Linux
  (the calls succeed, a TCP connect times out);
- a multicast source set with IP_MULTICAST_IF (an ip_mreqn naming an
  interface and any address) must be the host's own: a foreign one is
  ENETUNREACH, a multicast or broadcast one EINVAL (vnet used to send it);
- a ping socket binds only the wildcard or its own addresses (EADDRNOTAVAIL
  for a foreign, broadcast or multicast IPv4 address; EINVAL for IPv6
  multicast and IPv4-mapped ones), and a port it asks for is its identifier;
- connect() to 0.0.0.0, :: or ::ffff:0.0.0.0 means this host, for TCP, UDP
  and ping sockets (and a ping sent to 0.0.0.0), as on Linux.

The same attempts also come from a C program (tests/hostile/c/spoof_probe.c),
built with gcc and run in the namespace, and built to wasm and run under
`vnet run --virtual-time` with the same addresses (and the default
firewall): the lines it prints must be the same.

The victim is a neighbour on the LAN (10.0.0.2, fd00::2) whose link is
captured: not one frame with a 127/8 or ::1 source may cross it. That is
where vnet deliberately differs from Linux, which does send ::1-sourced
IPv6 packets out of eth0 (every receiver drops them: RFC 4291 2.5.3); vnet
drops them at the source and counts them (`ipv6.drop.loopback_source`).
Needs root and iproute2; fails, rather than skips, without them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.spoofing_support import probe
from tests.kernel.conftest import clean_env, tshark_fields
from tests.stack.linux_reference import LinuxNamespace, require_root
from vnet.network import Network

SUPPORT = Path(__file__).with_name("spoofing_support.py")
GUEST_C = Path(__file__).resolve().parent / "c" / "spoof_probe.c"

LOOPBACK_SOURCES: list[list[Any]] = [
    ["tcp", ["127.0.0.1", 0], ["10.0.0.2", 80]],
    ["tcp", ["127.0.0.5", 0], ["10.0.0.2", 80]],
    ["tcp", ["::ffff:127.0.0.1", 0], ["::ffff:10.0.0.2", 80]],
    ["tcp", ["::1", 0], ["fd00::2", 80]],
    ["udp", ["127.0.0.1", 0], ["10.0.0.2", 80], "sendto"],
    ["udp", ["127.0.0.1", 0], ["10.0.0.2", 80], "connect"],
    ["udp", ["::ffff:127.0.0.1", 0], ["::ffff:10.0.0.2", 80], "sendto"],
    ["udp", ["::1", 0], ["fd00::2", 80], "sendto"],
    ["ping", ["127.0.0.1", 0], ["10.0.0.2", 0]],
    ["ping", ["::1", 0], ["fd00::2", 0]],
    ["ping_connect", ["127.0.0.1", 0], ["10.0.0.2", 0]],
    ["tcp", ["10.0.0.1", 0], ["127.0.0.1", 5555]],  # own address to loopback: fine
    # multicast with a source named by IP_MULTICAST_IF (ip_mreqn with an ifindex)
    ["mcast_if", "10.0.0.9", ["224.0.0.1", 5000]],
    ["mcast_if", "224.0.0.5", ["224.0.0.1", 5000]],
    ["mcast_if", "255.255.255.255", ["224.0.0.1", 5000]],
    ["mcast_if", "127.0.0.1", ["224.0.0.1", 5000]],
    ["mcast_if", "10.0.0.1", ["224.0.0.1", 5000]],
]

PING_BINDS: list[list[Any]] = [
    ["ping_bind", [address, 0]] for address in (
        "10.0.0.9", "10.0.0.1", "127.0.0.1", "0.0.0.0", "255.255.255.255", "10.0.0.255",
        "224.0.0.1", "fd00::9", "fd00::1", "::1", "::", "::ffff:10.0.0.1", "ff02::1")
] + [["ping_bind", ["10.0.0.1", 4077]], ["ping", ["10.0.0.9", 0], ["10.0.0.2", 0]]]

UNSPECIFIED_PEERS: list[list[Any]] = [
    ["tcp", None, ["0.0.0.0", 5555]],
    ["tcp", None, ["::", 5555]],
    ["tcp", None, ["::ffff:0.0.0.0", 5555]],
    ["listen", ["127.0.0.1", 5556]],
    ["listen", ["::1", 5556]],
    ["listen", ["10.0.0.1", 5557]],
    ["tcp", None, ["0.0.0.0", 5556]],
    ["tcp", None, ["::", 5556]],
    ["tcp", ["10.0.0.1", 0], ["0.0.0.0", 5557]],  # to the bound address, as Linux
    ["udp", None, ["0.0.0.0", 5555], "connect"],
    ["udp", None, ["::", 5555], "connect"],
    ["udp", ["::ffff:127.0.0.1", 0], ["::", 5555], "connect"],
    ["ping", None, ["0.0.0.0", 0]],
    ["ping", None, ["::", 0]],
    ["ping_connect", None, ["0.0.0.0", 0]],
    ["ping_connect", None, ["::", 0]],
    ["ping_connect", None, ["10.0.0.2", 0]],
    ["ping_connect", None, ["255.255.255.255", 0]],
]


@pytest.fixture(scope="module")
def linux() -> Any:
    require_root()
    ns = LinuxNamespace(name=f"vnet-spoof-{__import__('os').getpid()}")
    try:
        ns.create()
        ns.exec("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
        yield ns
    finally:
        ns.delete()


def on_linux(ns: LinuxNamespace, ops: list[list[Any]]) -> list[Any]:
    result: list[Any] = json.loads(ns.exec(sys.executable, "-I", str(SUPPORT),
                                           input=json.dumps(ops)))
    return result


def on_vnet(ops: list[list[Any]], pcap: Path) -> tuple[list[Any], dict[str, int]]:
    net = Network(virtual_time=True, seed=1)
    try:
        lan = net.segment("lan")
        host, neighbour = net.host("h"), net.host("victim")
        host.connect(lan, "10.0.0.1/24", "fd00::1/64", ifname="eth0")
        neighbour.connect(lan, "10.0.0.2/24", "fd00::2/64", ifname="eth0")
        capture = net.capture(pcap)
        listener = neighbour.socket()
        listener.bind(("0.0.0.0", 80))
        listener.listen(8)
        outcomes = json.loads(json.dumps(probe(ops, host.socket)))  # tuples as lists
        net.run_for(2)
        capture.close()
        drops = {key: value for key, value in host.stack.counters.items()
                 if "loopback_source" in key}
        return outcomes, drops
    finally:
        net.close()


def _loopback_sourced_frames(pcap: Path) -> list[list[str]]:
    """Frames whose source is not an address of the host that sent them."""
    return tshark_fields(pcap, "ip.src == 127.0.0.0/8 or ipv6.src == ::1 or ip.src == 10.0.0.9"
                         " or ip.src == 224.0.0.0/4 or ip.src == 255.255.255.255",
                         ("frame.interface_name", "_ws.col.Info"))


def test_loopback_sources_never_reach_the_lan_and_fail_as_on_linux(
        linux: LinuxNamespace, tmp_path: Path) -> None:
    theirs = on_linux(linux, LOOPBACK_SOURCES)
    ours, drops = on_vnet(LOOPBACK_SOURCES, tmp_path / "spoof.pcapng")
    assert ours == theirs, f"vnet {ours} but Linux {theirs}"
    assert theirs[:3] == ["EINVAL"] * 3  # the bug this guards against: SYNs from 127.0.0.1
    assert _loopback_sourced_frames(tmp_path / "spoof.pcapng") == []
    # the ::1-sourced TCP SYN (and its retransmission), UDP datagram and echo request
    assert drops.get("ipv6.drop.loopback_source", 0) >= 3, drops


def test_ping_socket_binds_only_its_own_addresses_as_on_linux(
        linux: LinuxNamespace, tmp_path: Path) -> None:
    theirs = on_linux(linux, PING_BINDS)
    ours, _ = on_vnet(PING_BINDS, tmp_path / "bind.pcapng")
    assert ours == theirs, f"vnet {ours} but Linux {theirs}"
    assert theirs[0] == "EADDRNOTAVAIL"


def test_connect_to_the_unspecified_address_means_this_host_as_on_linux(
        linux: LinuxNamespace, tmp_path: Path) -> None:
    theirs = on_linux(linux, UNSPECIFIED_PEERS)
    ours, _ = on_vnet(UNSPECIFIED_PEERS, tmp_path / "any.pcapng")
    assert ours == theirs, f"vnet {ours} but Linux {theirs}"
    assert theirs[:3] == ["ECONNREFUSED"] * 3


GUEST_OPS = [
    "tcp,127.0.0.1,10.0.0.2,80",
    "tcp,::ffff:127.0.0.1,::ffff:10.0.0.2,80",
    "udp,127.0.0.1,10.0.0.2,80",
    "ping,127.0.0.1,10.0.0.2",
    "ping,10.0.0.9,10.0.0.2",
    "ping,fd00::9,fd00::2",
    "ping,ff02::1,fd00::2",
    "ping,10.0.0.1,10.0.0.1",
    "pingc,127.0.0.1,10.0.0.2",
    "pingc,-,0.0.0.0",
    "pingc,-,10.0.0.1",
    "tcp,-,0.0.0.0,5555",
    "tcp,-,::,5555",
    "tcp,10.0.0.1,0.0.0.0,5555",
]


def test_guest_spoofing_attempts_fail_as_they_do_on_linux(
        linux: LinuxNamespace, build_guest: Callable[..., Path], tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.fail("the comparison builds tests/hostile/c/spoof_probe.c with gcc")
    native = tmp_path / "spoof_probe"
    subprocess.run(["gcc", "-O2", "-Wall", str(GUEST_C), "-o", str(native)], check=True)
    theirs = linux.exec(str(native), *GUEST_OPS)
    module = build_guest(GUEST_C)
    proc = subprocess.run(
        [sys.executable, "-m", "vnet", "run", "--virtual-time", "--addr", "10.0.0.1/24",
         "--addr", "fd00::1/64", str(module), *GUEST_OPS],
        capture_output=True, text=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == theirs, f"vnet:\n{proc.stdout}Linux:\n{theirs}"
    assert theirs.splitlines()[:2] == [f"{op}: EINVAL" for op in GUEST_OPS[:2]]
