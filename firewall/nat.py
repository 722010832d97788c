"""Address translation at the TUN bridge port: source NAT and published ports.

Source NAT (`snat_address`): packets leaving for the kernel whose source is a
virtual address get the bridge's kernel-facing address as their source (and a
translated port if the original is already taken), so a kernel-side peer with
no route back to the virtual prefixes can still answer. Replies are mapped
back by (protocol, translated port, remote address, remote port); ICMP echo
is mapped by its identifier.

Publishing (`publish`): `[HOSTADDR:]PORT:GUESTADDR:PORT[/udp]` — a packet from
the kernel to HOSTADDR:PORT (HOSTADDR defaults to the bridge's address) has
its destination rewritten to the guest service, and the guest's replies get
their source rewritten back, so kernel-side clients talk to the published
address only.

Both work on whole IPv4 or IPv6 packets (TCP, UDP, ICMP/ICMPv6 echo) and
recompute the IP header and transport checksums. ICMP errors about a
translated flow are passed through untranslated (documented limitation).
Tables are bounded (oldest mapping evicted). Sans-IO: bytes in, bytes out;
touches nothing else.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from dataclasses import dataclass

from stack.wire.checksum import internet_checksum, pseudo_header_v4, pseudo_header_v6

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
MAX_MAPPINGS = 65536
_PUBLISH = re.compile(
    r"^(?:(?P<host>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?P<hport>\d+):"
    r"(?P<guest>\[[0-9a-fA-F:.]+\]|[0-9.]+):(?P<gport>\d+)(?:/(?P<proto>tcp|udp))?$")


@dataclass(frozen=True)
class Publish:
    protocol: int
    host_address: bytes | None  # None: the bridge's own address
    host_port: int
    guest_address: bytes
    guest_port: int

    @classmethod
    def parse(cls, text: str) -> Publish:
        """'[HOSTADDR:]PORT:GUESTADDR:PORT[/udp]' (IPv6 addresses in brackets)."""
        match = _PUBLISH.match(text.strip())
        if not match:
            raise ValueError(f"--publish {text!r}: expected [HOSTADDR:]PORT:GUESTADDR:PORT[/udp]")
        try:
            host = match.group("host")
            host_addr = ipaddress.ip_address(host.strip("[]")).packed if host else None
            guest = ipaddress.ip_address(match.group("guest").strip("[]")).packed
        except ValueError:
            raise ValueError(f"--publish {text!r}: not an IP address") from None
        ports = int(match.group("hport")), int(match.group("gport"))
        if not all(0 < p < 65536 for p in ports):
            raise ValueError(f"--publish {text!r}: ports are 1-65535")
        if host_addr is not None and len(host_addr) != len(guest):
            raise ValueError(f"--publish {text!r}: both addresses must be IPv4 or both IPv6")
        proto = UDP if match.group("proto") == "udp" else TCP
        return cls(proto, host_addr, ports[0], guest, ports[1])


class _Packet:
    """Offsets of the fields NAT rewrites, in a mutable copy of one packet."""

    def __init__(self, packet: bytes) -> None:
        self.buf = bytearray(packet)
        version = packet[0] >> 4
        self.version = version
        if version == 4:
            ihl = (packet[0] & 0xF) * 4
            self.proto = packet[9]
            self.src_off, self.dst_off, self.alen = 12, 16, 4
            self.l4 = ihl
            self.fragment = bool(int.from_bytes(packet[6:8], "big") & 0x3FFF)
        else:
            self.proto = packet[6]
            self.src_off, self.dst_off, self.alen = 8, 24, 16
            self.l4 = 40
            self.fragment = False
        self.ok = len(packet) >= self.l4 + 8 and self.proto in (TCP, UDP, ICMP, ICMPV6)

    @property
    def src(self) -> bytes:
        return bytes(self.buf[self.src_off:self.src_off + self.alen])

    @property
    def dst(self) -> bytes:
        return bytes(self.buf[self.dst_off:self.dst_off + self.alen])

    def port(self, which: int) -> int:
        """0: source port (or ICMP echo id), 1: destination port (echo id too)."""
        if self.proto in (ICMP, ICMPV6):
            return int.from_bytes(self.buf[self.l4 + 4:self.l4 + 6], "big")
        offset = self.l4 + 2 * which
        return int.from_bytes(self.buf[offset:offset + 2], "big")

    def is_echo(self) -> bool:
        kind = self.buf[self.l4]
        return (self.proto == ICMP and kind in (0, 8)) or (self.proto == ICMPV6 and kind in (128,
                                                                                              129))

    def set(self, src: bytes | None = None, sport: int | None = None, dst: bytes | None = None,
            dport: int | None = None) -> None:
        buf = self.buf
        if src is not None:
            buf[self.src_off:self.src_off + self.alen] = src
        if dst is not None:
            buf[self.dst_off:self.dst_off + self.alen] = dst
        if self.proto in (ICMP, ICMPV6):
            ident = sport if sport is not None else dport
            if ident is not None:
                buf[self.l4 + 4:self.l4 + 6] = ident.to_bytes(2, "big")
        else:
            if sport is not None:
                buf[self.l4:self.l4 + 2] = sport.to_bytes(2, "big")
            if dport is not None:
                buf[self.l4 + 2:self.l4 + 4] = dport.to_bytes(2, "big")
        self._checksums()

    def _checksums(self) -> None:
        buf = self.buf
        l4 = self.l4
        segment_len = len(buf) - l4
        if self.version == 4:
            buf[10:12] = b"\0\0"
            buf[10:12] = internet_checksum(memoryview(buf)[:l4]).to_bytes(2, "big")
        offset = {TCP: 16, UDP: 6, ICMP: 2, ICMPV6: 2}[self.proto]
        if self.proto == UDP and self.version == 4 and buf[l4 + 6:l4 + 8] == b"\0\0":
            return  # IPv4 UDP without a checksum stays without one
        buf[l4 + offset:l4 + offset + 2] = b"\0\0"
        if self.proto == ICMP:
            initial = 0
        elif self.version == 4:
            initial = pseudo_header_v4(self.src, self.dst, self.proto, segment_len)
        else:
            initial = pseudo_header_v6(self.src, self.dst, self.proto, segment_len)
        value = internet_checksum(memoryview(buf)[l4:], initial)
        if self.proto == UDP and value == 0:
            value = 0xFFFF
        buf[l4 + offset:l4 + offset + 2] = value.to_bytes(2, "big")


class PortTranslator:
    """Source NAT and published ports for one bridge port."""

    def __init__(self, bridge_v4: bytes | None, bridge_v6: bytes | None, snat: bool,
                 publish: list[Publish], inside: list[ipaddress.IPv4Network
                                                   | ipaddress.IPv6Network]) -> None:
        self.bridge = {4: bridge_v4, 6: bridge_v6}
        self.snat = snat
        self.publish = publish
        self.inside = inside
        # snat: (proto, inside addr, inside port, remote, rport) -> outside port, and back
        self._out: OrderedDict[tuple[int, bytes, int, bytes, int], int] = OrderedDict()
        # publish: flows that came in through a published port, keyed as the guest's
        # replies look (proto, guest addr, guest port, client addr, client port)
        self._published: OrderedDict[tuple[int, bytes, int, bytes, int], Publish] = (
            OrderedDict())
        self._back: dict[tuple[int, int, bytes, int], tuple[bytes, int]] = {}
        self.translated_out = 0
        self.translated_in = 0
        self.unmatched_in = 0

    def _is_inside(self, addr: bytes) -> bool:
        if not self.inside:  # no prefixes given: everything but the bridge itself
            return addr != self.bridge[4 if len(addr) == 4 else 6]
        ip = ipaddress.ip_address(addr)
        return any(ip in net for net in self.inside)

    def _publish_for_reply(self, pkt: _Packet) -> Publish | None:
        """The rule a guest's packet answers, if its flow came in through a published port."""
        key = (pkt.proto, pkt.src, pkt.port(0), pkt.dst, pkt.port(1))
        rule = self._published.get(key)
        if rule is not None:
            self._published.move_to_end(key)
        return rule

    def to_kernel(self, packet: bytes) -> bytes:
        """Translate a packet the router sends to the kernel."""
        pkt = _Packet(packet)
        if not pkt.ok or pkt.fragment:
            return packet
        proto = pkt.proto
        if proto in (ICMP, ICMPV6) and not pkt.is_echo():
            return packet
        rule = self._publish_for_reply(pkt) if proto in (TCP, UDP) else None
        if rule is not None:
            outside = rule.host_address or self.bridge[pkt.version]
            if outside is not None:
                pkt.set(src=outside, sport=rule.host_port)
                self.translated_out += 1
                return bytes(pkt.buf)
        bridge = self.bridge[pkt.version]
        if not self.snat or bridge is None or not self._is_inside(pkt.src):
            return packet
        if proto in (ICMP, ICMPV6) and pkt.buf[pkt.l4] not in (8, 128):
            return packet  # only requests open a mapping
        key = (proto, pkt.src, pkt.port(0), pkt.dst, pkt.port(1))
        outside_port = self._out.get(key)
        if outside_port is None:
            outside_port = self._allocate(proto, key[1], key[2], key[3], key[4])
        else:
            self._out.move_to_end(key)
        pkt.set(src=bridge, sport=outside_port)
        self.translated_out += 1
        return bytes(pkt.buf)

    def _allocate(self, proto: int, inside: bytes, port: int, remote: bytes, rport: int) -> int:
        candidate = port
        for _ in range(65536):
            back_key = (proto, candidate, remote, rport if proto in (TCP, UDP) else 0)
            if candidate and back_key not in self._back:
                break
            candidate = 1024 + (candidate * 7919 + 1) % 64512
        if len(self._out) >= MAX_MAPPINGS:
            old_key, old_port = self._out.popitem(last=False)
            self._back.pop((old_key[0], old_port, old_key[3],
                            old_key[4] if old_key[0] in (TCP, UDP) else 0), None)
        self._out[(proto, inside, port, remote, rport)] = candidate
        self._back[(proto, candidate, remote, rport if proto in (TCP, UDP) else 0)] = (inside, port)
        return candidate

    def from_kernel(self, packet: bytes) -> bytes:
        """Translate a packet the kernel sends into the virtual network."""
        pkt = _Packet(packet)
        if not pkt.ok or pkt.fragment:
            return packet
        proto = pkt.proto
        for rule in self.publish:
            target = rule.host_address or self.bridge[pkt.version]
            if (rule.protocol == proto and target == pkt.dst and rule.host_port == pkt.port(1)
                    and len(rule.guest_address) == len(pkt.dst)):
                key = (proto, rule.guest_address, rule.guest_port, pkt.src, pkt.port(0))
                self._published[key] = rule
                self._published.move_to_end(key)
                if len(self._published) > MAX_MAPPINGS:
                    self._published.popitem(last=False)
                pkt.set(dst=rule.guest_address, dport=rule.guest_port)
                self.translated_in += 1
                return bytes(pkt.buf)
        if not self.snat or pkt.dst != self.bridge[pkt.version]:
            return packet
        if proto in (ICMP, ICMPV6):
            if not pkt.is_echo():
                return packet
            back = self._back.get((proto, pkt.port(1), pkt.src, 0))
        else:
            back = self._back.get((proto, pkt.port(1), pkt.src, pkt.port(0)))
        if back is None:
            self.unmatched_in += 1
            return packet
        pkt.set(dst=back[0], dport=back[1])
        self.translated_in += 1
        return bytes(pkt.buf)
