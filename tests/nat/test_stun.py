"""The STUN example pair (examples/stun_server.c, stun_client.c) behind every kind of NAT.

Under vnet, in virtual time: inside host `a` (10.0.0.2) on `lan` behind
router `r` (10.0.0.1; 203.0.113.1 on `wan`), which NATs what leaves `eth1`
with one of the presets, hairpinning on or off; the STUN server `s` has two
addresses on `wan` (203.0.113.10 and .20) and listens on ports 3478 and
3479. The client's RESULT line must name the preset's mapping and filtering
(RFC 4787 terms) and, where a STUN client can see it, hairpinning. Behind
a symmetric NAT the client's hairpin probe is filtered whatever the NAT does
with it (a new mapping towards its own address that its first mapping never
sent to), so it says `unknown`; the router tests check symmetric
hairpinning with sockets.

Natively: the same C sources built with gcc, on the loopback of a network
namespace with only `lo`, server on 127.0.0.1 and 127.0.0.2: no NAT, so
`nat=no`, endpoint-independent mapping and filtering, and a request to its
own address comes back; the same program on a virtual host with no NAT on
the way says the same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from firewall.nat_router import PRESETS
from vnet.network import Host, Network

from .example_support import Program, native_build, native_loopback, result, run_until

OUT = "203.0.113.1"
SERVER, SERVER2 = "203.0.113.10", "203.0.113.20"

EXPECTED = {  # preset: (mapping, filtering)
    "full-cone": ("endpoint-independent", "endpoint-independent"),
    "restricted-cone": ("endpoint-independent", "address-dependent"),
    "port-restricted-cone": ("endpoint-independent", "address-and-port-dependent"),
    "symmetric": ("address-and-port-dependent", "address-and-port-dependent"),
}


def topology(seed: int = 1) -> tuple[Network, Host, Host, Host]:
    net = Network(virtual_time=True, seed=seed)
    lan, wan = net.segment("lan"), net.segment("wan")
    r = net.router("r")
    r.connect(lan, "10.0.0.1/24")
    r.connect(wan, f"{OUT}/24")
    a = net.host("a")
    a.connect(lan, "10.0.0.2/24")
    a.add_route("0.0.0.0/0", "10.0.0.1")
    s = net.host("s")
    s.connect(wan, f"{SERVER}/24", f"{SERVER2}/24")
    return net, r, a, s


def discover(net: Network, client_host: Host, server_host: Host,
             example_wasm: Callable[[str], Path]) -> tuple[dict[str, str], str]:
    server = Program(net, server_host, example_wasm("stun_server"), SERVER, SERVER2)
    client = Program(net, client_host, example_wasm("stun_client"), SERVER)
    run_until(net, client)
    assert client.guest.exit_code == 0, client.text
    return result(client.text), server.text


@pytest.mark.parametrize("hairpin", [True, False], ids=["hairpin", "no-hairpin"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_stun_client_classifies_the_nat(preset: str, hairpin: bool,
                                       example_wasm: Callable[[str], Path]) -> None:
    net, r, a, s = topology()
    nat = r.nat("eth1", preset, hairpin=hairpin)
    found, server_log = discover(net, a, s, example_wasm)
    assert (found["mapping"], found["filtering"]) == EXPECTED[preset]
    assert found["nat"] == "yes" and found["public"].startswith(f"{OUT}:")
    assert found["local"].startswith("10.0.0.2:")
    if preset == "symmetric":
        assert found["hairpin"] == "unknown"
    else:
        assert found["hairpin"] == ("yes" if hairpin else "no")
        assert nat.counters["nat.hairpin"] == (1 if hairpin else 0)
    # the server only ever saw the router's address; it answered the filtering probes
    # from the other address and port, and (unless the first passed) the other port
    assert "10.0.0.2" not in server_log and f"from {OUT}:" in server_log
    assert f"change-ip change-port, answered from {SERVER2}:3479" in server_log
    assert (f"change-port, answered from {SERVER}:3479" in server_log) == (
        preset != "full-cone")
    net.close()


def test_stun_client_sees_address_dependent_mapping(
        example_wasm: Callable[[str], Path]) -> None:
    """Not a preset: RFC 4787's middle row, mapping and filtering by remote address only."""
    net, r, a, s = topology()
    r.nat("eth1", "restricted-cone", mapping="address-dependent")
    found, _ = discover(net, a, s, example_wasm)
    assert (found["mapping"], found["filtering"]) == ("address-dependent", "address-dependent")
    net.close()


def no_nat_fields(found: dict[str, str]) -> tuple[str, ...]:
    return (found["nat"], found["mapping"], found["filtering"], found["hairpin"])


OPEN_INTERNET = ("no", "endpoint-independent", "endpoint-independent", "yes")


def test_stun_client_without_nat_on_vnet(example_wasm: Callable[[str], Path]) -> None:
    net, _r, _a, s = topology()
    c = net.host("c")
    c.connect(net.segments["wan"], "203.0.113.30/24")
    found, _ = discover(net, c, s, example_wasm)
    assert no_nat_fields(found) == OPEN_INTERNET
    assert found["public"] == found["local"] and found["local"].startswith("203.0.113.30:")
    net.close()


def test_stun_client_without_nat_natively(tmp_path: Path) -> None:
    server_bin = native_build("stun_server", tmp_path)
    client_bin = native_build("stun_client", tmp_path)
    with native_loopback("s") as ns:
        import subprocess
        server = subprocess.Popen(ns.command(str(server_bin), "127.0.0.1", "127.0.0.2"),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert server.stdout is not None
            assert b"listening" in server.stdout.readline()
            client = ns.run(str(client_bin), "127.0.0.1", timeout=30, check=False)
        finally:
            server.kill()
            server.wait()
    assert client.returncode == 0, client.stdout + client.stderr
    found = result(client.stdout)
    assert no_nat_fields(found) == OPEN_INTERNET
    assert found["public"] == found["local"] and found["local"].startswith("127.0.0.1:")
