"""The learning switch: learning, flooding, no hairpin, aging, latency, capture, bad input."""

from __future__ import annotations

import pytest

from tests.wiring.helpers import BROADCAST, Sink, frame, mac, read_pcapng
from vnet.link.capture import Capture
from vnet.link.segment import (
    DROP_DETACHED,
    DROP_PARTITIONED,
    DROP_RUNT,
    DROP_SAME_PORT,
    Cable,
    Segment,
    SegmentPort,
)
from vnet.scheduler import VIRTUAL_EPOCH_NS, Scheduler


def lan(n: int = 3, **kwargs: int) -> tuple[Scheduler, Segment, list[Sink], list[SegmentPort]]:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan", **kwargs)  # type: ignore[arg-type]
    sinks = [Sink(f"h{i}/eth0", sched) for i in range(1, n + 1)]
    ports = [seg.attach(s) for s in sinks]
    return sched, seg, sinks, ports


def test_unknown_unicast_floods_to_every_other_port() -> None:
    _, _, sinks, ports = lan(3)
    f = frame(mac(2), mac(1), b"hello")
    ports[0].send(f)
    assert [s.frames for s in sinks] == [[], [f], [f]]


def test_learned_unicast_goes_only_to_its_port() -> None:
    _, seg, sinks, ports = lan(3)
    ports[1].send(frame(BROADCAST, mac(2)))  # h2 announces itself
    for s in sinks:
        s.frames.clear()
    f = frame(mac(2), mac(1), b"to h2")
    ports[0].send(f)
    assert [s.frames for s in sinks] == [[], [f], []]
    assert seg.mac_table() == {mac(2): ports[1], mac(1): ports[0]}


def test_broadcast_and_multicast_flood_but_never_hairpin() -> None:
    _, _, sinks, ports = lan(4)
    b = frame(BROADCAST, mac(3))
    m = frame(bytes.fromhex("01005e010203"), mac(3))
    ports[2].send(b)
    ports[2].send(m)
    assert [s.frames for s in sinks] == [[b, m], [b, m], [], [b, m]]


def test_unicast_to_a_mac_on_the_ingress_port_is_dropped() -> None:
    _, _, sinks, ports = lan(2)
    ports[0].send(frame(BROADCAST, mac(1)))
    sinks[1].frames.clear()
    ports[0].send(frame(mac(1), mac(9)))  # mac(1) lives behind port 0 itself
    assert [s.frames for s in sinks] == [[], []]
    assert ports[0].counters.drops == {DROP_SAME_PORT: 1}


def test_a_partition_passes_frames_only_within_a_group_until_healed() -> None:
    _, seg, sinks, ports = lan(4)
    seg.partition([[ports[0], ports[1]], [ports[2]]])  # port 3 is in no group: one more
    b = frame(BROADCAST, mac(1))
    ports[0].send(b)
    assert [s.frames for s in sinks] == [[], [b], [], []]
    u = frame(mac(1), mac(3), b"across")  # mac(1) learned behind port 0
    ports[2].send(u)
    assert sinks[0].frames == []
    assert ports[0].counters.drops == {DROP_PARTITIONED: 1}
    assert ports[2].counters.drops[DROP_PARTITIONED] == 1  # the broadcast's copy
    seg.partition(None)
    ports[2].send(u)
    assert sinks[0].frames == [u]


def test_a_mac_that_moves_is_relearned_on_its_new_port() -> None:
    _, seg, sinks, ports = lan(3)
    ports[0].send(frame(BROADCAST, mac(7)))
    ports[2].send(frame(BROADCAST, mac(7)))
    for s in sinks:
        s.frames.clear()
    f = frame(mac(7), mac(2))
    ports[1].send(f)
    assert [s.frames for s in sinks] == [[], [], [f]]
    assert seg.counters["mac_moved"] == 1


def test_learned_entries_age_out_in_scheduler_time() -> None:
    sched, seg, sinks, ports = lan(3, aging_ns=1_000)
    ports[1].send(frame(BROADCAST, mac(2)))
    sched.run_for(1_000)
    for s in sinks:
        s.frames.clear()
    f = frame(mac(2), mac(1))
    ports[0].send(f)  # age exactly 1000 ns: still known
    assert [len(s.frames) for s in sinks] == [0, 1, 0]
    sched.run_for(1_001)  # 2001 ns since h2 was last heard from
    assert mac(2) not in seg.mac_table()
    ports[0].send(f)
    assert [len(s.frames) for s in sinks] == [0, 2, 1]  # flooded again


def test_every_frame_from_a_mac_refreshes_its_age() -> None:
    sched, seg, sinks, ports = lan(3, aging_ns=1_000)
    for _ in range(5):  # h2 talks every 600 ns: never 1000 ns silent
        ports[1].send(frame(mac(1), mac(2)))
        sched.run_for(600)
    for s in sinks:
        s.frames.clear()
    ports[0].send(frame(mac(2), mac(1)))
    assert [len(s.frames) for s in sinks] == [0, 1, 0]
    assert seg.mac_table()[mac(2)] is ports[1]


def test_group_source_addresses_are_not_learned() -> None:
    _, seg, _, ports = lan(2)
    ports[0].send(frame(BROADCAST, bytes.fromhex("0300000000aa")))
    assert seg.mac_table() == {}


def test_runt_frames_are_counted_and_dropped() -> None:
    _, _, sinks, ports = lan(2)
    for n in (0, 1, 13):
        ports[0].send(b"\xff" * n)
    ports[0].send(b"\xff" * 14)  # a bare header is a frame
    assert ports[0].counters.drops == {DROP_RUNT: 3}
    assert ports[0].counters.frames_in == 4
    assert len(sinks[1].frames) == 1


def test_port_counters_count_frames_and_bytes_both_ways() -> None:
    _, _, _, ports = lan(3)
    ports[0].send(frame(BROADCAST, mac(1), bytes(100)))  # 114 bytes, flooded to 2 ports
    ports[1].send(frame(mac(1), mac(2)))  # 60 bytes, to port 0
    c0, c1, c2 = (p.counters for p in ports)
    assert (c0.frames_in, c0.bytes_in, c0.frames_out, c0.bytes_out) == (1, 114, 1, 60)
    assert (c1.frames_in, c1.bytes_in, c1.frames_out, c1.bytes_out) == (1, 60, 1, 114)
    assert (c2.frames_in, c2.bytes_in, c2.frames_out, c2.bytes_out) == (0, 0, 1, 114)


def test_latency_delivers_exactly_latency_ns_later_in_virtual_time() -> None:
    sched, _, sinks, ports = lan(2, latency_ns=250_000)
    sched.run_for(1_000)
    ports[0].send(frame(BROADCAST, mac(1)))
    assert sinks[1].frames == []
    sched.run_for(500_000)
    assert sinks[1].times == [251_000]
    sched.call_at(600_000, lambda: ports[1].send(frame(mac(1), mac(2))))
    sched.run_for(1_000_000)
    assert sinks[0].times == [850_000]


def test_zero_latency_replies_are_queued_not_nested() -> None:
    """A reply sent from inside deliver() arrives after deliver() returns, in FIFO order."""
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan")
    log: list[str] = []

    class Echo:
        name = "echo"

        def deliver(self, f: bytes) -> None:
            log.append("echo got")
            echo_port.send(frame(f[6:12], mac(2), b"pong"))
            log.append("echo returned")

    class Pinger:
        name = "pinger"

        def deliver(self, f: bytes) -> None:
            log.append("pinger got pong")

    echo_port = seg.attach(Echo())
    pinger_port = seg.attach(Pinger())
    pinger_port.send(frame(BROADCAST, mac(1), b"ping"))
    assert log == ["echo got", "echo returned", "pinger got pong"]


def test_deep_ping_pong_does_not_recurse() -> None:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan")
    count = [0]

    class Bouncer:
        def __init__(self, me: int, other: int) -> None:
            self.me, self.other = me, other
            self.port: SegmentPort

        def deliver(self, f: bytes) -> None:
            count[0] += 1
            if count[0] < 5000:
                self.port.send(frame(mac(self.other), mac(self.me)))

    a, b = Bouncer(1, 2), Bouncer(2, 1)
    a.port, b.port = seg.attach(a), seg.attach(b)
    a.port.send(frame(mac(2), mac(1)))
    assert count[0] == 5000  # would blow the recursion limit if deliveries nested


def test_detached_port_gets_nothing_and_in_flight_frames_are_dropped() -> None:
    sched, seg, sinks, ports = lan(3, latency_ns=100)
    ports[1].send(frame(BROADCAST, mac(2)))
    ports[0].send(frame(mac(2), mac(1)))  # in flight to port 1
    ports[1].detach()
    sched.run_for(1_000)
    assert len(sinks[1].frames) == 0
    assert ports[1].counters.drops == {DROP_DETACHED: 1}
    assert mac(2) not in seg.mac_table()
    ports[1].send(frame(BROADCAST, mac(2)))
    assert ports[1].counters.drops == {DROP_DETACHED: 2}
    assert seg.ports == (ports[0], ports[2])


def test_mac_table_is_bounded() -> None:
    _, seg, sinks, ports = lan(2, max_macs=4)
    for i in range(10):
        ports[0].send(frame(BROADCAST, mac(10 + i)))
    assert len(seg.mac_table()) == 4
    assert seg.counters["mac_table_full"] == 6
    sinks[0].frames.clear()
    ports[1].send(frame(mac(15), mac(99)))  # not learned: flooded, still delivered
    assert len(sinks[0].frames) == 1


def test_segment_capture_records_each_frame_once_with_virtual_timestamps() -> None:
    sched, seg, _, ports = lan(3, latency_ns=10)
    cap = Capture.in_memory()
    seg.capture(cap)
    f1 = frame(BROADCAST, mac(1))
    f2 = frame(mac(1), mac(2))
    ports[0].send(f1)
    sched.run_for(100)
    ports[1].send(f2)
    ports[0].send(b"\x00" * 5)  # runt: never crosses the switch
    packets, _ = read_pcapng(cap.getvalue())
    assert [bytes(p) for p in packets] == [f1, f2]
    assert {p.sniffed_on for p in packets} == {"segment/lan"}
    assert [int(p.time * 1_000_000_000) - VIRTUAL_EPOCH_NS for p in packets] == [0, 100]


def test_cable_passes_everything_to_the_other_end_and_has_two_ends() -> None:
    sched = Scheduler(virtual=True)
    cable = Cable(sched, "a--b", latency_ns=5)
    a, b = Sink("a", sched), Sink("b", sched)
    pa, pb = cable.attach(a), cable.attach(b)
    with pytest.raises(ValueError):
        cable.attach(Sink("c"))
    pb.send(frame(BROADCAST, mac(1)))  # even "mac(1) is behind b" ...
    pa.send(frame(mac(1), mac(2)))  # ... a cable still carries this to b
    sched.run_for(10)
    assert len(a.frames) == 1 and len(b.frames) == 1
    assert b.times == [5]


def test_real_time_segment_with_latency_delivers() -> None:
    sched = Scheduler(virtual=False)
    seg = Segment(sched, "rt", latency_ns=1_000_000)
    a, b = Sink("a", sched), Sink("b", sched)
    pa = seg.attach(a)
    seg.attach(b)
    with sched.lock:
        sent = sched.monotonic_ns()
        pa.send(frame(BROADCAST, mac(1)))
    assert sched.run(until=lambda: bool(b.frames), timeout_s=5)
    assert b.times[0] - sent >= 1_000_000


def test_bytearray_and_memoryview_frames_are_copied_once() -> None:
    _, _, sinks, ports = lan(2)
    buf = bytearray(frame(BROADCAST, mac(1)))
    ports[0].send(buf)
    ports[0].send(memoryview(buf))
    buf[0] = 0
    assert all(type(f) is bytes and f[0] == 0xFF for f in sinks[1].frames)
