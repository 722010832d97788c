"""The Linux kernel as the receiver of vnet's router advertisements, and a DHCP
client nobody here wrote (scapy's, on a kernel Ethernet device) against vnet's
DHCP server.

A TAP device (Ethernet, unlike the TUN bridge) in a throwaway namespace is
one port of a vnet segment; a vnet router on the segment advertises
fd00:77::/64 with an MTU option. The kernel, an ordinary IPv6 host there
(accept_ra, autoconf on), must do what Linux does with a valid RA: solicit
(which the router answers), configure a SLAAC address in the prefix,
install a default route through the router's link-local address (proto
ra), take the advertised MTU, and reach the router from its new address.
scapy, run inside the namespace on the same device, sends a DISCOVER without
the broadcast flag and a REQUEST: vnet's server must OFFER and ACK with the
options asked for, unicast to the offered address at the client's MAC (RFC
2131 4.1) -- the path vnet's own client (which sets the flag) never takes.

Real time (the kernel has no virtual time); about 3 s. Safety: the
namespace holds only lo and the TAP device, whose other side is vnet
(checked by the audited guard, `vnet.testing.netns`, before anything runs);
it has no route off the machine and is deleted afterwards.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from pathlib import Path

from vnet.link.segment import SegmentPort
from vnet.network import Network
from vnet.testing.netns import Namespace, refuse, tun_problem

from .conftest import DAD_OFF


class _TapPort:
    """A TAP device's file descriptor as an endpoint of a vnet segment."""

    def __init__(self, net: Network, fd: int, name: str) -> None:
        self.net = net
        self.fd = fd
        self.name = name
        self.port: SegmentPort | None = None
        self.stop = threading.Event()

    def deliver(self, frame: bytes) -> None:  # vnet -> kernel
        try:
            os.write(self.fd, bytes(frame))
        except OSError:
            pass

    def read_loop(self) -> None:  # kernel -> vnet
        sched = self.net.scheduler
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while not self.stop.is_set():
            if not poller.poll(100):
                continue
            try:
                frame = os.read(self.fd, 65536)
            except OSError:
                return
            with sched.lock, sched.atomic():
                assert self.port is not None
                self.port.send(frame)
            sched.notify()


def test_linux_takes_vnets_router_advertisement() -> None:
    problem = tun_problem()
    if problem:
        refuse(f"the RA interop test {problem}")
    import pytun

    device = f"vra{os.getpid() % 100000}"
    net = Network(virtual_time=False, seed=1)
    with Namespace(f"vra{os.getpid()}", sysctls=DAD_OFF) as ns:
        tap = pytun.TunTapDevice(name=device, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
        endpoint = _TapPort(net, tap.fileno(), "kernel")
        try:
            ns.adopt(device)
            ns.check_isolated([device])
            lan = net.segment("lan")
            router = net.router("r")
            router.connect(lan, "fd00:77::1/64")
            endpoint.port = lan.attach(endpoint)
            threading.Thread(target=endpoint.read_loop, daemon=True).start()
            router.advertise("eth0", interval=30, mtu=1400, lifetime=600)
            ns.sysctl(f"net.ipv6.conf.{device}.accept_ra=1",
                      f"net.ipv6.conf.{device}.autoconf=1")
            ns.set_up(device)
            deadline = time.monotonic() + 10
            addresses = routes = ""
            while time.monotonic() < deadline:
                net.run_for(0.2)
                addresses = ns.ip("-6", "addr", "show", "dev", device)
                routes = ns.ip("-6", "route", "show", "default")
                if "fd00:77:" in addresses and "proto ra" in routes:
                    break
            assert "fd00:77:" in addresses and "dynamic" in addresses, addresses
            assert "default via fe80::" in routes and "proto ra" in routes, routes
            mtu = ns.run("cat", f"/proc/sys/net/ipv6/conf/{device}/mtu").stdout.strip()
            assert mtu == "1400"
            assert router.counters["ndp.rs_in"] >= 1  # the kernel solicited
            # and it reaches the router from its SLAAC address (vnet runs meanwhile)
            result: list[subprocess.CompletedProcess[str]] = []
            pinger = threading.Thread(target=lambda: result.append(ns.run(
                "ping", "-6", "-c", "1", "-W", "3", "fd00:77::1", check=False)))
            pinger.start()
            while pinger.is_alive():
                net.run_for(0.1)
            assert result[0].returncode == 0, result[0].stdout + result[0].stderr
        finally:
            endpoint.stop.set()
            net.close()
            tap.close()


SCAPY_CLIENT = """
import sys
from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf, get_if_hwaddr, srp1
conf.checkIPaddr = False
iface = sys.argv[1]
mac = get_if_hwaddr(iface)
chaddr = bytes.fromhex(mac.replace(":", ""))
def ask(options):
    frame = (Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / IP(src="0.0.0.0", dst="255.255.255.255")
             / UDP(sport=68, dport=67) / BOOTP(chaddr=chaddr, xid=0x5eed)
             / DHCP(options=options + ["end"]))
    reply = srp1(frame, iface=iface, timeout=5, retry=3, verbose=0)  # a DHCP client retransmits
    if reply is None:
        print("NO REPLY")
        sys.exit(1)
    opts = {o[0]: o[1] for o in reply[DHCP].options if isinstance(o, tuple)}
    print(opts["message-type"], reply[BOOTP].yiaddr, reply[IP].dst, reply[Ether].dst, mac,
          opts.get("subnet_mask"), opts.get("router"), opts.get("name_server"),
          opts.get("lease_time"), opts.get("server_id"))
    return reply, opts
offer, offered = ask([("message-type", "discover"), ("param_req_list", [1, 3, 6, 51])])
ask([("message-type", "request"), ("server_id", offered["server_id"]),
     ("requested_addr", offer[BOOTP].yiaddr)])
"""


def test_a_scapy_dhcp_client_on_a_kernel_device_gets_a_lease_from_vnet() -> None:
    problem = tun_problem()
    if problem:
        refuse(f"the DHCP interop test {problem}")
    import sys

    import pytun

    device = f"vdh{os.getpid() % 100000}"
    net = Network(virtual_time=False, seed=1)
    with Namespace(f"vdh{os.getpid()}", sysctls=DAD_OFF) as ns:
        tap = pytun.TunTapDevice(name=device, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
        endpoint = _TapPort(net, tap.fileno(), "kernel")
        try:
            ns.adopt(device)
            ns.check_isolated([device])
            ns.sysctl(f"net.ipv6.conf.{device}.disable_ipv6=1")  # only DHCP on the wire
            ns.set_up(device)
            lan = net.segment("lan")
            router = net.router("r")
            router.connect(lan, "10.77.0.1/24")
            server = router.dhcp_server("eth0", "10.77.0.50", "10.77.0.60", lease="30m",
                                        dns=["10.77.0.53"])
            endpoint.port = lan.attach(endpoint)
            threading.Thread(target=endpoint.read_loop, daemon=True).start()
            result: list[subprocess.CompletedProcess[str]] = []
            client = threading.Thread(target=lambda: result.append(ns.run(
                sys.executable, "-c", SCAPY_CLIENT, device, check=False, timeout=60)))
            client.start()
            while client.is_alive():
                net.run_for(0.1)
            out = result[0].stdout + result[0].stderr
            assert result[0].returncode == 0, out
            offer, ack = result[0].stdout.split("\n")[:2]
            kind, yiaddr, ip_dst, eth_dst, mac, mask, gateway, dns, lease, server_id = (
                offer.split())
            assert (kind, yiaddr, ip_dst, eth_dst) == ("2", "10.77.0.50", "10.77.0.50", mac)
            assert (mask, gateway, dns, lease, server_id) == (
                "255.255.255.0", "10.77.0.1", "10.77.0.53", "1800", "10.77.0.1")
            assert ack.split()[:4] == ["5", "10.77.0.50", "10.77.0.50", mac], ack
            assert server.leases(net.scheduler.monotonic_ns()) == {
                bytes.fromhex(mac.replace(":", "")): bytes((10, 77, 0, 50))}
        finally:
            endpoint.stop.set()
            net.close()
            tap.close()


TUN_TOPOLOGY = """\
[segments.lan]

[hosts.gw]
forwarding = true
[[hosts.gw.nics]]
segment = "lan"
addresses = ["10.211.0.1/24"]
[hosts.gw.tun]
device = "DEVICE"
netns = "NETNS"
kernel_addresses = ["10.200.9.1/30"]
addresses = ["10.200.9.2/30"]

[hosts.inner]
routes = [{ to = "0.0.0.0/0", via = "10.211.0.1" }]
[[hosts.inner.nics]]
segment = "lan"
addresses = ["10.211.0.2/24"]
"""


def test_a_topology_tun_key_bridges_a_router_to_the_kernel(tmp_path: Path) -> None:
    """`[hosts.gw.tun]` as `vnet run --tun`: the kernel in its namespace pings a host
    behind the router; the namespace (made by the bridge's guard) is gone afterwards."""
    problem = tun_problem()
    if problem:
        refuse(f"the TUN key test {problem}")
    from vnet.sim.router_services import open_tuns
    from vnet.sim.runner import build
    from vnet.sim.topology import load

    device, netns = f"vtk{os.getpid() % 100000}", f"vtk{os.getpid()}"
    path = tmp_path / "tun.toml"
    path.write_text(TUN_TOPOLOGY.replace("DEVICE", device).replace("NETNS", netns))
    topo = load(path)
    net, _hosts, _captures, _pcaps = build(topo, False, 0, None)
    bridges = open_tuns(topo, net, None)
    try:
        result: list[subprocess.CompletedProcess[str]] = []
        pinger = threading.Thread(target=lambda: result.append(subprocess.run(
            ["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "3", "10.211.0.2"],
            capture_output=True, text=True, timeout=30)))
        pinger.start()
        while pinger.is_alive():
            net.run_for(0.1)
        assert result[0].returncode == 0, result[0].stdout + result[0].stderr
    finally:
        for bridge in bridges:
            bridge.close()
        net.close()
    assert netns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                       text=True).stdout
