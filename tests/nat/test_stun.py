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

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from firewall.nat_router import PRESETS
from vnet.network import AF_INET, SOCK_DGRAM, Host, Network

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


def test_stun_messages_decode_in_tshark_and_rerun_identically(
        example_wasm: Callable[[str], Path], tmp_path: Path) -> None:
    """An independent decoder (Wireshark's STUN dissector) reads every response's
    XOR-MAPPED-ADDRESS as the client's public endpoint, with no malformed packet or
    warning; the same seed twice gives the same capture."""
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: run scripts/install-test-tools (scripts/test does)"
    captures = []
    for _ in range(2):
        net, r, a, s = topology(seed=5)
        cap = net.capture()
        r.nat("eth1", "port-restricted-cone")
        found, _ = discover(net, a, s, example_wasm)
        captures.append(cap.getvalue())
        net.close()
    assert captures[0] == captures[1] and len(captures[0]) > 1000
    pcap = tmp_path / "stun.pcapng"
    pcap.write_bytes(captures[0])
    problems = subprocess.run([tshark, "-r", str(pcap), "-o", "udp.check_checksum:TRUE",
                               "-Y", "_ws.malformed || _ws.expert.severity >= warning"],
                              capture_output=True, text=True, timeout=60)
    assert problems.returncode == 0 and problems.stdout.strip() == "", problems.stdout
    fields = subprocess.run([tshark, "-r", str(pcap), "-Y", "stun.type == 0x0101",
                             "-T", "fields", "-e", "frame.interface_name",
                             "-e", "stun.att.ipv4-xord", "-e", "stun.att.ipv4",
                             "-e", "stun.att.port"], capture_output=True, text=True,
                            timeout=60).stdout.splitlines()
    public_address, public_port = found["public"].split(":")
    outside = [line.split("\t") for line in fields if line.startswith("s/eth0")]
    assert outside, fields
    for _iface, xored, addresses, ports in outside:
        assert xored  # XOR-MAPPED-ADDRESS is there, and decodes to what the client printed
        # attributes in order: XOR-MAPPED, MAPPED, RESPONSE-ORIGIN, OTHER-ADDRESS
        assert addresses.split(",")[:2] == [public_address] * 2
        assert addresses.split(",")[2] in (SERVER, SERVER2)
        assert ports.split(",")[0] == ports.split(",")[1]  # XOR-MAPPED and MAPPED agree
    # the first answer: from SERVER:3478, the other endpoint is SERVER2:3479 (RFC 5780 7.4)
    _iface, _xored, addresses, ports = outside[0]
    assert ports.split(",")[:2] == [public_port] * 2
    assert list(zip(addresses.split(",")[2:], ports.split(",")[2:], strict=True)) == [
        (SERVER, "3478"), (SERVER2, "3479")]


def test_stun_server_ignores_junk_and_rejects_unknown_attributes(
        example_wasm: Callable[[str], Path]) -> None:
    """Not STUN, truncated, or an attribute running past the end: no answer, server
    still up. An unknown comprehension-required attribute: 420 with UNKNOWN-ATTRIBUTES
    (RFC 5389 7.3.1). A plain request: the mapped address, XORed with the cookie."""
    net, _r, _a, s = topology()
    c = net.host("c")
    c.connect(net.segments["wan"], "203.0.113.30/24")
    server = Program(net, s, example_wasm("stun_server"), SERVER, SERVER2)
    net.run_for(0.1)
    sock = c.socket(AF_INET, SOCK_DGRAM)
    sock.bind(("203.0.113.30", 4000))
    sock.settimeout(0.5)
    cookie = struct.pack("!I", 0x2112A442)
    tid = bytes(range(12))

    def ask(message: bytes) -> bytes | None:
        sock.sendto(message, (SERVER, 3478))
        try:
            return sock.recvfrom(1500)[0]
        except TimeoutError:
            return None

    assert ask(b"hello, are you a STUN server?") is None
    assert ask(struct.pack("!HH", 1, 0) + cookie + tid[:6]) is None
    assert ask(struct.pack("!HH", 1, 8) + cookie + tid + struct.pack("!HH", 0x0003, 400)
               + b"\0" * 4) is None
    reply = ask(struct.pack("!HH", 1, 8) + cookie + tid + struct.pack("!HHI", 0x0024, 4, 7))
    assert reply is not None and reply[:2] == b"\x01\x11" and reply[8:20] == tid
    assert b"\x00\x09" in reply and reply[-4:] == b"\x00\x24\x00\x00"  # 420, [0x0024] padded
    assert reply[reply.index(b"\x00\x09") + 6:][:2] == bytes((4, 20))
    reply = ask(struct.pack("!HH", 1, 0) + cookie + tid)
    assert reply is not None and reply[:2] == b"\x01\x01"
    # XOR-MAPPED-ADDRESS first: 203.0.113.30:4000 XOR the cookie
    assert reply[20:24] == b"\x00\x20\x00\x08"
    port, = struct.unpack("!H", reply[26:28])
    address = bytes(x ^ y for x, y in zip(reply[28:32], cookie, strict=True))
    assert (port ^ 0x2112, address) == (4000, bytes((203, 0, 113, 30)))
    assert not server.done
    net.close()
