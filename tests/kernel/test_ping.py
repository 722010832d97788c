"""ICMP echo across the TUN bridge: the kernel's ping(8) against vnet, and vnet's ping.

The kernel pings the guest host through the vnet router (IPv4 and IPv6) and
must get every reply; the guest host's scripted `Host.ping` reaches the
kernel side's address and gets the kernel's replies.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .conftest import GUEST4, GUEST6, KERNEL4, KERNEL6, KernelLab


@pytest.mark.parametrize("target", [GUEST4, GUEST6], ids=["ipv4", "ipv6"])
def test_kernel_ping_reaches_guest_host(kernel_lab: Callable[..., KernelLab],
                                        target: str) -> None:
    lab = kernel_lab()
    family = "-6" if ":" in target else "-4"
    out = lab.run("ping", family, "-n", "-c", "5", "-i", "0.05", "-W", "2", "-s", "1000",
                  target).stdout.decode()
    assert "5 packets transmitted, 5 received" in out, out
    # The reply crossed the vnet router once: TTL/hop limit 64 - 1.
    assert re.findall(r"(?:ttl|hlim)=(\d+)", out) == ["63"] * 5, out


def test_kernel_ping_large_packets_are_fragmented_and_answered(
        kernel_lab: Callable[..., KernelLab]) -> None:
    lab = kernel_lab()
    out = lab.run("ping", "-4", "-n", "-c", "3", "-i", "0.05", "-W", "2", "-s", "4000",
                  "-M", "dont", GUEST4).stdout.decode()
    assert "3 packets transmitted, 3 received" in out, out
    assert "4008 bytes from" in out, out


@pytest.mark.parametrize("target", [KERNEL4, KERNEL6], ids=["ipv4", "ipv6"])
def test_guest_host_pings_kernel_address(kernel_lab: Callable[..., KernelLab],
                                         target: str) -> None:
    lab = kernel_lab()
    rtts = lab.in_guest(lambda: lab.guest.ping(target, count=4, timeout=2.0, interval=0.05))
    assert len(rtts) == 4
    assert all(rtt is not None for rtt in rtts), rtts
