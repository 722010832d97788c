"""A vnet segment and a Linux vxlan device share one L2 segment (RFC 7348, VNI 42).

    netns vxu<pid>-<n> (vnet's underlay)        netns vxk<pid>-<n> (the kernel's side)
      u0 10.219.0.1/24  fd79::1/64  ─── veth ───  u1 10.219.0.2/24  fd79::2/64
      ^ vnet's VXLAN socket binds here, UDP 4789    vx0: vxlan id 42 dstport 4789 dev u1,
                                                       remote = vnet (the all-zeros FDB entry)
    vnet (this process, real time)                     10.218.0.1/24 fd78::1/64, mtu 1450
      segment "lan" ── VxlanPort (vni 42) ── that socket
        host h eth0 10.218.0.2/24 fd78::2/64, mtu 1450

The kernel pings the vnet host and the vnet host pings the kernel (IPv4 and
IPv6 inside; the underlay is IPv4 or IPv6), and a TCP transfer goes from a
kernel socket to the vnet host and back (SHA-256 equal). Both ends are
captured -- vnet's segment capture and tcpdump on vx0 in the namespace -- and
must hold the same ICMP exchanges and the same TCP payload. With three ends
the kernel's vx0 has no `remote` but a static FDB (two all-zeros entries,
`bridge fdb append`), and a second vnet network's VXLAN socket binds
10.219.0.3 on u0: Linux and two vnet networks share one broadcast domain.

Network safety: both namespaces are made by the audited guard
(vnet.testing.netns); the only link out of each is the veth between them,
`check_isolated` proves no route leaves (no default, no gateway, only the
test prefixes), and vnet's socket is opened inside the underlay namespace
(setns on the opening thread), so no datagram can leave this machine.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from vnet.link.capture import Capture
from vnet.link.vxlan import VxlanError, VxlanPort
from vnet.network import Network
from vnet.testing.netns import Namespace, clean_env

from .conftest import (
    KERNEL_PEERS,
    KernelProcess,
    require_kernel_privileges,
    tshark_fields,
    unique_name,
    wait_until,
)

VNI = 42
UNDER_VNET = {4: "10.219.0.1", 6: "fd79::1"}
UNDER_KERNEL = {4: "10.219.0.2", 6: "fd79::2"}
KERNEL = {4: "10.218.0.1", 6: "fd78::1"}
VNET = {4: "10.218.0.2", 6: "fd78::2"}
VNET2 = {4: "10.218.0.3", 6: "fd78::3"}  # the third end's host
UNDER_VNET2 = "10.219.0.3"
PREFIXES = ("10.218.0.0/24", "fd78::/64", "10.219.0.0/24", "fd79::/64")
# `ethtool -K DEV FEATURE off ...` without ethtool: SIOCETHTOOL ioctls setting 0 for
# each command given (ETHTOOL_STXCSUM 0x17, ETHTOOL_STSO 0x1f, ETHTOOL_SGSO 0x24,
# ETHTOOL_SGRO 0x2c).
_ETHTOOL_OFF = """
import ctypes, fcntl, socket, struct, sys
for command in sys.argv[2:]:
    value = ctypes.create_string_buffer(struct.pack("II", int(command, 0), 0))
    ifreq = struct.pack("16sP", sys.argv[1].encode(), ctypes.addressof(value))
    fcntl.ioctl(socket.socket(), 0x8946, ifreq)
"""
MTU = 1450  # the underlay's 1500 minus 50 bytes of VXLAN encapsulation (IPv4 underlay)


class VxlanLab:
    """Two namespaces joined by a veth underlay; a kernel vxlan device; a vnet host."""

    def __init__(self, tmp: Path, underlay: int, third: bool = False) -> None:
        self.tmp = tmp
        self.underlay = underlay
        #: A second vnet network (host h2, VTEP 10.219.0.3) on the same segment: three ends.
        self.third = third
        self.ns_vnet = Namespace(unique_name("vxu", ""), sysctls=("net.ipv6.conf.all.accept_dad=0",
                                 "net.ipv6.conf.default.accept_dad=0"))
        self.ns_kernel = Namespace(unique_name("vxk", ""), sysctls=(
            "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"))
        self.net = Network()
        self.lan = self.net.segment("lan")
        self.host = self.net.host("h")
        #: 1450 over an IPv4 underlay, 1430 over IPv6 (the outer header is 20 bytes longer)
        self.mtu = MTU if underlay == 4 else MTU - 20
        self.nic = self.host.connect(self.lan, f"{VNET[4]}/24", f"{VNET[6]}/64", mtu=self.mtu)
        self.port: VxlanPort | None = None
        self.net2 = Network()
        self.lan2 = self.net2.segment("lan")
        self.host2 = self.net2.host("h2")
        self.host2.connect(self.lan2, f"{VNET2[4]}/24", f"{VNET2[6]}/64", mtu=self.mtu,
                           mac=bytes.fromhex("020000000a03"))
        self.port2: VxlanPort | None = None
        self.processes: list[KernelProcess] = []
        self.capture_path = tmp / "vnet-segment.pcapng"
        self.capture: Capture | None = None
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._loop2: threading.Thread | None = None
        self.loop_error: BaseException | None = None

    def start(self) -> VxlanLab:
        k, v = self.ns_kernel, self.ns_vnet
        v.create()
        k.create()
        v.add_veth("u0", "u1", peer_netns=k)
        fam = self.underlay
        plen = 24 if fam == 4 else 64
        v.add_address("u0", f"{UNDER_VNET[fam]}/{plen}")
        if self.third:
            v.add_address("u0", f"{UNDER_VNET2}/24")
        k.add_address("u1", f"{UNDER_KERNEL[fam]}/{plen}")
        v.set_up("u0")
        k.set_up("u1")
        # A veth hands a checksum-offloaded skb to its peer as it is: the inner TCP
        # checksum of an encapsulated frame would never be filled in (a real NIC fills
        # it). Checksum in software, as on a NIC without offload.
        k.run(sys.executable, "-I", "-c", _ETHTOOL_OFF, "u1", "0x17")
        remote = () if self.third else ("remote", UNDER_VNET[fam])
        k.ip("link", "add", "vx0", "type", "vxlan", "id", str(VNI), "local", UNDER_KERNEL[fam],
             *remote, "dstport", "4789", "dev", "u1",
             *(("udp6zerocsumrx",) if fam == 6 else ()))
        if self.third:  # a static FDB: every BUM frame to both vnet ends (head-end replication)
            for dst in (UNDER_VNET[fam], UNDER_VNET2):
                k.run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", dst)
        k.ip("link", "set", "vx0", "mtu", str(self.mtu))
        k.add_address("vx0", f"{KERNEL[4]}/24")
        k.add_address("vx0", f"{KERNEL[6]}/64")
        # tcpdump on vx0 is to see wire frames, not TSO/GSO/GRO super-packets.
        k.run(sys.executable, "-I", "-c", _ETHTOOL_OFF, "vx0", "0x1f", "0x24", "0x2c")
        k.set_up("vx0")
        v.check_isolated(["u0"], prefixes=PREFIXES)
        k.check_isolated(["u1", "vx0"], prefixes=PREFIXES)
        others = [UNDER_VNET2] if self.third else []
        self.port = VxlanPort(self.net.scheduler, self.lan, vni=VNI, local=UNDER_VNET[fam],
                              remotes=[UNDER_KERNEL[fam], *others], netns=v.name).open()
        if self.third:
            self.port2 = VxlanPort(self.net2.scheduler, self.lan2, vni=VNI, local=UNDER_VNET2,
                                   remotes=[UNDER_KERNEL[fam], UNDER_VNET[fam]],
                                   netns=v.name).open()
        sched = self.net.scheduler
        self.capture = Capture.to_file(self.capture_path, clock=sched.realtime_ns)
        with sched.lock:
            self.lan.capture(self.capture)
        self._loop = threading.Thread(target=self._run, args=(self.net,), daemon=True,
                                      name="vxlan-lab")
        self._loop.start()
        if self.third:
            self._loop2 = threading.Thread(target=self._run, args=(self.net2,), daemon=True,
                                           name="vxlan-lab2")
            self._loop2.start()
        return self

    def _run(self, net: Network) -> None:
        try:
            net.scheduler.run(until=self._stop.is_set)
        except BaseException as e:
            self.loop_error = e

    def close(self) -> None:
        try:
            for proc in self.processes:
                proc.stop(signal.SIGKILL)
            self._stop.set()
            self.net.scheduler.notify()
            self.net2.scheduler.notify()
            for loop in (self._loop, self._loop2):
                if loop is not None:
                    loop.join(10)
            for port in (self.port, self.port2):
                if port is not None:
                    port.close()
            if self.capture is not None:
                with self.net.scheduler.lock:
                    self.capture.close()
            self.net.close()
            self.net2.close()
        finally:
            self.ns_kernel.delete()
            self.ns_vnet.delete()
        assert self.loop_error is None, f"the vnet loop died: {self.loop_error!r}"

    def run(self, *argv: str, timeout_s: float = 30) -> str:
        proc = subprocess.run(self.ns_kernel.command(*argv), capture_output=True, text=True,
                              timeout=timeout_s, env=clean_env())
        assert proc.returncode == 0, f"{argv} exited {proc.returncode}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    def popen(self, *argv: str, name: str) -> KernelProcess:
        popen = subprocess.Popen(self.ns_kernel.command(*argv), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
        proc = KernelProcess(name, popen)
        proc.start_readers()
        self.processes.append(proc)
        return proc

    def in_vnet(self, fn: Any, timeout_s: float = 30, net: Network | None = None) -> Any:
        box: dict[str, Any] = {}

        def body() -> None:
            box["value"] = fn()

        task = (net or self.net).spawn("script", body)
        wait_until(lambda: task.done, timeout_s, "the vnet script")
        if task.error is not None:
            raise task.error
        return box["value"]

    def close_capture(self) -> Path:
        assert self.capture is not None
        with self.net.scheduler.lock:
            self.capture.close()
        return self.capture_path


@pytest.fixture
def vxlan_lab(tmp_path: Path) -> Iterator[Any]:
    require_kernel_privileges()
    labs: list[VxlanLab] = []

    def make(underlay: int = 4, third: bool = False) -> VxlanLab:
        lab = VxlanLab(tmp_path, underlay, third)
        labs.append(lab)
        return lab.start()

    try:
        yield make
    finally:
        for lab in labs:
            lab.close()


def _tcpdump(lab: VxlanLab, path: Path) -> KernelProcess:
    proc = lab.popen("tcpdump", "-i", "vx0", "-n", "-s", "0", "-U", "-B", "65536",
                     "--immediate-mode",
                     "-w", str(path), name="tcpdump")
    proc.wait_for(b"listening on", stream="stderr")
    return proc


def _stop_tcpdump(proc: KernelProcess) -> None:
    time.sleep(0.3)
    proc.stop(signal.SIGINT)
    proc.wait()


@pytest.mark.parametrize("underlay", [4, 6], ids=["underlay4", "underlay6"])
def test_ping_both_ways_and_captures_agree(vxlan_lab: Any, underlay: int) -> None:
    lab: VxlanLab = vxlan_lab(underlay)
    dump = lab.tmp / "kernel-vx0.pcap"
    tcpdump = _tcpdump(lab, dump)
    for fam in (4, 6):
        out = lab.run("ping", f"-{fam}", "-n", "-c", "3", "-i", "0.05", "-W", "2", "-s", "1000",
                      VNET[fam])
        assert "3 packets transmitted, 3 received" in out, out
        rtts = lab.in_vnet(lambda fam=fam: lab.host.ping(KERNEL[fam], count=3, timeout=2.0,
                                                          interval=0.05))
        assert all(rtt is not None for rtt in rtts), rtts
    _stop_tcpdump(tcpdump)
    vnet_pcap = lab.close_capture()
    assert lab.port is not None
    counters = lab.port.counters
    assert counters.drop_unknown_remote == counters.drop_wrong_vni == counters.drop_runt == 0
    # Learned: the kernel's vx0 MAC is behind the kernel's VTEP.
    kernel_mac = bytes.fromhex(lab.run("cat", "/sys/class/net/vx0/address").strip()
                               .replace(":", ""))
    assert lab.port.fdb().get(kernel_mac) == UNDER_KERNEL[underlay]
    fields = ("icmp.type", "icmpv6.type", "icmp.seq", "icmpv6.echo.sequence_number",
              "ip.src", "ipv6.src", "frame.len")
    flt = "icmp.type == 0 || icmp.type == 8 || icmpv6.type == 128 || icmpv6.type == 129"
    kernel_side = tshark_fields(dump, flt, fields)
    vnet_side = tshark_fields(vnet_pcap, flt, fields)
    assert len(kernel_side) == 24, kernel_side  # 2 families x 2 directions x 3 x (req+reply)
    assert vnet_side == kernel_side


@pytest.mark.parametrize("fam", [4, 6], ids=["ipv4", "ipv6"])
def test_tcp_transfer_both_ways_sha256(vxlan_lab: Any, fam: int,
                                       interop_results: Any) -> None:
    lab: VxlanLab = vxlan_lab(4)
    size = 1_000_000
    payload = hashlib.sha256(b"vxlan").digest() * (size // 32)
    dump = lab.tmp / "kernel-vx0.pcap"
    tcpdump = _tcpdump(lab, dump)
    echo = lab.popen(sys.executable, "-I", str(KERNEL_PEERS), "tcp-echo", KERNEL[fam], "7100",
                     name="tcp-echo")
    echo.wait_for(b"ready")

    def transfer() -> bytes:
        import socket as pysocket

        family = pysocket.AF_INET6 if fam == 6 else pysocket.AF_INET
        with lab.host.socket(family, pysocket.SOCK_STREAM) as sock:
            sock.settimeout(20)
            sock.connect((KERNEL[fam], 7100))
            received = bytearray()
            sent = 0
            while sent < len(payload):
                chunk = payload[sent:sent + 65536]
                sock.sendall(chunk)
                sent += len(chunk)
                while len(received) < sent - 262144:
                    received += sock.recv(65536)
            sock.shutdown(pysocket.SHUT_WR)
            while data := sock.recv(65536):
                received += data
            return bytes(received)

    started = time.monotonic()
    echoed = lab.in_vnet(transfer, timeout_s=40)
    elapsed = time.monotonic() - started
    assert lab.port is not None
    interop_results(f"vxlan tcp echo ipv{fam}", bytes_each_way=size,
                    seconds=round(elapsed, 3), mbit_each_way=round(size * 8 / elapsed / 1e6, 1),
                    vxlan_datagrams_out=lab.port.counters.tx_datagrams,
                    vxlan_datagrams_in=lab.port.counters.rx_datagrams,
                    super_frames_materialised=lab.port.counters.tx_super_frames)
    assert echo.wait() == 0
    _stop_tcpdump(tcpdump)
    vnet_pcap = lab.close_capture()
    assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(payload).hexdigest()
    # Both captures hold the same TCP segments, each way, covering the whole transfer.
    addr = "ipv6" if fam == 6 else "ip"
    seen = []
    for pcap in (dump, vnet_pcap):
        segments = {}
        for peer in (KERNEL[fam], VNET[fam]):
            rows = tshark_fields(pcap, f"tcp.len > 0 && {addr}.dst == {peer}",
                                 ("tcp.seq", "tcp.len"), "tcp.relative_sequence_numbers:TRUE")
            segments[peer] = {(int(seq), int(n)) for seq, n in rows}
            assert sum(n for _, n in segments[peer]) >= size, (pcap, peer)
            assert max(n for _, n in segments[peer]) <= lab.mtu - (60 if fam == 6 else 40)
        seen.append(segments)
    assert seen[0] == seen[1]


def test_three_ends_one_segment_linux_static_fdb(vxlan_lab: Any) -> None:
    """Linux (static FDB, two all-zeros entries) and two vnet networks: one broadcast domain.

    Each end floods broadcast to both others and learns where each MAC is:
    the kernel pings both vnet hosts, and the vnet hosts ping each other and
    the kernel, over IPv4 and IPv6.
    """
    lab: VxlanLab = vxlan_lab(4, third=True)
    for fam in (4, 6):
        for target in (VNET[fam], VNET2[fam]):
            out = lab.run("ping", f"-{fam}", "-n", "-c", "2", "-i", "0.05", "-W", "2", target)
            assert "2 packets transmitted, 2 received" in out, out
        for net, host, target in ((lab.net, lab.host, VNET2[fam]),
                                  (lab.net2, lab.host2, VNET[fam]),
                                  (lab.net2, lab.host2, KERNEL[fam])):
            rtts = lab.in_vnet(partial(host.ping, target, count=2, timeout=2.0), net=net)
            assert all(rtt is not None for rtt in rtts), (host, target, rtts)
    assert lab.port is not None and lab.port2 is not None
    kernel_mac = bytes.fromhex(lab.run("cat", "/sys/class/net/vx0/address").strip()
                               .replace(":", ""))
    assert lab.port.fdb() == {kernel_mac: UNDER_KERNEL[4],
                              bytes.fromhex("020000000a03"): UNDER_VNET2}
    assert lab.port2.fdb() == {kernel_mac: UNDER_KERNEL[4],
                               lab.nic.mac: UNDER_VNET[4]}
    # The kernel learned both vnet MACs behind the right VTEPs too.
    fdb = lab.run("bridge", "fdb", "show", "dev", "vx0")
    assert f"{_mac_text(lab.nic.mac)} dst {UNDER_VNET[4]}" in fdb, fdb
    assert f"02:00:00:00:0a:03 dst {UNDER_VNET2}" in fdb, fdb
    for port in (lab.port, lab.port2):
        assert port.counters.drop_unknown_remote == port.counters.drop_wrong_vni == 0


def _mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def test_refuses_remote_not_given(tmp_path: Path) -> None:
    net = Network()
    lan = net.segment("lan")
    for remotes, needle in (([], "at least one remote"), (["239.1.1.1"], "unicast"),
                            (["0.0.0.0"], "unicast"), (["fd00::1"], "address family")):
        with pytest.raises(VxlanError, match=needle):
            VxlanPort(net.scheduler, lan, vni=1, local="127.0.0.1", remotes=remotes)
    with pytest.raises(VxlanError, match="VNI"):
        VxlanPort(net.scheduler, lan, vni=1 << 24, local="127.0.0.1", remotes=["127.0.0.2"])
    net.close()


# --- two vnet processes share one segment ------------------------------------------------
_MACHINE = """\
[sim]
duration = "40s"
clients = ["{host}/{guest}"]

[segments.lan.vxlan]
vni = 42
local = "{local}"
remote = ["{remote}"]
port = 4789

[hosts.{host}]
[[hosts.{host}.nics]]
segment = "lan"
addresses = ["{address}/24", "{address6}/64"]
mtu = 1450

[[hosts.{host}.guests]]
name = "{guest}"
module = "{module}"
args = {args}
start = "{start}"
"""


def test_two_vnet_processes_share_a_segment(tmp_path: Path,
                                            kernel_example: Any) -> None:
    """`vnet sim` A (an echo server guest) and `vnet sim` B (a client guest), one LAN.

    Both run in one namespace the test makes (only lo): A's VXLAN socket binds
    127.0.0.1, B's 127.0.0.2, each names the other as its remote.
    """
    require_kernel_privileges()
    server = kernel_example("tcp_echo_server")
    client = kernel_example("tcp_echo_client")
    a = tmp_path / "machine-a.toml"
    b = tmp_path / "machine-b.toml"
    a.write_text(_MACHINE.format(host="alpha", guest="echo", local="127.0.0.1",
                                 remote="127.0.0.2", address="10.42.0.1", address6="fd42::1",
                                 module=server, args='["7000", "2"]', start="0s"))
    b.write_text(_MACHINE.format(host="beta", guest="client", local="127.0.0.2",
                                 remote="127.0.0.1", address="10.42.0.2", address6="fd42::2",
                                 module=client, args='["10.42.0.1", "7000", "over", "vxlan"]',
                                 start="0s")
                 + f'\n[[hosts.beta.guests]]\nname = "client6"\nmodule = "{client}"\n'
                   'args = ["fd42::1", "7000", "v6", "too"]\nstart = "1s"\n')
    b.write_text(b.read_text().replace('clients = ["beta/client"]',
                                       'clients = ["beta/client", "beta/client6"]'))
    with Namespace(unique_name("vxp", ""), sysctls=("net.ipv6.conf.all.accept_dad=0",)) as ns:
        ns.check_isolated([], prefixes=[])
        env = {**clean_env(), "PYTHONPATH": os.pathsep.join(sys.path)}
        argv = [sys.executable, "-m", "vnet", "sim", "--pcap-dir"]
        machines: list[KernelProcess] = []
        try:
            for name, topo in (("a", a), ("b", b)):
                popen = subprocess.Popen(ns.command(*argv, str(tmp_path / name), str(topo)),
                                         env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
                machines.append(KernelProcess(f"vnet sim {topo.name}", popen))
                machines[-1].start_readers()
                if name == "a":  # B starts once A's guest listens (its VXLAN port is up)
                    machines[-1].wait_for(b"listening on port 7000")
            for machine in reversed(machines):
                assert machine.wait(60) == 0, machine.describe()
        finally:
            for machine in machines:
                machine.stop(signal.SIGKILL)
    out_a, out_b = (bytes(m.stdout).decode() for m in machines)
    assert 'echo ok "over"' in out_b and 'echo ok "vxlan"' in out_b, out_b
    assert 'echo ok "v6"' in out_b, out_b
    assert "served 2 client(s)" in out_a, out_a
    # The summary counts the frames each VXLAN port carried; nothing dropped.
    for out in (out_a, out_b):
        row = next(line for line in out.splitlines() if line.startswith("lan/vxlan42"))
        tx_frames, _, rx_frames, _ = map(int, row.split()[1:5])
        assert tx_frames > 5 and rx_frames > 5, row
        assert "lan/vxlan42:" not in out, out
