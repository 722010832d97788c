"""Assertions on captures: partial templates, expect/expect_sequence/expect_none/expect_only.

A test asserts on what crossed the wire the way it would describe it: a
scapy packet with only the fields that matter set is a *template*;
``IP(dst="10.0.0.2")/TCP(flags="S")`` matches any IPv4 TCP segment to
10.0.0.2 whose flags are exactly SYN, whatever its ports, sequence numbers or
options. The rules:

- Only fields set explicitly in the template count (scapy keeps them in each
  layer's ``fields``); every other field is "don't care". A field a layer's
  constructor sets by itself (``IP().options == []``) is don't-care too.
- A value may be a predicate: ``TCP(dport=lambda port: port > 1024)``.
  Scapy refuses a callable for flags fields: ``having(TCP(), flags=lambda
  f: f.R)`` sets any field to a predicate, bypassing scapy's conversion. A
  network (``IP(dst="10.0.0.0/24")``) matches any address in it; addresses
  compare as addresses (``fd00:0::1`` is ``fd00::1``); flags compare exactly
  (``flags="S"`` does not match SYN+ACK: use ``lambda f: "S" in str(f)``).
- The template's first layer may sit anywhere in the packet (``IP()/UDP()``
  matches inside ``Ether``); the following template layers must follow it
  directly. Layers compare by exact class, so ``IP`` does not match the
  ``IPerror`` quoted inside an ICMP error. A trailing ``Raw(b"...")``
  compares the payload bytes, however scapy decoded them (``Raw(load=b"")``
  for an empty payload: scapy reads ``Raw(b"")`` as no field set).
- ``Template(layers, where=callable)`` adds a predicate on the whole
  ``CapturedPacket`` (its ``interface``, ``time_ns``, ``comments``, and
  ``pkt[TCP]``-style access to the scapy packet). ``where=`` on the
  ``expect*`` calls does the same.

A ``Capture`` holds the packets of one pcapng file (``vnet.testing.pcap``)
and narrows to views: ``on("a/eth0")``, ``flow("10.0.0.1", "10.0.0.2:80",
proto="tcp")``, ``conversation(packet)``, ``between(t0, t1)`` (virtual
seconds), ``after(packet)``. Views keep the file's packet numbers and
remember what narrowed them, so a failure report says exactly what was
searched. The assertions take the same narrowing as keywords: ``on=``,
``flow=`` (a view or a packet whose conversation to keep), ``after=`` (a
packet), and ``within=`` — a ``(start, end)`` window of virtual seconds, or
one number: that many seconds from the ``after`` packet (``expect(reply,
after=request, within=0.002)``: the reply came within 2 ms).

A failure raises ``AssertionError`` whose message holds the template, the
scope searched (interfaces, flow, virtual-time window, pcap path) and the
nearest packets, one line each as tshark summarises them, each differing
field named with its expected and actual value.

A merged capture of every NIC holds each frame twice (sent by one NIC,
received by the other): narrow with ``on=`` before a ``strict`` sequence or an
``expect_only``.

This module reads capture files and uses scapy; it is for tests and tools,
never on the data path, and it never writes anything.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from .pcap import CapturedPacket, endpoints, read_pcapng

if TYPE_CHECKING:
    from scapy.packet import Packet

    from vnet.link.capture import Capture as CaptureWriter

__all__ = [
    "Capture",
    "Difference",
    "Template",
    "TemplateLike",
    "having",
    "match",
]

#: How many near misses a failure report lists.
NEAREST = 5

Predicate: TypeAlias = Callable[[CapturedPacket], Any]
#: A virtual-time window: (start, end) in seconds (None is open), or a number of
#: seconds from the ``after`` packet (from time 0 without one).
Window: TypeAlias = "tuple[float | None, float | None] | float"


@dataclass(frozen=True)
class Difference:
    """Why a packet does not match a template: ``TCP.flags`` expected ``S``, actual ``SA``."""

    field: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, actual {self.actual}"


def _describe_callable(function: Callable[..., Any]) -> str:
    name = getattr(function, "__name__", repr(function))
    if name != "<lambda>":
        return f"{name}()"
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return "<lambda>"
    start = source.find("lambda")
    text = source[start:]
    depth = 0
    for position, char in enumerate(text):  # cut at the comma or bracket closing the lambda
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                text = text[:position]
                break
            depth -= 1
        elif char == "," and depth == 0:
            text = text[:position]
            break
    return " ".join(text.split())


def _show(layer: Packet, name: str, value: Any) -> str:
    from scapy.fields import FlagValue

    if callable(value) and not isinstance(value, type):
        return _describe_callable(value)
    if isinstance(value, int) and not isinstance(value, (bool, FlagValue)):
        return str(value)  # 80, not scapy's "http"; 8, not "echo-request"
    try:
        return str(layer.get_field(name).i2repr(layer, value))
    except Exception:
        return repr(value)


def _as_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _field_matches(layer: Packet, name: str, expected: Any, actual: Any) -> bool:
    from scapy.base_classes import Net
    from scapy.fields import FlagValue

    if callable(expected) and not isinstance(expected, type):
        try:
            return bool(expected(actual))
        except Exception:
            return False
    if isinstance(expected, Net):
        return str(actual) in expected
    if isinstance(expected, FlagValue) or isinstance(actual, FlagValue):
        try:
            return int(expected) == int(actual)
        except (TypeError, ValueError):
            return False
    if expected == actual:
        return True
    left, right = _as_address(expected), _as_address(actual)
    if left is not None and right is not None:
        return left == right
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.lower() == actual.lower()  # MAC addresses
    try:
        return bool(layer.get_field(name).any2i(layer, expected) == actual)
    except Exception:
        return False


def _explicit_fields(layer: Packet) -> dict[str, Any]:
    """The fields a template layer sets: its ``fields`` minus what its constructor sets alone."""
    try:
        baseline = type(layer)().fields
    except Exception:
        baseline = {}
    return {name: value for name, value in layer.fields.items()
            if not (name in baseline and _same(baseline[name], value))}


def _same(left: Any, right: Any) -> bool:
    try:
        return bool(left == right) and not callable(right)
    except Exception:
        return False


def having(layer: Packet, **predicates: Callable[[Any], Any]) -> Packet:
    """``layer`` with fields set to predicates scapy refuses: ``having(TCP(), flags=pred)``.

    Each predicate gets the field's value as scapy decodes it (a ``FlagValue``
    for flags: ``f.R``, ``"R" in f``) and matches when it returns true.
    Returns ``layer`` itself, so it stacks: ``IP() / having(TCP(), flags=...)``.
    """
    for name, predicate in predicates.items():
        if not callable(predicate):
            raise TypeError(f"having({type(layer).__name__}, {name}=...) needs a callable")
        layer.get_field(name)  # KeyError-like failure for a field the layer does not have
        layer.fields[name] = predicate
    return layer


def _payload_bytes(layer: Packet | None) -> bytes:
    """The bytes from ``layer`` on, without Ethernet padding (none when there is no layer)."""
    from scapy.packet import Padding

    if layer is None or layer.__class__.__name__ == "NoPayload" or isinstance(layer, Padding):
        return b""
    data = bytes(layer)
    padding = layer.getlayer(Padding)
    return data[:len(data) - len(padding.load)] if padding is not None else data


def _layers(packet: Packet) -> Iterator[Packet]:
    layer = packet
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        yield layer
        layer = layer.payload


class Template:
    """A partial packet: scapy layers with only the fields that matter, and a predicate."""

    def __init__(self, layers: Packet | None = None, *, where: Predicate | None = None,
                 label: str | None = None) -> None:
        self.layers = layers
        self.where = where
        self.label = label
        self._parts: list[tuple[type, dict[str, Any], Packet]] = [
            (type(layer), _explicit_fields(layer), layer) for layer in _layers(layers)
        ] if layers is not None else []

    @classmethod
    def of(cls, template: TemplateLike, where: Predicate | None = None) -> Template:
        """A ``Template`` from a scapy packet or a Template, adding ``where`` if given."""
        if isinstance(template, Template):
            if where is None:
                return template
            inner = template.where
            both: Predicate = (lambda p: where(p)) if inner is None else (
                lambda p: inner(p) and where(p))
            combined = cls(template.layers, where=both, label=template.label)
            combined._where_text = f"{template._describe_where()} and {_describe_callable(where)}"
            return combined
        return cls(template, where=where)

    _where_text: str | None = None

    def _describe_where(self) -> str:
        if self._where_text is not None:
            return self._where_text
        return _describe_callable(self.where) if self.where is not None else ""

    def describe(self) -> str:
        """``IP(dst=10.0.0.2) / TCP(flags=S) where <lambda ...>``: what the template asks."""
        parts = []
        for cls, fields, layer in self._parts:
            shown = ", ".join(f"{name}={_show(layer, name, value)}"
                              for name, value in fields.items())
            parts.append(f"{cls.__name__}({shown})")
        text = " / ".join(parts) or "any packet"
        if self.where is not None:
            text += f" where {self._describe_where()}"
        if self.label:
            text = f"{self.label}: {text}"
        return text

    def __repr__(self) -> str:
        return f"<Template {self.describe()}>"

    def compare(self, captured: CapturedPacket) -> tuple[bool, list[Difference]]:
        """(anchor layer found, differences); no differences means the packet matches."""
        from scapy.packet import Raw

        if not self._parts:
            return True, self._check_where(captured)
        try:
            packet = captured.packet
        except Exception as error:
            return False, [Difference("packet", "decodable", f"scapy failed: {error}")]
        first = self._parts[0][0]
        best: list[Difference] | None = None
        for anchor in _layers(packet):
            if type(anchor) is not first:
                continue
            differences: list[Difference] = []
            layer: Packet | None = anchor
            for cls, fields, template_layer in self._parts:
                if cls is Raw and type(layer) is not Raw:  # payload bytes, however decoded
                    actual_bytes = _payload_bytes(layer)
                    expected = fields.get("load")
                    if expected is not None and not _field_matches(template_layer, "load",
                                                                   expected, actual_bytes):
                        differences.append(Difference("Raw.load", _show(template_layer, "load",
                                                                        expected),
                                                      repr(actual_bytes)))
                    break
                if layer is None or layer.__class__.__name__ == "NoPayload":
                    differences.append(Difference(cls.__name__, "layer present", "no such layer"))
                    break
                if type(layer) is not cls:
                    differences.append(Difference(cls.__name__, "layer present",
                                                  f"{type(layer).__name__} in its place"))
                    break
                for name, expected in fields.items():
                    actual = layer.getfieldval(name)
                    if not _field_matches(layer, name, expected, actual):
                        differences.append(Difference(f"{cls.__name__}.{name}",
                                                      _show(template_layer, name, expected),
                                                      _show(layer, name, actual)))
                layer = layer.payload
            if best is None or len(differences) < len(best):
                best = differences
            if not best:
                break
        if best is None:
            return False, [Difference(first.__name__, "layer present", "no such layer in packet")]
        if not best:
            best = self._check_where(captured)
        return True, best

    def _check_where(self, captured: CapturedPacket) -> list[Difference]:
        if self.where is None:
            return []
        try:
            result = self.where(captured)
        except Exception as error:
            return [Difference("where", self._describe_where(), f"raised {error!r}")]
        return [] if result else [Difference("where", self._describe_where(), repr(result))]

    def matches(self, captured: CapturedPacket) -> bool:
        return not self.compare(captured)[1]


TemplateLike: TypeAlias = "Packet | Template"


def match(template: TemplateLike, captured: CapturedPacket) -> list[Difference]:
    """The differences between a template and a packet; empty when it matches."""
    return Template.of(template).compare(captured)[1]


def _distance(anchored: bool, differences: list[Difference]) -> tuple[bool, int, int]:
    """How far a packet is from a template: first layer absent, then layers missing, then fields."""
    missing = sum(1 for d in differences if d.expected == "layer present")
    return (not anchored, missing, len(differences))


# --- flows -------------------------------------------------------------------

@dataclass(frozen=True)
class _Endpoint:
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    port: int | None

    @classmethod
    def parse(cls, text: str | None) -> _Endpoint:
        if text is None or text in ("", "*"):
            return cls(None, None)
        port: int | None = None
        host = text
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = int(port_text)
        address = ipaddress.ip_address(host) if host and host != "*" else None
        return cls(address, port)

    def accepts(self, address: str, port: int | None) -> bool:
        if self.address is not None and _as_address(address) != self.address:
            return False
        return self.port is None or self.port == port

    def __str__(self) -> str:
        host = "*" if self.address is None else str(self.address)
        if self.port is None:
            return host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def _five_tuple(captured: CapturedPacket) -> tuple[str, str, str, int | None, int | None] | None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    try:
        packet = captured.packet
    except Exception:
        return None
    network = packet[IP] if IP in packet else packet[IPv6] if IPv6 in packet else None
    if network is None:
        return None
    transport = packet[TCP] if TCP in packet else packet[UDP] if UDP in packet else None
    protocol = endpoints(packet)[2].lower()
    if transport is None:
        return protocol, str(network.src), str(network.dst), None, None
    return protocol, str(network.src), str(network.dst), int(transport.sport), int(transport.dport)


# --- captures ----------------------------------------------------------------

class Capture:
    """The packets of one capture, or a narrowed view of them, with assertions.

    Build one with ``Capture.load(path)`` or ``Capture.of(net.capture(...))``.
    Views (``on``, ``flow``, ``between`` ...) return new ``Capture`` objects and
    keep the packets' numbers in the file.
    """

    def __init__(self, packets: Sequence[CapturedPacket], *, source: str = "<memory>",
                 scope: Sequence[str] = ()) -> None:
        self.packets: list[CapturedPacket] = list(packets)
        self.source = source
        self.scope: tuple[str, ...] = tuple(scope)

    # --- loading --------------------------------------------------------------
    @classmethod
    def load(cls, source: str | os.PathLike[str] | bytes, *,
             origin_ns: int | None = None) -> Capture:
        """Read a pcapng file (or its bytes). See ``vnet.testing.pcap.read_pcapng``."""
        pcap = read_pcapng(source, origin_ns=origin_ns)
        return cls(pcap.packets, source=pcap.source)

    @classmethod
    def of(cls, capture: CaptureWriter, *, origin_ns: int | None = None) -> Capture:
        """What a ``vnet.link.capture.Capture`` (``net.capture(...)``) has recorded so far."""
        capture.flush()
        if capture.path is not None:
            return cls.load(capture.path, origin_ns=origin_ns)
        return cls.load(capture.getvalue(), origin_ns=origin_ns)

    # --- sequence protocol ------------------------------------------------------
    def __len__(self) -> int:
        return len(self.packets)

    def __iter__(self) -> Iterator[CapturedPacket]:
        return iter(self.packets)

    def __getitem__(self, index: int) -> CapturedPacket:
        return self.packets[index]

    def __repr__(self) -> str:
        return f"<Capture {self.source} {self.describe_scope()} packets={len(self.packets)}>"

    @property
    def interfaces(self) -> list[str]:
        """Interface names that have packets in this view, in order of first appearance."""
        return list(dict.fromkeys(p.interface for p in self.packets))

    def summary(self) -> str:
        """Every packet of the view, one tshark-like line each."""
        return "\n".join(p.summary() for p in self.packets)

    # --- views ------------------------------------------------------------------
    def _view(self, packets: Iterable[CapturedPacket], scope: str) -> Capture:
        return Capture(list(packets), source=self.source, scope=(*self.scope, scope))

    def where(self, predicate: Predicate, description: str | None = None) -> Capture:
        """The packets for which ``predicate(packet)`` is true."""
        text = description or f"where {_describe_callable(predicate)}"
        return self._view((p for p in self.packets if predicate(p)), text)

    def on(self, *interfaces: str) -> Capture:
        """The packets recorded on these interfaces (``"a/eth0"``; ``"a/*"`` for a whole host)."""
        def wanted(name: str) -> bool:
            return any(name == i or (i.endswith("/*") and name.startswith(i[:-1]))
                       for i in interfaces)

        return self._view((p for p in self.packets if wanted(p.interface)),
                          "on " + ", ".join(interfaces))

    def flow(self, a: str | None, b: str | None = None, *, proto: str | None = None) -> Capture:
        """Both directions between endpoints ``"10.0.0.1"``, ``"10.0.0.1:80"``, ``"[fd00::1]:80"``.

        ``None`` or ``"*"`` is any endpoint; ``proto`` is ``tcp``, ``udp``,
        ``icmp``, ``icmpv6``... (tshark's protocol column, lower case).
        """
        left, right = _Endpoint.parse(a), _Endpoint.parse(b)
        protocol = proto.lower() if proto else None

        def belongs(captured: CapturedPacket) -> bool:
            five = _five_tuple(captured)
            if five is None:
                return False
            kind, src, dst, sport, dport = five
            if protocol is not None and kind != protocol:
                return False
            return ((left.accepts(src, sport) and right.accepts(dst, dport))
                    or (left.accepts(dst, dport) and right.accepts(src, sport)))

        text = f"flow {left} ↔ {right}" + (f" {protocol}" if protocol else "")
        return self._view((p for p in self.packets if belongs(p)), text)

    def conversation(self, packet: CapturedPacket) -> Capture:
        """The flow ``packet`` belongs to: same protocol, addresses and ports, both directions."""
        five = _five_tuple(packet)
        if five is None:
            raise ValueError(f"packet #{packet.index} is not an IP packet: it has no flow")
        kind, src, dst, sport, dport = five

        def join(address: str, port: int | None) -> str:
            if port is None:
                return address
            return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

        return self.flow(join(src, sport), join(dst, dport), proto=kind)

    def between(self, start: float | None = None, end: float | None = None) -> Capture:
        """Packets with ``start <= time <= end`` (seconds of virtual time; None is open)."""
        start_ns = None if start is None else round(start * 1e9)
        end_ns = None if end is None else round(end * 1e9)
        chosen = (p for p in self.packets
                  if (start_ns is None or p.time_ns >= start_ns)
                  and (end_ns is None or p.time_ns <= end_ns))
        shown_start = "start" if start is None else f"{start:.9f} s"
        shown_end = "end" if end is None else f"{end:.9f} s"
        return self._view(chosen, f"virtual time {shown_start} .. {shown_end}")

    def after(self, packet: CapturedPacket) -> Capture:
        """Packets recorded after ``packet`` (later in the file, any interface)."""
        return self._view((p for p in self.packets if p.index > packet.index),
                          f"after #{packet.index} ({packet.time_ns / 1e9:.9f} s)")

    def _narrow(self, *, within: Window | None = None,
                after: CapturedPacket | None = None, on: str | Sequence[str] | None = None,
                flow: Capture | CapturedPacket | None = None) -> Capture:
        view = self
        if on is not None:
            view = view.on(*([on] if isinstance(on, str) else on))
        if flow is not None:
            if isinstance(flow, CapturedPacket):
                view = view.conversation(flow)
            else:
                keep = {p.index for p in flow.packets}
                view = view._view((p for p in view.packets if p.index in keep),
                                  "; ".join(flow.scope[len(self.scope):]) or "flow")
        if isinstance(within, (int, float)):
            start = after.time_ns / 1e9 if after is not None else 0.0
            within = (start, start + within)
        if within is not None:
            view = view.between(*within)
        if after is not None:
            view = view.after(after)
        return view

    # --- matching -----------------------------------------------------------------
    def match(self, template: TemplateLike, *,
              where: Predicate | None = None) -> list[CapturedPacket]:
        """Every packet of the view that matches ``template``."""
        compiled = Template.of(template, where)
        return [p for p in self.packets if compiled.matches(p)]

    def describe_scope(self) -> str:
        return "; ".join(self.scope) if self.scope else "whole capture"

    def _nearest(self, template: Template, limit: int = NEAREST) -> list[str]:
        scored = []
        for packet in self.packets:
            anchored, differences = template.compare(packet)
            scored.append((_distance(anchored, differences), packet, differences))
        scored.sort(key=lambda item: (item[0], item[1].index))
        lines = []
        for _score, packet, differences in scored[:limit]:
            lines.append("    " + packet.summary())
            lines.extend(f"        {difference}" for difference in differences)
        return lines

    def _header(self, title: str) -> list[str]:
        first = self.packets[0].time_ns / 1e9 if self.packets else None
        last = self.packets[-1].time_ns / 1e9 if self.packets else None
        span = (f"{first:.9f} s .. {last:.9f} s" if first is not None and last is not None
                else "no packets")
        return [
            title,
            f"  capture:  {self.source}",
            f"  searched: {len(self.packets)} packets, {self.describe_scope()} "
            f"(packets span virtual time {span})",
        ]

    # --- assertions ---------------------------------------------------------------
    def expect(self, template: TemplateLike, *, within: Window | None
               = None, after: CapturedPacket | None = None, on: str | Sequence[str] | None = None,
               flow: Capture | CapturedPacket | None = None,
               where: Predicate | None = None) -> CapturedPacket:
        """The first packet matching ``template`` in the view, or AssertionError with a report."""
        compiled = Template.of(template, where)
        view = self._narrow(within=within, after=after, on=on, flow=flow)
        for packet in view.packets:
            if compiled.matches(packet):
                return packet
        lines = view._header("expect: no packet matches the template")
        lines.append(f"  template: {compiled.describe()}")
        lines.append("  nearest packets:" if view.packets else "  (the view holds no packets)")
        lines.extend(view._nearest(compiled))
        raise AssertionError("\n".join(lines))

    def expect_sequence(self, templates: Sequence[TemplateLike], *, strict: bool = False,
                        within: Window | None = None,
                        after: CapturedPacket | None = None,
                        on: str | Sequence[str] | None = None,
                        flow: Capture | CapturedPacket | None = None) -> list[CapturedPacket]:
        """Packets matching ``templates`` in this order; others may come between unless ``strict``.

        ``strict`` asks for consecutive packets of the view (narrow it with
        ``on=`` and ``flow=`` first). Returns the matched packets.
        """
        compiled = [Template.of(t) for t in templates]
        view = self._narrow(within=within, after=after, on=on, flow=flow)
        if not compiled:
            return []
        if strict:
            best_start, best_count = 0, -1
            for start in range(len(view.packets)):
                count = 0
                while (count < len(compiled) and start + count < len(view.packets)
                       and compiled[count].matches(view.packets[start + count])):
                    count += 1
                if count == len(compiled):
                    return view.packets[start:start + count]
                if count > best_count:
                    best_start, best_count = start, count
            matched = view.packets[best_start:best_start + max(best_count, 0)]
            rest = view.packets[best_start + max(best_count, 0):best_start + max(best_count, 0) + 1]
            failing = max(best_count, 0)
            return self._sequence_failure(view, compiled, matched, failing, rest, strict=True)
        matched = []
        position = 0
        for step, template in enumerate(compiled):
            while position < len(view.packets) and not template.matches(view.packets[position]):
                position += 1
            if position == len(view.packets):
                rest = [p for p in view.packets if not matched or p.index > matched[-1].index]
                return self._sequence_failure(view, compiled, matched, step, rest, strict=False)
            matched.append(view.packets[position])
            position += 1
        return matched

    def _sequence_failure(self, view: Capture, compiled: list[Template],
                          matched: list[CapturedPacket], failing: int,
                          rest: list[CapturedPacket], *, strict: bool) -> list[CapturedPacket]:
        kind = "strict sequence" if strict else "sequence"
        lines = view._header(f"expect_sequence: step {failing + 1} of {len(compiled)} of the "
                             f"{kind} has no match")
        for step, template in enumerate(compiled):
            mark = "ok " if step < failing else ">> " if step == failing else "   "
            lines.append(f"  {mark}{step + 1}. {template.describe()}")
            if step < len(matched) and step < failing:
                lines.append(f"        matched {matched[step].summary()}")
        where = f"after #{matched[-1].index}" if matched else "in the view"
        if strict:
            lines.append(f"  the packet that broke the strict sequence ({where}):")
        else:
            lines.append(f"  nearest packets {where}:")
        rest_view = Capture(rest, source=view.source, scope=view.scope)
        lines.extend(rest_view._nearest(compiled[failing], limit=1 if strict else NEAREST))
        if not rest:
            lines.append("    (no packets left)")
        raise AssertionError("\n".join(lines))

    def expect_none(self, template: TemplateLike, *,
                    within: Window | None = None,
                    after: CapturedPacket | None = None, on: str | Sequence[str] | None = None,
                    flow: Capture | CapturedPacket | None = None,
                    where: Predicate | None = None) -> None:
        """No packet of the view matches ``template``; AssertionError lists those that do."""
        compiled = Template.of(template, where)
        view = self._narrow(within=within, after=after, on=on, flow=flow)
        found = [p for p in view.packets if compiled.matches(p)]
        if not found:
            return
        lines = view._header(f"expect_none: {len(found)} packet(s) match the template")
        lines.append(f"  template: {compiled.describe()}")
        lines.append("  matching packets:")
        lines.extend("    " + p.summary() for p in found[:20])
        if len(found) > 20:
            lines.append(f"    ... and {len(found) - 20} more")
        raise AssertionError("\n".join(lines))

    def expect_only(self, templates: Sequence[TemplateLike], *,
                    within: Window | None = None,
                    after: CapturedPacket | None = None, on: str | Sequence[str] | None = None,
                    flow: Capture | CapturedPacket | None = None) -> list[CapturedPacket]:
        """Every packet of the view matches one of ``templates``: "no other packets than these".

        Returns the view's packets; AssertionError lists the others, each
        with its differences from the nearest template.
        """
        compiled = [Template.of(t) for t in templates]
        view = self._narrow(within=within, after=after, on=on, flow=flow)
        others = [p for p in view.packets if not any(t.matches(p) for t in compiled)]
        if not others:
            return view.packets
        lines = view._header(f"expect_only: {len(others)} packet(s) match none of the "
                             f"{len(compiled)} templates")
        lines.append("  templates:")
        lines.extend(f"    {i + 1}. {t.describe()}" for i, t in enumerate(compiled))
        lines.append("  other packets:")
        for packet in others[:20]:
            lines.append("    " + packet.summary())
            if compiled:
                scored = [(t.compare(packet), i) for i, t in enumerate(compiled)]
                (_anchored, differences), nearest = min(
                    scored, key=lambda item: _distance(*item[0]))
                lines.append(f"        nearest template {nearest + 1}:")
                lines.extend(f"          {d}" for d in differences)
        if len(others) > 20:
            lines.append(f"    ... and {len(others) - 20} more")
        raise AssertionError("\n".join(lines))
