"""The rtnetlink codec (vnet.guest.netlink_wire) on its own: the kernel's rules for bad input.

Messages are walked as Linux's netlink_rcv_skb walks them (a header shorter
than itself or longer than what is left ends the walk, and the rest is
ignored); attributes as nla_parse does in its liberal mode (the first one
that does not fit ends them); errors echo the request as netlink_ack does.
Random bytes never raise.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from vnet.guest import netlink_wire as nl


def _header(length: int, msg_type: int = nl.RTM_GETLINK, flags: int = nl.NLM_F_REQUEST,
            seq: int = 7, port: int = 0) -> bytes:
    return nl.NLMSG_HEADER.pack(length, msg_type, flags, seq, port)


def test_two_messages_are_split_at_their_aligned_lengths() -> None:
    first = _header(17) + b"\x01" + b"\0\0\0"  # 17 bytes, padded to 20
    second = _header(20, nl.RTM_GETADDR, seq=8) + b"\x02\0\0\0"
    messages, ignored = nl.split_messages(first + second)
    assert [(m.msg_type, m.seq, bytes(m.payload)) for m in messages] == [
        (nl.RTM_GETLINK, 7, b"\x01"), (nl.RTM_GETADDR, 8, b"\x02\0\0\0")]
    assert ignored == 0


def test_a_length_shorter_than_a_header_ends_the_walk() -> None:
    good = _header(16)
    messages, ignored = nl.split_messages(good + _header(8) + bytes(8))
    assert len(messages) == 1 and ignored == 24


def test_a_length_past_the_datagram_ends_the_walk() -> None:
    messages, ignored = nl.split_messages(_header(200) + bytes(16))
    assert messages == [] and ignored == 32


def test_attributes_stop_at_the_first_that_does_not_fit() -> None:
    data = nl.attribute_u32(nl.IFLA_MTU, 1400) + struct.pack("<HH", 64, nl.IFLA_IFNAME) + b"x"
    attrs = nl.parse_attributes(data)
    assert attrs == {nl.IFLA_MTU: struct.pack("<I", 1400)}
    assert nl.u32_of(attrs.get(nl.IFLA_MTU)) == 1400 and nl.u32_of(b"\1\2") is None


def test_nested_and_byteorder_bits_are_not_part_of_the_type() -> None:
    attrs = nl.parse_attributes(nl.attribute(nl.IFLA_IFNAME | 0x8000, b"eth0\0"))
    assert nl.string_of(attrs.get(nl.IFLA_IFNAME)) == "eth0"


def test_an_error_echoes_the_request_and_an_ack_its_header() -> None:
    request = _header(20, seq=42) + b"\x01\x02\x03\x04"
    (message,), _ = nl.split_messages(request)
    error = nl.error_message(-19, message, port_id=4096)
    length, msg_type, flags, seq, port = nl.NLMSG_HEADER.unpack_from(error)
    assert (length, msg_type, flags, seq, port) == (16 + 4 + 20, nl.NLMSG_ERROR, 0, 42, 4096)
    assert struct.unpack_from("<i", error, 16)[0] == -19 and error[20:] == request
    ack = nl.error_message(0, message, port_id=4096)
    assert nl.NLMSG_HEADER.unpack_from(ack)[2] == nl.NLM_F_CAPPED and ack[20:] == request[:16]
    capped = nl.error_message(-19, message, port_id=4096, capped=True)
    assert len(capped) == 36


def test_done_ends_a_dump_with_multi() -> None:
    done = nl.done_message(9, 4096)
    assert nl.NLMSG_HEADER.unpack_from(done) == (20, nl.NLMSG_DONE, nl.NLM_F_MULTI, 9, 4096)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    messages, ignored = nl.split_messages(data)
    consumed = sum(nl.align4(len(m.raw)) for m in messages)
    assert ignored == max(0, len(data) - consumed)
    for message in messages:
        nl.parse_attributes(message.payload)
        nl.parse_attributes(message.payload[16:])
