"""Address translation at the bridge: source NAT and published ports.

Source NAT (`snat=True`): the kernel namespace has no route back to the
virtual prefixes, yet a guest reaches kernel-side TCP, UDP and ICMP peers,
which see the bridge's address as the client. Without source NAT the same
guest gets no answer (the control).

Publishing (`publish=[...]`): a kernel-side client with no route to the
virtual prefixes reaches guest services through the bridge's address and a
published port, TCP (curl) and UDP (nc -u), IPv4 and IPv6; the guest sees
the real client address; a port that is not published is refused; and a
client that does have a route and connects to the guest service directly
is not disturbed by the publish rule.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.network import SOCK_DGRAM, SOCK_STREAM

from . import scripted
from .conftest import (
    BRIDGE4,
    BRIDGE6,
    GUEST4,
    GUEST6,
    KERNEL4,
    KERNEL6,
    KernelLab,
    wait_until,
)

FAMILIES = pytest.mark.parametrize(
    ("family", "kernel", "bridge", "guest"),
    [(socket.AF_INET, KERNEL4, BRIDGE4, GUEST4), (socket.AF_INET6, KERNEL6, BRIDGE6, GUEST6)],
    ids=["ipv4", "ipv6"])


def _assert_no_route_back(lab: KernelLab, guest: str) -> None:
    proc = lab.run("ip", "route", "get", guest, check=False)
    assert proc.returncode != 0 and b"unreachable" in proc.stderr, (
        f"the kernel side still has a route to {guest}: {proc.stdout!r}")


def test_without_source_nat_a_kernel_peer_with_no_route_back_cannot_answer(
        kernel_lab: Callable[..., KernelLab]) -> None:
    lab = kernel_lab(kernel_routes=False)
    _assert_no_route_back(lab, GUEST4)
    rtts = lab.in_guest(lambda: lab.guest.ping(KERNEL4, count=2, timeout=0.5))
    assert rtts == [None, None]


@FAMILIES
def test_source_nat_lets_guest_reach_kernel_peers_with_no_route_back(
        kernel_lab: Callable[..., KernelLab], family: int, kernel: str, bridge: str,
        guest: str) -> None:
    lab = kernel_lab(snat=True, kernel_routes=False)
    _assert_no_route_back(lab, guest)

    # ICMP echo
    rtts = lab.in_guest(lambda: lab.guest.ping(kernel, count=3, timeout=2.0, interval=0.05))
    assert all(rtt is not None for rtt in rtts), rtts

    # TCP: the kernel's listener sees the bridge's address as its client.
    nc = lab.popen("nc", "-v", "-n", "-N", "-l", kernel, "7100", stdin=subprocess.PIPE,
                   name="nc -l")
    lab.wait_listening(7100)

    def converse() -> bytes:
        with lab.guest.socket(family, SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect((kernel, 7100))
            sock.sendall(b"through the NAT\n")
            reply = b""
            while data := sock.recv(4096):
                reply += data
            return reply

    job = lab.start_guest(converse)
    nc.wait_for(b"through the NAT\n")
    nc.write(b"and back\n", close=True)
    assert job.result() == b"and back\n"
    assert nc.wait() == 0
    assert re.search(rf"Connection received on {re.escape(bridge)} \d+".encode(), nc.stderr), (
        nc.describe())

    # UDP: nc -u -l answers the (translated) sender, the guest gets the answer.
    udp = lab.popen("nc", "-n", "-u", "-l", kernel, "7101", stdin=subprocess.PIPE,
                    name="nc -u -l")
    lab.wait_listening(7101, udp=True)

    def exchange() -> tuple[bytes, tuple[object, ...]]:
        with lab.guest.socket(family, SOCK_DGRAM) as sock:
            sock.settimeout(30)
            sock.sendto(b"udp through the NAT\n", (kernel, 7101))
            return sock.recvfrom(2048)

    job = lab.start_guest(exchange)
    udp.wait_for(b"udp through the NAT\n")
    udp.write(b"udp back\n")
    data, sender = job.result()
    assert (data, sender[:2]) == (b"udp back\n", (kernel, 7101))
    assert lab.bridge is not None and lab.bridge.translator is not None
    assert lab.bridge.translator.unmatched_in == 0


@FAMILIES
def test_published_tcp_port_reaches_guest_http_server(
        kernel_lab: Callable[..., KernelLab], tmp_path: Path, family: int, kernel: str,
        bridge: str, guest: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"published\n")
    lab = kernel_lab(kernel_routes=False, publish=[
        f"8080:{GUEST4}:80", f"[{BRIDGE6}]:8080:[{GUEST6}]:80"])
    _assert_no_route_back(lab, guest)
    ready: list[bool] = []
    peers: list[tuple[object, ...]] = []
    job = lab.start_guest(lambda: scripted.http_server(lab.guest, family, 80, site, 1, ready,
                                                       address=guest, peers=peers))
    wait_until(lambda: bool(ready) or job.done, what="the guest HTTP server")
    host = f"[{bridge}]" if ":" in bridge else bridge
    proc = lab.run("curl", "-sS", "-g", "--noproxy", "*", "--max-time", "20",
                   f"http://{host}:8080/index.html")
    assert proc.stdout == b"published\n"
    assert job.result() == ["GET /index.html 200 10"]
    assert peers[0][0] == kernel  # publishing rewrites the destination only

    refused = lab.run("curl", "-sS", "-g", "--noproxy", "*", "--max-time", "20",
                      f"http://{host}:8081/", check=False)
    assert refused.returncode == 7, refused  # curl: failed to connect (RST from the router)


@FAMILIES
def test_published_udp_port_reaches_guest_echo_server(
        kernel_lab: Callable[..., KernelLab], family: int, kernel: str, bridge: str,
        guest: str) -> None:
    lab = kernel_lab(kernel_routes=False, publish=[
        f"5353:{GUEST4}:53/udp", f"[{BRIDGE6}]:5353:[{GUEST6}]:53/udp"])
    _assert_no_route_back(lab, guest)
    ready: list[bool] = []
    job = lab.start_guest(lambda: scripted.udp_echo_server(lab.guest, family, 53, 2, ready,
                                                           address=guest))
    wait_until(lambda: bool(ready) or job.done, what="the guest UDP server")
    # nc -u connects its socket to the published address: the kernel delivers the
    # echo only if its source was rewritten back to that address and port.
    nc = lab.popen("nc", "-n", "-u", bridge, "5353", stdin=subprocess.PIPE, name="nc -u")
    nc.write(b"query one\n")
    nc.wait_for(b"query one\n")
    nc.write(b"query two\n")
    nc.wait_for(b"query one\nquery two\n")
    seen = job.result()
    assert [data for data, _ in seen] == [b"query one\n", b"query two\n"]
    assert all(sender[0] == kernel for _, sender in seen), seen


@FAMILIES
def test_direct_connection_to_a_published_guest_service_is_not_rewritten(
        kernel_lab: Callable[..., KernelLab], tmp_path: Path, family: int, kernel: str,
        bridge: str, guest: str) -> None:
    """Replies are rewritten to the published address only for flows that came through it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"published\n")
    lab = kernel_lab(publish=[f"8080:{GUEST4}:80", f"[{BRIDGE6}]:8080:[{GUEST6}]:80"])
    ready: list[bool] = []
    job = lab.start_guest(lambda: scripted.http_server(lab.guest, family, 80, site, 2, ready,
                                                       address=guest))
    wait_until(lambda: bool(ready) or job.done, what="the guest HTTP server")
    results = {}
    for label, address, port in (("direct", guest, 80), ("published", bridge, 8080)):
        host = f"[{address}]" if ":" in address else address
        results[label] = lab.run("curl", "-sS", "-g", "--noproxy", "*", "--max-time", "3",
                                 f"http://{host}:{port}/index.html", check=False)
    assert results["published"].stdout == b"published\n", results["published"]
    assert results["direct"].stdout == b"published\n", (
        f"a direct connection to {guest}:80 failed ({results['direct'].stderr!r}): the "
        f"guest's replies were rewritten to come from the published {bridge}:8080, so the "
        "kernel answered them with RST")


def test_source_nat_works_for_a_bridge_given_no_routes(
        kernel_lab: Callable[..., KernelLab]) -> None:
    """TunBridge(snat=True) with no `routes`: the plain way to say "no route back"."""
    lab = kernel_lab(snat=True, bridge_routes=False)
    _assert_no_route_back(lab, GUEST4)
    rtts = lab.in_guest(lambda: lab.guest.ping(KERNEL4, count=2, timeout=1.0))
    assert lab.bridge is not None and lab.bridge.translator is not None
    assert all(rtt is not None for rtt in rtts), (
        f"no echo reply (translated_out={lab.bridge.translator.translated_out}): source NAT "
        "only translates sources inside `routes`, and this bridge was given none")
