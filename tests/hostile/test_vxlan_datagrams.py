"""Hostile datagrams at a VXLAN port: counted drops, and the shared segment keeps working.

Victim: host a pings host b across a segment shared over VXLAN (two vnet
networks in this process, loopback underlay, see tests/wiring/vxlan_support).
Attacker: plain UDP sockets on 127.0.0.0/8 firing at a's VXLAN port while the
pings run -- from an address that is not a configured remote, and from the
remote's own address (VXLAN has no authentication: RFC 7348 section 7) with
runts, a missing I flag, another VNI, and valid headers around garbage
frames. Every ping must be answered, every junk datagram counted under its
reason, and neither network's loop may die.
"""

from __future__ import annotations

import random
import socket
import threading

from vnet.link.vxlan import encapsulate

from ..wiring.vxlan_support import VNI, VxlanPair

JUNK_EACH = 300


def test_junk_datagrams_are_counted_and_pings_still_answered() -> None:
    pair = VxlanPair().start()
    rng = random.Random(18)
    stop = threading.Event()
    sent = {"unknown_remote": 0, "runt": 0, "no_vni": 0, "wrong_vni": 0, "garbage": 0}

    def attack() -> None:
        target = ("127.0.0.1", pair.udp_port)
        outsider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        outsider.bind(("127.0.0.3", 0))
        spoof = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        spoof.bind(("127.0.0.2", 0))  # the remote's address, another port
        try:
            for _ in range(JUNK_EACH):
                outsider.sendto(encapsulate(VNI, rng.randbytes(60)), target)
                sent["unknown_remote"] += 1
                spoof.sendto(rng.randbytes(rng.randrange(0, 22)), target)
                sent["runt"] += 1
                spoof.sendto(bytes(8) + rng.randbytes(60), target)
                sent["no_vni"] += 1
                spoof.sendto(encapsulate(VNI + 1, rng.randbytes(60)), target)
                sent["wrong_vni"] += 1
                # A valid header around a broadcast frame of garbage (a multicast
                # source MAC, so it teaches the switch nothing).
                spoof.sendto(encapsulate(VNI, b"\xff" * 6 + b"\x03" + rng.randbytes(80)),
                             target)
                sent["garbage"] += 1
                if stop.is_set():
                    break
        finally:
            outsider.close()
            spoof.close()

    attacker = threading.Thread(target=attack, daemon=True)
    try:
        attacker.start()
        rtts = pair.in_host(0, lambda: pair.hosts[0].ping("10.50.0.2", count=20, timeout=2.0,
                                                         interval=0.02), timeout_s=60)
        attacker.join(30)
        a = pair.ports[0]
        # Every junk datagram reached the port and was counted (give the reader time).
        deadline = threading.Event()
        for _ in range(100):
            c = a.counters
            if (c.drop_unknown_remote, c.drop_runt, c.drop_no_vni, c.drop_wrong_vni) == (
                    sent["unknown_remote"], sent["runt"], sent["no_vni"], sent["wrong_vni"]):
                break
            deadline.wait(0.05)
    finally:
        stop.set()
        pair.close()
    assert all(rtt is not None for rtt in rtts), rtts
    c = a.counters
    assert (c.drop_unknown_remote, c.drop_runt, c.drop_no_vni, c.drop_wrong_vni) == (
        sent["unknown_remote"], sent["runt"], sent["no_vni"], sent["wrong_vni"])
    assert c.rx_frames >= sent["garbage"] + 20  # the garbage went into the segment, counted
    assert a.fdb() == {bytes([2, 0x50, 0, 0, 0, 2]): "127.0.0.2"}  # not poisoned
