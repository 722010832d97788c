"""The `[segments.NAME.vxlan]` keys: what they build, and every mistake as FILE:LINE: reason.

No datagram is sent by these tests: the ports that open bind 127.0.0.1 on
high ports and name 127.0.0.2 as remote (this machine's loopback), and
nothing runs on the segments. The kernel interop and two-process runs are
in tests/kernel/test_vxlan.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vnet.sim import runner
from vnet.sim.topology import TopologyError, load

BASE = """\
[sim]
duration = "1s"

[segments.lan]
latency = "1ms"

[segments.lan.vxlan]
vni = 42
local = "127.0.0.1"
remote = ["127.0.0.2"]
port = {port}

[hosts.a]
[[hosts.a.nics]]
segment = "lan"
addresses = ["10.42.0.1/24"]
mtu = 1450
"""


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topo.toml"
    path.write_text(text)
    return path


def test_keys_build_a_vxlan_port_on_the_segment(tmp_path: Path) -> None:
    topo = load(_write(tmp_path, BASE.format(port=47891)))
    spec = topo.segments["lan"].vxlan
    assert spec is not None
    assert (spec.vni, spec.local, spec.remotes, spec.port) == (42, "127.0.0.1",
                                                                ["127.0.0.2"], 47891)
    net, hosts, _captures, _ = runner.build(topo, False, 0, None)
    ports = runner.open_vxlan(topo, net)
    try:
        (port,) = ports
        assert port.segment is net.segments["lan"] and port.vni == 42
        assert port.seg_port in net.segments["lan"].ports
        # The NIC's MAC is derived (unicast, locally administered), not 02:00:00:00:00:01,
        # so the machines sharing the segment do not all get the same one.
        mac = hosts["a"].nics["eth0"].mac
        assert mac[0] & 3 == 2 and mac != bytes.fromhex("020000000001")
    finally:
        for port in ports:
            port.close()
        net.close()


@pytest.mark.parametrize(("old", "new", "needle", "reason"), [
    ("vni = 42", "vni = 16777216", "vni =", "vni must be 0..16777215, not 16777216"),
    ("vni = 42", "vni = \"x\"", "vni =", "vni must be a int, not 'x'"),
    ('remote = ["127.0.0.2"]', "remote = []", "remote =",
     "remote is empty: name every other end explicitly (there is no default remote and no "
     "multicast group)"),
    ('remote = ["127.0.0.2"]', 'remote = ["239.1.1.1"]', "remote =",
     "remote 239.1.1.1 must be one unicast address (multicast groups and broadcast are "
     "refused)"),
    ('remote = ["127.0.0.2"]', 'remote = ["fd00::2"]', "remote =",
     "remote fd00::2 is not of the address family of local 127.0.0.1"),
    ('remote = ["127.0.0.2"]', 'remote = ["peer"]', "remote =",
     "remote 'peer' is not an IP address"),
    ('remote = ["127.0.0.2"]', "", "[segments.lan.vxlan]",
     'vxlan needs remote = ["ADDRESS", ...]: every other end, given explicitly'),
    ('local = "127.0.0.1"', 'local = "0.0.0.0"', "local =",
     "local 0.0.0.0 must be a unicast address of this machine"),
    ("port = 47892", "port = 0", "port =", "port must be 1..65535, not 0"),
    ("port = 47892", "ttl = 3", "ttl =",
     "unknown key 'ttl' in vxlan (allowed: local, port, remote, vni)"),
    ('duration = "1s"', 'duration = "1s"\nvirtual_time = true', "[segments.lan.vxlan]",
     "segment 'lan' has a VXLAN port, which runs in real time only (virtual_time = false)"),
    ("mtu = 1450", 'mtu = 1450\nmac = "01:00:5e:00:00:01"', "mac =",
     "mac 01:00:5e:00:00:01 is a group address, not a NIC's"),
])
def test_mistakes_name_file_line_and_reason(tmp_path: Path, old: str, new: str, needle: str,
                                            reason: str) -> None:
    text = BASE.format(port=47892).replace(old, new)
    path = _write(tmp_path, text)
    with pytest.raises(TopologyError) as info:
        load(path)
    assert str(info.value) == f"{path}:{_line_of(text, needle)}: {reason}"


def test_vnet_sim_reports_a_port_that_cannot_open(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails, nothing is sent.
    text = BASE.format(port=47893).replace('local = "127.0.0.1"', 'local = "192.0.2.1"')
    path = _write(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (
        f"vnet sim: {path}:{_line_of(text, '[segments.lan.vxlan]')}: cannot bind VXLAN socket "
        "to 192.0.2.1 port 47893: Cannot assign requested address")


def test_virtual_time_from_the_command_line_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.format(port=47894))
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", "--virtual-time", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (
        f"vnet sim: {path}:{_line_of(BASE, '[segments.lan.vxlan]')}: segment 'lan' has a VXLAN "
        "port, which runs in real time only (not --virtual-time)")
