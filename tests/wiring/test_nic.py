"""The NIC: counters, capture taps, link state, MTU, address filter, cables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.wiring.helpers import BROADCAST, frame, mac, read_pcapng, tshark_fields
from vnet.link.capture import Capture, Direction
from vnet.link.impairment import Impairment
from vnet.link.nic import Nic, NicCounters
from vnet.link.segment import Segment
from vnet.scheduler import VIRTUAL_EPOCH_NS, Scheduler


class Host:
    """A NIC plus the list its stack would receive into."""

    def __init__(self, sched: Scheduler, n: int, **kwargs: int) -> None:
        self.received: list[bytes] = []
        self.times: list[int] = []
        self.sched = sched
        self.nic = Nic(sched, f"h{n}/eth0", mac(n), self.on_receive, **kwargs)  # type: ignore[arg-type]

    def on_receive(self, f: bytes) -> None:
        self.received.append(f)
        self.times.append(self.sched.monotonic_ns())


def two_hosts(**kwargs: int) -> tuple[Scheduler, Segment, Host, Host]:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan", **kwargs)  # type: ignore[arg-type]
    a, b = Host(sched, 1), Host(sched, 2)
    a.nic.attach(seg)
    b.nic.attach(seg)
    return sched, seg, a, b


def test_transmit_reaches_the_other_nic_and_counts_both_sides() -> None:
    _, _, a, b = two_hosts()
    f = frame(mac(2), mac(1), bytes(50))
    a.nic.transmit(f)
    assert b.received == [f]
    assert a.nic.counters == NicCounters(tx_frames=1, tx_bytes=64)
    assert b.nic.counters == NicCounters(rx_frames=1, rx_bytes=64)
    assert b.nic.counters.as_dict()["rx_bytes"] == 64


def test_nic_capture_records_outbound_and_inbound_with_names(tmp_path: Path) -> None:
    sched, seg, a, b = two_hosts(latency_ns=1_000)
    cap = Capture.in_memory()
    a.nic.capture(cap)
    b.nic.capture(cap)
    seg.capture(cap)
    request = frame(mac(2), mac(1), b"request")
    reply = frame(mac(1), mac(2), b"reply")
    a.nic.transmit(request)
    sched.run_for(5_000)
    b.nic.transmit(reply)
    sched.run_for(5_000)
    cap.close()
    packets, _ = read_pcapng(cap.getvalue())
    assert [(p.sniffed_on, p.direction, bytes(p)) for p in packets] == [
        ("h1/eth0", Direction.OUTBOUND, request),
        ("segment/lan", None, request),
        ("h2/eth0", Direction.INBOUND, request),
        ("h2/eth0", Direction.OUTBOUND, reply),
        ("segment/lan", None, reply),
        ("h1/eth0", Direction.INBOUND, reply),
    ]
    stamps = [int(p.time * 1_000_000_000) - VIRTUAL_EPOCH_NS for p in packets]
    assert stamps == [0, 0, 1_000, 5_000, 5_000, 6_000]
    path = tmp_path / "two.pcapng"
    path.write_bytes(cap.getvalue())
    rows = tshark_fields(path, "frame.interface_name", "frame.packet_flags_direction")
    assert rows == [["h1/eth0", "0x00000002"], ["segment/lan", ""], ["h2/eth0", "0x00000001"],
                    ["h2/eth0", "0x00000002"], ["segment/lan", ""], ["h1/eth0", "0x00000001"]]


def test_capturing_twice_into_one_capture_records_once() -> None:
    _, _, a, _ = two_hosts()
    cap = Capture.in_memory()
    assert a.nic.capture(cap) is a.nic.capture(cap)
    a.nic.transmit(frame(BROADCAST, mac(1)))
    assert cap.packets == 1


def test_link_down_drops_and_counts_both_ways() -> None:
    _, _, a, b = two_hosts()
    cap = Capture.in_memory()
    a.nic.capture(cap)
    a.nic.set_link(False)
    assert not a.nic.link_up
    a.nic.transmit(frame(BROADCAST, mac(1)))
    b.nic.transmit(frame(BROADCAST, mac(2)))
    assert (a.received, b.received) == ([], [])
    assert a.nic.counters == NicCounters(tx_dropped_link_down=1, rx_dropped_link_down=1)
    assert cap.packets == 0  # nothing crossed the wire
    a.nic.set_link(True)
    b.nic.transmit(frame(BROADCAST, mac(2)))
    assert len(a.received) == 1


@pytest.mark.parametrize(
    ("extra", "tags", "sent"),
    [
        (0, b"", True),
        (1, b"", False),
        (4, b"\x81\x00\x00\x01", True),  # one 802.1Q tag: +4 allowed
        (5, b"\x81\x00\x00\x01", False),
        (8, b"\x88\xa8\x00\x01\x81\x00\x00\x02", True),  # QinQ: +8
        (9, b"\x88\xa8\x00\x01\x81\x00\x00\x02", False),
        (4, b"\x08\x00\x00\x01", False),  # not a tag: no allowance
    ],
)
def test_oversize_frames_are_dropped_on_transmit(extra: int, tags: bytes, sent: bool) -> None:
    _, _, a, b = two_hosts()
    header = mac(2) + mac(1) + tags + b"\x08\x00"
    f = header + bytes(1500 + 14 + extra - len(header))
    assert len(f) == 1514 + extra
    a.nic.transmit(f)
    assert (len(b.received) == 1) is sent
    assert a.nic.counters.tx_dropped_oversize == (0 if sent else 1)


def test_runts_are_counted_and_dropped_both_ways() -> None:
    _, _, a, b = two_hosts()
    for n in (0, 1, 13):
        a.nic.transmit(b"\xff" * n)
        b.nic.deliver(b"\xff" * n)  # as a bridge handing over garbage would
    assert a.nic.counters.tx_dropped_runt == 3
    assert b.nic.counters.rx_dropped_runt == 3
    assert (b.received, a.nic.counters.tx_frames) == ([], 0)
    a.nic.transmit(b"\xff" * 14)
    assert b.received == [b"\xff" * 14]


def test_receiver_with_smaller_mtu_drops_oversize() -> None:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan")
    big, small = Host(sched, 1, mtu=9000), Host(sched, 2, mtu=1500)
    big.nic.attach(seg)
    small.nic.attach(seg)
    big.nic.transmit(frame(BROADCAST, mac(1), bytes(3000)))
    assert small.received == []
    assert small.nic.counters.rx_dropped_oversize == 1


def test_unicast_for_another_mac_is_filtered_unless_promiscuous() -> None:
    sched = Scheduler(virtual=True)
    seg = Segment(sched, "lan")
    a, b = Host(sched, 1), Host(sched, 2)
    sniffer = Nic(sched, "sniffer/eth0", mac(3), lambda f: seen.append(f), promiscuous=True)
    seen: list[bytes] = []
    for nic in (a.nic, b.nic, sniffer):
        nic.attach(seg)
    f = frame(mac(9), mac(1))  # unknown destination: the switch floods it
    a.nic.transmit(f)
    assert b.received == [] and b.nic.counters.rx_filtered == 1
    assert seen == [f]
    m = frame(bytes.fromhex("01005e000001"), mac(1))
    a.nic.transmit(m)
    assert b.received == [m]  # group frames always pass the NIC


def test_unattached_nic_counts_its_frames_as_dropped() -> None:
    sched = Scheduler(virtual=True)
    a = Host(sched, 1)
    a.nic.transmit(frame(BROADCAST, mac(1)))
    assert a.nic.counters.tx_dropped_unattached == 1


def test_attach_twice_is_refused_and_detach_allows_reattach() -> None:
    sched, _, a, _ = two_hosts()
    other = Segment(sched, "other")
    with pytest.raises(ValueError):
        a.nic.attach(other)
    a.nic.detach()
    a.nic.attach(other)
    assert a.nic.port is not None and a.nic.port.segment is other


def test_point_to_point_cable_with_latency_and_impairment() -> None:
    sched = Scheduler(virtual=True)
    a, b = Host(sched, 1), Host(sched, 2)
    cable = a.nic.connect(b.nic, latency_ns=2_000, tx_impairment=Impairment(loss=1.0))
    b.nic.transmit(frame(mac(1), mac(2)))
    a.nic.transmit(frame(mac(2), mac(1)))  # lost: a's tx impairment drops everything
    sched.run_for(10_000)
    assert a.times == [2_000]
    assert b.received == []
    assert cable.name == "h1/eth0--h2/eth0"
    assert a.nic.port is not None and a.nic.port.counters.drops == {"ingress_impairment": 1}
    cap = Capture.in_memory()
    assert cable.capture(cap).name == "cable/h1/eth0--h2/eth0"


def test_nic_rejects_bad_configuration() -> None:
    sched = Scheduler(virtual=True)
    with pytest.raises(ValueError):
        Nic(sched, "x", b"\x02\x00", lambda f: None)
    with pytest.raises(ValueError):
        Nic(sched, "x", bytes.fromhex("010000000001"), lambda f: None)
    with pytest.raises(ValueError):
        Nic(sched, "x", mac(1), lambda f: None, mtu=10)
    nic = Nic(sched, "x", mac(1), lambda f: None)
    with pytest.raises(ValueError):
        nic.connect(nic)
