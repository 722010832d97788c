"""Reasons a frame is rejected by a ``stack.wire`` parser.

This module touches nothing: it only names reasons. Every parser in the package
returns either a parsed view/representation or one of these members, never
raises on bad input. Members are singletons, so returning one allocates
nothing, and their ``value`` strings are stable: the stack uses them (usually
together with the layer name) as drop-counter keys.
"""

from __future__ import annotations

import enum


class WireError(enum.Enum):
    """Why a buffer is not a valid instance of the format being parsed."""

    #: The buffer ends before the header, or before what a length field promises.
    TRUNCATED = "truncated"
    #: A length field is impossible (smaller than the header it describes,
    #: not a legal size for this message, ...).
    BAD_LENGTH = "bad_length"
    #: The checksum does not verify (or is absent where it is mandatory).
    BAD_CHECKSUM = "bad_checksum"
    #: The version field names another protocol version.
    BAD_VERSION = "bad_version"
    #: An option / TLV area is malformed: zero-length option, option running
    #: past its area, wrong length for a known option.
    BAD_OPTION = "bad_option"
    #: An IPv6 extension-header chain is out of order (hop-by-hop not first).
    BAD_HEADER_CHAIN = "bad_header_chain"
    #: More extension headers / VLAN tags than the parser's bound.
    TOO_MANY_HEADERS = "too_many_headers"
    #: Well-formed, but a variant this package does not parse (unknown message
    #: type, non-Ethernet/IPv4 ARP, ...).
    UNSUPPORTED = "unsupported"

    def __str__(self) -> str:
        return self.value
