"""Per-datagram socket options and recvmsg's control messages, natively and under vnet.

tests/guest/c/sockopt_cmsg.c sets and reads IP_TOS, IP_TTL, IPV6_TCLASS,
IPV6_UNICAST_HOPS, IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IPV6_RECVPKTINFO,
IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS, SO_TIMESTAMP and SO_TIMESTAMPNS, sends
datagrams to itself (loopback, its own address, broadcast, a multicast group
it joined, IPv4 to an AF_INET6 socket) and prints every value and control
message it gets (level, type, data length, decoded data; truncation by a
short control buffer as Linux's put_cmsg does it). The same source runs

- compiled with gcc in a throwaway network namespace (`lo`, and a veth
  ``eth0`` index 2 with 10.0.0.1/24 broadcast 10.0.0.255 and fd00::1/64);
- built with `vnet build` on the virtual host ``alpha`` with the same
  addresses, in virtual and in real time;

and both must print the same lines. Under vnet it also sends a datagram with
IP_TOS 0xb9 to ``bravo`` and one with IPV6_TCLASS 0x2a, and opens a TCP
connection each way with 0xb9 / 0x2b: the capture shows the bits in the IPv4
and IPv6 headers (without the ECN bits on TCP, as Linux). SO_TIMESTAMP is checked to lie between the
program's own gettimeofday before and after the call (virtual time when
virtual).

Touches: ``ip`` (a namespace named vncmsg-PID, through vnet.testing.netns), gcc.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6

from vnet.build import build_wasm
from vnet.guest.runtime import Guest, GuestConfig
from vnet.network import Network
from vnet.testing.netns import Namespace, require_root
from vnet.testing.pcap import packets_from

SOURCE = Path(__file__).resolve().parent / "c" / "sockopt_cmsg.c"
ARGS = ["v4=10.0.0.1", "v6=fd00::1", "bcast=10.0.0.255"]


def observed(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("val ", "cmsg "))]


def _check_clean(stdout: str, stderr: str, code: int) -> None:
    assert code == 0 and "FAIL" not in stdout and "WRONG" not in stdout, (
        f"exit {code}\n{stdout}\n{stderr}")
    assert len(observed(stdout)) >= 80, stdout


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_root("the native socket-option test creates a network namespace")
    binary = tmp_path_factory.mktemp("native") / "sockopt_cmsg"
    proc = subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", str(SOURCE), "-o",
                           str(binary)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"gcc sockopt_cmsg.c:\n{proc.stderr}", pytrace=False)
    with Namespace(f"vncmsg-{os.getpid()}",
                   sysctls=("net.ipv6.conf.all.accept_dad=0",
                            "net.ipv6.conf.default.accept_dad=0")) as ns:
        ns.add_veth("eth0", "eth1", index=2, peer_index=3)
        ns.ip("addr", "add", "10.0.0.1/24", "brd", "+", "dev", "eth0")
        ns.add_address("eth0", "fd00::1/64")
        ns.set_up("eth0", "eth1")
        ns.check_isolated(["eth0", "eth1"], prefixes=["10.0.0.0/24", "fd00::/64"])
        run = ns.run(str(binary), *ARGS, check=False, timeout=120)
    _check_clean(run.stdout, run.stderr, run.returncode)
    yield run.stdout


@pytest.fixture(scope="module")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wasm([SOURCE], tmp_path_factory.mktemp("wasm") / "sockopt_cmsg.wasm",
                      flags=["-Wextra", "-Werror"], quiet=True)


def run_on_vnet(wasm: Path, virtual_time: bool, seed: int = 1) -> tuple[str, bytes]:
    """sockopt_cmsg on alpha (peer bravo on the same LAN): its stdout and the capture."""
    net = Network(virtual_time=virtual_time, seed=seed)
    lan = net.segment("lan")
    alpha = net.host("alpha")
    alpha.connect(lan, "10.0.0.1/24", "fd00::1/64")
    bravo = net.host("bravo")
    bravo.connect(lan, "10.0.0.2/24", "fd00::2/64")
    capture = net.capture()
    out, err = bytearray(), bytearray()
    guest = Guest(net.scheduler, GuestConfig(
        module=str(wasm), args=["sockopt_cmsg", *ARGS, "peer4=10.0.0.2", "peer6=fd00::2",
                                    "print_times=1"],
        host=alpha, stdout=out.extend, stderr=err.extend, name="sockopt_cmsg@alpha"))
    guest.start()
    finished = net.scheduler.run(until=lambda: guest.done, timeout_s=120)
    stdout = out.decode(errors="replace")
    assert finished, stdout
    net.scheduler.run_for(500_000_000)  # ARP/NDP for bravo, then the two datagrams
    _check_clean(stdout, err.decode(errors="replace") + str(guest.trap or ""),
                 guest.exit_code if guest.exit_code is not None else -1)
    return stdout, capture.getvalue()


@pytest.fixture(scope="module")
def vnet_virtual(wasm: Path) -> tuple[str, bytes]:
    return run_on_vnet(wasm, virtual_time=True)


def test_values_and_control_messages_match_linux(native: str,
                                                 vnet_virtual: tuple[str, bytes]) -> None:
    assert observed(vnet_virtual[0]) == observed(native)


def test_the_same_in_real_time(native: str, wasm: Path) -> None:
    assert observed(run_on_vnet(wasm, virtual_time=False)[0]) == observed(native)


def test_tos_and_traffic_class_are_in_the_sent_headers(
        vnet_virtual: tuple[str, bytes]) -> None:
    sent = [p.packet for p in packets_from(vnet_virtual[1])
            if p.packet.haslayer(UDP) and p.packet[UDP].dport == 9]
    v4 = [p[IP] for p in sent if p.haslayer(IP)]
    v6 = [p[IPv6] for p in sent if p.haslayer(IPv6)]
    assert [ip.tos for ip in v4] and all(ip.tos == 0xb9 for ip in v4), sent
    assert [ip.tc for ip in v6] and all(ip.tc == 0x2a for ip in v6), sent
    assert bytes(v4[0][UDP].payload) == b"tos" and bytes(v6[0][UDP].payload) == b"tclass"


def test_tcp_syn_carries_tos_without_the_ecn_bits(vnet_virtual: tuple[str, bytes]) -> None:
    """IP_TOS 0xb9 / IPV6_TCLASS 0x2b on a TCP socket: the SYN says 0xb8 / 0x28, as Linux
    keeps a stream's ECN field TCP's own (getsockopt reports the same, compared above)."""
    syns = [p.packet for p in packets_from(vnet_virtual[1])
            if p.packet.haslayer(TCP) and p.packet[TCP].dport == 9 and p.packet[TCP].flags.S]
    v4 = [p[IP].tos for p in syns if p.haslayer(IP)]
    v6 = [p[IPv6].tc for p in syns if p.haslayer(IPv6)]
    assert v4 and set(v4) == {0xb8}, syns
    assert v6 and set(v6) == {0x28}, syns


def test_timestamps_are_virtual_time(wasm: Path, vnet_virtual: tuple[str, bytes]) -> None:
    """SO_TIMESTAMP(NS) is the virtual wall clock (which starts at 2000-01-01 00:00:00
    UTC); the same seed gives the same values to the nanosecond, and the run is
    otherwise byte-identical, capture included."""
    times = [float(line.split()[2]) for line in vnet_virtual[0].splitlines()
             if line.startswith("timestamp ")]
    assert len(times) == 6, vnet_virtual[0]
    assert all(946_684_800 <= t < 946_684_800 + 60 for t in times), times
    again = run_on_vnet(wasm, virtual_time=True)
    assert again == vnet_virtual
