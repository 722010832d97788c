"""Firewall escapes: a hostile guest under `vnet run`'s secure defaults tries to get out.

The attacker (tests/hostile/c/escape_sender.c, compiled to wasm) sends UDP to
the limited broadcast 255.255.255.255, to the link-local groups 224.0.0.1 and
ff02::1, to the administratively scoped group 239.1.2.3 and to the kernel's
own addresses on the bridge, each from a socket bound (SO_BINDTODEVICE) to
the interface it aims at.

Through the TUN bridge the victim is the kernel: `vnet run --tun` runs the
guest on a host bridged into a network namespace this test creates (only
`lo` and the TUN device in it, no route out; `tests/kernel/conftest.py`'s
helpers), where a listener bound to the port on 0.0.0.0 and [::], having
joined 239.1.2.3 on the device, records every datagram. With the defaults
it must receive nothing and each send fails with EPERM (the OUTPUT hook's
reject, as on Linux); with `--allow-out` grants for those destinations the
same run delivers every one of them -- the control that shows the listener
would have seen an escape.

On the virtual LAN (no kernel involved) the defaults let link-scoped
traffic through -- 224.0.0.1, ff02::1 and 255.255.255.255 reach a
neighbour -- and nothing beyond the link: 239.1.2.3 is refused.
"""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firewall import HostFirewall, sandbox_ruleset
from tests.kernel.conftest import (
    check_isolated,
    clean_env,
    create_namespace,
    delete_namespace,
    require_kernel_privileges,
    unique_name,
)
from vnet.network import Network

SENDER_C = Path(__file__).resolve().parent / "c" / "escape_sender.c"
PORT = 47999
GROUP = "239.1.2.3"
# broadcast, multicast, and plain unicast to the kernel side of the bridge
DESTS = ("255.255.255.255", "224.0.0.1", GROUP, "ff02::1", "10.200.0.1", "fd77:200::1")
GUEST4 = "10.210.0.2/24"
TUN_KERNEL4, TUN_GUEST4 = "10.200.0.1/30", "10.200.0.2/30"
TUN_KERNEL6, TUN_GUEST6 = "fd77:200::1/64", "fd77:200::2/64"
TUN_PORT = "tun0"  # the bridge's port on the guest's host (TunBridge's default)

# Runs inside the namespace: listen on PORT on the device, print what arrived on "stop".
LISTENER = r"""
import select, socket, struct, sys
device, port, group = sys.argv[1], int(sys.argv[2]), sys.argv[3]
index = socket.if_nametoindex(device)
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s4.bind(("0.0.0.0", port))
s4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
              socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("i", index))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind(("::", port))
print("ready", flush=True)
got = []
while True:
    ready, _, _ = select.select([s4, s6, sys.stdin], [], [])
    for s in (s4, s6):
        if s in ready:
            data, addr = s.recvfrom(2048)
            got.append((data.decode(), addr[0]))
    if sys.stdin in ready:
        sys.stdin.readline()
        break
print(repr(got), flush=True)
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    require_kernel_privileges()
    ns = unique_name("vk", "esc")
    create_namespace(ns)
    try:
        yield ns
    finally:
        delete_namespace(ns)


@pytest.fixture(scope="module")
def escape_sender(build_guest: Callable[..., Path]) -> Path:
    return build_guest(SENDER_C)


def _wait_for_device(ns: str, device: str, vnet: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if subprocess.run(["ip", "-n", ns, "link", "show", device], capture_output=True,
                          timeout=30).returncode == 0:
            return
        if vnet.poll() is not None:
            break
        time.sleep(0.05)
    vnet.kill()
    _out, err = vnet.communicate()
    pytest.fail(f"vnet run never created {device} in {ns}: {err!r}")


def _escape_through_bridge(ns: str, module: Path, *grants: str) -> tuple[str, list[object]]:
    """Run the attacker behind `vnet run --tun` (plus grants); (its stdout, what arrived)."""
    device = unique_name("vt", "esc")
    vnet = subprocess.Popen(
        [sys.executable, "-m", "vnet", "run", "--tun", "--tun-netns", ns,
         "--tun-device", device, "--addr", GUEST4,
         "--tun-kernel-addr", TUN_KERNEL4, "--tun-addr", TUN_GUEST4,
         "--tun-kernel-addr", TUN_KERNEL6, "--tun-addr", TUN_GUEST6, *grants,
         str(module), "--wait", TUN_PORT, str(PORT), *DESTS],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    listener: subprocess.Popen[str] | None = None
    try:
        assert vnet.stdout is not None and vnet.stdin is not None
        assert vnet.stdout.readline() == b"ready\n"
        _wait_for_device(ns, device, vnet)
        check_isolated(ns, [device])
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-I", "-c", LISTENER, device, str(PORT),
             GROUP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=clean_env())
        assert listener.stdout is not None and listener.stdin is not None
        assert listener.stdout.readline() == "ready\n"
        vnet.stdin.write(b"go\n")
        vnet.stdin.flush()  # communicate() closes it
        out, err = vnet.communicate(timeout=60)
        assert vnet.returncode == 0, err
        time.sleep(0.5)  # datagrams in flight through the TUN device
        got, _ = listener.communicate("stop\n", timeout=30)
        return out.decode(), ast.literal_eval(got.strip())
    finally:
        for proc in (vnet, listener):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_default_firewall_lets_no_broadcast_or_multicast_through_the_tun_bridge(
        namespace: str, escape_sender: Path) -> None:
    out, got = _escape_through_bridge(namespace, escape_sender)
    assert got == [], f"the kernel side of the bridge received {got}"
    assert out.splitlines() == [f"{dest} Operation not permitted" for dest in DESTS], out


def test_allow_out_grants_let_the_same_datagrams_through_the_bridge(
        namespace: str, escape_sender: Path) -> None:
    grants = [arg for dest in DESTS for arg in
              ("--allow-out", f"udp:{f'[{dest}]' if ':' in dest else dest}:{PORT}")]
    out, got = _escape_through_bridge(namespace, escape_sender, *grants)
    assert out.splitlines() == [f"{dest} ok" for dest in DESTS], out
    sources = {"escape " + dest: src for dest in DESTS for text, src in got  # type: ignore[misc]
               if text == "escape " + dest}
    assert sorted(sources) == sorted(f"escape {dest}" for dest in DESTS), got
    assert len(got) == 3 * len(DESTS), got  # three sends each, all delivered


def test_default_firewall_keeps_multicast_on_the_link_of_the_virtual_lan() -> None:
    """Link-scoped broadcast/multicast reaches a neighbour; 239.1.2.3 never leaves."""
    net = Network(virtual_time=True, seed=1)
    try:
        lan = net.segment("lan")
        attacker, neighbour = net.host("attacker"), net.host("neighbour")
        attacker.connect(lan, "10.0.0.1/24", "fd00::1/64", ifname="eth0")
        neighbour.connect(lan, "10.0.0.2/24", "fd00::2/64", ifname="eth0")
        HostFirewall(sandbox_ruleset()).attach(attacker.stack)
        listen4 = neighbour.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listen4.bind(("0.0.0.0", PORT))
        index = neighbour.stack.interface("eth0").index
        listen4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                           socket.inet_aton(GROUP) + socket.inet_aton("0.0.0.0")
                           + index.to_bytes(4, "little"))
        listen6 = neighbour.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        listen6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listen6.bind(("::", PORT))
        outcomes = {}
        for dest in DESTS[:4]:  # broadcast and multicast
            family = socket.AF_INET6 if ":" in dest else socket.AF_INET
            sock = attacker.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setsockopt(socket.SOL_SOCKET, 25, b"eth0")  # SO_BINDTODEVICE
            try:
                sock.sendto(f"lan {dest}".encode(), (dest, PORT))
                outcomes[dest] = "ok"
            except OSError as e:
                outcomes[dest] = str(e.strerror)
            sock.close()
        net.run_for(0.5)
        got = set()
        for sock in (listen4, listen6):
            sock.setblocking(False)
            while True:
                try:
                    got.add(sock.recvfrom(2048)[0].decode())
                except BlockingIOError:
                    break
    finally:
        net.close()
    assert outcomes == {"255.255.255.255": "ok", "224.0.0.1": "ok",
                        GROUP: "Operation not permitted", "ff02::1": "ok"}, outcomes
    assert got == {"lan 255.255.255.255", "lan 224.0.0.1", "lan ff02::1"}, got
