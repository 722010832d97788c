"""A VXLAN port (RFC 7348): one L2 segment shared by vnet processes and Linux over UDP.

    vnet process A                       underlay (UDP 4789)         machine B
    segment "lan" ── VxlanPort ── UDP socket ─── IP ───  UDP 4789 ── Linux vxlan0 (VNI 42)
      NICs ...        VNI 42      local:4789                          or another vnet's
                                                                      VxlanPort

A `VxlanPort` attaches to a `Segment` like a NIC (``segment.attach(port)``):
every frame the segment floods or forwards to it is encapsulated -- an
8-byte VXLAN header (flags 0x08: "VNI valid", the 24-bit VNI) in one UDP
datagram -- and sent to the remote VTEP behind which its destination MAC was
learned, or, for broadcast, multicast and unknown unicast (BUM) traffic, to
every remote: the "head-end replication" Linux's vxlan does with the all-zeros
FDB entries ``bridge fdb append 00:00:00:00:00:00 dst REMOTE``. A reader
thread drains every datagram ready on the socket and delivers the
decapsulated frames into the segment inside one network turn
(``with sched.lock, sched.atomic():``), learning each inner source MAC as
being behind the remote that sent it.

Receive checks: a datagram from an address that is not one of the configured
remotes is dropped (``drop_unknown_remote``) -- the remotes are the trust
list, there is no learning of new VTEPs; shorter than the VXLAN header plus
an Ethernet header (``drop_runt``); without the I flag (``drop_no_vni``);
with another VNI (``drop_wrong_vni``). Reserved bits are ignored on receipt,
as RFC 7348 section 5 says. Nothing is ever sent to an address that was not
given explicitly as a remote: there is no default remote and no multicast
group; `VxlanError` refuses a configuration without remotes, with a
multicast, unspecified or broadcast remote, or with a remote of another
address family than ``local``.

MTU: encapsulation adds 50 bytes over IPv4 (outer IPv4 20 + UDP 8 + VXLAN 8 +
inner Ethernet 14), 70 over IPv6. With a 1500-byte underlay, the NICs on the
segment (and a Linux vxlan device, whose default is exactly this) use MTU
1450 (1430 over an IPv6 underlay); or give the underlay MTU 1550 and keep
1500 inside. A frame that does not fit is still sent (the kernel fragments
the outer datagram), but every end of the segment must use the same MTU:
each stack sizes its TCP segments and answers by its own.

Super-frames: a frame handed to `deliver` that is not ``bytes`` (a
`stack.wire.gso.GsoFrame`) is materialised and each real wire frame is sent
in its own datagram -- only real frames cross the wire.

The UDP source port is the bound port (4789 by default), not a per-flow
hash as RFC 7348 recommends for ECMP entropy; receivers, Linux included,
accept any source port.

Real time only (the kernel does not run on virtual time). ``netns``: the
name of a network namespace (``ip netns``) to open the socket in -- how the
tests keep the underlay inside namespaces they create.

Touches: one UDP socket (created in ``netns`` through setns(2) on the
opening thread, which then returns to its own namespace), a reader thread,
the segment port it attaches, capture taps and the scheduler's lock.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import select
import socket
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from vnet.link.capture import Capture, CaptureTap, Direction

if TYPE_CHECKING:
    from vnet.link.segment import Segment, SegmentPort
    from vnet.scheduler import Scheduler

__all__ = ["VXLAN_HEADER_LEN", "VXLAN_PORT", "VxlanCounters", "VxlanError", "VxlanPort",
           "decapsulate", "encapsulate", "overhead"]

#: The IANA port for VXLAN (RFC 7348 section 5).
VXLAN_PORT = 4789
VXLAN_HEADER_LEN = 8
#: The I flag: the VNI field is valid.
FLAG_VNI = 0x08
MAX_VNI = (1 << 24) - 1
ETHERNET_HEADER_LEN = 14
_CLONE_NEWNET = 0x40000000
_HEADER = struct.Struct("!BxxxI")
_BATCH = 256  # most datagrams moved into the segment in one network turn
#: A learned inner MAC is forgotten after this long without a frame from it (Linux's default).
DEFAULT_AGEING_NS = 300 * 1_000_000_000
DEFAULT_MAX_MACS = 8192


class VxlanError(Exception):
    """The VXLAN port cannot be set up as asked; the message says why."""


def overhead(ipv6: bool = False) -> int:
    """Bytes encapsulation adds to a NIC's MTU-sized IP packet (50 over IPv4, 70 over IPv6)."""
    return (40 if ipv6 else 20) + 8 + VXLAN_HEADER_LEN + ETHERNET_HEADER_LEN


def encapsulate(vni: int, frame: bytes) -> bytes:
    """The UDP payload carrying ``frame`` on ``vni``."""
    return _HEADER.pack(FLAG_VNI, vni << 8) + frame


def decapsulate(datagram: bytes) -> tuple[int, bytes] | str:
    """(vni, inner frame), or the drop reason: runt, no_vni."""
    if len(datagram) < VXLAN_HEADER_LEN + ETHERNET_HEADER_LEN:
        return "runt"
    flags, vni_field = _HEADER.unpack_from(datagram)
    if not flags & FLAG_VNI:
        return "no_vni"
    return vni_field >> 8, datagram[VXLAN_HEADER_LEN:]


@dataclass(slots=True)
class VxlanCounters:
    """Datagrams the port sent and received, and what it dropped and why."""

    tx_frames: int = 0  # inner frames sent (each to one or more remotes)
    tx_datagrams: int = 0
    tx_bytes: int = 0  # UDP payload bytes
    tx_errors: int = 0  # the kernel refused a sendto (no route, buffer full)
    tx_flooded: int = 0  # frames sent to every remote (BUM or unknown unicast)
    tx_super_frames: int = 0  # GsoFrames the segment handed over, sent as their wire frames
    rx_datagrams: int = 0
    rx_bytes: int = 0
    rx_frames: int = 0  # delivered into the segment
    drop_unknown_remote: int = 0
    drop_runt: int = 0
    drop_no_vni: int = 0
    drop_wrong_vni: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@contextmanager
def _in_namespace(netns: str | None) -> Iterator[None]:
    """Run the block with this thread in network namespace ``netns`` (None: stay)."""
    if netns is None:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    except OSError as e:
        raise VxlanError(f"no network namespace {netns!r}: {e.strerror}") from None
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            raise VxlanError(f"cannot enter network namespace {netns!r}: "
                             f"{os.strerror(ctypes.get_errno())}")
        try:
            yield
        finally:
            if libc.setns(home, _CLONE_NEWNET) != 0:  # pragma: no cover - would be fatal
                raise OSError(ctypes.get_errno(), "cannot return to the home network namespace")
    finally:
        os.close(target)
        os.close(home)


def _address(text: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise VxlanError(f"{what} {text!r} is not an IP address") from None


class VxlanPort:
    """A VXLAN tunnel endpoint attached to one segment: ``VxlanPort(...).open()``."""

    def __init__(self, scheduler: Scheduler, segment: Segment, *, vni: int, local: str,
                 remotes: Iterable[str], port: int = VXLAN_PORT, netns: str | None = None,
                 name: str | None = None, ageing_ns: int = DEFAULT_AGEING_NS,
                 max_macs: int = DEFAULT_MAX_MACS) -> None:
        if isinstance(vni, bool) or not isinstance(vni, int) or not 0 <= vni <= MAX_VNI:
            raise VxlanError(f"VNI must be an integer 0..{MAX_VNI}, not {vni!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise VxlanError(f"UDP port must be 1..65535, not {port!r}")
        local_ip = _address(local, "local address")
        if local_ip.is_multicast or local_ip.is_unspecified:
            raise VxlanError(f"local address {local} must be one unicast address of this "
                             "machine (not unspecified or multicast)")
        remote_list = list(remotes)
        if not remote_list:
            raise VxlanError("a VXLAN port needs at least one remote given explicitly "
                             "(no default remote, no multicast group)")
        self.remotes: list[str] = []
        for text in remote_list:
            remote = _address(text, "remote")
            if remote.version != local_ip.version:
                raise VxlanError(f"remote {text} is not of the same address family as "
                                 f"local {local}")
            if remote.is_multicast or remote.is_unspecified or str(remote) == "255.255.255.255":
                raise VxlanError(f"remote {text} must be one unicast address (multicast "
                                 "groups and broadcast are refused)")
            if remote == local_ip:
                raise VxlanError(f"remote {text} is the local address")
            if str(remote) not in self.remotes:
                self.remotes.append(str(remote))
        self.scheduler = scheduler
        self.segment = segment
        self.vni = vni
        self.local = str(local_ip)
        self.udp_port = port
        self.netns = netns
        self.family = socket.AF_INET6 if local_ip.version == 6 else socket.AF_INET
        self.name = name or f"vxlan{vni}"
        self.ageing_ns = ageing_ns
        self.max_macs = max_macs
        self.counters = VxlanCounters()
        self.seg_port: SegmentPort | None = None
        #: Learned inner MAC -> (remote address, when last seen).
        self._fdb: dict[bytes, tuple[str, int]] = {}
        self._remote_set = frozenset(self.remotes)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._taps: list[CaptureTap] = []
        self._header = _HEADER.pack(FLAG_VNI, vni << 8)

    def __repr__(self) -> str:
        return (f"<VxlanPort {self.name} vni={self.vni} {self.local}:{self.udp_port} "
                f"-> {self.remotes}>")

    # --- lifetime -------------------------------------------------------------
    def open(self) -> VxlanPort:
        """Bind the UDP socket, attach to the segment and start the reader thread."""
        if self.scheduler.virtual:
            raise VxlanError("a VXLAN port runs in real time only (not --virtual-time)")
        with _in_namespace(self.netns):
            sock = socket.socket(self.family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                sock.bind((self.local, self.udp_port))
            except OSError as e:
                sock.close()
                where = f" in namespace {self.netns}" if self.netns else ""
                raise VxlanError(f"cannot bind VXLAN socket to {self.local} port "
                                 f"{self.udp_port}{where}: {e.strerror}") from None
        sock.setblocking(False)
        self._sock = sock
        sched = self.scheduler
        with sched.lock:
            self.seg_port = self.segment.attach(self, name=self.name)
        self._thread = threading.Thread(target=self._read_loop, name=f"vxlan:{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.seg_port is not None:
            with self.scheduler.lock:
                self.seg_port.detach()
            self.seg_port = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> VxlanPort:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def capture(self, capture: Capture) -> CaptureTap:
        """Record the inner frames this port sends (outbound) and receives (inbound)."""
        tap = capture.interface(f"{self.segment.name}/{self.name}",
                                clock=self.scheduler.realtime_ns)
        if tap not in self._taps:
            self._taps.append(tap)
        return tap

    def fdb(self) -> dict[bytes, str]:
        """Learned inner MAC -> remote address (aged-out entries excluded)."""
        now = self.scheduler.monotonic_ns()
        return {mac: remote for mac, (remote, seen) in self._fdb.items()
                if now - seen <= self.ageing_ns}

    # --- segment -> remotes (network lock held) ----------------------------------
    def deliver(self, frame: Any) -> None:
        """The segment hands the port a frame: encapsulate and send it."""
        if type(frame) is bytes:
            self._send_frame(frame)
            return
        materialise = getattr(frame, "materialise", None)
        if materialise is not None:  # a GsoFrame: each real wire frame on its own
            self.counters.tx_super_frames += 1
            for wire_frame in materialise():
                self._send_frame(wire_frame)
        else:
            self._send_frame(bytes(frame))

    def _send_frame(self, frame: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        counters = self.counters
        counters.tx_frames += 1
        for tap in self._taps:
            tap.record(frame, Direction.OUTBOUND)
        targets = self.remotes
        if not frame[0] & 1:
            entry = self._fdb.get(frame[0:6])
            if entry is not None:
                if self.scheduler.monotonic_ns() - entry[1] <= self.ageing_ns:
                    targets = [entry[0]]
                else:
                    del self._fdb[frame[0:6]]
        if len(targets) > 1 or targets is self.remotes:
            counters.tx_flooded += 1
        datagram = self._header + frame
        port = self.udp_port
        for remote in targets:
            try:
                sock.sendto(datagram, (remote, port))
            except OSError:
                counters.tx_errors += 1
                continue
            counters.tx_datagrams += 1
            counters.tx_bytes += len(datagram)

    # --- remotes -> segment ---------------------------------------------------------
    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        sched = self.scheduler
        while not self._stop.is_set():
            try:
                if not poller.poll(100):
                    continue
            except OSError:
                return
            batch: list[tuple[bytes, str]] = []
            while len(batch) < _BATCH:
                try:
                    datagram, address = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                        continue  # an ICMP error for an earlier send: nothing to deliver
                    return
                batch.append((datagram, address[0]))
            if not batch:
                continue
            with sched.lock, sched.atomic():
                for datagram, source in batch:
                    self._receive(datagram, source)
            sched.notify()

    def _receive(self, datagram: bytes, source: str) -> None:
        """One datagram from the underlay (network lock held)."""
        counters = self.counters
        counters.rx_datagrams += 1
        counters.rx_bytes += len(datagram)
        if source.startswith("::ffff:") or "%" in source:
            source = str(ipaddress.ip_address(source.split("%", 1)[0]))
        if source not in self._remote_set:
            counters.drop_unknown_remote += 1
            return
        result = decapsulate(datagram)
        if isinstance(result, str):
            if result == "runt":
                counters.drop_runt += 1
            else:
                counters.drop_no_vni += 1
            return
        vni, frame = result
        if vni != self.vni:
            counters.drop_wrong_vni += 1
            return
        seg_port = self.seg_port
        if seg_port is None:
            return
        if not frame[6] & 1:
            self._learn(frame[6:12], source)
        counters.rx_frames += 1
        for tap in self._taps:
            tap.record(frame, Direction.INBOUND)
        seg_port.send(frame)

    def _learn(self, mac: bytes, remote: str) -> None:
        fdb = self._fdb
        now = self.scheduler.monotonic_ns()
        if mac not in fdb and len(fdb) >= self.max_macs:
            for old in [m for m, (_, seen) in fdb.items() if now - seen > self.ageing_ns]:
                del fdb[old]
            if len(fdb) >= self.max_macs:
                return  # table full: frames to it are flooded to every remote
        fdb[mac] = (remote, now)
