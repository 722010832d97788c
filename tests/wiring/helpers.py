"""Shared pieces for the wiring tests: fake endpoints, frame builders, tshark.

Frames for snooping tests are built with scapy (an implementation nobody
here wrote); plain data frames are put together by hand.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.igmp import IGMP, IGMPv3_MQ, IGMPv3_MR, IGMPv3_MR_Group
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLDone,
    ICMPv6MLQuery,
    ICMPv6MLQuery2,
    ICMPv6MLReport,
    ICMPv6MLReport2,
    ICMPv6ND_NS,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, raw
from scapy.utils import PcapNgReader

from vnet.scheduler import Scheduler

BROADCAST = b"\xff" * 6


def mac(n: int) -> bytes:
    """A locally administered unicast MAC: 02:00:00:00:00:nn."""
    return bytes((2, 0, 0, 0, 0, n))


def mac_str(n: int) -> str:
    return mac(n).hex(":")


def frame(dst: bytes, src: bytes, payload: bytes = b"", ethertype: int = 0x88B5) -> bytes:
    """An Ethernet frame (local experimental EtherType by default), padded to 60 bytes."""
    body = dst + src + ethertype.to_bytes(2, "big") + payload
    return body + bytes(max(0, 60 - len(body)))


class Sink:
    """A fake endpoint: remembers every frame delivered and when (scheduler time)."""

    def __init__(self, name: str, scheduler: Scheduler | None = None) -> None:
        self.name = name
        self.scheduler = scheduler
        self.frames: list[bytes] = []
        self.times: list[int] = []

    def deliver(self, frame: bytes) -> None:
        self.frames.append(frame)
        if self.scheduler is not None:
            self.times.append(self.scheduler.monotonic_ns())


# --- IGMP / MLD, built by scapy -------------------------------------------------
def _b(pkt: Packet) -> bytes:
    return raw(pkt)


def igmpv2_report(src: int, group: str) -> bytes:
    return _b(Ether(src=mac_str(src)) / IP(src=f"10.0.0.{src}", dst=group, ttl=1)
              / IGMP(type=0x16, gaddr=group))


def igmpv2_leave(src: int, group: str) -> bytes:
    return _b(Ether(src=mac_str(src)) / IP(src=f"10.0.0.{src}", dst="224.0.0.2", ttl=1)
              / IGMP(type=0x17, gaddr=group))


def igmpv3_report(src: int, *records: tuple[int, str, list[str]]) -> bytes:
    """records: (record type, group, sources)."""
    groups = [IGMPv3_MR_Group(rtype=t, maddr=g, srcaddrs=s) for t, g, s in records]
    return _b(Ether(src=mac_str(src)) / IP(src=f"10.0.0.{src}", dst="224.0.0.22", ttl=1)
              / IGMPv3_MR(records=groups))


def igmpv3_query(src: int, group: str = "0.0.0.0") -> bytes:
    dst = "224.0.0.1" if group == "0.0.0.0" else group
    return _b(Ether(src=mac_str(src)) / IP(src=f"10.0.0.{src}", dst=dst, ttl=1)
              / IGMPv3_MQ(gaddr=group))


def igmpv2_query(src: int) -> bytes:
    return _b(Ether(src=mac_str(src)) / IP(src=f"10.0.0.{src}", dst="224.0.0.1", ttl=1)
              / IGMP(type=0x11, mrcode=100, gaddr="0.0.0.0"))


def udp_v4(src: int, group: str, payload: bytes = b"data") -> bytes:
    return _b(Ether(src=mac_str(src)) / IP(src=f"10.0.0.{src}", dst=group)
              / UDP(sport=5000, dport=5000) / payload)


def _mld(src: int, dst: str, message: Packet) -> bytes:
    return _b(Ether(src=mac_str(src)) / IPv6(src=f"fe80::{src}", dst=dst, hlim=1)
              / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / message)


def mldv2_report(src: int, *records: tuple[int, str, list[str]]) -> bytes:
    recs = [ICMPv6MLDMultAddrRec(rtype=t, dst=g, sources=s) for t, g, s in records]
    return _mld(src, "ff02::16", ICMPv6MLReport2(records=recs))


def mldv1_report(src: int, group: str) -> bytes:
    return _mld(src, group, ICMPv6MLReport(mladdr=group))


def mldv1_done(src: int, group: str) -> bytes:
    return _mld(src, "ff02::2", ICMPv6MLDone(mladdr=group))


def mld_query(src: int, version: int = 2) -> bytes:
    return _mld(src, "ff02::1", ICMPv6MLQuery2() if version == 2 else ICMPv6MLQuery())


def udp_v6(src: int, group: str, payload: bytes = b"data") -> bytes:
    return _b(Ether(src=mac_str(src)) / IPv6(src=f"fe80::{src}", dst=group)
              / UDP(sport=5000, dport=5000) / payload)


def neighbor_solicitation(src: int, target: str) -> bytes:
    """NS for ``target`` to its solicited-node group, as NDP sends it."""
    last3 = bytes.fromhex(target.split(":")[-1].rjust(6, "0"))[-3:]
    group = "ff02::1:ff" + last3[:1].hex() + ":" + last3[1:].hex()
    return _b(Ether(src=mac_str(src)) / IPv6(src=f"fe80::{src}", dst=group, hlim=255)
              / ICMPv6ND_NS(tgt=target))


# --- reading captures back -------------------------------------------------------
def read_pcapng(data: bytes) -> tuple[list[Any], list[Any]]:
    """(packets, interfaces) of a pcapng, as scapy's PcapNgReader sees them."""
    reader = PcapNgReader(io.BytesIO(data))  # type: ignore[arg-type]
    packets = list(reader)
    return packets, list(reader.interfaces)


# --- tshark ---------------------------------------------------------------------
def tshark_fields(path: Path, *fields: str, display_filter: str | None = None) -> list[list[str]]:
    """Run tshark on a capture; one list of field values per packet.

    Fails (not skips) when tshark is missing: scripts/test installs it.
    """
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: run scripts/install-test-tools (as root)")
    cmd = [exe, "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        cmd += ["-e", f]
    if display_filter:
        cmd += ["-Y", display_filter]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]
