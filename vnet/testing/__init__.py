"""What tests and users share to assert on vnet's captures.

``vnet.testing.pcap`` reads pcapng captures (time, interface, comments and
scapy view of every packet); ``vnet.testing.expect`` asserts on them with
partial packet templates; ``vnet.testing.pcap_diff`` compares two captures;
``vnet.testing.plugin`` is the pytest plugin (fixtures ``vnet_network``,
``vnet_capture``, ``vnet_topology``, ``vnet_build``, ``vnet_golden``), loaded
through its ``pytest11`` entry point; ``vnet.testing.netns`` guards the
network namespaces kernel tests create. This package reads files and uses
scapy; nothing in it is on the data path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .expect import Capture, Difference, Template, having, match
from .pcap import CapturedPacket, PcapFormatError, read_pcapng

if TYPE_CHECKING:
    from .pcap_diff import CaptureDiff, diff_captures

__all__ = [
    "Capture",
    "CaptureDiff",
    "CapturedPacket",
    "Difference",
    "PcapFormatError",
    "Template",
    "diff_captures",
    "having",
    "match",
    "read_pcapng",
]


def __getattr__(name: str) -> Any:
    # pcap_diff loads on first use, so `python -m vnet.testing.pcap_diff` runs it cleanly.
    if name in ("CaptureDiff", "diff_captures"):
        from . import pcap_diff

        return getattr(pcap_diff, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
