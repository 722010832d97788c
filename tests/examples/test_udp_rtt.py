"""udp_rtt: probes, loss accounting and percentiles, natively and on vnet."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from vnet.link.impairment import Impairment

from .harness import Lab, VnetLab

RTT_LINE = re.compile(r"udp_rtt: rtt_us min=(\d+) p50=(\d+) p99=(\d+) max=(\d+)$")


def test_twenty_probes_all_answered(lab: Lab) -> None:
    server = lab.start("alpha", "udp_rtt", "server", "9100")
    server.wait_for("listening on port 9100")
    client = lab.run("bravo", "udp_rtt", "client", "10.0.0.1", "9100", "20", "5", "500")
    assert client.exit_code == 0, client.describe()
    summary, rtt = client.lines()
    assert summary == "udp_rtt: 20 probes to 10.0.0.1 port 9100: 20 replies, 0 lost (0.0% loss)"
    match = RTT_LINE.match(rtt)
    assert match, rtt
    low, p50, p99, high = (int(v) for v in match.groups())
    assert 0 <= low <= p50 <= p99 <= high
    assert server.wait() == 0, server.describe()
    assert server.lines() == ["udp_rtt: listening on port 9100",
                              "udp_rtt: echoed 20 probe(s), bye"]


def test_probe_to_nobody_counts_as_lost(lab: Lab) -> None:
    client = lab.run("bravo", "udp_rtt", "client", "fd00::1", "9101", "3", "0", "100")
    assert client.exit_code == 1
    assert client.lines() == [
        "udp_rtt: 3 probes to fd00::1 port 9101: 0 replies, 3 lost (100.0% loss)"]


def test_link_latency_shows_exactly_in_virtual_time(example_wasm: Callable[[str], Path]) -> None:
    """1 ms each way on the segment: a round trip takes exactly 2000 µs of virtual time.

    Only the first probe takes 4000 µs: it waits for ARP (request and reply,
    another 1 ms each way) before it can leave. With 100 probes that shows in
    the maximum alone.
    """
    lab = VnetLab(example_wasm, latency_ns=1_000_000)
    try:
        server = lab.start("alpha", "udp_rtt", "server", "9102")
        server.wait_for("listening")
        client = lab.run("bravo", "udp_rtt", "client", "10.0.0.1", "9102", "100", "1")
        assert client.exit_code == 0, client.describe()
        assert client.lines()[1] == "udp_rtt: rtt_us min=2000 p50=2000 p99=2000 max=4000"
    finally:
        lab.close()


def test_loss_is_counted_and_reproducible(example_wasm: Callable[[str], Path]) -> None:
    """30% loss towards alpha: the same seed loses the same probes on every run."""
    outputs = []
    for _run in range(2):
        lab = VnetLab(example_wasm, seed=7)
        try:
            lab.nics["bravo"].port.ingress = Impairment(loss=0.3, seed=7)  # type: ignore[union-attr]
            server = lab.start("alpha", "udp_rtt", "server", "9103")
            server.wait_for("listening")
            client = lab.run("bravo", "udp_rtt", "client", "10.0.0.1", "9103", "40", "10", "100")
            outputs.append(client.stdout)
        finally:
            lab.close()
    assert outputs[0] == outputs[1]
    summary = outputs[0].splitlines()[0]
    lost = int(re.search(r"(\d+) lost", summary).group(1))  # type: ignore[union-attr]
    assert 0 < lost < 40, summary
