"""A software Ethernet bridge inside one virtual host, as Linux's `ip link add br0 type bridge`.

    segment ── eth1 (NIC, promiscuous) ─┐
                                        ├── br0 ── the host's own stack (interface br0)
    guest  ── tap0 (guest TAP device) ──┘    learning table: MAC → port

A `HostBridge` joins ports — NICs of its host and guest TAP devices
(vnet.link.guest_tun) — into one L2 domain, and gives the host itself an
Ethernet interface `br0` on it (its own MAC; the host's addresses for that
domain go there). It learns each unicast source MAC on the port it arrived
from; a frame for a learned MAC goes out that port only (dropped if that is
the port it came from), a broadcast, multicast or unknown unicast frame is
flooded to every other port, and a frame for br0's MAC, a broadcast or a
multicast one also goes up to the host's stack. So an Ethernet-level VPN —
a guest carrying its TAP device's frames to a peer — joins two segments into
one broadcast domain: ARP and NDP cross it.

An enslaved NIC is promiscuous, hands its frames to the bridge instead of the
stack, and loses its addresses (its stack interface no longer transmits); a
port named for a TAP device waits until a guest creates that device
(`GuestTunDevice` asks `bridge_for`) and is released when the device goes.
No spanning tree: a loop of bridges floods for ever, as Linux's without STP
(bounded here by the links' own limits).

Counters (`counters`): frames forwarded to one port, flooded, delivered up to
the host, dropped because they would go back out of their port.

May touch: its host's stack (the br0 interface, receiving frames), the NICs
and TAP devices it enslaves; nothing outside that host.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from stack.wire.gso import GsoFrame

if TYPE_CHECKING:
    from stack.interface import Interface
    from vnet.link.guest_tun import GuestTunDevice
    from vnet.network import Host

__all__ = ["HostBridge", "bridge_for"]

#: Each host's bridges by the TAP names they take as ports.
_TAP_PORTS: weakref.WeakKeyDictionary[Host, dict[str, HostBridge]] = (
    weakref.WeakKeyDictionary())


def bridge_for(host: Host, device_name: str) -> HostBridge | None:
    """The bridge waiting for a TAP device of this name on this host, if any."""
    return _TAP_PORTS.get(host, {}).get(device_name)


class _Port:
    __slots__ = ("name", "send")

    def __init__(self, name: str, send: Callable[[bytes], None]) -> None:
        self.name = name
        self.send = send


class HostBridge:
    """One bridge: its ports, its learning table, and the host's br0 interface on it."""

    def __init__(self, host: Host, name: str = "br0", ports: Sequence[str] = (),
                 addresses: Sequence[str] = ()) -> None:
        self.host = host
        self.name = name
        self.ports: dict[str, _Port] = {}
        #: MAC → the port it was last seen on.
        self.fdb: dict[bytes, _Port] = {}
        self.counters: Counter[str] = Counter()
        sched = host.network.scheduler
        with sched.lock, sched.atomic():
            self.iface: Interface = host.stack.add_interface(name, host.network.allocate_mac())
            self.iface.transmit = self._from_host
            for port in ports:
                self.add_port(port)
            for cidr in addresses:
                host.stack.add_address(name, cidr)

    # --- ports -------------------------------------------------------------------------
    def add_port(self, name: str) -> None:
        """Enslave NIC `name` now, or the guest TAP device `name` when it appears."""
        if name in self.ports or name == self.name:
            raise ValueError(f"{self.host.name}/{self.name}: {name} is already a port")
        nic = self.host.nics.get(name)
        if nic is None:
            _TAP_PORTS.setdefault(self.host, {})[name] = self
            return
        stack = self.host.stack
        iface = stack.interface(name)
        for address in list(iface.addresses()):
            stack.remove_address(name, address)
        iface.transmit = None  # the port carries the bridge's frames only
        nic.promiscuous = True
        nic.offload = False  # super-frames become wire frames before the bridge sees them
        port = _Port(name, nic.transmit)
        self.ports[name] = port
        nic.on_receive = lambda frame: self._ingress(port, frame)

    def attach_tap(self, device: GuestTunDevice) -> Callable[[bytes], None]:
        """A guest created the TAP device this bridge waits for: returns its ingress."""
        port = _Port(device.name, device.enqueue)
        self.ports[device.name] = port
        return lambda frame: self._ingress(port, frame)

    def detach_tap(self, name: str) -> None:
        port = self.ports.pop(name, None)
        if port is not None:
            self.fdb = {mac: p for mac, p in self.fdb.items() if p is not port}

    # --- frames -----------------------------------------------------------------------------
    def _ingress(self, port: _Port, frame: bytes | GsoFrame) -> None:
        if isinstance(frame, GsoFrame):
            for wire in frame.materialise():
                self._ingress(port, bytes(wire))
            return
        if len(frame) < 14:
            self.counters["dropped_runt"] += 1
            return
        source = frame[6:12]
        if not source[0] & 1:
            self.fdb[source] = port
        destination = frame[:6]
        group = bool(destination[0] & 1)
        if group or destination == self.iface.mac:
            self.counters["to_host"] += 1
            self.host.stack.receive_frame(self.iface, frame)
            if not group:
                return
        self._forward(port, destination, frame)

    def _from_host(self, frame: bytes | GsoFrame) -> None:
        if isinstance(frame, GsoFrame):
            for wire in frame.materialise():
                self._from_host(bytes(wire))
            return
        self._forward(None, bytes(frame[:6]), bytes(frame))

    def _forward(self, came_from: _Port | None, destination: bytes, frame: bytes) -> None:
        target = None if destination[0] & 1 else self.fdb.get(destination)
        if target is not None:
            if target is came_from:
                self.counters["dropped_same_port"] += 1
                return
            self.counters["forwarded"] += 1
            target.send(frame)
            return
        self.counters["flooded"] += 1
        for port in list(self.ports.values()):
            if port is not came_from:
                port.send(frame)
