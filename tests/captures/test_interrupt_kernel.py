"""SIGTERM / SIGINT against `vnet run --tun --pcap`: complete capture, nothing left behind.

`vnet run --tun` bridges the HTTP example guest into a network namespace;
curl inside the namespace fetches a page (so the capture has a TCP
conversation with the kernel), then the test sends the signal. vnet must
exit 143 (SIGTERM) or 130 (SIGINT) without a traceback, leave a complete
capture that tshark reads with that conversation in it, and remove what it
made: the TUN device, and -- in the case where vnet made the namespace
itself (`--tun-netns` naming one that does not exist) -- the namespace.

Network safety: the namespace is created through the audited guard
(`vnet.testing.netns`: by this test, or by vnet itself) and deleted in a
`finally` whatever happens; `check_isolated` proves it has no route off the
machine before curl runs, and curl aims only at the guest's virtual address.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.captures.support import tshark, vnet_command
from vnet.testing import netns
from vnet.testing.netns import Namespace, check_isolated, clean_env, delete_namespace
from vnet.testing.pcap import read_pcapng

GUEST4 = "10.212.0.2"
KERNEL4, BRIDGE4 = "10.201.0.1", "10.201.0.2"
_SERIAL = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 100000}s{next(_SERIAL)}"  # <= 15 characters


@pytest.mark.parametrize(("signum", "vnet_makes_namespace"),
                         [(signal.SIGTERM, False), (signal.SIGINT, True),
                          (signal.SIGTERM, True)],
                         ids=["SIGTERM-test-namespace", "SIGINT-vnet-namespace",
                              "SIGTERM-vnet-namespace"])
def test_signal_leaves_complete_capture_and_no_device_or_namespace(
        tmp_path: Path, example_wasm: Callable[[str], Path], signum: int,
        vnet_makes_namespace: bool) -> None:
    problem = netns.tun_problem()
    if problem:
        netns.refuse(f"the TUN bridge test {problem}")
    module = example_wasm("http_server")
    namespace = _name("vc")
    device = _name("vt")
    ours = None if vnet_makes_namespace else Namespace(namespace).create()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("interrupted later\n")
    pcap = tmp_path / "run.pcapng"
    proc = subprocess.Popen(
        vnet_command("run", "--tun", "--tun-netns", namespace, "--tun-device", device,
                     "--tun-kernel-addr", f"{KERNEL4}/30", "--tun-addr", f"{BRIDGE4}/30",
                     "--addr", f"{GUEST4}/24", "--allow", "tcp:*:8080", "--pcap", str(pcap),
                     "--dir", f"{site}::/www", str(module), "/www", "8080"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"http_server: serving /www on port 8080\n", proc.stderr
        check_isolated(namespace, [device], prefixes=[f"{GUEST4}/24"])
        fetched = subprocess.run(
            ["ip", "netns", "exec", namespace, "curl", "-sS", "--noproxy", "*",
             "--max-time", "10", f"http://{GUEST4}:8080/"],
            capture_output=True, timeout=30, env=clean_env())
        assert fetched.stdout == b"interrupted later\n", fetched.stderr
        # the guest logs the request after it sent the page: wait for that line, or the
        # signal may come first (as it could for the same server on Linux)
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        logged = proc.stdout.readline() if ready else b""
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if ours is not None:
            gone = subprocess.run(["ip", "-n", namespace, "link", "show", device],
                                  capture_output=True).returncode != 0
            left_running = subprocess.run(["ip", "netns", "pids", namespace],
                                          capture_output=True, text=True).stdout.split()
            ours.delete()
        elif namespace in netns.list_namespaces():
            delete_namespace(namespace)  # vnet should have; never leave one behind
            pytest.fail(f"vnet left its namespace {namespace} behind")
    assert proc.returncode == 128 + signum, err
    assert b"Traceback" not in err
    name = signal.Signals(signum).name
    assert f"vnet run: interrupted by {name}; ".encode() in err, err
    assert b"GET / 200" in logged, (logged, out)
    if ours is not None:
        assert gone, f"vnet left its TUN device {device} in {namespace}"
        assert left_running == [], f"processes left in {namespace}: {left_running}"
    # vnet's guest and bridge are threads of the process we waited for; the capture is
    # whole: every block complete, the curl conversation in it.
    capture = read_pcapng(pcap)
    assert not capture.truncated
    assert f"{len(capture)} packets in {pcap}".encode() in err
    rows = tshark("-r", str(pcap), "-Y", f"tcp.port == 8080 && ip.src == {KERNEL4}",
                  "-T", "fields", "-e", "tcp.flags.str")
    assert len(rows) >= 4, rows  # SYN, ACK, the request, ... FIN
    assert any(b"interrupted later" in p.data for p in capture)  # the page went out
    described = tshark("-r", str(pcap), "-N", "n", "-Y", "http.request", "-T", "fields",
                       "-e", "frame.interface_description", "-e", "ip.src_host",
                       "-e", "ip.dst_host")
    host = module.stem.replace("_", "-")  # vnet run names the host after the module
    assert described == [f"{host} tun0: TUN bridge to kernel device {device} in namespace "
                         f"{namespace} (kernel {KERNEL4}/30, vnet {BRIDGE4}/30)\tkernel\t"
                         f"{host}"]
