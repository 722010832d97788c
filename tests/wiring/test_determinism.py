"""Two identical virtual-time runs give byte-identical captures; tshark agrees with us."""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import partial
from pathlib import Path

from tests.wiring.helpers import BROADCAST, frame, mac, tshark_fields
from vnet.link.capture import Capture
from vnet.link.impairment import Impairment
from vnet.link.nic import Nic
from vnet.link.segment import Segment
from vnet.scheduler import Scheduler


class EchoHost:
    """Answers every unicast frame for it with a frame back to the sender, for a while."""

    def __init__(self, sched: Scheduler, n: int, limit: int = 400) -> None:
        self.n = n
        self.limit = limit
        self.nic = Nic(sched, f"h{n}/eth0", mac(n), self.on_receive)
        self.received = 0

    def on_receive(self, f: bytes) -> None:
        self.received += 1
        if f[0] & 1 or self.received > self.limit:
            return
        self.nic.transmit(frame(f[6:12], mac(self.n), f[14:18] + b"echo"))


def run_topology(path: Path, seed: int) -> Capture:
    """A switched LAN of three hosts plus a cable to a fourth, all impaired, all captured."""
    sched = Scheduler(virtual=True)
    cap = Capture.to_file(path)
    lan = Segment(sched, "lan", latency_ns=20_000)
    lan.capture(cap)
    hosts = [EchoHost(sched, n) for n in (1, 2, 3, 4)]
    for i, host in enumerate(hosts[:3]):
        host.nic.capture(cap)
        host.nic.attach(
            lan,
            tx_impairment=Impairment(loss=0.02, reorder=0.05, jitter_ns=3_000, seed=seed + i),
            rx_impairment=Impairment(duplicate=0.02, delay_ns=1_000, seed=seed + 10 + i),
        )
    hosts[3].nic.capture(cap)
    h3b = Nic(sched, "h3/eth1", mac(33), lambda f: None)
    h3b.capture(cap)
    cable = h3b.connect(hosts[3].nic, latency_ns=5_000,
                        tx_impairment=Impairment(loss=0.1, seed=seed + 20))
    cable.capture(cap)
    for h in hosts[:3]:
        sched.call_at(h.n * 7, partial(h.nic.transmit, frame(BROADCAST, mac(h.n))))
    for k in range(200):
        src, dst = hosts[k % 3], hosts[(k + 1) % 3]
        f = frame(mac(dst.n), mac(src.n), k.to_bytes(4, "big") + b"ping")
        sched.call_at(1_000_000 + k * 50_000, partial(src.nic.transmit, f))
        cross = frame(mac(4), mac(33), k.to_bytes(4, "big"))
        sched.call_at(1_000_000 + k * 50_000 + 1, partial(h3b.transmit, cross))
    sched.run_for(100_000_000)
    cap.close()
    return cap


def test_identical_virtual_runs_write_byte_identical_pcapng(tmp_path: Path) -> None:
    a = run_topology(tmp_path / "a.pcapng", seed=5)
    b = run_topology(tmp_path / "b.pcapng", seed=5)
    run_topology(tmp_path / "c.pcapng", seed=6)
    data_a = (tmp_path / "a.pcapng").read_bytes()
    assert a.packets > 1000
    assert hashlib.sha256(data_a).digest() == hashlib.sha256(
        (tmp_path / "b.pcapng").read_bytes()).digest()
    assert data_a != (tmp_path / "c.pcapng").read_bytes()
    assert a.interfaces == ["segment/lan", "h1/eth0", "h2/eth0", "h3/eth0", "h4/eth0",
                            "h3/eth1", "cable/h3/eth1--h4/eth0"]
    # tshark reads every packet, on the interfaces we named, in non-decreasing time.
    rows = tshark_fields(tmp_path / "a.pcapng", "frame.interface_name", "frame.time_epoch")
    assert len(rows) == a.packets == b.packets
    per_interface = Counter(name for name, _ in rows)
    assert set(per_interface) == set(a.interfaces)
    times = [int(t.replace(".", "")) for _, t in rows]
    assert times == sorted(times)
