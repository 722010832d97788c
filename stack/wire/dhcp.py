"""DHCPv4 messages (RFC 2131 over the BOOTP format of RFC 951, options of RFC 2132).

`DhcpMessage` is the message as plain values with `parse()` and `build()`;
parsing never raises: a short buffer, a missing magic cookie or an option
running past the end is a `WireError`. Only the options vnet's client and
server use are decoded into fields; the others are kept in `other` as
`(code, data)`. `build()` pads to the 300-byte BOOTP minimum (RFC 1542
2.1), as Linux clients and servers do. Touches nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import WireError

__all__ = ["DhcpMessage"]

SERVER_PORT = 67
CLIENT_PORT = 68

OP_REQUEST = 1
OP_REPLY = 2
HTYPE_ETHERNET = 1
FLAG_BROADCAST = 0x8000
MAGIC_COOKIE = b"\x63\x82\x53\x63"
FIXED_LEN = 236  # op .. file, before the cookie
MIN_LEN = 300

# DHCP message types (option 53)
DISCOVER = 1
OFFER = 2
REQUEST = 3
DECLINE = 4
ACK = 5
NAK = 6
RELEASE = 7
INFORM = 8
TYPE_NAMES = {DISCOVER: "DISCOVER", OFFER: "OFFER", REQUEST: "REQUEST", DECLINE: "DECLINE",
              ACK: "ACK", NAK: "NAK", RELEASE: "RELEASE", INFORM: "INFORM"}

OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOSTNAME = 12
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMETER_LIST = 55
OPT_MESSAGE = 56
OPT_RENEWAL_TIME = 58
OPT_REBINDING_TIME = 59
OPT_CLIENT_ID = 61
OPT_END = 255

_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_ZERO4 = bytes(4)


def _addresses(data: bytes) -> tuple[bytes, ...] | None:
    if not data or len(data) % 4:
        return None
    return tuple(data[i:i + 4] for i in range(0, len(data), 4))


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """One DHCP message as plain values (addresses as 4 packed bytes; times in seconds)."""

    op: int
    xid: int
    chaddr: bytes  # the client's MAC (6 bytes)
    message_type: int | None = None
    secs: int = 0
    flags: int = 0
    ciaddr: bytes = _ZERO4
    yiaddr: bytes = _ZERO4
    siaddr: bytes = _ZERO4
    giaddr: bytes = _ZERO4
    hops: int = 0
    subnet_mask: bytes | None = None
    routers: tuple[bytes, ...] = ()
    dns_servers: tuple[bytes, ...] = ()
    requested_ip: bytes | None = None
    lease_time: int | None = None
    server_id: bytes | None = None
    renewal_time: int | None = None
    rebinding_time: int | None = None
    parameter_list: bytes = b""
    hostname: str | None = None
    client_id: bytes | None = None
    message: str | None = None
    other: tuple[tuple[int, bytes], ...] = field(default=())

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & FLAG_BROADCAST)

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.message_type or 0, f"type {self.message_type}")

    @classmethod
    def parse(cls, buf: bytes | memoryview) -> DhcpMessage | WireError:
        data = bytes(buf)
        if len(data) < FIXED_LEN + 4:
            return WireError.TRUNCATED
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
         _sname, _file) = _FIXED.unpack_from(data)
        if data[FIXED_LEN:FIXED_LEN + 4] != MAGIC_COOKIE:
            return WireError.BAD_OPTION
        if op not in (OP_REQUEST, OP_REPLY) or htype != HTYPE_ETHERNET or hlen != 6:
            return WireError.UNSUPPORTED
        fields: dict[str, object] = {}
        other: list[tuple[int, bytes]] = []
        offset = FIXED_LEN + 4
        while offset < len(data):
            code = data[offset]
            if code == OPT_PAD:
                offset += 1
                continue
            if code == OPT_END:
                break
            if offset + 2 > len(data):
                return WireError.BAD_OPTION
            length = data[offset + 1]
            value = data[offset + 2:offset + 2 + length]
            if len(value) != length:
                return WireError.BAD_OPTION
            offset += 2 + length
            if code == OPT_MESSAGE_TYPE and length == 1:
                fields["message_type"] = value[0]
            elif code in (OPT_SUBNET_MASK, OPT_REQUESTED_IP, OPT_SERVER_ID) and length == 4:
                fields[{OPT_SUBNET_MASK: "subnet_mask", OPT_REQUESTED_IP: "requested_ip",
                        OPT_SERVER_ID: "server_id"}[code]] = value
            elif code in (OPT_ROUTER, OPT_DNS):
                addresses = _addresses(value)
                if addresses is None:
                    return WireError.BAD_OPTION
                fields["routers" if code == OPT_ROUTER else "dns_servers"] = addresses
            elif code in (OPT_LEASE_TIME, OPT_RENEWAL_TIME, OPT_REBINDING_TIME) and length == 4:
                fields[{OPT_LEASE_TIME: "lease_time", OPT_RENEWAL_TIME: "renewal_time",
                        OPT_REBINDING_TIME: "rebinding_time"}[code]] = int.from_bytes(value,
                                                                                     "big")
            elif code == OPT_PARAMETER_LIST:
                fields["parameter_list"] = value
            elif code == OPT_HOSTNAME and length:
                fields["hostname"] = value.decode("ascii", "replace")
            elif code == OPT_MESSAGE:
                fields["message"] = value.decode("ascii", "replace")
            elif code == OPT_CLIENT_ID and length:
                fields["client_id"] = value
            else:
                other.append((code, value))
        return cls(op, xid, chaddr[:6], secs=secs, flags=flags, ciaddr=ciaddr, yiaddr=yiaddr,
                   siaddr=siaddr, giaddr=giaddr, hops=hops, other=tuple(other),
                   **fields)  # type: ignore[arg-type]

    def build(self) -> bytes:
        out = bytearray(_FIXED.pack(self.op, HTYPE_ETHERNET, 6, self.hops, self.xid, self.secs,
                                    self.flags, self.ciaddr, self.yiaddr, self.siaddr,
                                    self.giaddr, self.chaddr.ljust(16, b"\0"), b"", b""))
        out += MAGIC_COOKIE

        def option(code: int, value: bytes) -> None:
            if len(value) > 255:
                raise ValueError(f"DHCP option {code} is longer than 255 bytes")
            out.extend((code, len(value)))
            out.extend(value)

        if self.message_type is not None:
            option(OPT_MESSAGE_TYPE, bytes((self.message_type,)))
        if self.server_id is not None:
            option(OPT_SERVER_ID, self.server_id)
        if self.requested_ip is not None:
            option(OPT_REQUESTED_IP, self.requested_ip)
        if self.client_id is not None:
            option(OPT_CLIENT_ID, self.client_id)
        if self.hostname:
            option(OPT_HOSTNAME, self.hostname.encode("ascii", "replace")[:255])
        if self.parameter_list:
            option(OPT_PARAMETER_LIST, self.parameter_list)
        if self.lease_time is not None:
            option(OPT_LEASE_TIME, self.lease_time.to_bytes(4, "big"))
        if self.renewal_time is not None:
            option(OPT_RENEWAL_TIME, self.renewal_time.to_bytes(4, "big"))
        if self.rebinding_time is not None:
            option(OPT_REBINDING_TIME, self.rebinding_time.to_bytes(4, "big"))
        if self.subnet_mask is not None:
            option(OPT_SUBNET_MASK, self.subnet_mask)
        if self.routers:
            option(OPT_ROUTER, b"".join(self.routers))
        if self.dns_servers:
            option(OPT_DNS, b"".join(self.dns_servers))
        if self.message:
            option(OPT_MESSAGE, self.message.encode("ascii", "replace")[:255])
        for code, value in self.other:
            option(code, value)
        out.append(OPT_END)
        if len(out) < MIN_LEN:
            out += bytes(MIN_LEN - len(out))
        return bytes(out)
