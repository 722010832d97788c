"""The pictures: `vnet pcap ladder` (packets between hosts over time) and `vnet sim --draw`.

Both are plain SVG; the tests read them back as XML and check what a reader
of the picture would: one lane per host named as the capture names it, one
arrow per packet from its sender's lane to its receiver's with the packet's
summary, in capture order; one box per host and router with its addresses,
one bus per segment, one wire per NIC.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.captures.support import routed_topology, run_vnet, tshark
from vnet.pictures.ladder import build_ladder
from vnet.pictures.topology import render_topology_svg
from vnet.sim.topology import load

SVG = "{http://www.w3.org/2000/svg}"


def _groups(root: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == kind]


def _texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory,
           example_wasm: Callable[[str], Path]) -> tuple[Path, Path]:
    """The routed topology, run once with a capture of segment lan and a drawing."""
    directory = tmp_path_factory.mktemp("pictures")
    topology = routed_topology(directory, example_wasm, page_bytes=3000)
    proc = run_vnet("sim", str(topology), "--pcap", str(directory / "lan.pcapng"),
                    "--pcap-segment", "lan", "--draw", str(directory / "topo.svg"))
    assert proc.returncode == 0, proc.stderr
    return topology, directory


def test_ladder_draws_a_lane_per_host_and_an_arrow_per_packet(
        routed: tuple[Path, Path]) -> None:
    _, directory = routed
    capture = directory / "lan.pcapng"
    proc = run_vnet("pcap", "ladder", str(capture), "-o", str(directory / "flow.svg"),
                    "--filter", "tcp dport 8080 or tcp sport 8080")
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(directory / "flow.svg").getroot()
    lanes = _groups(root, "lane")
    assert [lane.get("data-name") for lane in lanes] == ["web", "server"]
    assert lanes[0].get("data-addresses") == "fd00::20"
    assert _texts(lanes[1])[0] == "server"
    arrows = _groups(root, "packet")
    # tshark's view of the same packets: one arrow each, same order, same direction.
    expected = tshark("-r", str(capture), "-N", "n", "-Y", "tcp.port == 8080", "-T", "fields",
                      "-e", "ipv6.src_host", "-e", "ipv6.dst_host", "-e", "tcp.srcport",
                      "-e", "tcp.dstport", "-e", "tcp.len", "-e", "tcp.flags.syn",
                      "-e", "tcp.flags.fin")
    assert len(arrows) == len(expected) > 10
    assert f"{len(arrows)} packets between 2 hosts" in proc.stderr.decode()
    for arrow, row in zip(arrows, expected, strict=True):
        src, dst, sport, dport, length, syn, fin = row.split("\t")
        assert (arrow.get("data-src"), arrow.get("data-dst")) == (src, dst)
        label = _texts(arrow)[-1]
        assert arrow.findtext(f"{SVG}title") == label
        assert label.startswith(f"TCP {sport} → {dport} [")
        assert label.endswith(f" Len={length}")
        assert ("SYN" in label) == (syn in ("1", "True")), label
        assert ("FIN" in label) == (fin in ("1", "True")), label
    first = [_texts(a)[-1] for a in arrows[:3]]
    assert first[0].endswith("[SYN] Seq=0 Len=0")
    assert first[1].endswith("[SYN, ACK] Seq=0 Ack=1 Len=0")
    assert first[2].endswith("[ACK] Seq=1 Ack=1 Len=0")
    # Time goes down: arrows in capture order, rows further down the page.
    ys = [float(a.find(f"{SVG}line").get("y1")) for a in arrows]  # type: ignore[union-attr]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)


def test_ladder_of_every_nic_merged_draws_each_packet_once(
        routed: tuple[Path, Path], tmp_path: Path) -> None:
    topology, _ = routed
    proc = run_vnet("sim", str(topology), "--pcap-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    merged = tmp_path / "lan-nics.pcapng"  # both NICs of segment lan: each frame twice
    subprocess.run(["mergecap", "-w", str(merged), str(tmp_path / "web-eth0.pcapng"),
                    str(tmp_path / "gw-eth0.pcapng")], check=True, timeout=60)
    flow = "tcp dport 8080 or tcp sport 8080"
    nics = build_ladder(merged, filter=flow)
    wire = build_ladder(routed[1] / "lan.pcapng", filter=flow)
    assert len(wire.arrows) > 10
    named = {"fd00::20": "web", "fd00:1::10": "server"}  # mergecap drops name blocks
    assert [(named[a.src], named[a.dst], a.label) for a in nics.arrows] == [
        (a.src, a.dst, a.label) for a in wire.arrows]


def test_ladder_refuses_what_it_cannot_draw(routed: tuple[Path, Path], tmp_path: Path) -> None:
    _, directory = routed
    none = run_vnet("pcap", "ladder", str(directory / "lan.pcapng"), "-o",
                    str(tmp_path / "x.svg"), "--filter", "udp dport 9")
    assert none.returncode == 2 and b"no IP packets to draw" in none.stderr
    (tmp_path / "junk.pcapng").write_bytes(b"not a capture at all")
    junk = run_vnet("pcap", "ladder", str(tmp_path / "junk.pcapng"), "-o", str(tmp_path / "y.svg"))
    assert junk.returncode == 2 and junk.stderr.count(b"\n") == 1
    assert not (tmp_path / "y.svg").exists()


def test_topology_drawing_has_every_host_segment_router_and_address(
        routed: tuple[Path, Path]) -> None:
    topology, directory = routed
    root = ET.parse(directory / "topo.svg").getroot()
    assert render_topology_svg(load(topology)) == (directory / "topo.svg").read_text()
    segments = {g.get("data-name"): g for g in _groups(root, "segment")}
    hosts = {g.get("data-name"): g for g in _groups(root, "host")}
    routers = {g.get("data-name"): g for g in _groups(root, "router")}
    assert set(segments) == {"lan", "dmz"}
    assert set(hosts) == {"web", "server"}
    assert set(routers) == {"gw"}
    assert segments["lan"].get("data-members") == "web:eth0 gw:eth0"
    assert segments["dmz"].get("data-members") == "gw:eth1 server:eth0"
    assert "segment lan, latency 1 ms" in _texts(segments["lan"])
    expected = {"web": ["10.0.0.20/24", "fd00::20/64"],
                "gw": ["10.0.0.1/24", "fd00::1/64", "10.0.1.1/24", "fd00:1::1/64"],
                "server": ["10.0.1.10/24", "fd00:1::10/64"]}
    for name, addresses in expected.items():
        node = hosts.get(name) or routers[name]
        assert node.get("data-addresses") == " ".join(addresses)
        shown = _texts(node)
        assert shown[0] == (f"{name} (router)" if name == "gw" else name)
        assert [t for t in shown if "/" in t and not t.startswith("route")] == addresses
    wires = [(w.get("data-host"), w.get("data-nic"), w.get("data-segment"))
             for w in root.iter(f"{SVG}line") if w.get("class") == "wire"]
    assert sorted(wires) == [("gw", "eth0", "lan"), ("gw", "eth1", "dmz"),
                             ("server", "eth0", "dmz"), ("web", "eth0", "lan")]
    # Every wire ends on its segment's bus.
    bus_y = {name: float(g.find(f"{SVG}rect").get("y")) + 5  # type: ignore[union-attr]
             for name, g in segments.items()}
    for w in root.iter(f"{SVG}line"):
        if w.get("class") == "wire":
            assert float(w.get("y2") or 0) == bus_y[w.get("data-segment") or ""]
