"""The guest TUN device against Linux's tun driver, call by call.

tests/guest/c/tun_probe.c makes the same calls — TUNGETFEATURES, TUNSETIFF
with no kind, with `lo`'s name, with a bad name, twice on one fd, on a name
another fd holds (same and other kind), with a 16-byte name, TUNGETIFF, reads
and writes with nothing queued, an empty write, TUNSETIFF on stdout, a
packet whose version is neither 4 nor 6, then a ping written into the device
and its answer read with a zero-byte and a 10-byte buffer, the same on a
device with the 4-byte packet information header (a write shorter than it,
a read of 3 bytes, a read of 10 with TUN_PKT_STRIP) — and prints each
result and errno. It runs natively against a real tun device in a throwaway
network namespace (IPv6 off, so the kernel sends nothing of its own into the
device; tun0 gets 10.8.0.1/24 when the program says "created") and as a
wasm guest under vnet granted tun0 with 10.8.0.1/24 and the 15-byte name the
kernel cuts the 16-byte one to. The outputs must be equal line for line,
except one documented difference: Linux answers EBADFD for a read on an fd
not attached yet, vnet EBADF (WASI has no EBADFD).

And tests/guest/c/simpletun.c, the program the vnet tunnel tests run as
guests, compiled with gcc, tunnels ping between two namespaces joined by a
veth pair through real TUN devices.

Needs root and /dev/net/tun (the namespace guard of vnet.testing.netns);
fails without them, never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from vnet.network import Network
from vnet.testing.netns import Namespace, clean_env, require_root, tun_problem

PROBE = "tests/guest/c/tun_probe.c"


def _native_run(binary: Path) -> list[str]:
    namespace = Namespace(f"vtp{os.getpid()}", sysctls=[
        "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
    with namespace:
        process = subprocess.Popen(namespace.command(str(binary)), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, env=clean_env())
        assert process.stdin is not None and process.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("created"):
                namespace.ip("addr", "add", "10.8.0.1/24", "dev", "tun0")
                namespace.ip("link", "set", "tun0", "up")
                namespace.ip("addr", "add", "10.9.0.1/24", "dev", "tun1")
                namespace.ip("link", "set", "tun1", "up")
                namespace.check_isolated(["tun0", "tun1"])
                process.stdin.write("go\n")
                process.stdin.flush()
        process.stdin.close()
        process.wait(timeout=20)
        process.stdout.close()
    return lines


def test_tun_ioctls_reads_and_writes_match_linux(vnet_build: Callable[..., Path],
                                                   tmp_path: Path) -> None:
    require_root("the TUN comparison needs root (network namespaces, TUN devices)")
    problem = tun_problem()
    assert problem is None, problem
    gcc = shutil.which("gcc")
    assert gcc is not None, "needs gcc (Debian package gcc)"
    native = tmp_path / "tun_probe"
    subprocess.run([gcc, "-O1", "-o", str(native), PROBE], check=True)
    linux = _native_run(native)

    net = Network(virtual_time=True, seed=1)
    host = net.host("h")
    host.connect(net.segment("lan"), "192.168.0.1/24")
    guest = host.run(vnet_build(PROBE), stdin=b"go\n",
                     devices=["tun0=10.8.0.1/24", "tun1=10.9.0.1/24", "longname0123456"])
    assert guest.wait(timeout=60) == 0, guest.stderr
    ours = guest.stdout_lines
    net.close()

    assert "read_tiny 10" in linux and "pi_read_10 10" in linux  # the probe ran through
    assert linux[linux.index("read_unattached -1 EBADFD")] == "read_unattached -1 EBADFD"
    expected = ["read_unattached -1 EBADF" if line == "read_unattached -1 EBADFD" else line
                for line in linux]
    assert ours == expected


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 20) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        if not line:
            break
    raise AssertionError(f"no {text!r} from {process.args}")


def test_simpletun_is_real_linux_tun_code(tmp_path: Path) -> None:
    """The simpletun.c that vnet runs as a guest, compiled with gcc, tunnels ping between
    two namespaces over a veth pair through real TUN devices: the program is Linux code,
    not something written for vnet."""
    require_root("the native simpletun run needs root (network namespaces, TUN devices)")
    problem = tun_problem()
    assert problem is None, problem
    gcc = shutil.which("gcc")
    assert gcc is not None, "needs gcc (Debian package gcc)"
    binary = tmp_path / "simpletun"
    subprocess.run([gcc, "-O1", "-Wall", "-Werror", "-o", str(binary),
                    "tests/guest/c/simpletun.c"], check=True)
    pid = os.getpid()
    with Namespace(f"vst{pid}a") as ns_a, Namespace(f"vst{pid}b") as ns_b:
        ns_a.add_veth("wan0", "wan0", peer_netns=ns_b)
        ns_a.add_address("wan0", "192.168.77.1/24")
        ns_b.add_address("wan0", "192.168.77.2/24")
        ns_a.set_up("wan0")
        ns_b.set_up("wan0")
        server = subprocess.Popen(ns_a.command(str(binary), "-i", "tun0", "-s", "-p", "5555"),
                                  stdout=subprocess.PIPE, text=True, env=clean_env())
        client = subprocess.Popen(ns_b.command(str(binary), "-i", "tun0", "-c",
                                               "192.168.77.1", "-p", "5555"),
                                  stdout=subprocess.PIPE, text=True, env=clean_env())
        try:
            _wait_for_line(server, "tunnel up on tun0")
            _wait_for_line(client, "tunnel up on tun0")
            for ns, cidr in ((ns_a, "10.8.0.1/24"), (ns_b, "10.8.0.2/24")):
                ns.add_address("tun0", cidr)
                ns.set_up("tun0")
                ns.check_isolated(["wan0", "tun0"])
            ping = ns_a.run("ping", "-c", "2", "-W", "2", "10.8.0.2", check=False)
            assert ping.returncode == 0, ping.stdout + ping.stderr
            assert "2 received" in ping.stdout
        finally:
            for process in (server, client):
                process.kill()
                process.wait(timeout=10)
