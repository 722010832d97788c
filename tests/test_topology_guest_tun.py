"""The topology key `devices` of a guest: TUN/TAP devices granted per guest.

A topology file declares two hosts on a WAN, each with a simpletun guest
(tests/guest/c/simpletun.c) granted `tun0` with a tunnel address — one as a
table, one in `--guest-tun` spelling; the network built from it carries a
ping between the tunnel addresses. A bad device entry is a TopologyError
naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.network import Network
from vnet.sim.topology import TopologyError, load

TOPOLOGY = """
[sim]
virtual_time = true

[segments.wan]

[hosts.a]
[[hosts.a.nics]]
segment = "wan"
addresses = ["192.168.0.1/24"]

[[hosts.a.guests]]
name = "tunnel"
module = "{wasm}"
args = ["-i", "tun0", "-s", "-p", "5555"]
devices = [{{ name = "tun0", kind = "tun", addresses = ["10.8.0.1/24"] }}]

[hosts.b]
[[hosts.b.nics]]
segment = "wan"
addresses = ["192.168.0.2/24"]

[[hosts.b.guests]]
name = "tunnel"
module = "{wasm}"
args = ["-i", "tun0", "-c", "192.168.0.1", "-p", "5555"]
devices = ["tun0:tun=10.8.0.2/24"]
"""


def test_topology_devices_grant_guests_their_tun(vnet_build: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    path = tmp_path / "vpn.toml"
    path.write_text(TOPOLOGY.format(wasm=vnet_build("tests/guest/c/simpletun.c")))
    net = Network.from_topology(path)
    processes = net.start_guests()
    for process in processes.values():
        process.wait_for("tunnel up on tun0", timeout=30)
    assert all(rtt is not None for rtt in net.hosts["a"].ping("10.8.0.2", count=2, timeout=2))
    net.close()


@pytest.mark.parametrize(("devices", "reason"), [
    ('["tun0:tcp"]', "bad device"),
    ('[{ name = "tun0", colour = "red" }]', "unknown key 'colour'"),
    ('["tun0", "tun0:tap"]', "granted twice"),
    ('"tun0"', "must be a list"),
])
def test_bad_devices_name_the_file_and_line(tmp_path: Path, devices: str, reason: str) -> None:
    module = tmp_path / "g.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    path = tmp_path / "bad.toml"
    path.write_text(f'[hosts.a]\n[[hosts.a.guests]]\nmodule = "g.wasm"\ndevices = {devices}\n')
    with pytest.raises(TopologyError) as raised:
        load(path)
    assert reason in str(raised.value) and f"{path}:4" in str(raised.value)
