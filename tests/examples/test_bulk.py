"""bulk: TCP transfers arrive whole (same size and FNV-1a checksum); UDP datagrams counted."""

from __future__ import annotations

import functools
import re

from .harness import Lab

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


@functools.cache
def expected_stream_checksum(size: int) -> str:
    """FNV-1a 64 of the first `size` bytes of bulk.c's xorshift32 stream."""
    x = 2463534242
    h = FNV_OFFSET
    mask32 = 0xFFFFFFFF
    mask64 = 0xFFFFFFFFFFFFFFFF
    for _ in range(size):
        x ^= (x << 13) & mask32
        x ^= x >> 17
        x ^= (x << 5) & mask32
        h = ((h ^ (x & 0xFF)) * FNV_PRIME) & mask64
    return f"{h:016x}"


def test_tcp_transfer_arrives_whole(lab: Lab) -> None:
    size = 256 * 1024
    receiver = lab.start("alpha", "bulk", "recv", "5001")
    receiver.wait_for("listening on port 5001")
    sender = lab.run("bravo", "bulk", "send", "alpha", "5001", "0.25", "10000")
    assert sender.exit_code == 0, sender.describe()
    assert receiver.wait() == 0, receiver.describe()
    checksum = expected_stream_checksum(size)
    assert re.fullmatch(rf"bulk: sent {size} bytes fnv1a64={checksum} in \d+\.\d{{3}} s "
                        r"\((\d+\.\d\d MB/s|too fast to time)\)\n", sender.stdout), sender.stdout
    assert re.fullmatch(rf"bulk: listening on port 5001\nbulk: received {size} bytes "
                        rf"fnv1a64={checksum} in \d+\.\d{{3}} s "
                        r"\((\d+\.\d\d MB/s|too fast to time)\)\n", receiver.stdout), (
        receiver.stdout)


def test_udp_datagrams_are_all_delivered_when_the_buffer_suffices(lab: Lab) -> None:
    receiver = lab.start("alpha", "bulk", "udp-recv", "5002", "50", "500")
    receiver.wait_for("listening for datagrams on port 5002")
    sender = lab.run("bravo", "bulk", "udp-send", "10.0.0.1", "5002", "200", "50")
    assert sender.exit_code == 0, sender.describe()
    assert sender.stdout.startswith("bulk: sent 50 datagrams of 200 bytes (0 failed) in ")
    assert receiver.wait() == 0, receiver.describe()
    assert receiver.lines()[1].startswith("bulk: received 50 datagrams, 10000 bytes in ")


def test_udp_receiver_stops_when_the_sender_goes_quiet(lab: Lab) -> None:
    receiver = lab.start("alpha", "bulk", "udp-recv", "5003", "0", "200")
    receiver.wait_for("listening")
    lab.run("bravo", "bulk", "udp-send", "fd00::1", "5003", "1000", "5")
    assert receiver.wait() == 0, receiver.describe()
    assert receiver.lines()[1].startswith("bulk: received 5 datagrams, 5000 bytes in ")
