"""The guest TUN device against Linux's tun driver, call by call.

tests/guest/c/tun_probe.c makes the same calls — TUNGETFEATURES, TUNSETIFF
with no kind, with `lo`'s name, with a bad name, twice on one fd, on a name
another fd holds (same and other kind), with a 16-byte name, TUNGETIFF, reads
and writes with nothing queued, an empty write, TUNSETIFF on stdout, a
packet whose version is neither 4 nor 6, then a ping written into the device
and its answer read with a zero-byte and a 10-byte buffer — and prints each
result and errno. It runs natively against a real tun device in a throwaway
network namespace (IPv6 off, so the kernel sends nothing of its own into the
device; tun0 gets 10.8.0.1/24 when the program says "created") and as a
wasm guest under vnet granted tun0 with 10.8.0.1/24 and the 15-byte name the
kernel cuts the 16-byte one to. The outputs must be equal line for line,
except one documented difference: Linux answers EBADFD for a read on an fd
not attached yet, vnet EBADF (WASI has no EBADFD).

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
                namespace.check_isolated(["tun0"])
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
                     devices=["tun0=10.8.0.1/24", "longname0123456"])
    assert guest.wait(timeout=60) == 0, guest.stderr
    ours = guest.stdout_lines
    net.close()

    assert "read_tiny 10" in linux and "read_rest -1 EAGAIN" in linux  # the probe ran through
    assert linux[linux.index("read_unattached -1 EBADFD")] == "read_unattached -1 EBADFD"
    expected = ["read_unattached -1 EBADF" if line == "read_unattached -1 EBADFD" else line
                for line in linux]
    assert ours == expected
