"""Packet formats: one module per header, zero-copy parsed views and builders.

Touches nothing but bytes: no clocks, sockets, threads or files, and no
imports from the rest of the stack. Modules: ``checksum``, ``ethernet``,
``arp``, ``ipv4``, ``ipv6``, ``icmpv4``, ``icmpv6``, ``ndp`` (RS/RA/NS/NA/
Redirect), ``mld`` (MLDv1/v2), ``igmp`` (v1/v2/v3), ``udp`` (TCP lives
elsewhere), plus ``ip`` (protocol numbers, address conversions), ``errors``
and ``_multicast`` (group records shared by IGMPv3 and MLDv2). NDP and MLD
ride in ICMPv6 but have modules of their own, as in smoltcp.

Conventions, the same in every module:

- Field offsets are ``FIELD_*`` constants at the top of the module, with
  the header's layout in its docstring.
- **Parsing never raises on bad input.** It returns the parsed object or a
  ``WireError`` member (``TRUNCATED``, ``BAD_LENGTH``, ``BAD_CHECKSUM``,
  ``BAD_VERSION``, ``BAD_OPTION``, ``BAD_HEADER_CHAIN``, ``TOO_MANY_HEADERS``,
  ``UNSUPPORTED``), a singleton whose ``.value`` string is the stack's
  drop-counter key::

      pkt = Ipv4Packet.parse(frame.payload)
      if isinstance(pkt, WireError):
          counters.drop("ipv4", pkt)
          return

  Lengths and checksums are validated first, so every accessor of a
  returned object is safe. Every loop over input is bounded (VLAN tags by
  ``ethernet.MAX_TAGS``, IPv6 extension headers by
  ``ipv6.MAX_EXTENSION_HEADERS``, options and records by the buffer, with
  zero-length options rejected). Parsers take ``bytes``, ``bytearray`` or a
  byte-format ``memoryview``.
- Data-path headers (Ethernet, IPv4, IPv6, ICMPv4, ICMPv6, UDP) parse to a
  **view**: ``XPacket.parse(buf, ...)`` returns an object over a
  ``memoryview`` of the input (no copy) whose fixed fields are decoded once
  with a precompiled ``struct.Struct``; ``payload`` and similar are
  memoryview slices. Keep the input alive and unmodified while using a view.
- Control-plane messages (ARP, NDP, MLD, IGMP) are small and rare; they
  parse to **plain values** (frozen dataclasses, addresses copied to
  ``bytes``), the same classes used to build them. ``ndp.parse`` and
  ``mld.parse`` take a parsed ``Icmpv6Packet``.
- **Builders** are ``XRepr`` frozen dataclasses of plain values (or the
  message classes above). ``build(payload, ...) -> bytes`` for convenience;
  ``emit_into(buf, offset, payload_len, ...) -> payload offset`` writes into
  a preallocated ``bytearray`` whose payload is already in place, so a whole
  frame is assembled in one allocation. Builders compute lengths and
  checksums. They assume sane field values: a value that cannot be encoded
  raises ``ValueError`` (or ``struct.error``) — a programming error, not input.
- Addresses are raw ``bytes``: 6 for MACs, 4 for IPv4, 16 for IPv6. Checksum
  functions that need a pseudo-header take the IP addresses and choose v4/v6
  by their length. ``ip.to_ipaddress`` / ``ip.from_ipaddress`` and
  ``ethernet.mac_to_str`` / ``mac_from_str`` convert for tests and logs.
"""

from .errors import WireError

__all__ = ["WireError"]
