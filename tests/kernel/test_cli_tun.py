"""`vnet run --tun` end to end, and the one-line errors when the bridge cannot open.

End to end: `python -m vnet run --tun --tun-netns NS ...` runs the HTTP
example guest on a host bridged into a namespace this test created; curl
inside the namespace fetches from it over IPv4, IPv6 and a `--publish`ed
port, the guest exits after those connections and vnet with it (status 0),
and the `--pcap` file holds the bridge port's packets.

Errors: without /dev/net/tun, without access to it, without `ip`, and
(for real, with CAP_NET_ADMIN dropped by setpriv) without the capability,
`vnet run --tun` prints one line saying what is missing and exits 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import vnet.link.tun_bridge
from vnet import cli
from vnet.link.tun_bridge import TunBridge, TunBridgeError, check_privileges
from vnet.network import Network

from .conftest import (
    check_isolated,
    clean_env,
    create_namespace,
    delete_namespace,
    require_kernel_privileges,
    tshark_fields,
    unique_name,
)

GUEST4, GUEST6 = "10.210.0.2", "fd77:10::2"
TUN_KERNEL4, TUN_GUEST4 = "10.200.0.1", "10.200.0.2"
TUN_KERNEL6, TUN_GUEST6 = "fd77:200::1", "fd77:200::2"


@pytest.fixture
def minimal_module(tmp_path: Path) -> Path:
    from wasmtime import wat2wasm

    path = tmp_path / "minimal.wasm"
    path.write_bytes(wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))'))
    return path


@pytest.fixture
def namespace() -> Iterator[str]:
    require_kernel_privileges()
    ns = unique_name("vk", "cli")
    create_namespace(ns)
    try:
        yield ns
    finally:
        delete_namespace(ns)


def _vnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "vnet", *args]


class VnetRun:
    """`python -m vnet run ...` as a subprocess; stdout read line by line."""

    def __init__(self, *args: str) -> None:
        self.popen = subprocess.Popen(_vnet("run", *args), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=clean_env())

    def wait_for_line(self, text: bytes) -> None:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if text not in line:
            self.popen.kill()
            _out, err = self.popen.communicate()
            pytest.fail(f"vnet run printed {line!r}, not {text!r}; stderr: {err!r}")

    def finish(self, timeout_s: float = 30) -> tuple[int, bytes, bytes]:
        try:
            out, err = self.popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            out, err = self.popen.communicate()
            pytest.fail(f"vnet run did not exit in {timeout_s} s; stderr: {err!r}")
        return self.popen.returncode, out, err

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.communicate()


def _in_ns(ns: str, *argv: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, timeout=30,
                          env=clean_env(), input=input)


def _curl(ns: str, url: str) -> bytes:
    proc = _in_ns(ns, "curl", "-sS", "-g", "--noproxy", "*", "--max-time", "10", url)
    assert proc.returncode == 0, f"curl {url}: {proc.stderr!r}"
    return proc.stdout


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"hello through vnet run --tun\n")
    return site


def test_vnet_run_tun_serves_http_example_to_kernel_curl(
        namespace: str, kernel_example: Callable[[str], Path], tmp_path: Path) -> None:
    module = kernel_example("http_server")
    device = unique_name("vt", "cli")
    pcap = tmp_path / "run.pcapng"
    run = VnetRun(
        "--tun", "--tun-netns", namespace, "--tun-device", device, "--allow", "tcp:*:8080",
        "--addr", f"{GUEST4}/24", "--addr", f"{GUEST6}/64",
        "--tun-kernel-addr", f"{TUN_KERNEL4}/30", "--tun-addr", f"{TUN_GUEST4}/30",
        "--tun-kernel-addr", f"{TUN_KERNEL6}/64", "--tun-addr", f"{TUN_GUEST6}/64",
        "--pcap", str(pcap), "--dir", f"{_site(tmp_path)}::/www", str(module), "/www", "8080",
        "2")
    try:
        run.wait_for_line(b"serving /www on port 8080")
        check_isolated(namespace, [device])
        assert _curl(namespace, f"http://{GUEST4}:8080/") == b"hello through vnet run --tun\n"
        assert _curl(namespace, f"http://[{GUEST6}]:8080/") == b"hello through vnet run --tun\n"
        status, out, err = run.finish()
    finally:
        run.kill()
    assert status == 0, err
    assert out.decode().count("GET / 200") == 2, out
    assert out.endswith(b"http_server: bye\n"), out
    # vnet closed its device; the namespace (ours) is left as we made it.
    assert subprocess.run(["ip", "-n", namespace, "link", "show", device],
                          capture_output=True).returncode != 0
    assert len(tshark_fields(pcap, f"tcp.port == 8080 and ip.src == {TUN_KERNEL4}",
                             ("frame.number",))) > 0
    assert len(tshark_fields(pcap, f"tcp.port == 8080 and ipv6.src == {TUN_KERNEL6}",
                             ("frame.number",))) > 0


def test_vnet_run_tun_publish_reaches_guest_through_bridge_address(
        namespace: str, kernel_example: Callable[[str], Path], tmp_path: Path) -> None:
    module = kernel_example("http_server")
    device = unique_name("vt", "pub")
    run = VnetRun(
        "--tun", "--tun-netns", namespace, "--tun-device", device, "--tun-nat",
        "--allow", "tcp:*:8080",
        "--addr", f"{GUEST4}/24", "--publish", f"9090:{GUEST4}:8080",
        "--dir", f"{_site(tmp_path)}::/www", str(module), "/www", "8080", "1")
    try:
        run.wait_for_line(b"serving /www on port 8080")
        check_isolated(namespace, [device])
        assert _curl(namespace, f"http://{TUN_GUEST4}:9090/") == (
            b"hello through vnet run --tun\n")
        status, out, err = run.finish()
    finally:
        run.kill()
    assert status == 0, err
    assert b"GET / 200" in out


def test_vnet_run_tun_creates_and_deletes_its_own_namespace(
        kernel_example: Callable[[str], Path]) -> None:
    require_kernel_privileges()
    module = kernel_example("tcp_echo_server")
    ns = unique_name("vk", "cliown")
    device = unique_name("vt", "own")
    run = VnetRun("--tun", "--tun-netns", ns, "--tun-device", device, "--allow", "tcp:*:7000",
                  "--addr", f"{GUEST4}/24", str(module), "7000", "1")
    try:
        run.wait_for_line(b"listening on port 7000")
        check_isolated(ns, [device])
        proc = _in_ns(ns, "nc", "-n", "-N", GUEST4, "7000", input=b"echo\n")
        assert proc.stdout == b"echo\n", proc
        status, _out, err = run.finish()
    finally:
        run.kill()
        if ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout.split():
            delete_namespace(ns)
            pytest.fail(f"vnet run left its namespace {ns} behind")
    assert status == 0, err


def test_vnet_run_tun_udp_server_answers_from_the_address_it_was_asked_at(
        namespace: str, kernel_example: Callable[[str], Path]) -> None:
    """A wildcard-bound UDP server on the guest answers a kernel client at its --addr."""
    module = kernel_example("udp_echo")
    device = unique_name("vt", "udp")
    run = VnetRun("--tun", "--tun-netns", namespace, "--tun-device", device,
                  "--allow", "udp:*:9000",
                  "--addr", f"{GUEST4}/24", str(module), "server", "9000", "1")
    try:
        run.wait_for_line(b"listening on port 9000")
        proc = _in_ns(namespace, "nc", "-n", "-u", "-w", "1", GUEST4, "9000", input=b"hi\n")
        status, out, err = run.finish()
    finally:
        run.kill()
    assert status == 0, err
    assert b'3 bytes from 10.200.0.1: "hi' in out, out
    assert proc.stdout == b"hi\n", (
        f"the echo did not reach nc, which sent to {GUEST4}:9000: the guest host answers "
        f"from its bridge address {TUN_GUEST4} (the source its default route through the "
        "TUN port picks), and the kernel refuses that on nc's connected socket with ICMP "
        "port unreachable")


# --- the one-line errors ------------------------------------------------------------------
def _missing(path: str) -> Callable[[str], bool]:
    real = os.path.exists

    def exists(p: object) -> bool:
        return False if p == path else real(p)  # type: ignore[arg-type]

    return exists


def test_check_privileges_names_missing_tun_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vnet.link.tun_bridge.os.path, "exists", _missing("/dev/net/tun"))
    with pytest.raises(TunBridgeError) as error:
        check_privileges()
    assert str(error.value) == "the TUN bridge needs /dev/net/tun, which this system lacks"


def test_check_privileges_names_missing_access(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.access
    monkeypatch.setattr(vnet.link.tun_bridge.os, "access",
                        lambda p, mode: False if p == "/dev/net/tun" else real(p, mode))
    with pytest.raises(TunBridgeError, match="read/write access to /dev/net/tun"):
        check_privileges()


def test_check_privileges_names_missing_ip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vnet.link.tun_bridge.shutil, "which", lambda name: None)
    with pytest.raises(TunBridgeError, match=r"ip command \(Debian package iproute2\)"):
        check_privileges()


def test_bridge_open_reports_missing_device_before_touching_anything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vnet.link.tun_bridge.os.path, "exists", _missing("/dev/net/tun"))
    net = Network()
    bridge = TunBridge(net, net.router("r"), device="vnetmissing0")
    with pytest.raises(TunBridgeError, match="needs /dev/net/tun"):
        bridge.open()
    assert bridge.iface is None


def test_vnet_run_tun_without_tun_device_is_one_line_and_status_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        minimal_module: Path) -> None:
    monkeypatch.setattr(vnet.link.tun_bridge.os.path, "exists", _missing("/dev/net/tun"))
    status = cli.main(["run", "--tun", "--tun-device", "vnetmissing0", str(minimal_module)])
    err = capsys.readouterr().err
    assert status == 2
    assert err == "vnet run: the TUN bridge needs /dev/net/tun, which this system lacks\n"


def test_tun_bridge_refuses_virtual_time() -> None:
    net = Network(virtual_time=True)
    with pytest.raises(TunBridgeError, match="real time only"):
        TunBridge(net, net.router("r"))


def test_vnet_run_tun_without_cap_net_admin_is_one_line_and_status_2(
        minimal_module: Path) -> None:
    require_kernel_privileges()
    device = unique_name("vt", "cap")
    ns = unique_name("vk", "cap")  # where the device would go, should it open after all
    try:
        proc = subprocess.run(
            ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin",
             *_vnet("run", "--tun", "--tun-device", device, "--tun-netns", ns,
                    str(minimal_module))],
            capture_output=True, text=True, timeout=60, env=clean_env())
    finally:
        delete_namespace(ns)
    assert proc.returncode == 2, proc
    assert proc.stderr == ("vnet run: the TUN bridge needs CAP_NET_ADMIN (run as root or grant "
                           "the capability)\n"), proc.stderr
    # Nothing was created on the way.
    assert subprocess.run(["ip", "link", "show", device], capture_output=True).returncode != 0


def test_vnet_run_tun_in_virtual_time_is_refused_in_one_line(
        capsys: pytest.CaptureFixture[str], minimal_module: Path) -> None:
    status = cli.main(["run", "--tun", "--virtual-time", str(minimal_module)])
    assert status == 2
    assert capsys.readouterr().err == (
        "vnet run: --tun runs in real time only (drop --virtual-time)\n")
