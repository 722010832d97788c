"""Two vnet networks in this process sharing one segment over VXLAN on loopback.

    network A: host "a" 10.50.0.1 fd50::1 ─ lan ─ VxlanPort 127.0.0.1:P ─┐  (UDP on lo)
    network B: host "b" 10.50.0.2 fd50::2 ─ lan ─ VxlanPort 127.0.0.2:P ─┘

Both run in real time, each scheduler in its own thread. Datagrams only ever
go between 127.0.0.1 and 127.0.0.2 (this machine's loopback). Used by
tests/wiring/test_vxlan.py and tests/hostile/test_vxlan_datagrams.py.

Touches: two UDP sockets on 127.0.0.0/8 (through VxlanPort), threads.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from vnet.link.vxlan import VxlanPort
from vnet.network import Host, Network

VNI = 4242


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 now (both ends of the pair use it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class VxlanPair:
    def __init__(self) -> None:
        self.udp_port = free_udp_port()
        self.nets: list[Network] = []
        self.hosts: list[Host] = []
        self.ports: list[VxlanPort] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.errors: list[BaseException] = []
        for index, (local, remote) in enumerate((("127.0.0.1", "127.0.0.2"),
                                                 ("127.0.0.2", "127.0.0.1"))):
            net = Network()
            lan = net.segment("lan")
            host = net.host("ab"[index])
            host.connect(lan, f"10.50.0.{index + 1}/24", f"fd50::{index + 1}/64",
                         mac=bytes([2, 0x50, 0, 0, 0, index + 1]), mtu=1450)
            self.nets.append(net)
            self.hosts.append(host)
            self.ports.append(VxlanPort(net.scheduler, lan, vni=VNI, local=local,
                                        remotes=[remote], port=self.udp_port))

    def start(self) -> VxlanPair:
        for port in self.ports:
            port.open()
        for net in self.nets:
            thread = threading.Thread(target=self._run, args=(net,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, net: Network) -> None:
        try:
            net.scheduler.run(until=self._stop.is_set)
        except BaseException as e:
            self.errors.append(e)

    def in_host(self, index: int, fn: Callable[[], Any], timeout_s: float = 30) -> Any:
        box: dict[str, Any] = {}

        def body() -> None:
            box["value"] = fn()

        task = self.nets[index].spawn("script", body)
        deadline = time.monotonic() + timeout_s
        while not task.done:
            assert time.monotonic() < deadline, "the script did not finish"
            time.sleep(0.01)
        if task.error is not None:
            raise task.error
        return box["value"]

    def close(self) -> None:
        self._stop.set()
        for net in self.nets:
            net.scheduler.notify()
        for thread in self._threads:
            thread.join(10)
        for port in self.ports:
            port.close()
        for net in self.nets:
            net.close()
        assert not self.errors, self.errors
