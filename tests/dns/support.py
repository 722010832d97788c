"""What the DNS tests share: a LAN with a DNS server, a web host, and a client.

    a (10.0.0.1, fd00::1)  --lan--  ns (10.0.0.53, fd00::53: the DNS server)
                                    web (10.0.0.80, fd00::80: listens on TCP 80)

`a`'s resolver is ns; the server has static records beside the topology
names and a policy for `a`.
"""

from __future__ import annotations

from typing import Any

from vnet.network import Host, HostSocket, Network

NS, WEB = "10.0.0.53", "10.0.0.80"

RECORDS: list[dict[str, Any]] = [
    {"name": "api.example.test", "type": "CNAME", "value": "web"},
    {"name": "mail.example.test", "type": "A", "value": "192.0.2.25", "ttl": 120},
    {"name": "example.test", "type": "MX", "value": "10 mail.example.test"},
    {"name": "_game._udp.example.test", "type": "SRV", "value": "5 10 27015 web"},
    {"name": "big.example.test", "type": "TXT", "value": ["x" * 200] * 5},
    {"name": "secret.example.test", "type": "A", "value": "192.0.2.99"},
]
POLICY: list[dict[str, Any]] = [
    {"clients": ["a"], "deny": ["*.blocked.test"], "action": "refuse"},
    {"clients": ["a"], "deny": ["secret.example.test"], "action": "nxdomain"},
]


def lan(seed: int = 3) -> tuple[Network, Host, Host, Host]:
    net = Network(virtual_time=True, seed=seed)
    seg = net.segment("lan")
    a = net.host("a")
    a.connect(seg, "10.0.0.1/24", "fd00::1/64")
    ns = net.host("ns")
    ns.connect(seg, f"{NS}/24", "fd00::53/64")
    web = net.host("web")
    web.connect(seg, f"{WEB}/24", "fd00::80/64")
    return net, a, ns, web


def listen_web(web: Host) -> HostSocket:
    sock = web.socket()
    sock.bind(("0.0.0.0", 80))
    sock.listen()
    return sock
