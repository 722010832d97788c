"""A topology file drawn to SVG: hosts, segments, routers and their addresses.

    vnet sim examples/demo.toml --draw topo.svg

Layout: each segment is a horizontal bus (a thick bar) on its own row, in
file order; each host is a box placed in its own column, above its segment
(hosts alternate above and below a bus), and a host on several segments
(a router: ``forwarding = true``) sits between the rows it joins, wired to
each bus. Every wire is labelled with the NIC's name, and each box lists
the host's NICs with their addresses; routers are drawn in another colour
and marked "router"; a segment's label says its latency, loss and snooping.

The SVG is greppable: ``<g class="segment" data-name=...>``, ``<g
class="host" data-name=...>`` (``class="router"`` for forwarding hosts),
each with its addresses in ``data-addresses``. Reads only the `Topology`
it is given; writes only the SVG file it is asked to.
"""

from __future__ import annotations

import os
from pathlib import Path

from vnet.pictures.svg import document, element, open_group, text
from vnet.sim.topology import HostSpec, SegmentSpec, Topology

__all__ = ["render_topology_svg", "write_topology_svg"]

COLUMN = 220
BOX_WIDTH = 196
ROW = 300
LINE = 14
LEFT = 30
TOP = 40


def _segment_label(spec: SegmentSpec) -> str:
    parts = [f"segment {spec.name}"]
    if spec.latency_ns:
        parts.append(f"latency {spec.latency_ns / 1e6:g} ms")
    for name in ("loss", "reorder", "duplicate"):
        value = getattr(spec, name)
        if value:
            parts.append(f"{name} {value:g}")
    if spec.snooping:
        parts.append("IGMP/MLD snooping")
    return ", ".join(parts)


def _box_lines(host: HostSpec) -> list[str]:
    lines = []
    for nic in host.nics:
        lines.append(f"{nic.name} ({nic.segment})" + (f" mtu {nic.mtu}" if nic.mtu != 1500
                                                      else ""))
        lines.extend(f"  {a}" for a in nic.addresses)
    for to, via, dev in host.routes:
        lines.append(f"route {to}" + (f" via {via}" if via else "") + (f" dev {dev}" if dev
                                                                         else ""))
    if host.guests:
        lines.append("guests: " + ", ".join(g.name for g in host.guests))
    return lines


def render_topology_svg(topo: Topology) -> str:
    """The topology as an SVG document (see the module docstring)."""
    rows = {name: i for i, name in enumerate(topo.segments)}
    bus_y = {name: TOP + 200 + ROW * i for name, i in rows.items()}
    hosts = list(topo.hosts.values())
    # Columns: hosts ordered by their first segment's row, routers after the hosts of that row.
    hosts.sort(key=lambda h: (min((rows[n.segment] for n in h.nics), default=len(rows)),
                              h.forwarding, list(topo.hosts).index(h.name)))
    body: list[str] = []
    placed: dict[str, tuple[float, float, float]] = {}  # host -> (x centre, y top, height)
    above_next: dict[str, bool] = {name: True for name in topo.segments}
    for column, host in enumerate(hosts):
        x = LEFT + COLUMN * column + BOX_WIDTH / 2
        lines = _box_lines(host)
        box_height = 26 + LINE * len(lines) + 8
        segs = sorted({rows[n.segment] for n in host.nics})
        names = [n for n in topo.segments if rows[n] in segs]
        if len(segs) >= 2:  # between the first two rows it joins
            y = (bus_y[names[0]] + bus_y[names[1]]) / 2 - box_height / 2
        elif segs:
            seg = names[0]
            y = bus_y[seg] - 60 - box_height if above_next[seg] else bus_y[seg] + 60
            above_next[seg] = not above_next[seg]
        else:
            y = TOP + 40
        placed[host.name] = (x, y, box_height)
    width = LEFT * 2 + COLUMN * max(len(hosts), 1)
    height = max([TOP + 200 + ROW * (len(rows) - 1) + 50.0]
                 + [y + h + 30 for _, y, h in placed.values()])
    # Buses first (under the wires), then wires, then boxes.
    for name, spec in topo.segments.items():
        xs = [placed[h.name][0] for h in hosts if any(n.segment == name for n in h.nics)]
        x1 = min(xs, default=LEFT + BOX_WIDTH / 2) - BOX_WIDTH / 2
        x2 = max(xs, default=LEFT + BOX_WIDTH / 2) + BOX_WIDTH / 2
        y = bus_y[name]
        members = [f"{h.name}:{n.name}" for h in hosts for n in h.nics if n.segment == name]
        body.append(open_group(class_="segment", data_name=name, data_members=" ".join(members)))
        body.append(element("rect", x=f"{x1:.1f}", y=y - 5, width=f"{x2 - x1:.1f}", height=10,
                            rx=5, fill="#4a7a3a"))
        body.append(text(x1, y + 24, _segment_label(spec), size=12, anchor="start",
                         weight="bold", fill="#2f5a22", class_="segment-name"))
        body.append("</g>")
    for host in hosts:
        x, y, h = placed[host.name]
        for index, nic in enumerate(host.nics):
            bus = bus_y[nic.segment]
            wire_x = x + (index - (len(host.nics) - 1) / 2) * 24
            edge = y + h if bus > y else y
            body.append(element("line", class_="wire", x1=f"{wire_x:.1f}", y1=f"{edge:.1f}",
                                x2=f"{wire_x:.1f}", y2=bus, stroke="#555", stroke_width=2,
                                data_host=host.name, data_nic=nic.name,
                                data_segment=nic.segment))
            body.append(text(wire_x + 5, (edge + bus) / 2, nic.name, size=10, anchor="start",
                             fill="#555"))
    for host in hosts:
        x, y, h = placed[host.name]
        kind = "router" if host.forwarding else "host"
        addresses = [a for n in host.nics for a in n.addresses]
        body.append(open_group(class_=kind, data_name=host.name,
                               data_addresses=" ".join(addresses)))
        body.append(element("rect", x=f"{x - BOX_WIDTH / 2:.1f}", y=f"{y:.1f}", width=BOX_WIDTH,
                            height=f"{h:.1f}", rx=8,
                            fill="#fdf0dc" if host.forwarding else "#e8eef8",
                            stroke="#b5651d" if host.forwarding else "#1f4e9c",
                            stroke_width=1.5))
        title = f"{host.name} (router)" if host.forwarding else host.name
        body.append(text(x, y + 18, title, size=13, weight="bold", class_="host-name"))
        for i, line in enumerate(_box_lines(host)):
            indent = 20 if line.startswith("  ") else 8  # an address under its NIC
            body.append(text(x - BOX_WIDTH / 2 + indent, y + 34 + LINE * i, line.strip(),
                             size=10, anchor="start", fill="#333",
                             class_="address" if indent == 20 else None))
        body.append("</g>")
    return document(width, height, body, f"vnet topology: {topo.path.name}")


def write_topology_svg(topo: Topology, output: str | os.PathLike[str]) -> None:
    Path(output).write_text(render_topology_svg(topo))
