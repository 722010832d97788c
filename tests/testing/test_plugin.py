"""The vnet pytest plugin's own behaviour, run through pytester: reports, seed replay, goldens.

Each test writes a small test file, runs pytest on it in-process (the plugin
loads through its ``pytest11`` entry point, as in a user's project) and
checks what a user sees: the outcome, the ``vnet`` report section, the pcap
files kept or removed, the golden files written. The inner tests use Python
sockets on virtual hosts (no wasm), so each run takes a fraction of a second.
"""

from __future__ import annotations

import importlib
import re
import shutil
import socket
import subprocess
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from vnet.testing import read_pcapng

pytest_plugins = ["pytester"]

# Imported before any pytester run starts (see _lean_inner_runs).
for _module in ("scapy.layers.igmp", "scapy.layers.inet", "scapy.layers.inet6",
                "scapy.layers.l2", "vnet.guest.runtime", "vnet.network", "vnet.testing.expect",
                "vnet.testing.pcap_diff"):
    importlib.import_module(_module)

#: A test module: two hosts, a UDP datagram each way, and a TCP connection.
EXCHANGE = '''
import socket

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.packet import Raw

PAYLOAD = b"ping"


def exchange(net):
    lan = net.segment("lan", latency_ns=250_000)
    a = net.host("a"); a.connect(lan, "10.0.0.1/24")
    b = net.host("b"); b.connect(lan, "10.0.0.2/24")
    with b.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \\
            a.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("10.0.0.2", 9))
        tx.sendto(PAYLOAD, ("10.0.0.2", 9))
        data, source = rx.recvfrom(100)
        rx.sendto(data, source)
        tx.recvfrom(100)
    with b.socket() as listener:
        listener.bind(("10.0.0.2", 80))
        listener.listen(1)
        with a.socket() as client:
            client.connect(("10.0.0.2", 80))
            listener.accept()[0].close()
    net.run_for(1)
'''


@pytest.fixture(autouse=True)
def _lean_inner_runs(pytester: pytest.Pytester) -> None:
    """Inner runs load only what they need, and find vnet, wasmtime and scapy imported.

    pytester removes the modules an in-process run imported when it ends, so
    without this every run would import them again (seconds each); and
    hypothesis's plugin alone costs seconds a run.
    """
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest -p no:cacheprovider\n")


def outcome(result: pytest.RunResult) -> dict[str, int]:
    return result.parseoutcomes()


def kept_pcaps(report: str) -> list[Path]:
    """The paths listed under "pcaps kept:" in a vnet report section."""
    section = report.split("pcaps kept:", 1)[1]
    return [Path(line.strip()) for line in section.splitlines()[1:]
            if line.startswith("  /")]


def test_the_plugin_is_registered_for_pip_users() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("vnet") == "vnet.testing.plugin"


def test_a_failing_test_reports_its_seed_and_keeps_its_pcaps(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_report=EXCHANGE + '''

def test_passes(vnet_network, vnet_capture):
    exchange(vnet_network)
    assert len(vnet_capture("a/eth0").match(UDP(dport=9))) == 1


def test_fails(vnet_network, vnet_capture):
    exchange(vnet_network)
    vnet_capture("a/eth0").expect(TCP(dport=80, flags="R"), within=(0, 0.5))
''')
    pcap_root = pytester.path / "kept"
    result = pytester.runpytest("--vnet-pcap-dir", str(pcap_root), "-p", "no:cacheprovider")
    assert outcome(result) == {"passed": 1, "failed": 1}
    text = result.stdout.str()
    assert "vnet: seed 1 (default)" in text  # the header
    section = text.split("- vnet -", 1)[1]
    assert "seed 1; replay exactly: pytest --vnet-seed 1 'test_report.py::test_fails'" in section
    # the expect report: template, window searched, nearest packet with the differing field
    assert "expect: no packet matches the template" in text
    assert "template: TCP(dport=80, flags=R)" in text
    assert "on a/eth0; virtual time 0.000000000 s .. 0.500000000 s" in text
    assert re.search(r"#\d+ \S+ a/eth0 10\.0\.0\.1 → 10\.0\.0\.2 TCP 74 \d+ → 80 \[SYN\]", text)
    assert "TCP.flags: expected R, actual S" in text
    pcaps = kept_pcaps(section)
    assert [p.name for p in pcaps] == ["network.pcapng", "segments.pcapng"]
    assert pcaps[0].parent.name == "test_report.py_test_fails"
    capture = read_pcapng(pcaps[0])  # complete and readable once the run is over
    assert {p.interface for p in capture.packets} == {"a/eth0", "b/eth0"}
    assert f"capture:  {pcaps[0]}" in text  # the expect report names the same file
    assert not (pcap_root / "test_report.py_test_passes").exists()  # a pass keeps nothing


def test_keep_pcaps_keeps_those_of_passing_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_keep=EXCHANGE + '''

def test_passes(vnet_network):
    exchange(vnet_network)
''')
    root = pytester.path / "kept"
    result = pytester.runpytest("--vnet-pcap-dir", str(root), "--vnet-keep-pcaps")
    assert outcome(result) == {"passed": 1}
    assert (root / "test_keep.py_test_passes" / "network.pcapng").stat().st_size > 1000


def test_a_failure_replays_exactly_from_the_printed_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_replay=EXCHANGE + '''

def test_fails(vnet_network, vnet_capture, vnet_seed):
    exchange(vnet_network)
    syn = vnet_capture("a/eth0").expect(TCP(flags="S"))
    assert vnet_network.seed == vnet_seed
    assert False, f"isn={syn[TCP].seq}"
''')

    def run(*options: str) -> tuple[str, bytes, str]:
        root = pytester.path / f"run{len(runs)}"
        result = pytester.runpytest("--vnet-pcap-dir", str(root), *options)
        assert outcome(result) == {"failed": 1}
        text = result.stdout.str()
        pcap = kept_pcaps(text.split("- vnet -", 1)[1])[0]
        isn = re.search(r"isn=(\d+)", text)
        assert isn is not None
        runs.append(text)
        return text, pcap.read_bytes(), isn.group(1)

    runs: list[str] = []
    first, first_pcap, first_isn = run("--vnet-seed", "random")
    header = re.search(r"vnet: seed (\d+) \(--vnet-seed\)", first)
    replay = re.search(r"replay exactly: pytest --vnet-seed (\d+) 'test_replay.py::test_fails'",
                       first)
    assert header is not None and replay is not None and header.group(1) == replay.group(1)
    seed = int(replay.group(1))
    _again, again_pcap, again_isn = run("--vnet-seed", str(seed))
    assert again_pcap == first_pcap and again_isn == first_isn  # byte for byte
    _other, other_pcap, other_isn = run("--vnet-seed", str(seed + 1))
    assert other_pcap != first_pcap and other_isn != first_isn  # the seed is what decides


def test_the_marker_pins_a_tests_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marker='''
import pytest

@pytest.mark.vnet(seed=7)
def test_pinned(vnet_network, vnet_seed):
    assert vnet_seed == vnet_network.seed == 7
    assert False

def test_free(vnet_seed):
    assert vnet_seed == 3
''')
    result = pytester.runpytest("--vnet-seed", "3")
    assert outcome(result) == {"passed": 1, "failed": 1}
    assert ("seed 7 (pinned by @pytest.mark.vnet); replay exactly: pytest "
            "'test_marker.py::test_pinned'") in result.stdout.str()


#: Six tests, seeds 1-6 pinned: four guests runnable at the same instant; who ran first.
ORDER = """
import pytest

def first_runs(net):
    order = []
    for name in "abcd":
        net.spawn(name, lambda name=name: order.append(name))
    net.run_for(0.001)
    assert sorted(order) == list("abcd")
    return "".join(order)
""" + "".join(f"""
@pytest.mark.vnet(seed={seed})
def test_order_{seed}(vnet_network):
    assert False, f"order={{first_runs(vnet_network)}} schedule={{vnet_network.scheduler.schedule}}"
""" for seed in range(1, 7))


def test_the_seed_orders_simultaneous_guests_unless_fifo_is_asked_for(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order=ORDER)

    def orders(*options: str) -> tuple[str, list[str]]:
        result = pytester.runpytest(*options)
        assert outcome(result) == {"failed": 6}
        text = result.stdout.str()
        return text, re.findall(r"^E +AssertionError: order=(\w+) schedule=(\w+)$", text, re.M)

    explored_text, explored = orders()
    assert "vnet: seed 1 (default), schedule explore (default)" in explored_text
    assert len(explored) == 6 and {schedule for _, schedule in explored} == {"explore"}
    assert len({order for order, _ in explored}) > 1  # the seeds chose different orders
    assert "\nschedule explore\n" in explored_text.split("- vnet -", 1)[1]
    fifo_text, fifo = orders("--vnet-schedule", "fifo")
    assert "vnet: seed 1 (default), schedule fifo (--vnet-schedule)" in fifo_text
    assert fifo == [("abcd", "fifo")] * 6  # first in, first out, whatever the seed
    assert ("seed 3 (pinned by @pytest.mark.vnet); replay exactly: pytest --vnet-schedule fifo "
            "'test_order.py::test_order_3'") in fifo_text
    # the marker pins it, whatever the command line says; replaying needs no flag
    pytester.makepyfile(test_order=ORDER.replace("@pytest.mark.vnet(seed=",
                                                 "@pytest.mark.vnet(schedule='fifo', seed="))
    pinned_text, pinned = orders("--vnet-schedule", "explore")
    assert pinned == [("abcd", "fifo")] * 6
    assert ("seed 3 (pinned by @pytest.mark.vnet); replay exactly: pytest "
            "'test_order.py::test_order_3'") in pinned_text


def test_a_bad_seed_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest("--vnet-seed", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--vnet-seed: expected a number or 'random', not 'soon'" in result.stderr.str()


def test_golden_captures_are_compared_and_updated_only_on_request(
        pytester: pytest.Pytester) -> None:
    test_file = EXCHANGE + '''

def test_golden(vnet_network, vnet_capture, vnet_golden):
    exchange(vnet_network)
    vnet_golden("exchange/udp-and-tcp", vnet_capture.path)
'''
    pytester.makepyfile(test_golden=test_file)
    golden = pytester.path / "pcaps" / "exchange" / "udp-and-tcp.pcapng"

    missing = pytester.runpytest()
    assert outcome(missing) == {"failed": 1}
    assert not golden.exists()
    assert "golden capture pcaps/exchange/udp-and-tcp.pcapng does not exist" in \
        missing.stdout.str()
    assert "Create it with: pytest --vnet-update-goldens 'test_golden.py::test_golden'" in \
        missing.stdout.str()

    created = pytester.runpytest("--vnet-update-goldens")
    assert outcome(created) == {"passed": 1}
    assert "created pcaps/exchange/udp-and-tcp.pcapng (test_golden.py::test_golden)" in \
        created.stdout.str()
    written = golden.read_bytes()
    assert len(read_pcapng(golden).packets) > 10

    assert outcome(pytester.runpytest()) == {"passed": 1}  # the same run matches its golden

    pytester.makepyfile(test_golden=test_file.replace('PAYLOAD = b"ping"', 'PAYLOAD = b"pong"'))
    changed = pytester.runpytest()
    assert outcome(changed) == {"failed": 1}
    report = changed.stdout.str()
    assert "the capture differs from golden pcaps/exchange/udp-and-tcp.pcapng" in report
    assert "Raw.load: b'ping' ≠ b'pong'" in report  # the field, golden value, this run's value
    assert golden.read_bytes() == written  # a failing comparison never writes

    ignored = pytester.makepyfile(test_ignore=EXCHANGE.replace('b"ping"', 'b"pong"') + '''

def test_golden(vnet_network, vnet_capture, vnet_golden):
    exchange(vnet_network)
    vnet_golden("exchange/udp-and-tcp", vnet_capture.path, ignore=["Raw", "UDP.chksum"])
''')
    assert outcome(pytester.runpytest(str(ignored))) == {"passed": 1}

    updated = pytester.runpytest("--vnet-update-goldens", "test_golden.py")
    assert outcome(updated) == {"passed": 1}
    assert "updated pcaps/exchange/udp-and-tcp.pcapng" in updated.stdout.str()
    assert golden.read_bytes() != written
    assert outcome(pytester.runpytest("test_golden.py")) == {"passed": 1}


@pytest.fixture(scope="module")
def tour(vnet_build: Any) -> Path:
    """fs_tour.wasm, built before pytester moves HOME (and with it vnet's build cache)."""
    return Path(vnet_build("examples/fs_tour.c"))


def test_a_failure_shows_each_guests_exit_and_last_output(pytester: pytest.Pytester,
                                                          tour: Path) -> None:
    pytester.makepyfile(test_guests=f'''
def test_fails(vnet_network, tmp_path):
    host = vnet_network.host("h")
    done = host.run({str(tour)!r}, "/d", "words", env={{"GREETING": "hi"}},
                    dirs={{"/d": tmp_path}})
    waiting = host.run({str(tour)!r}, "/d", dirs={{"/d": tmp_path}}, delay=60)
    assert done.wait(timeout=5) == 0
    assert done.stdout_lines == [], "the tour printed something"
''')
    result = pytester.runpytest()
    assert outcome(result) == {"failed": 1}
    section = result.stdout.str().split("- vnet -", 1)[1]
    assert ("guest h/fs_tour: exit 0\n  stdout (last 7 lines):\n"
            "    2 argument(s) after the program name\n    GREETING is hi\n") in section
    assert "    /d has 1 entry\nguest h/fs_tour: not started yet\n" in section  # its delay: 60 s


def test_the_segment_capture_holds_each_frame_once(vnet_network: Any, vnet_capture: Any) -> None:
    lan = vnet_network.segment("lan", latency_ns=250_000)
    a = vnet_network.host("a")
    a.connect(lan, "10.0.0.1/24")
    b = vnet_network.host("b")
    b.connect(lan, "10.0.0.2/24")
    with b.socket() as listener:
        listener.bind(("10.0.0.2", 80))
        listener.listen(1)
        with a.socket() as client:
            client.connect(("10.0.0.2", 80))
            server, _ = listener.accept()
            client.sendall(b"x" * 5000)
            assert server.recv(5000, socket.MSG_WAITALL) == b"x" * 5000
            server.close()
    vnet_network.run_for(1)
    crossed = vnet_capture.segment("lan")
    sent = [p for p in vnet_capture() if p.direction == 2]  # each NIC's copy as it sent it
    assert len(vnet_capture()) == 2 * len(sent) - 2  # a's first two frames: before b existed
    assert sorted(p.data for p in crossed) == sorted(p.data for p in sent)  # once each
    assert crossed.interfaces == ["segment/lan"] and len(crossed) > 15
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: run scripts/install-test-tools (scripts/test does)"

    def analysis_flags(path: Path) -> list[str]:
        return subprocess.run(
            [tshark, "-r", str(path), "-n", "-Y",
             "tcp.analysis.retransmission or tcp.analysis.duplicate_ack"],
            capture_output=True, text=True, check=True).stdout.splitlines()

    assert analysis_flags(vnet_capture.segments_path) == []  # Wireshark sees what happened
    assert analysis_flags(vnet_capture.path) != []  # each frame twice: false retransmissions
