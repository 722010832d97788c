"""The example VPN configures its own TUN device with the SIOCSIF* ioctls, under vnet.

examples/vpn.toml grants each gateway's guest `tun0` with its address already
set. Here the grants carry no address, and the VPN is run as it is run
natively (tests/kernel/test_vpn_native.py): `-a 10.8.0.1/24 -P 10.8.0.2`, so
the program itself sets the address, netmask, peer and MTU and brings the
device up (SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFDSTADDR, SIOCSIFMTU,
SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram socket: vnet/guest/ifconfig.py). The
LANs then reach each other only through the tunnel, and each device shows
what the program set. Needs examples/build (python -m vnet.examples_build),
as tests/examples/test_vpn.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.examples.test_vpn import _topology
from vnet.network import Network

SETTINGS = {"gw1": ("10.8.0.1/24", "10.8.0.2"), "gw2": ("10.8.0.2/24", "10.8.0.1")}


def _self_configuring(tmp_path: Path) -> Path:
    path = _topology(tmp_path)
    text = path.read_text()
    for gateway, (cidr, peer) in SETTINGS.items():
        text = text.replace(f'addresses = ["{cidr}"], ', "")
        role = '"-s", "-p"' if gateway == "gw1" else '"-c", "198.51.100.1", "-p"'
        text = text.replace(f"args = [{role}",
                            f'args = ["-a", "{cidr}", "-P", "{peer}", "-m", "1380", {role}')
    assert text.count('"-a"') == 2 and "10.8.0.1/24\"]" not in text
    path.write_text(text)
    return path


def test_vpn_configures_its_device_with_siocsif_ioctls(tmp_path: Path) -> None:
    net = Network.from_topology(_self_configuring(tmp_path), seed=8, virtual_time=True)
    try:
        client = net.hosts["client"]
        guests = net.start_guests()
        for gateway in SETTINGS:
            guests[f"{gateway}/vpn"].wait_for("tunnel up", timeout=60)
        for gateway, (cidr, peer) in SETTINGS.items():
            tun = net.hosts[gateway].stack.interface("tun0")
            assert [str(a) for a in tun.ipv4] == [cidr], gateway
            assert tun.peers == {tun.ipv4[0].address: bytes(map(int, peer.split(".")))}
            assert tun.mtu == 1380 and tun.is_up
            assert "SIOC" not in guests[f"{gateway}/vpn"].stderr  # no perror
        assert all(rtt is not None for rtt in client.ping("10.1.0.10", count=3, timeout=2))
    finally:
        net.close()
