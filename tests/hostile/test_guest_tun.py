"""Hostile use of a guest TUN device: each attempt is a clear errno or a counted drop.

tests/guest/c/tun_probe.c in its `hostile` mode, on a host that granted it
tun0 (10.8.0.1/24) and whose firewall drops packets from 10.66.0.0/16
arriving on tun0: it asks for devices it was not granted (another name, a
filled-in name, a TAP, `eth0`'s name, multi-queue), tries to make its device
persistent, writes an empty packet, a packet of version 7, a 1-byte packet, a
packet with a bad header checksum, a spoofed source the firewall forbids, a
legitimate datagram, one larger than the MTU and one larger than any IP
packet, and finally reads three queued answers one byte at a time. A UDP
socket on the host at 10.8.0.1:9999 shows what got through.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from tests.hostile.sched_support import GuestLab, LabGuest, hostile_source
from vnet.guest.runtime import Guest, GuestConfig, load_module
from vnet.link.guest_tun import GuestDeviceGrant
from vnet.network import Network
from vnet.testing.pcap import read_pcapng

PROBE = "tests/guest/c/tun_probe.c"
RULES = "chain input {\n    iifname tun0 ip saddr 10.66.0.0/16 drop\n}\n"


def test_hostile_tun_guest_gets_errnos_and_counted_drops(
        vnet_build: Callable[..., Path]) -> None:
    net = Network(virtual_time=True, seed=5)
    host = net.host("h")
    host.connect(net.segment("lan"), "192.168.0.1/24")
    firewall = host.set_firewall(RULES)
    assert firewall is not None
    sock = host.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 9999))
    guest = host.run(vnet_build(PROBE), "hostile", devices=["tun0=10.8.0.1/24"])
    assert guest.wait(timeout=60) == 0, guest.stderr
    lines = guest.stdout_lines
    for expected in [
        "setiff 0",
        "setiff_ungranted -1 EPERM",  # a second device without a grant (Linux: no CAP_NET_ADMIN)
        "setiff_ungranted_auto -1 EPERM",  # "" becomes tun1, not granted either
        "setiff_ungranted_tap -1 EPERM",
        "setiff_eth0 -1 EINVAL",  # the host's NIC is no tun device
        "setiff_multiqueue -1 EINVAL",
        "persist -1 EPERM",
        "not_persist 0",
        "write_empty -1 EINVAL",
        "write_bad_version -1 EINVAL",
        "write_runt 1",  # accepted, then dropped by IP and counted
        "write_bad_checksum 60",
        "write_spoofed 60",
        "write_legit 60",
        "write_over_mtu 3000",  # delivered locally, as Linux does
        "write_over_64k -1 EINVAL",
        "tiny reads 3 then EAGAIN",  # each 1-byte read took a whole packet
    ]:
        assert expected in lines, (expected, lines)

    sock.setblocking(False)
    received = []
    while True:
        try:
            data, source = sock.recvfrom(65536)
        except BlockingIOError:
            break
        received.append((source[0], len(data)))
    assert sorted(received) == [("10.8.0.2", 32), ("10.8.0.2", 2972)]  # not 10.66.0.1
    assert firewall.counters["input.drop"] == 1
    tun0 = host.stack.interface("tun0") if any(
        i.name == "tun0" for i in host.stack.interfaces.values()) else None
    assert tun0 is None  # closed with its fd: no persistent device left behind
    drops = host.stack.counters.drops("ipv4")
    assert sum(drops.values()) >= 2, drops  # the runt and the bad checksum
    sock.close()
    net.close()


def test_tun_flooder_leaves_a_tcp_pair_its_throughput_in_virtual_time(
        build_guest: Callable[..., Path], example_wasm: Callable[[str], Path]) -> None:
    """A guest writing forged packets into its TUN device in a tight loop, which its
    host (h3, forwarding) routes to h4 on the victims' LAN, while examples/bulk.c
    moves 2 MiB over TCP from h1 to h2: the victim's time beside the flooder against
    its time alone, both in virtual time (deterministic), must stay within 0.8."""
    flood = build_guest(hostile_source("tun_flood"), "-O2")
    bulk = example_wasm("bulk")

    def victim(with_flooder: bool) -> tuple[int, int]:
        lab = GuestLab(virtual=True, hosts=4, latency_ns=200_000)
        try:
            lab.start("victim-recv", "h2", bulk, "recv", "5001")
            if with_flooder:
                h3 = lab.hosts["h3"]
                h3.stack.forwarding = True
                config = GuestConfig(module=str(flood), args=["tun_flood", "tun0", "10.0.0.4",
                                                              "1200"],
                                     name="flooder", host=h3,
                                     devices=[GuestDeviceGrant("tun0", "tun",
                                                               ("10.8.0.1/24",))])
                flooder = LabGuest(Guest(lab.sched, config, load_module(flood)))
                lab.guests["flooder"] = flooder
                flooder.start()
            lab.run_until_output("victim-recv", "listening")
            sender = lab.start("victim-send", "h1", bulk, "send", "10.0.0.2", "5001", "2")
            assert lab.run_until_exited(["victim-send", "victim-recv"])
            assert sender.exit_code == 0 and lab.guests["victim-recv"].exit_code == 0
            return sender.took_ns, lab.hosts["h4"].nics["eth0"].counters.rx_frames
        finally:
            lab.close()

    alone_ns, _ = victim(False)
    beside_ns, flooded = victim(True)
    ratio = alone_ns / beside_ns
    print(f"\nvictim alone {alone_ns / 1e6:.3f} ms, beside the TUN flooder "
          f"{beside_ns / 1e6:.3f} ms, ratio {ratio:.3f}; h4 received {flooded} frames")
    assert flooded > 1000  # the flooder flooded through its device and h3's forwarding
    assert ratio >= 0.8


def test_a_guest_that_never_reads_gets_500_packets_queued_and_the_rest_counted(
        vnet_build: Callable[..., Path]) -> None:
    """The receive queue is bounded as Linux's (txqueuelen 500): 700 datagrams routed to
    a device whose guest sleeps leave 500 to read and 200 counted drops; a capture
    started after the device appeared records it too."""
    net = Network(virtual_time=True, seed=6)
    host = net.host("h")
    host.connect(net.segment("lan"), "192.168.0.1/24")
    guest = host.run(vnet_build(PROBE), "idle", "5", devices=["tun0=10.8.0.1/24"])
    guest.wait_for("setiff 0", timeout=30)
    capture = net.capture()  # after the device exists
    with host.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for n in range(700):
            sock.sendto(n.to_bytes(4, "big"), ("10.8.0.2", 9))
    tun0 = host.stack.interface("tun0")
    dropped = tun0.counters.tx_dropped["queue_full"]
    assert guest.wait(timeout=60) == 0, guest.stderr
    assert "queued 500 then EAGAIN" in guest.stdout_lines
    assert dropped == 200
    recorded = [p for p in read_pcapng(capture.getvalue()).packets if p.interface == "h/tun0"]
    assert len(recorded) == 500  # what the device took; the drops never reached it
    net.close()
