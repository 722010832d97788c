"""ipaddr: the interface listing matches the topology, natively and on vnet.

Natively the expected listing is written from the namespace's configuration;
on vnet it is also generated from the virtual host's own stack
(`host.stack.interfaces`), and the two must agree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from vnet.guest.runtime import Guest, GuestConfig
from vnet.network import Host, Network

from .harness import HOSTS, Lab, VnetLab

FLAG_NAMES = [(0x8, "LOOPBACK"), (0x2, "BROADCAST"), (0x10, "POINTOPOINT"),
              (0x1000, "MULTICAST"), (0x1, "UP"), (0x40, "RUNNING")]


def topology_listing(name: str) -> str:
    """What ipaddr prints on a lab host, from the lab's configuration alone."""
    spec = next(h for h in HOSTS if h.name == name)
    mac = bytes.fromhex(spec.mac.replace(":", ""))
    link_local = ipaddress.IPv6Address(
        b"\xfe\x80" + bytes(6) + bytes((mac[0] ^ 2,)) + mac[1:3] + b"\xff\xfe" + mac[3:])
    return (
        "1: lo: <LOOPBACK,UP,RUNNING>\n"
        "    inet 127.0.0.1/8\n"
        "    inet6 ::1/128\n"
        "2: eth0: <BROADCAST,MULTICAST,UP,RUNNING>\n"
        f"    link/ether {spec.mac}\n"
        f"    inet {spec.ipv4}\n"
        f"    inet6 {spec.ipv6}\n"
        f"    inet6 {link_local}/64\n"
    )


def stack_listing(host: Host) -> str:
    """What ipaddr should print on a virtual host, from its stack's interfaces."""
    out = []
    for index in sorted(host.stack.interfaces):
        iface = host.stack.interfaces[index]
        flags = ",".join(label for bit, label in FLAG_NAMES if iface.flags & bit)
        out.append(f"{index}: {iface.name}: <{flags}>")
        if iface.mac is not None:
            out.append("    link/ether " + ":".join(f"{b:02x}" for b in iface.mac))
        for a in sorted(iface.addresses(), key=lambda a: (len(a.address), a.address)):
            out.append(f"    {'inet' if a.version == 4 else 'inet6'} "
                       f"{ipaddress.ip_address(a.address)}/{a.prefix_len}")
    return "".join(line + "\n" for line in out)


def test_listing_matches_the_topology(lab: Lab) -> None:
    for name in ("alpha", "bravo"):
        program = lab.run(name, "ipaddr")
        assert program.exit_code == 0, program.describe()
        assert program.stdout == topology_listing(name)
        if isinstance(lab, VnetLab):
            assert program.stdout == stack_listing(lab.hosts[name])


def test_one_interface_by_name(lab: Lab) -> None:
    program = lab.run("bravo", "ipaddr", "lo")
    assert program.stdout == topology_listing("bravo").split("2: eth0")[0]
    missing = lab.run("bravo", "ipaddr", "eth7")
    assert missing.exit_code == 1
    assert missing.stderr == "ipaddr: no interface eth7\n"


def test_a_router_with_three_interfaces(example_wasm: Callable[[str], Path]) -> None:
    """More interfaces and addresses than the lab has; the guest sees exactly its own."""
    net = Network(virtual_time=True, seed=3)
    try:
        router = net.router("r1")
        for n, seg in enumerate(("a", "b", "c")):
            router.connect(net.segment(seg), f"192.168.{n}.1/24", f"2001:db8:{n}::1/48",
                           mtu=1400 + n)
        router.add_address("eth1", "192.168.1.200/32")
        router.add_address("eth2", "fd00:beef::2/64")
        other = net.host("elsewhere")
        other.connect(net.segments["a"], "192.168.0.9/24")
        out = bytearray()
        guest = Guest(net.scheduler, GuestConfig(module=str(example_wasm("ipaddr")),
                                                 args=["ipaddr"], host=router,
                                                 stdout=out.extend, name="ipaddr"))
        guest.start()
        net.scheduler.run(until=lambda: guest.done)
        assert guest.exit_code == 0
        assert out.decode() == stack_listing(router)
        assert "192.168.0.9" not in out.decode()
        assert out.decode().count(": <BROADCAST,MULTICAST,UP,RUNNING>") == 3
    finally:
        net.close()
