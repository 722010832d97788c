"""A virtual Ethernet NIC: where a host's stack meets a segment or a cable.

What this module may touch: its segment port (``port.send``), the stack's
receive callback, capture taps and the scheduler (only to name its clock for
capture timestamps, to build a cable, and to count the frames it transmits in
``scheduler.frames_transmitted``, which the guest ABI charges to the host call
that sent them). It reads the destination MAC and
the VLAN TPIDs of a frame, nothing more.

Theory of operation
-------------------
Transmit (the stack calls ``nic.transmit(frame)``): with the link down the
frame is dropped (``tx_dropped_link_down``); shorter than an Ethernet header
(14 bytes) it is dropped (``tx_dropped_runt``); longer than ``mtu + 14``
bytes (+4 per 802.1Q/802.1ad tag, at most two) it is dropped
(``tx_dropped_oversize``); with no segment attached it is dropped
(``tx_dropped_unattached``). Otherwise it is counted, recorded by every
capture tap as outbound, and handed to the segment port.

Receive (the segment calls ``nic.deliver(frame)``): with the link down the
frame is dropped (``rx_dropped_link_down``); runts and oversize frames as
above are dropped (``rx_dropped_runt``, ``rx_dropped_oversize``); unless
``promiscuous``, a unicast frame for another MAC (a switch floods unknown
unicast) is filtered (``rx_filtered``), as a real NIC's address filter does.
Otherwise it is counted, recorded as inbound, and passed to
``on_receive(frame)``. Multicast and broadcast frames always pass: group
filtering is the stack's. ``nic.mac`` is what the filter compares against:
change it there if the host's MAC changes.

Frames are ``bytes`` and are never copied (a ``bytearray`` or
``memoryview`` handed to ``transmit`` is copied once into ``bytes``, since
delivery may happen later). Capture sees only frames actually sent or
received.

Super-frames (``stack.wire.gso.GsoFrame``): a NIC built with ``offload=True``
may be handed a GsoFrame by its stack (a TCP super-segment of up to 64 KiB,
or a frame whose transport checksum is not computed yet) and passes it on
whole; whoever wires the NIC to a stack sets the stack interface's
``offload`` from ``nic.offload``. A GsoFrame counts as the wire frames it
stands for (``tx_frames``, ``tx_bytes``, the receive counters, and in virtual
time ``scheduler.frames_transmitted``; in real time that counts it once, as
the fair share charges the work of carrying it), its size checks use its longest wire frame, and a
capture tap records its materialised frames (``materialise()``), never the
super-frame: so a capture changes nothing but the pcap. On receive, a
GsoFrame goes to ``on_receive`` whole when this NIC offloads and its wire
frames fit this NIC's MTU; otherwise it is materialised here and each wire
frame is received as if it came alone (a smaller-MTU receiver drops what is
too big for it, as a real one does).

Thread-safety: like every data-path object, a Nic is used with the
scheduler's ``lock`` held (real time) or from the one running thread
(virtual time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from stack.wire.gso import GsoFrame
from vnet.link.capture import BytesLike, Capture, CaptureTap, Direction
from vnet.link.impairment import Impairment
from vnet.link.segment import Cable, Segment, SegmentPort

if TYPE_CHECKING:
    from vnet.scheduler import Scheduler

__all__ = ["Nic", "NicCounters"]

ETHERNET_HEADER_LEN = 14
VLAN_TAG_LEN = 4
_TPIDS = (b"\x81\x00", b"\x88\xa8")  # 802.1Q, 802.1ad
_INBOUND = Direction.INBOUND
_OUTBOUND = Direction.OUTBOUND


@dataclass(slots=True)
class NicCounters:
    """What a NIC sent, received and dropped (frames; bytes for what passed)."""

    tx_frames: int = 0
    tx_bytes: int = 0
    rx_frames: int = 0
    rx_bytes: int = 0
    tx_dropped_link_down: int = 0
    tx_dropped_runt: int = 0
    tx_dropped_oversize: int = 0
    tx_dropped_unattached: int = 0
    rx_dropped_link_down: int = 0
    rx_dropped_runt: int = 0
    rx_dropped_oversize: int = 0
    rx_filtered: int = 0  # unicast for another MAC, not promiscuous

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Nic:
    """A virtual Ethernet interface named like ``host/eth0``.

    ``on_receive`` gets every frame the NIC accepts; it may be replaced by
    assigning ``nic.on_receive``. ``mac`` is 6 raw bytes.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        name: str,
        mac: bytes,
        on_receive: Callable[[bytes | GsoFrame], None],
        mtu: int = 1500,
        *,
        promiscuous: bool = False,
        offload: bool = False,
    ) -> None:
        if len(mac) != 6:
            raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")
        if mac[0] & 1:
            raise ValueError("a NIC's MAC address must be unicast (group bit clear)")
        self.scheduler = scheduler
        self._real_time = not scheduler.virtual  # fair share: a super-frame is one send
        self.name = name
        self.mac = bytes(mac)
        self.on_receive = on_receive
        self.promiscuous = promiscuous
        #: Super-frames (GsoFrame) pass whole: from the stack, and to ``on_receive``.
        self.offload = offload
        self.counters = NicCounters()
        self.port: SegmentPort | None = None
        self._link_up = True
        self._taps: list[CaptureTap] = []
        self._mtu = 0
        self._max_len = 0
        self.mtu = mtu

    def __repr__(self) -> str:
        state = "up" if self._link_up else "down"
        where = self.port.segment.name if self.port and self.port.segment else "unattached"
        return f"<Nic {self.name!r} {self.mac.hex(':')} {state} on {where}>"

    @property
    def mtu(self) -> int:
        return self._mtu

    @mtu.setter
    def mtu(self, mtu: int) -> None:
        if mtu < 68:
            raise ValueError(f"MTU must be at least 68, not {mtu!r}")
        self._mtu = mtu
        self._max_len = mtu + ETHERNET_HEADER_LEN

    @property
    def max_frame_len(self) -> int:
        """Longest untagged frame accepted: ``mtu + 14``."""
        return self._max_len

    # --- wiring --------------------------------------------------------------
    def attach(
        self,
        segment: Segment,
        *,
        tx_impairment: Impairment | None = None,
        rx_impairment: Impairment | None = None,
    ) -> SegmentPort:
        """Plug into ``segment``; the impairments apply to frames this NIC sends / receives."""
        if self.port is not None and self.port.segment is not None:
            raise ValueError(f"NIC {self.name!r} is already attached to {self.port.segment.name!r}")
        self.port = segment.attach(self, ingress=tx_impairment, egress=rx_impairment)
        return self.port

    def connect(
        self,
        other: Nic,
        *,
        latency_ns: int = 0,
        tx_impairment: Impairment | None = None,
        rx_impairment: Impairment | None = None,
        name: str | None = None,
    ) -> Cable:
        """A point-to-point cable to ``other``; the impairments are this end's (tx: to other)."""
        if other is self:
            raise ValueError("a NIC cannot be cabled to itself")
        for nic in (self, other):
            if nic.port is not None and nic.port.segment is not None:
                raise ValueError(f"NIC {nic.name!r} is already attached")
        cable = Cable(self.scheduler, name or f"{self.name}--{other.name}", latency_ns)
        self.attach(cable, tx_impairment=tx_impairment, rx_impairment=rx_impairment)
        other.attach(cable)
        return cable

    def detach(self) -> None:
        """Unplug from the segment or cable (frames in flight to this NIC are dropped)."""
        if self.port is not None:
            self.port.detach()
            self.port = None

    def capture(self, capture: Capture) -> CaptureTap:
        """Record what this NIC sends and receives, as interface ``<name>``."""
        tap = capture.interface(self.name, clock=self.scheduler.realtime_ns)
        if tap not in self._taps:
            self._taps.append(tap)
        return tap

    @property
    def link_up(self) -> bool:
        return self._link_up

    def set_link(self, up: bool) -> None:
        """Carrier up or down; while down, frames are dropped both ways and counted."""
        self._link_up = bool(up)

    # --- data path -----------------------------------------------------------
    def transmit(self, frame: BytesLike | GsoFrame) -> None:
        """Send one Ethernet frame (no preamble, no FCS). Called by the stack."""
        if isinstance(frame, GsoFrame):  # a super-frame (inline: the send hot path)
            counters = self.counters
            segs = frame.gso_segs
            if not self.offload:
                for wire in frame.materialise():
                    self.transmit(wire)
                return
            if not self._link_up:
                counters.tx_dropped_link_down += segs
                return
            if frame.max_wire_len > self._max_len or frame.header_len < ETHERNET_HEADER_LEN:
                for wire in frame.materialise():  # the same verdicts as for the real frames
                    self.transmit(wire)
                return
            port = self.port
            if port is None:
                counters.tx_dropped_unattached += segs
                return
            counters.tx_frames += segs
            counters.tx_bytes += frame.wire_bytes
            self.scheduler.frames_transmitted += 1 if self._real_time else segs
            for tap in self._taps:
                for wire in frame.materialise():
                    tap.record(wire, _OUTBOUND)
            segment = port.segment
            if segment is None or port.ingress is not None:
                port.send_gso(frame)
                return
            # SegmentPort.send_gso's common case, inline (one call less per frame)
            port_counters = port.counters
            port_counters.frames_in += segs
            port_counters.bytes_in += frame.wire_bytes
            segment._switch_gso(port, frame)
            return
        counters = self.counters
        if not self._link_up:
            counters.tx_dropped_link_down += 1
            return
        if type(frame) is not bytes:
            frame = bytes(frame)
        length = len(frame)
        if length > self._max_len:
            if not self._tagged_fits(frame, length):
                counters.tx_dropped_oversize += 1
                return
        elif length < ETHERNET_HEADER_LEN:
            counters.tx_dropped_runt += 1
            return
        port = self.port
        if port is None:
            counters.tx_dropped_unattached += 1
            return
        counters.tx_frames += 1
        counters.tx_bytes += length
        self.scheduler.frames_transmitted += 1
        for tap in self._taps:
            tap.record(frame, _OUTBOUND)
        port.send(frame)

    def deliver(self, frame: bytes | GsoFrame) -> None:
        """A frame from the wire. Called by the segment or cable."""
        if isinstance(frame, GsoFrame):
            self.deliver_gso(frame)
            return
        counters = self.counters
        if not self._link_up:
            counters.rx_dropped_link_down += 1
            return
        length = len(frame)
        if length > self._max_len:
            if not self._tagged_fits(frame, length):
                counters.rx_dropped_oversize += 1
                return
        elif length < ETHERNET_HEADER_LEN:
            counters.rx_dropped_runt += 1
            return
        if not frame[0] & 1 and not self.promiscuous and not frame.startswith(self.mac):
            counters.rx_filtered += 1
            return
        counters.rx_frames += 1
        counters.rx_bytes += length
        for tap in self._taps:
            tap.record(frame, _INBOUND)
        self.on_receive(frame)

    def deliver_gso(self, frame: GsoFrame) -> None:
        """A super-frame from the wire: `deliver` for a GsoFrame (the segment calls it
        directly)."""
        if not self.offload or frame.max_wire_len > self._max_len:
            for wire in frame.materialise():
                self.deliver(wire)
            return
        counters = self.counters
        segs = frame.gso_segs
        if not self._link_up:
            counters.rx_dropped_link_down += segs
            return
        data = frame.data
        if not data[0] & 1 and not self.promiscuous and not data.startswith(self.mac):
            counters.rx_filtered += segs
            return
        counters.rx_frames += segs
        counters.rx_bytes += frame.wire_bytes
        for tap in self._taps:
            for wire in frame.materialise():
                tap.record(wire, _INBOUND)
        self.on_receive(frame)

    def _tagged_fits(self, frame: bytes, length: int) -> bool:
        """A frame over ``mtu + 14`` is still fine with one (+4) or two (+8) VLAN tags."""
        if length > self._max_len + 2 * VLAN_TAG_LEN or frame[12:14] not in _TPIDS:
            return False
        if length <= self._max_len + VLAN_TAG_LEN:
            return True
        return frame[16:18] in _TPIDS
