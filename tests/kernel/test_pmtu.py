"""Path MTU discovery across the bridge: a bottleneck inside the virtual network.

The bridge router r reaches the guest's LAN through a second router over a
1280-byte transit link (`transit_mtu=1280`); both ends have 1500-byte links
and advertise MSS for them. The kernel's full-size segments must come back
as ICMP "fragmentation needed" (IPv4, DF set) or "packet too big" (IPv6)
from our router, the kernel must learn the path MTU from them (its route
cache shows mtu 1280) and the transfer must complete intact; the guest's
full-size segments towards the kernel must get through the same bottleneck.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable

import pytest

from vnet.network import SOCK_STREAM

from .conftest import GUEST4, GUEST6, KERNEL4, KERNEL6, KernelLab, Payload, sha256_file, wait_until

FAMILIES = pytest.mark.parametrize(
    ("family", "kernel", "guest"),
    [(socket.AF_INET, KERNEL4, GUEST4), (socket.AF_INET6, KERNEL6, GUEST6)],
    ids=["ipv4", "ipv6"])
SIZE = 2_000_000


@FAMILIES
def test_kernel_learns_path_mtu_from_our_router_and_both_directions_complete(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload],
        family: int, kernel: str, guest: str) -> None:
    payload = payloads(SIZE)
    lab = kernel_lab(transit_mtu=1280)
    ping = lab.run("ping", "-n", "-c", "1", "-W", "2", guest).stdout.decode()
    assert "ttl=62" in ping, ping  # two vnet routers on the way

    # kernel -> guest: the kernel's 1500-byte packets meet the 1280-byte transit link.
    listening: list[bool] = []

    def receive() -> str:
        with lab.guest.socket(family, SOCK_STREAM) as server:
            server.bind((guest, 6400))
            server.listen(1)
            listening.append(True)
            server.settimeout(30)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(30)
                digest = hashlib.sha256()
                while data := conn.recv(65536):
                    digest.update(data)
                return digest.hexdigest()

    job = lab.start_guest(receive)
    wait_until(lambda: bool(listening) or job.done, what="the guest listener")
    with open(payload.path, "rb") as data:
        sender = lab.popen("nc", "-n", "-N", guest, "6400", stdin=data, name="nc")
    assert job.result(60) == payload.sha256
    assert sender.wait(60) == 0, sender.describe()
    route = lab.run("ip", "route", "get", guest).stdout.decode()
    assert "mtu 1280" in route, f"the kernel did not learn the path MTU: {route}"
    counters = lab.kernel_counters()
    if family == socket.AF_INET:
        assert counters["Icmp.InDestUnreachs"] > 0
    else:
        assert counters["Icmp6InPktTooBigs"] > 0

    # guest -> kernel: the guest's full-size segments meet the same bottleneck.
    out_path = lab.tmp / "pmtu-received.bin"
    with open(out_path, "wb") as out:
        receiver = lab.popen("nc", "-n", "-l", kernel, "6401", stdout=out, name="nc -l")
    lab.wait_listening(6401)

    def send() -> None:
        with lab.guest.socket(family, SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect((kernel, 6401))
            sock.sendall(payload.data)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""

    lab.in_guest(send, timeout_s=60)
    assert receiver.wait(60) == 0, receiver.describe()
    assert sha256_file(out_path) == payload.sha256
