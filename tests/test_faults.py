"""Faults on a schedule: partitions, link flaps, impairment changes, killed and restarted guests,
frozen hosts.

Every run is in virtual time, so times are exact: a 4 MiB TCP transfer
(examples/bulk.c) on a 1 ms LAN takes 82 ms; faults are placed inside it.
Assertions are on what a user sees: the client's exit status and output, the
run's summary, and the frames in each NIC's capture.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.sim.faults import FaultSpec, RandomFaults, draw_random, plan
from vnet.sim.runner import SimResult, print_summary, run
from vnet.sim.topology import TopologyError, load
from vnet.testing.pcap import read_pcapng

MS = 1_000_000
S = 1_000_000_000

BULK = """
[sim]
virtual_time = true
seed = 3
duration = "60s"
clients = ["client/send"]

[segments.lan]
latency = "1ms"

[hosts.server]
[[hosts.server.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]
[[hosts.server.guests]]
name = "recv"
module = "bulk.wasm"
args = ["recv", "5001"]

[hosts.client]
[[hosts.client.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
[[hosts.client.guests]]
name = "send"
module = "bulk.wasm"
args = ["send", "10.0.0.1", "5001", "4"]
start = "10ms"
"""

ECHO = """
[sim]
virtual_time = true
duration = "60s"
clients = ["early/echo", "late/echo"]

[segments.lan]
latency = "1ms"

[hosts.server]
[[hosts.server.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]
[[hosts.server.guests]]
name = "echo"
module = "tcp_echo_server.wasm"
args = ["7000"]

[hosts.early]
[[hosts.early.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
[[hosts.early.guests]]
name = "echo"
module = "tcp_echo_client.wasm"
args = ["10.0.0.1", "7000", "hello"]
start = "600ms"

[hosts.late]
[[hosts.late.nics]]
segment = "lan"
addresses = ["10.0.0.3/24"]
[[hosts.late.guests]]
name = "echo"
module = "tcp_echo_client.wasm"
args = ["10.0.0.1", "7000", "again"]
start = "1500ms"

[[faults]]
at = "500ms"
action = "kill"
guest = "server/echo"
for = "500ms"
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory,
            example_wasm: Callable[[str], Path]) -> Path:
    directory = tmp_path_factory.mktemp("faults")
    for name in ("bulk", "tcp_echo_server", "tcp_echo_client", "ticker"):
        shutil.copyfile(example_wasm(name), directory / f"{name}.wasm")
    return directory


def _topology(workdir: Path, name: str, text: str) -> Path:
    path = workdir / f"{name}.toml"
    path.write_text(text)
    return path


def _run(path: Path, pcaps: Path,
         faults: list[FaultSpec] | None = None) -> tuple[SimResult, str]:
    topo = load(path)
    topo.faults.extend(faults or [])  # the Python API: FaultSpec objects
    out = io.BytesIO()
    result = run(topo, pcap_dir=pcaps, out=out)
    return result, out.getvalue().decode()


def _summary(result: SimResult) -> str:
    text = io.StringIO()
    print_summary(result, text)
    return text.getvalue()


def _frame_times(pcap: Path, direction: int) -> list[int]:
    """Virtual times (ns) of the TCP/IPv4 frames a NIC captured in one direction."""
    return [p.time_ns for p in read_pcapng(pcap) if p.direction == direction
            and p.data[12:14] == b"\x08\x00"]


def test_partition_delays_a_tcp_transfer_by_its_length(workdir: Path, tmp_path: Path) -> None:
    path = _topology(workdir, "bulk", BULK)
    baseline, _ = _run(path, tmp_path / "base")
    assert baseline.ok and baseline.elapsed_ns == 82 * MS
    partition = FaultSpec(40 * MS, "partition", segment="lan", groups=[["client"], ["server"]],
                          duration_ns=2 * S)
    cut, text = _run(path, tmp_path / "cut", [partition])
    assert cut.ok, text
    assert "bulk: sent 4194304 bytes fnv1a64=19e1f9b344866b0d" in text  # every byte, intact
    delay = cut.elapsed_ns - baseline.elapsed_ns
    # the transfer resumes at the first retransmission after the heal: at least the
    # partition's length later, at most one (doubled) retransmission timeout after it
    assert 2 * S <= delay <= 2 * 2 * S, delay
    assert cut.faults[0] == "    0.040 s  partition lan: client | server"
    assert cut.faults[1].startswith("    2.040 s  heal lan (") and "frames dropped" in cut.faults[1]
    # nothing from the client reached the server while the segment was split
    inbound = _frame_times(tmp_path / "cut" / "server-eth0.pcapng", 1)
    assert not [t for t in inbound if 42 * MS <= t < 2040 * MS]
    assert [t for t in inbound if t < 40 * MS] and [t for t in inbound if t >= 2040 * MS]
    # ... while the client kept sending (retransmissions) into the partition
    outbound = _frame_times(tmp_path / "cut" / "client-eth0.pcapng", 2)
    assert [t for t in outbound if 42 * MS <= t < 2040 * MS]
    assert "faults:\n      0.040 s  partition lan: client | server\n" in _summary(cut)
    _run(path, tmp_path / "again", [partition])
    for pcap in ("server-eth0.pcapng", "client-eth0.pcapng"):
        assert (tmp_path / "cut" / pcap).read_bytes() == (tmp_path / "again" / pcap).read_bytes()


def test_link_flap_is_a_gap_in_the_capture(workdir: Path, tmp_path: Path) -> None:
    text = BULK + """
[[faults]]
at = "40ms"
action = "link-down"
nic = "client/eth0"
for = "1s"
"""
    result, output = _run(_topology(workdir, "flap", text), tmp_path)
    assert result.ok, output
    assert result.faults == ["    0.040 s  link down client/eth0",
                             "    1.040 s  link up client/eth0"]
    frames = [p.time_ns for p in read_pcapng(tmp_path / "client-eth0.pcapng")]
    assert not [t for t in frames if 40 * MS < t < 1040 * MS]
    assert [t for t in frames if t <= 40 * MS] and [t for t in frames if t >= 1040 * MS]
    assert result.elapsed_ns >= 1040 * MS


def test_fault_after_a_guest_prints_counts_from_then(workdir: Path, tmp_path: Path) -> None:
    text = BULK.replace('start = "10ms"', 'start = "100ms"') + """
[[faults]]
after = { guest = "client/send", prints = "sent" }
at = "1s"
action = "kill"
guest = "server/recv"

[[faults]]
after = { guest = "server/recv", prints = "listening" }
at = "120ms"
action = "link-down"
nic = "client/eth0"
for = "500ms"
"""
    result, output = _run(_topology(workdir, "after", text), tmp_path)
    assert result.ok, output
    # the server printed "listening" at once (plus its host calls' charge in virtual time)
    trigger, down, up, sent = result.faults
    assert trigger.endswith("  server/recv printed 'listening'")
    started = float(trigger.split()[0])
    assert started < 0.001
    assert down == f"{started + 0.120:9.3f} s  link down client/eth0"
    assert up == f"{started + 0.620:9.3f} s  link up client/eth0"
    # the client prints "sent" as it exits: the kill that triggers is due 1 s later,
    # after the run has ended
    assert sent.endswith("  client/send printed 'sent'") and float(sent.split()[0]) > 0.62
    assert result.elapsed_ns < float(sent.split()[0]) * S + 1 * S
    frames = [p.time_ns for p in read_pcapng(tmp_path / "client-eth0.pcapng")]
    assert not [t for t in frames if 121 * MS < t < 620 * MS]


def test_impairment_change_slows_the_transfer_then_is_restored(workdir: Path,
                                                               tmp_path: Path) -> None:
    path = _topology(workdir, "bulk", BULK)
    delay = FaultSpec(0, "impair", nic="server/eth0", delay_ns=20 * MS, duration_ns=60 * S)
    slow, output = _run(path, tmp_path / "slow", [delay])
    assert slow.ok, output
    assert slow.faults == ["    0.000 s  impair server/eth0: delay 20 ms"]  # the run ended first
    # +20 ms on each direction of the server's NIC: the handshake alone takes 80 ms more
    assert slow.elapsed_ns > 82 * MS + 80 * MS
    brief = FaultSpec(0, "impair", nic="server/eth0", delay_ns=20 * MS, duration_ns=5 * MS)
    restored, _ = _run(path, tmp_path / "brief", [brief])
    assert restored.faults[1] == "    0.005 s  impairment of server/eth0 restored"
    assert restored.elapsed_ns == 82 * MS  # nothing was sent before the client started


def test_killed_guest_peer_sees_a_reset(workdir: Path, tmp_path: Path) -> None:
    text = BULK + """
[[faults]]
at = "40ms"
action = "kill"
guest = "server/recv"
"""
    result, output = _run(_topology(workdir, "kill", text), tmp_path)
    assert not result.ok
    codes = {g.name: (g.exit_code, g.trap) for g in result.guests}
    assert codes["server/recv"] == (137, "killed by a fault at 0.040 s")
    assert codes["client/send"][0] == 1
    assert "client/send | bulk: write: Broken pipe" in output
    summary = _summary(result)
    assert "server/recv  137 (trap: killed by a fault at 0.040 s)" in summary
    from scapy.layers.inet import TCP

    resets = [p for p in read_pcapng(tmp_path / "server-eth0.pcapng")
              if p.direction == 2 and TCP in p and p[TCP].flags & 0x04]
    assert resets and resets[0].time_ns >= 40 * MS


def test_restarted_guest_serves_again(workdir: Path, tmp_path: Path) -> None:
    result, output = _run(_topology(workdir, "echo", ECHO), tmp_path)
    codes = {g.name: g.exit_code for g in result.guests}
    assert codes["early/echo"] == 2, output  # the server was down: refused
    assert "early/echo  | tcp_echo_client: 10.0.0.1 port 7000: Connection refused" in output
    assert codes["late/echo"] == 0, output
    assert 'late/echo   | tcp_echo_client: echo ok "again"' in output
    assert output.count("server/echo | tcp_echo_server: listening on port 7000") == 2
    assert result.faults == ["    0.500 s  kill server/echo", "    1.000 s  restart server/echo"]


def test_random_fault_plans_follow_the_seed_within_bounds() -> None:
    bounds = RandomFaults(within_ns=60 * S, partitions=3, partition_max_ns=5 * S,
                          link_flaps=2, link_flap_max_ns=1 * S, kills=1,
                          kill_guests=["server/echo"], restart_max_ns=2 * S)
    segments = {"lan": ["a", "b", "c", "server"]}
    nics = ["a/eth0", "b/eth0", "c/eth0", "server/eth0"]
    plans = [draw_random(bounds, seed, segments, nics) for seed in range(40)]
    assert plans == [draw_random(bounds, seed, segments, nics) for seed in range(40)]
    assert len({repr(p) for p in plans}) > 30
    counts: dict[str, set[int]] = {kind: set() for kind in ("partition", "link-down", "kill")}
    for drawn in plans:
        for kind in counts:
            counts[kind].add(sum(1 for f in drawn if f.action == kind))
        for fault in drawn:
            assert 0 <= fault.at_ns < 60 * S
            if fault.action == "partition":
                assert fault.duration_ns is not None and fault.duration_ns <= 5 * S
                a, b = fault.groups
                assert a and b and sorted(a + b) == ["a", "b", "c", "server"]
            elif fault.action == "link-down":
                assert fault.nic in nics and fault.duration_ns is not None
                assert fault.duration_ns <= 1 * S
            else:
                assert fault.guest == "server/echo" and fault.duration_ns is not None
                assert fault.duration_ns <= 2 * S
    assert counts == {"partition": {0, 1, 2, 3}, "link-down": {0, 1, 2}, "kill": {0, 1}}
    events = plan(plans[1])
    assert [e.at_ns for e in events] == sorted(e.at_ns for e in events)
    # freezes are drawn after everything else: adding them leaves each seed's other faults
    bounds.freezes, bounds.freeze_max_ns, bounds.freeze_hosts = 2, 3 * S, ["a", "server"]
    frozen_counts = set()
    for seed, before in enumerate(plans):
        drawn = draw_random(bounds, seed, segments, nics)
        assert drawn[:len(before)] == before
        freezes = drawn[len(before):]
        frozen_counts.add(len(freezes))
        for fault in freezes:
            assert fault.action == "freeze" and fault.host in ("a", "server")
            assert 0 <= fault.at_ns < 60 * S and fault.duration_ns is not None
            assert 100 * MS <= fault.duration_ns <= 3 * S
    assert frozen_counts == {0, 1, 2}


def test_random_faults_in_a_topology_print_and_replay(workdir: Path, tmp_path: Path) -> None:
    text = BULK + """
[random_faults]
within = "60ms"
partitions = 2
partition_max = "300ms"
link_flaps = 1
link_flap_max = "200ms"
freezes = 1
freeze_max = "300ms"
"""
    path = _topology(workdir, "random", text)
    seen = set()
    for seed in (1, 2, 4):  # seed 4 draws a freeze too
        topo = load(path)
        first = run(topo, seed=seed, pcap_dir=tmp_path / f"a{seed}", out=io.BytesIO())
        second = run(load(path), seed=seed, pcap_dir=tmp_path / f"b{seed}", out=io.BytesIO())
        assert first.faults == second.faults and first.ok and second.ok
        assert (tmp_path / f"a{seed}" / "client-eth0.pcapng").read_bytes() == (
            tmp_path / f"b{seed}" / "client-eth0.pcapng").read_bytes()
        seen.add(tuple(first.faults))
        drawn = draw_random(topo.random_faults, seed, {"lan": ["server", "client"]},  # type: ignore[arg-type]
                            ["server/eth0", "client/eth0"])
        assert len(first.faults) <= 2 * len(drawn)
    assert len(seen) > 1
    assert any("freeze" in line for faults in seen for line in faults), seen


@pytest.mark.parametrize(("fault", "reason"), [
    ('at = "1s"\naction = "explode"', "fault action 'explode': one of link-down"),
    ('at = "1s"\naction = "link-down"\nnic = "nobody/eth0"', "no NIC 'nobody/eth0'"),
    ('at = "1s"\naction = "kill"\nguest = "server/nope"', "no guest 'server/nope'"),
    ('at = "1s"\naction = "partition"\nsegment = "lan"\ngroups = [["ghost"]]',
     "host 'ghost' has no NIC on segment 'lan'"),
    ('action = "heal"\nsegment = "lan"', "a fault needs at ="),
    ('at = "1s"\naction = "heal"\nsegment = "lan"\nfor = "1s"', 'heal takes no "for"'),
    ('at = "1s"\naction = "freeze"\nfor = "1s"', 'freeze needs host = "NAME"'),
    ('at = "1s"\naction = "freeze"\nhost = "ghost"', "no host 'ghost' (hosts: server, client)"),
    ('at = "1s"\naction = "kill"\nguest = "server/recv"\nhost = "server"',
     "kill takes no host (only freeze and thaw do)"),
])
def test_bad_faults_name_the_file_and_line(workdir: Path, fault: str, reason: str) -> None:
    path = _topology(workdir, "bad", BULK + "\n[[faults]]\n" + fault + "\n")
    with pytest.raises(TopologyError) as info:
        load(path)
    assert reason in str(info.value)
    assert str(info.value).startswith(f"{path}:")


DEMO_MODULES = ["chat_server", "chat_client", "http_server", "http_get", "lobby"]


@pytest.fixture(scope="module")
def demo_copy(tmp_path_factory: pytest.TempPathFactory,
              example_wasm: Callable[[str], Path]) -> Path:
    """examples/demo.toml beside freshly built example guests."""
    from tests.conftest import EXAMPLES

    directory = tmp_path_factory.mktemp("demo")
    (directory / "build").mkdir()
    for name in DEMO_MODULES:
        shutil.copyfile(example_wasm(name), directory / "build" / f"{name}.wasm")
    shutil.copyfile(EXAMPLES / "ticker.c", directory / "ticker.c")
    return directory


@pytest.mark.parametrize(("length", "failing"), [
    ("2s", set()),  # TCP retransmits carry the chat across; the lobby re-announces
    ("10s", {"alice/chat", "bob/chat", "carol/chat"}),  # the chat clients give up
])
def test_partition_on_the_demo_fails_and_recovers_the_expected_clients(
        demo_copy: Path, tmp_path: Path, length: str, failing: set[str]) -> None:
    from tests.conftest import EXAMPLES

    text = (EXAMPLES / "demo.toml").read_text() + f"""
[[faults]]
at = "200ms"
action = "partition"
segment = "lan"
groups = [["alice"]]
for = "{length}"
"""
    path = _topology(demo_copy, f"demo-{length}", text)
    first, output = _run(path, tmp_path / "a")
    failed = {g.name for g in first.guests if g.name in first.clients and g.exit_code != 0}
    assert failed == failing, output
    assert first.faults[0] == "    0.200 s  partition lan: alice | bob carol server web"
    assert "lobby: alice heard 2 peer(s): bob carol" in output
    again, output_again = _run(path, tmp_path / "b")
    assert output_again == output and again.faults == first.faults
    for pcap in sorted((tmp_path / "a").iterdir()):
        assert pcap.read_bytes() == (tmp_path / "b" / pcap.name).read_bytes(), pcap.name


# --- frozen hosts ---------------------------------------------------------------------

TICKERS = """
[sim]
virtual_time = true
seed = 5
duration = "60s"
clients = ["frozen/tick", "free/tick"]

[segments.lan]
latency = "1ms"

[hosts.frozen]
[[hosts.frozen.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]
[[hosts.frozen.guests]]
name = "tick"
module = "ticker.wasm"
args = ["frozen", "30"]

[hosts.free]
[[hosts.free.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
[[hosts.free.guests]]
name = "tick"
module = "ticker.wasm"
args = ["free", "30"]

[[faults]]
at = "200ms"
action = "freeze"
host = "frozen"
for = "1s"
"""


def _ticks(output: str, name: str) -> list[int]:
    """The ticker's tick times (ms since it started at 0, so virtual time)."""
    return [int(line.split(" after ")[1].split(" ms")[0]) for line in output.splitlines()
            if line.startswith(f"{name}/tick") and " tick " in line]


def test_frozen_host_guest_waits_for_the_thaw_and_others_go_on(workdir: Path,
                                                                tmp_path: Path) -> None:
    path = _topology(workdir, "tickers", TICKERS)
    result, output = _run(path, tmp_path / "a")
    assert result.ok, output
    frozen, free = _ticks(output, "frozen"), _ticks(output, "free")
    assert len(frozen) == len(free) == 30
    # the nap that was due during the pause ends at the thaw, not before
    assert not [t for t in frozen if 200 <= t < 1200], frozen
    assert 1200 in frozen and any(t < 200 for t in frozen)
    assert len([t for t in free if 200 <= t < 1200]) >= 5, free  # the other host ran on
    assert result.faults[0] == "    0.200 s  freeze frozen"
    assert result.faults[1].startswith("    1.200 s  thaw frozen (")
    # deterministic per seed: the same seed replays byte-identically, another differs
    _, output_again = _run(path, tmp_path / "b")
    assert output_again == output
    for pcap in sorted((tmp_path / "a").iterdir()):
        assert pcap.read_bytes() == (tmp_path / "b" / pcap.name).read_bytes(), pcap.name
    out = io.BytesIO()
    assert run(load(path), seed=6, out=out).ok
    other = _ticks(out.getvalue().decode(), "frozen")
    assert other != frozen and not [t for t in other if 200 <= t < 1200] and 1200 in other


def test_frozen_sender_holds_its_tcp_retransmit_until_the_thaw(workdir: Path,
                                                                tmp_path: Path) -> None:
    """The receiver's link goes down at 30 ms: the sender's RTO retransmits at ~36 ms,
    then 200 and 600 ms later (backing off). Frozen from 40 ms to 1040 ms, its RTO due
    at ~236 ms waits and fires at the thaw, to the nanosecond."""
    down = BULK + """
[[faults]]
at = "30ms"
action = "link-down"
nic = "server/eth0"
for = "600ms"
"""
    unfrozen, _ = _run(_topology(workdir, "rto", down), tmp_path / "plain")
    path = _topology(workdir, "rto-freeze", down + """
[[faults]]
at = "40ms"
action = "freeze"
host = "client"
for = "1s"
""")
    frozen, output = _run(path, tmp_path / "frozen")
    assert unfrozen.ok and frozen.ok, output

    def retransmits(directory: Path, before_ns: int) -> list[int]:
        return sorted({t for t in _frame_times(directory / "client-eth0.pcapng", 2)
                       if 31 * MS <= t < before_ns})

    first, *later = retransmits(tmp_path / "plain", 640 * MS)
    assert 31 * MS < first < 40 * MS and later == [first + 200 * MS, first + 600 * MS]
    assert retransmits(tmp_path / "frozen", 1070 * MS) == [first, 1_040_000_000]
    assert frozen.faults[1:] == ["    0.040 s  freeze client", "    0.630 s  link up server/eth0",
                                 "    1.040 s  thaw client (0 frames held)"]
    _run(path, tmp_path / "again")
    for pcap in sorted((tmp_path / "frozen").iterdir()):
        assert pcap.read_bytes() == (tmp_path / "again" / pcap.name).read_bytes(), pcap.name


def test_frozen_receiver_queues_arriving_frames_and_answers_at_the_thaw(
        workdir: Path, tmp_path: Path) -> None:
    path = _topology(workdir, "freeze-server", BULK + """
[[faults]]
at = "30ms"
action = "freeze"
host = "server"
for = "500ms"
""")
    result, output = _run(path, tmp_path / "a", faults=None)
    assert result.ok, output
    server_out = _frame_times(tmp_path / "a" / "server-eth0.pcapng", 2)
    server_in = _frame_times(tmp_path / "a" / "server-eth0.pcapng", 1)
    # a paused host sends nothing; frames still reach (and are captured on) its NIC
    assert not [t for t in server_out if 30 * MS < t < 530 * MS]
    assert [t for t in server_in if 30 * MS < t < 530 * MS]
    assert min(t for t in server_out if t >= 530 * MS) == 530 * MS
    held = [p for p in read_pcapng(tmp_path / "a" / "server-eth0.pcapng")
            if p.direction == 1 and 30 * MS < p.time_ns < 530 * MS]  # IPv6 too
    assert result.faults[1] == f"    0.530 s  thaw server ({len(held)} frames held)"


def test_frames_past_a_frozen_nics_queue_are_dropped_and_counted() -> None:
    """Python API: FaultSpec + FaultInjector on a Network; 300 datagrams for a frozen host."""
    from socket import AF_INET, SO_RCVBUF, SOCK_DGRAM, SOL_SOCKET

    from vnet.network import Network
    from vnet.sim.faults import FROZEN_RX_QUEUE_FRAMES, FaultInjector

    net = Network(virtual_time=True, seed=1)
    lan = net.segment("lan", latency_ns=MS)
    a, b = net.host("a"), net.host("b")
    a.connect(lan, "10.0.0.1/24")
    b.connect(lan, "10.0.0.2/24")
    injector = FaultInjector(net)
    with b.socket(AF_INET, SOCK_DGRAM) as rx, a.socket(AF_INET, SOCK_DGRAM) as tx:
        rx.setsockopt(SOL_SOCKET, SO_RCVBUF, 4 << 20)
        rx.bind(("10.0.0.2", 9))
        tx.sendto(b"first", ("10.0.0.2", 9))
        assert rx.recvfrom(100)[0] == b"first"  # neighbours resolved
        now = net.scheduler.monotonic_ns()
        injector.schedule(plan([FaultSpec(now + MS, "freeze", host="b",
                                          duration_ns=100 * MS)]))
        net.run_for(0.002)
        for i in range(300):
            tx.sendto(b"%d" % i, ("10.0.0.2", 9))
        net.run_for(0.01)
        rx.setblocking(False)
        with pytest.raises(BlockingIOError):
            rx.recvfrom(100)  # frozen: nothing delivered yet
        net.run_for(0.2)
        got = []
        while True:
            try:
                got.append(rx.recvfrom(100)[0])
            except BlockingIOError:
                break
    assert got == [b"%d" % i for i in range(FROZEN_RX_QUEUE_FRAMES)]
    assert injector.rx_dropped_frozen == {"b/eth0": 300 - FROZEN_RX_QUEUE_FRAMES}
    assert injector.log[-1].endswith(
        f"thaw b ({FROZEN_RX_QUEUE_FRAMES} frames held, 44 dropped: queue full)")


def test_freeze_in_real_time_is_refused_with_a_reason(workdir: Path, tmp_path: Path) -> None:
    path = _topology(workdir, "freeze-real", BULK.replace("virtual_time = true",
                                                          "virtual_time = false") + """
[[faults]]
at = "1s"
action = "freeze"
host = "server"
for = "1s"
""")
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("vnet sim: fault freeze: freezing a host needs virtual "
                                   "time")
