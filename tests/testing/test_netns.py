"""The network-namespace guard (vnet.testing.netns) refuses every way out and leaves nothing behind.

Each test makes namespaces with the guard itself and checks what `ip`
reports afterwards. Needs root and iproute2 (CI runs as root); fails, never
skips, without them. Nothing here sends a packet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from vnet.testing import netns
from vnet.testing.netns import Namespace, NamespaceError

_SERIAL = iter(range(1, 1000))


@pytest.fixture
def name() -> Iterator[str]:
    netns.require_root("the namespace guard tests must run as root: they create network "
                       "namespaces with `ip netns add` (CI runs them as root)")
    made = f"vng{os.getpid()}-{next(_SERIAL)}"
    yield made
    netns.delete_namespace(made)  # should a test have failed half-way


def wired(ns: Namespace) -> None:
    """eth0 (10.9.0.1/24, fd09::1/64) with its peer peer0 in the same namespace."""
    ns.add_veth("eth0", "peer0")
    ns.add_address("eth0", "10.9.0.1/24")
    ns.add_address("eth0", "fd09::1/64")
    ns.set_up("eth0", "peer0")


def test_a_wired_namespace_passes_and_is_gone_afterwards(name: str) -> None:
    with Namespace(name, sysctls=("net.ipv6.conf.all.accept_dad=0",)) as ns:
        wired(ns)
        ns.check_isolated(["eth0", "peer0"], prefixes=["10.9.0.0/24", "fd09::/64"])
        assert ns.run("sysctl", "-n", "net.ipv6.conf.all.accept_dad").stdout.strip() == "0"
        assert "UP" in ns.ip("-o", "link", "show", "lo")
        assert name in netns.list_namespaces()
    assert name not in netns.list_namespaces()


@pytest.mark.parametrize("route", [
    ("route", "add", "default", "via", "10.9.0.2"),
    ("route", "add", "192.0.2.0/24", "via", "10.9.0.2"),
    ("-6", "route", "add", "default", "dev", "eth0"),
])
def test_a_route_out_is_refused(name: str, route: tuple[str, ...]) -> None:
    with Namespace(name) as ns:
        wired(ns)
        ns.ip(*route)
        with pytest.raises(NamespaceError, match="route that could leave"):
            ns.check_isolated(["eth0", "peer0"])


def test_a_route_to_something_else_than_the_test_prefixes_is_refused(name: str) -> None:
    with Namespace(name) as ns:
        wired(ns)
        ns.ip("route", "add", "192.0.2.0/24", "dev", "eth0")
        ns.check_isolated(["eth0", "peer0"])  # on-link: allowed without prefixes
        with pytest.raises(NamespaceError, match=r"192\.0\.2\.0/24, which is not a test prefix"):
            ns.check_isolated(["eth0", "peer0"], prefixes=["10.9.0.0/24", "fd09::/64"])


def test_an_unexpected_link_is_refused(name: str) -> None:
    with Namespace(name) as ns:
        wired(ns)
        with pytest.raises(NamespaceError, match="unexpected links"):
            ns.check_isolated(["eth0"])


def test_a_veth_to_the_machines_own_namespace_is_refused(name: str) -> None:
    host_end = f"vgh{os.getpid()}"[:15]
    with Namespace(name) as ns:
        subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
                        "netns", name], check=True, capture_output=True)
        try:
            with pytest.raises(NamespaceError, match="not ours"):
                ns.check_isolated(["eth0"])
        finally:
            subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
    with pytest.raises(NamespaceError, match="not a namespace of ours"):
        Namespace(name).add_veth("x0", "x1", peer_netns="vng-not-ours")


def test_a_leftover_of_the_same_name_is_replaced(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "add", "stale0", "type", "veth", "peer", "name",
                    "stale1"], check=True)
    with Namespace(name) as ns:
        ns.check_isolated([])  # only lo: the stale devices went with the old namespace


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_deletes_the_namespaces_and_what_runs_inside(name: str, signum: int) -> None:
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        from vnet.testing.netns import Namespace
        ns = Namespace({name!r}, hosts_file="10.9.0.1 alpha\\n").create()
        sleeper = subprocess.Popen(ns.command("sleep", "300"))
        print(sleeper.pid, flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    sleeper = int(proc.stdout.readline())
    assert name in netns.list_namespaces()
    assert os.path.exists(f"/etc/netns/{name}/hosts")
    proc.send_signal(signum)
    assert proc.wait(30) != 0
    assert name not in netns.list_namespaces()
    assert not os.path.exists(f"/etc/netns/{name}")
    assert not alive(sleeper), f"the process inside the namespace ({sleeper}) survived"


def alive(pid: int) -> bool:
    """pid exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:
        return False
