"""Attack: one inside host floods a NAT router with new mappings to starve its neighbours.

Behind a symmetric NAT every new remote port costs a mapping (and an external
port). The attacker sends one datagram to each of 2000 ports of a server;
the router caps what one inside address may hold (`max_mappings_per_host`),
counts the rest as dropped, and the victim beside it still gets its
mappings and its answers. Virtual time; the limits are lowered so the test
stays quick (the defaults are 65536 and 4096).
"""

from __future__ import annotations

from vnet.network import AF_INET, SOCK_DGRAM, Network

SERVER = "203.0.113.10"


def test_mapping_flood_from_one_host_leaves_room_for_the_others() -> None:
    net = Network(virtual_time=True, seed=9)
    lan, wan = net.segment("lan"), net.segment("wan")
    r = net.router("r")
    r.connect(lan, "10.0.0.1/24")
    r.connect(wan, "203.0.113.1/24")
    hosts = []
    for name, address in (("attacker", "10.0.0.2"), ("victim", "10.0.0.3")):
        host = net.host(name)
        host.connect(lan, f"{address}/24")
        host.add_route("0.0.0.0/0", "10.0.0.1")
        hosts.append(host)
    attacker, victim = hosts
    server_host = net.host("server")
    server_host.connect(wan, f"{SERVER}/24")
    nat = r.nat("eth1", "symmetric", max_mappings=512, max_mappings_per_host=64)
    with attacker.socket(AF_INET, SOCK_DGRAM) as flood:
        flood.bind(("10.0.0.2", 40000))
        for port in range(1000, 3000):
            flood.sendto(b"x", (SERVER, port))
            if port % 100 == 0:
                net.run_for(0.01)
    net.run_for(1)
    assert nat.counters["nat.host_limit"] == 2000 - 64
    assert len(nat.mappings()) == 64
    with server_host.socket(AF_INET, SOCK_DGRAM) as echo, victim.socket(
            AF_INET, SOCK_DGRAM) as client:
        echo.bind((SERVER, 7))
        echo.settimeout(1)
        client.bind(("10.0.0.3", 5000))
        client.settimeout(1)
        for n in range(20):
            client.sendto(b"ping %d" % n, (SERVER, 7))
            data, source = echo.recvfrom(100)
            echo.sendto(data, source)
            assert client.recvfrom(100) == (b"ping %d" % n, (SERVER, 7))
    assert nat.counters["nat.host_limit"] == 2000 - 64  # the victim was never refused
    net.close()
