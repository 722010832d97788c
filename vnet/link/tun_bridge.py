"""The TUN bridge: a virtual network meets the Linux kernel through a TUN device.

    kernel side (a network namespace)         |   vnet
    ----------------------------------------  |  -----------------------------------
    apps ── kernel stack ── tun device  <─────┼──>  router port (point-to-point)
                 routes: virtual prefixes     |        of a vnet router host ──> LAN
                 via the tun device           |

A `TunBridge` opens a Linux TUN device (L3, no packet-info header), moves it
into a network namespace if asked (created if missing by the audited guard
`vnet.testing.netns`, which then checks it has no route off the machine and
deletes it on close, at exit and on SIGINT/SIGTERM; then configured there
with `ip -n NS …`), gives it the kernel-side addresses and the routes to the
virtual prefixes, and attaches it to a vnet router host as a point-to-point
interface. A reader thread moves each packet the kernel routes into the TUN
into the router — every packet ready at that moment, up to `DRAIN_BATCH`,
inside one atomic network turn; packets the router routes
to the port are written back to the device. The port can be captured (raw
IP pcapng) and impaired (loss, reordering) like any NIC.

The device offloads as a virtio-net NIC does (IFF_VNET_HDR, TUNSETOFFLOAD
with checksum and TCP segmentation offload): every packet carries a
virtio-net header, so the kernel may hand vnet a 64 KiB TCP segment whose
checksum it left partial, and vnet may hand the kernel its own super-segments
(`stack.wire.gso.GsoFrame`), which the kernel cuts or delivers whole. The
router's interface then has `offload` set. A translator (`snat`, `publish`)
or an impairment towards the kernel needs real packets: offloads are off then.
Captures of the port hold the wire packets (super-segments materialised).

Real time only: the kernel does not run on virtual time. Without
/dev/net/tun or CAP_NET_ADMIN, `open()` raises `TunBridgeError` with a
one-line message saying what is missing; nothing else in vnet needs them.

Touches: /dev/net/tun, the `ip` command (iproute2), the kernel's network
namespaces and the vnet router it is attached to.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import select
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from firewall.nat import PortTranslator, Publish
from stack.wire.checksum import fold, pseudo_header_v4, pseudo_header_v6
from stack.wire.gso import VIRTIO_NET_HDR_GSO_NONE, GsoFrame
from vnet.link.capture import LINKTYPE_RAW, Capture, CaptureTap, Direction
from vnet.link.impairment import Impairment
from vnet.testing.netns import Namespace, NamespaceError

if TYPE_CHECKING:
    from stack.interface import Interface
    from vnet.network import Host, Network


T = TypeVar("T")

#: The most packets the reader moves into vnet in one network turn.
DRAIN_BATCH = 64

# linux/if_tun.h and linux/virtio_net.h
_TUNSETOFFLOAD = 0x400454D0  # _IOW('T', 208, unsigned int)
_TUN_F_CSUM, _TUN_F_TSO4, _TUN_F_TSO6 = 0x01, 0x02, 0x04
_VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
_VIRTIO_NET_HDR_F_DATA_VALID = 2
#: struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
#: (the device's byte order, which for TUN is the host's unless TUNSETVNETBE/LE).
_VNET_HDR = struct.Struct("=BBHHHH")
#: Bytes of the virtio-net header before each packet (IFF_VNET_HDR's default size).
VNET_HDR_LEN = _VNET_HDR.size
_PLAIN_HDR = bytes(VNET_HDR_LEN)  # flags 0, GSO_NONE: a whole packet with its checksums
_PROTO_TCP = 6


class TunBridgeError(Exception):
    """The bridge cannot be set up; the message says what is missing or wrong."""


def check_privileges() -> None:
    """Raise TunBridgeError naming what is missing to open a TUN device."""
    if not os.path.exists("/dev/net/tun"):
        raise TunBridgeError("the TUN bridge needs /dev/net/tun, which this system lacks")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        raise TunBridgeError("the TUN bridge needs read/write access to /dev/net/tun")
    if shutil.which("ip") is None:
        raise TunBridgeError("the TUN bridge needs the ip command (Debian package iproute2)")


def _guarded(step: Callable[[], T]) -> T:
    """Run a step of the namespace guard; its refusal as TunBridgeError."""
    try:
        return step()
    except NamespaceError as e:
        raise TunBridgeError(str(e)) from None


def _ip(*args: str, netns: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", *(("-n", netns) if netns else ()), *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise TunBridgeError(f"`{' '.join(command)}` failed: {proc.stderr.strip()}")
    return proc


class TunBridge:
    """One TUN device bridged to a vnet router host."""

    def __init__(
        self,
        network: Network,
        router: Host,
        *,
        device: str = "vnet0",
        port_name: str = "tun0",
        mtu: int = 1500,
        kernel_addresses: Sequence[str] = (),
        router_addresses: Sequence[str] = (),
        routes: Sequence[str] = (),
        netns: str | None = None,
        to_kernel_impairment: Impairment | None = None,
        from_kernel_impairment: Impairment | None = None,
        snat: bool = False,
        publish: Sequence[Publish] = (),
    ) -> None:
        if network.virtual:
            raise TunBridgeError("the TUN bridge runs in real time only (not --virtual-time)")
        if len(device) > 15:
            raise TunBridgeError(f"device name {device!r} is longer than 15 characters")
        self.network = network
        self.router = router
        self.device = device
        self.port_name = port_name
        self.mtu = mtu
        self.kernel_addresses = list(kernel_addresses)
        self.router_addresses = list(router_addresses)
        self.routes = list(routes)
        self.netns = netns
        self.to_kernel_impairment = to_kernel_impairment
        self.from_kernel_impairment = from_kernel_impairment
        self.snat = snat
        self.publish = list(publish)
        self.translator: PortTranslator | None = None
        #: The device exchanges GSO segments and partial checksums with the kernel.
        self.offload = False
        #: Packets the kernel handed over as one GSO segment (each stands for several).
        self.gso_from_kernel = 0
        self.gso_to_kernel = 0
        self.iface: Interface | None = None
        self._fd = -1
        self._tun: object | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._taps: list[CaptureTap] = []
        self._created_netns: Namespace | None = None
        self._created_device = False
        self.packets_to_kernel = 0
        self.packets_from_kernel = 0
        self.write_errors = 0
        #: Packets with offload metadata vnet cannot segment (dropped, counted).
        self.bad_offload_packets = 0
        #: Turns the reader took: packets_from_kernel / read_batches is the mean batch.
        self.read_batches = 0

    # --- lifetime -------------------------------------------------------------
    def open(self) -> TunBridge:
        check_privileges()
        import pytun

        if self._device_exists():
            raise TunBridgeError(f"a network device named {self.device} already exists"
                                 + (f" in namespace {self.netns}" if self.netns else "")
                                 + "; vnet uses (and deletes) only a device it creates")
        try:
            tun = pytun.TunTapDevice(name=self.device,
                                     flags=pytun.IFF_TUN | pytun.IFF_NO_PI | pytun.IFF_VNET_HDR)
        except pytun.Error as e:
            code = e.args[0] if e.args else 0
            if code in (errno.EPERM, errno.EACCES):
                raise TunBridgeError("the TUN bridge needs CAP_NET_ADMIN (run as root or "
                                     "grant the capability)") from None
            raise TunBridgeError(f"cannot create TUN device {self.device}: {e}") from None
        self._tun = tun
        self._fd = tun.fileno()
        self._created_device = True
        try:
            # Offloads: the kernel may hand vnet 64 KiB TCP segments with the checksum left
            # partial, and accepts them from vnet, as it does with a virtio-net guest. Not
            # with a translator or an impairment on the way out: those need real packets.
            self.offload = (not self.snat and not self.publish
                            and self.to_kernel_impairment is None)
            features = _TUN_F_CSUM | _TUN_F_TSO4 | _TUN_F_TSO6 if self.offload else 0
            try:
                fcntl.ioctl(self._fd, _TUNSETOFFLOAD, features)
            except OSError as e:
                raise TunBridgeError(f"TUNSETOFFLOAD on {self.device} failed: {e}") from None
            if self.netns:
                if self.netns not in _ip("netns", "list").stdout.split():
                    # made (lo up), checked and deleted by the audited guard
                    self._created_netns = _guarded(
                        Namespace(self.netns, kill_processes=False).create)
                _ip("link", "set", "dev", self.device, "netns", self.netns)
            _ip("link", "set", "dev", self.device, "mtu", str(self.mtu), netns=self.netns)
            for cidr in self.kernel_addresses:
                extra = ("nodad",) if ":" in cidr else ()
                _ip("addr", "add", cidr, "dev", self.device, *extra, netns=self.netns)
            _ip("link", "set", "dev", self.device, "up", netns=self.netns)
            for prefix in self.routes:
                _ip("-6" if ":" in prefix else "-4", "route", "replace", prefix, "dev",
                    self.device, netns=self.netns)
            if self._created_netns is not None:  # ours: it must have no way off the machine
                _guarded(partial(self._created_netns.check_isolated, [self.device],
                                 prefixes=self.routes))
        except BaseException:
            self.close()
            raise
        sched = self.network.scheduler
        with sched.lock, sched.atomic():
            iface = self.router.stack.add_point_to_point(self.port_name, self.mtu)
            iface.transmit = self._to_kernel
            iface.offload = self.offload
            for cidr in self.router_addresses:
                self.router.stack.add_address(self.port_name, cidr)
        self.iface = iface
        if self.snat or self.publish:
            bridge_v4 = next((ipaddress.ip_interface(a).ip.packed for a in self.router_addresses
                              if ":" not in a), None)
            bridge_v6 = next((ipaddress.ip_interface(a).ip.packed for a in self.router_addresses
                              if ":" in a), None)
            inside = [ipaddress.ip_network(r, strict=False) for r in self.routes]
            self.translator = PortTranslator(bridge_v4, bridge_v6, self.snat, self.publish,
                                             inside)
        self._thread = threading.Thread(target=self._read_loop, name=f"tun:{self.device}",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._tun is not None:
            try:
                self._tun.close()  # type: ignore[attr-defined]
            except OSError:
                pass
            self._tun = None
            self._fd = -1
        if self._created_device:  # never a device someone else made
            _ip("link", "del", "dev", self.device, netns=self.netns, check=False)
            self._created_device = False
        if self._created_netns is not None:
            self._created_netns.delete()
            self._created_netns = None

    def _device_exists(self) -> bool:
        """Is there a device with our name where the TUN device is made or will go?"""
        if os.path.exists(f"/sys/class/net/{self.device}"):
            return True
        if self.netns and self.netns in _ip("netns", "list").stdout.split():
            return _ip("link", "show", "dev", self.device, netns=self.netns,
                       check=False).returncode == 0
        return False

    def __enter__(self) -> TunBridge:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def capture(self, capture: Capture) -> CaptureTap:
        """Capture the bridge port (raw IP packets, both directions)."""
        tap = capture.interface(f"{self.router.name}/{self.port_name}", linktype=LINKTYPE_RAW)
        self._taps.append(tap)
        return tap

    # --- data -----------------------------------------------------------------
    def _to_kernel(self, packet: bytes | GsoFrame) -> None:
        """The router sends a packet out of the port (network lock held).

        Only with `offload` (no translator, no impairment) may it be a GsoFrame.
        """
        if type(packet) is GsoFrame:
            self._write_gso(packet)
            return
        assert isinstance(packet, bytes)
        if self.translator is not None:
            packet = self.translator.to_kernel(packet)
        impairment = self.to_kernel_impairment
        if impairment is None:
            self._write(packet)
            return
        sched = self.network.scheduler
        for delay in impairment.decide(sched.monotonic_ns(), len(packet)):
            if delay:
                sched.call_later(delay, partial(self._write, packet))
            else:
                self._write(packet)

    def _write(self, packet: bytes) -> None:
        if self._fd < 0:
            return
        try:
            os.write(self._fd, _PLAIN_HDR + packet)
            self.packets_to_kernel += 1
        except OSError:
            self.write_errors += 1  # the kernel refused it (e.g. device down): counted
            return
        for tap in self._taps:  # what the device got: after impairment, as tcpdump sees it
            tap.record(packet, Direction.OUTBOUND)

    def _write_gso(self, frame: GsoFrame) -> None:
        """One super-packet to the kernel: a virtio-net header says how to segment it.

        The transport checksum goes as Linux's CHECKSUM_PARTIAL wants it: the
        folded pseudo-header sum in the checksum field, the device (here the
        kernel) adds the rest.
        """
        if self._fd < 0:
            return
        ip = frame.ip_packet
        start = frame.csum_start
        l4_len = len(ip) - start
        proto = frame.protocol
        if ip[0] >> 4 == 4:
            seed = pseudo_header_v4(bytes(ip[12:16]), bytes(ip[16:20]), proto, l4_len)
        else:
            seed = pseudo_header_v6(bytes(ip[8:24]), bytes(ip[24:40]), proto, l4_len)
        gso_type = frame.gso_type if frame.gso_segs > 1 else VIRTIO_NET_HDR_GSO_NONE
        header = _VNET_HDR.pack(_VIRTIO_NET_HDR_F_NEEDS_CSUM, gso_type,
                                frame.header_len - frame.link_len,
                                frame.gso_size if gso_type else 0, start, frame.csum_offset)
        out = bytearray(header)
        out += ip
        field = VNET_HDR_LEN + start + frame.csum_offset
        out[field:field + 2] = fold(seed).to_bytes(2, "big")
        try:
            os.write(self._fd, out)
        except OSError:
            self.write_errors += 1
            return
        self.packets_to_kernel += frame.gso_segs
        if frame.gso_segs > 1:
            self.gso_to_kernel += 1
        for tap in self._taps:
            for packet in frame.materialise():
                tap.record(packet, Direction.OUTBOUND)

    def _read_loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        sched = self.network.scheduler
        os.set_blocking(self._fd, False)
        read = os.read
        fd = self._fd
        while not self._stop.is_set():
            try:
                if not poller.poll(100):
                    continue
            except OSError:
                return
            # Drain: every packet ready now (at most DRAIN_BATCH) in one network turn.
            batch: list[bytes] = []
            try:
                while len(batch) < DRAIN_BATCH:
                    packet = read(fd, 65536 + VNET_HDR_LEN)
                    if packet:
                        batch.append(packet)
            except BlockingIOError:
                pass
            except OSError:
                if not batch:
                    return
            if not batch:
                continue
            self.read_batches += 1
            with sched.lock, sched.atomic():
                for packet in batch:
                    self._from_kernel(self._unwrap(packet))
            sched.notify()

    def _unwrap(self, data: bytes) -> bytes | GsoFrame:
        """What the kernel handed over, without its virtio-net header.

        A packet whose checksum the kernel left partial (NEEDS_CSUM) or
        vouched for (DATA_VALID), or a GSO segment, becomes a GsoFrame, which
        the stack trusts and takes whole; anything else stays bytes and is
        verified as any packet from a wire.
        """
        flags, gso_type, _hdr_len, gso_size, _start, _offset = _VNET_HDR.unpack_from(data)
        packet = data[VNET_HDR_LEN:]
        if gso_type == VIRTIO_NET_HDR_GSO_NONE and not flags & (
                _VIRTIO_NET_HDR_F_NEEDS_CSUM | _VIRTIO_NET_HDR_F_DATA_VALID):
            self.packets_from_kernel += 1
            return packet
        try:
            frame = GsoFrame.from_packet(
                packet, gso_size if gso_type != VIRTIO_NET_HDR_GSO_NONE else 0,
                csum_partial=bool(flags & _VIRTIO_NET_HDR_F_NEEDS_CSUM))
        except ValueError:  # not a shape vnet segments (IPv6 extension headers, ...)
            if flags & _VIRTIO_NET_HDR_F_NEEDS_CSUM or gso_type != VIRTIO_NET_HDR_GSO_NONE:
                self.bad_offload_packets += 1
                return b""
            self.packets_from_kernel += 1
            return packet
        self.packets_from_kernel += frame.gso_segs
        if frame.gso_segs > 1:
            self.gso_from_kernel += 1
        return frame

    def _from_kernel(self, packet: bytes | GsoFrame) -> None:
        iface = self.iface
        if iface is None or not packet:
            return
        if type(packet) is GsoFrame:
            if self._taps:
                for piece in packet.materialise():
                    for tap in self._taps:
                        tap.record(piece, Direction.INBOUND)
            if self.translator is None and self.from_kernel_impairment is None:
                self.router.stack.receive_packet(iface, packet)
                return
            for piece in packet.materialise():  # real packets for the translator/impairment
                self._from_kernel_packet(iface, piece)
            return
        assert isinstance(packet, bytes)
        for tap in self._taps:
            tap.record(packet, Direction.INBOUND)
        self._from_kernel_packet(iface, packet)

    def _from_kernel_packet(self, iface: Interface, packet: bytes) -> None:
        if self.translator is not None:
            packet = self.translator.from_kernel(packet)
        impairment = self.from_kernel_impairment
        stack = self.router.stack
        if impairment is None:
            stack.receive_packet(iface, packet)
            return
        sched = self.network.scheduler
        for delay in impairment.decide(sched.monotonic_ns(), len(packet)):
            if delay:
                sched.call_later(delay, partial(stack.receive_packet, iface, packet))
            else:
                stack.receive_packet(iface, packet)
