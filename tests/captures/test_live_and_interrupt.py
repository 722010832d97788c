"""Live captures on stdout, and runs stopped by SIGINT/SIGTERM that still leave good captures.

`--pcap -` writes pcapng to stdout, flushed per packet (guest output and the
summary go to stderr), so `vnet run --pcap - ... | tshark -i -` shows packets
while the run goes on. A `vnet sim` stopped by SIGTERM or SIGINT (as
`timeout`, CI and `docker stop` send) stops its guests, closes every capture
complete, prints its summary and exits 143 or 130, without a traceback.
The TUN-bridge variant, which also checks that the device and namespace go
away, is in test_interrupt_kernel.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.captures.support import routed_topology, run_vnet, tshark, tshark_exe, vnet_command
from vnet.testing.netns import clean_env
from vnet.testing.pcap import read_pcapng


def test_sim_live_pcap_on_stdout_and_everything_else_on_stderr(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    topology = routed_topology(tmp_path, example_wasm, page_bytes=5000)
    proc = run_vnet("sim", str(topology), "--pcap", "-", "--pcap-segment", "lan")
    assert proc.returncode == 0, proc.stderr
    capture = read_pcapng(proc.stdout)  # the whole of stdout is one valid pcapng
    assert [i.name for i in capture.interfaces] == ["segment/lan"]
    assert sum(1 for p in capture if p.wire_length > 1000) >= 3  # the page's segments
    err = proc.stderr.decode()
    assert "web/get     | HTTP/1.1 200 OK, 5000 body bytes" in err
    assert "vnet sim: clients exited" in err
    assert f"pcap: {len(capture)} packets written to stdout" in err


def test_run_live_pcap_is_read_by_tshark_while_the_run_goes_on(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    """tshark decodes the live stream while the run goes on; after SIGTERM the count vnet
    prints is the stream's, every block whole.

    The stream passes through this test on its way to tshark (a copy is kept): the
    count is checked against the exact bytes vnet wrote, parsed by us and by `tshark
    -r`. The live tshark must have decoded the first packet while vnet ran and then
    only whole packets in order; it is not asked to print the last ones, which it
    does not always do when its input ends right after them (dumpcap hands the
    capture over through a file)."""
    (tmp_path / "www").mkdir()
    vnet = subprocess.Popen(
        vnet_command("run", "--pcap", "-", "--addr", "10.0.0.2/24", "--addr", "fd00::2/64",
                     "--dir", f"{tmp_path / 'www'}::/www", str(example_wasm("http_server")),
                     "/www", "8080"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    assert vnet.stdout is not None and vnet.stderr is not None
    reader = subprocess.Popen([tshark_exe(), "-l", "-n", "-i", "-", "-T", "fields",
                               "-e", "frame.number", "-e", "_ws.col.Protocol"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    assert reader.stdin is not None and reader.stdout is not None
    stream = bytearray()

    def relay() -> None:  # vnet's stdout to tshark, kept
        assert vnet.stdout is not None and reader.stdin is not None
        try:
            while chunk := os.read(vnet.stdout.fileno(), 65536):
                stream.extend(chunk)
                reader.stdin.write(chunk)
                reader.stdin.flush()
        finally:
            reader.stdin.close()

    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    try:
        first = reader.stdout.readline().decode()
        # tshark decoded a packet (the host's address announcements) and vnet still runs.
        assert first.split("\t")[0] == "1", first
        assert vnet.poll() is None
        assert vnet.stderr.readline() == b"http_server: serving /www on port 8080\n"
        vnet.send_signal(signal.SIGTERM)
        assert vnet.wait(timeout=30) == 143
        relay_thread.join(30)  # it closed tshark's input: tshark reads to the end and exits
        rest = reader.stdout.read().decode()
        assert reader.wait(timeout=30) == 0
    finally:
        for proc in (vnet, reader):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = vnet.stderr.read().decode()
    written = len(read_pcapng(bytes(stream)))  # raises on a partial or broken block
    assert f"vnet run: interrupted by SIGTERM; {written} packets in stdout" in err, err
    copy = tmp_path / "stdout.pcapng"
    copy.write_bytes(stream)
    assert len(tshark("-r", str(copy))) == written
    live = [line.split("\t")[0] for line in [first, *rest.splitlines()]]
    assert live == [str(n) for n in range(1, len(live) + 1)] and len(live) <= written, live
    assert "Traceback" not in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_sim_closes_complete_captures_and_prints_its_summary(
        tmp_path: Path, example_wasm: Callable[[str], Path], signum: int) -> None:
    # Real time; the client would start after 100 s: the run only ends by the signal.
    topology = routed_topology(tmp_path, example_wasm, virtual=False, start="100s",
                               duration="60s")
    pcaps = tmp_path / "pcaps"
    proc = subprocess.Popen(vnet_command("sim", str(topology), "--pcap-dir", str(pcaps),
                                         "--pcap-segment", "lan"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == b"server/http | http_server: serving /www on port 8080\n"
        time.sleep(0.5)  # let the hosts' periodic MLD reports reach the captures
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, err
    assert b"Traceback" not in err
    assert f"vnet sim: interrupted by {signal.Signals(signum).name}\n".encode() in err
    assert b"vnet sim: interrupted after" in out
    assert b"web/get      did not start (client)" in out
    assert b"server/http  stopped at the end" in out
    files = sorted(p.name for p in pcaps.iterdir())
    assert files == ["gw-eth0.pcapng", "gw-eth1.pcapng", "segment-lan.pcapng",
                     "server-eth0.pcapng", "web-eth0.pcapng"]
    for name in files:
        capture = read_pcapng(pcaps / name)  # strict: a truncated block would raise
        assert len(capture) > 0, name
        assert len(tshark("-r", str(pcaps / name))) == len(capture), name


def test_live_capture_whose_reader_goes_away_does_not_stop_the_run(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    # Far more pcapng than a pipe holds (64 KiB): the writer meets the closed pipe.
    topology = routed_topology(tmp_path, example_wasm, page_bytes=200_000)
    proc = subprocess.Popen(vnet_command("sim", str(topology), "--pcap", "-"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    assert proc.stdout is not None
    assert proc.stdout.read(64)[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header
    proc.stdout.close()  # Wireshark closed
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 0, err
    assert "web/get     | HTTP/1.1 200 OK, 200000 body bytes" in err
    assert "(the reader closed the pipe: " in err and "Traceback" not in err
