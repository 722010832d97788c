"""The example VPN (examples/vpn/vpn.c) is Linux code: compiled with gcc and run in
two network namespaces joined by a veth pair, it opens real TUN devices, configures
their addresses, netmask, MTU and flags itself with the SIOCSIF* ioctls (-a), and
carries ping and a TCP transfer between the namespaces' tunnel addresses, which
have no other route; a wrong key authenticates nothing. The same source runs as
a vnet guest in tests/examples/test_vpn.py.

Touches: gcc, two namespaces made through the guard, the Monocypher sources the
example's third_party.toml names (fetched into the build cache once).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from vnet.testing.netns import Namespace, clean_env, require_root, tun_problem
from vnet.third_party import fetch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "vpn"
KEY = "2b" * 32
SERVER_SCRIPT = """
import hashlib, socket
s = socket.socket(); s.bind(("10.8.0.1", 9000)); s.listen(1)
c, _ = s.accept(); h = hashlib.sha256()
while True:
    d = c.recv(65536)
    if not d: break
    h.update(d)
print(h.hexdigest(), flush=True)
"""
CLIENT_SCRIPT = """
import socket, sys
data = bytes(range(256)) * 2000
c = socket.create_connection(("10.8.0.1", 9000), timeout=10); c.sendall(data); c.close()
"""


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 20) -> list[str]:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if text in line:
            return seen
        if not line:
            break
    raise AssertionError(f"no {text!r} from {process.args}: {seen}")


def _build(tmp_path: Path) -> Path:
    gcc = shutil.which("gcc")
    assert gcc is not None, "needs gcc (Debian package gcc)"
    extra = fetch(EXAMPLE)
    binary = tmp_path / "vpn"
    subprocess.run([gcc, "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(binary),
                    str(EXAMPLE / "vpn.c"), *map(str, extra.sources),
                    *(f"-I{d}" for d in extra.include_dirs)], check=True)
    return binary


def test_vpn_example_is_linux_code(tmp_path: Path) -> None:
    require_root("the native VPN run needs root (network namespaces, TUN devices)")
    problem = tun_problem()
    assert problem is None, problem
    binary = _build(tmp_path)
    pid = os.getpid()
    with Namespace(f"vvp{pid}a") as ns_a, Namespace(f"vvp{pid}b") as ns_b:
        ns_a.add_veth("wan0", "wan0", peer_netns=ns_b)
        ns_a.add_address("wan0", "192.168.78.1/24")
        ns_b.add_address("wan0", "192.168.78.2/24")
        ns_a.set_up("wan0")
        ns_b.set_up("wan0")
        ns_a.check_isolated(["wan0"], prefixes=["192.168.78.0/24"])
        ns_b.check_isolated(["wan0"], prefixes=["192.168.78.0/24"])
        server = subprocess.Popen(ns_a.command(str(binary), "-s", "-p", "5555", "-k", KEY,
                                               "-i", "tun0", "-a", "10.8.0.1/24", "-x", "30"),
                                  stdout=subprocess.PIPE, text=True, env=clean_env())
        client = subprocess.Popen(ns_b.command(str(binary), "-c", "192.168.78.1", "-p", "5555",
                                               "-k", KEY, "-i", "tun0", "-a", "10.8.0.2/24",
                                               "-x", "30"),
                                  stdout=subprocess.PIPE, text=True, env=clean_env())
        intruder = None
        try:
            _wait_for_line(client, "tunnel up")
            _wait_for_line(server, "tunnel up")
            for ns in (ns_a, ns_b):
                ns.check_isolated(["wan0", "tun0"],
                                  prefixes=["192.168.78.0/24", "10.8.0.0/24"])
            # the program configured its device itself, as ip(8) would have
            shown = ns_b.ip("-4", "addr", "show", "dev", "tun0")
            assert "10.8.0.2/24" in shown and "mtu 1400" in ns_b.ip("link", "show", "tun0")
            assert "UP" in ns_b.ip("link", "show", "tun0")
            ping = ns_b.run("ping", "-c", "3", "-W", "2", "10.8.0.1", check=False)
            assert " 0% packet loss" in ping.stdout, ping.stdout + ping.stderr
            receiver = subprocess.Popen(ns_a.command("python3", "-c", SERVER_SCRIPT),
                                        stdout=subprocess.PIPE, text=True, env=clean_env())
            time.sleep(0.5)
            ns_b.run("python3", "-c", CLIENT_SCRIPT, timeout=60)
            digest = receiver.communicate(timeout=60)[0].strip()
            assert digest == hashlib.sha256(bytes(range(256)) * 2000).hexdigest()
            # a peer with the wrong key is never believed: its datagrams fail to authenticate
            intruder = subprocess.Popen(ns_b.command(str(binary), "-c", "192.168.78.1", "-p",
                                                     "5555", "-k", "00" * 32, "-i", "tun9",
                                                     "-x", "2"),
                                        stdout=subprocess.PIPE, text=True, env=clean_env())
            intruder_out = intruder.communicate(timeout=20)[0]
            assert "tunnel up" not in intruder_out
        finally:
            for process in (server, client, intruder):
                if process is not None and process.poll() is None:
                    process.terminate()
        server_out = server.communicate(timeout=20)[0]
        assert "bad_auth=0" not in server_out.splitlines()[-1], server_out
        client.communicate(timeout=20)
