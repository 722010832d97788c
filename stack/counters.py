"""Counters: what a stack received, sent and dropped, and why.

`StackCounters` is a flat `collections.Counter` keyed by dotted names —
`ipv4.in`, `ipv4.drop.bad_checksum`, `udp.drop.no_socket`, `arp.out` … — so a
new reason costs nothing to add and tests read exactly what a user reads.
`InterfaceCounters` holds per-interface frame and byte counts and drops by
reason. Pure data: touches nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class StackCounters(Counter[str]):
    """Per-protocol counters of one stack. `drops(prefix)` lists the drop reasons."""

    def drop(self, protocol: str, reason: object) -> None:
        name = getattr(reason, "value", reason)
        self[f"{protocol}.drop.{name}"] += 1

    def drops(self, protocol: str | None = None) -> dict[str, int]:
        return {
            key: value for key, value in self.items()
            if ".drop." in key and (protocol is None or key.startswith(protocol + "."))
        }


@dataclass
class InterfaceCounters:
    rx_frames: int = 0
    rx_bytes: int = 0
    tx_frames: int = 0
    tx_bytes: int = 0
    rx_dropped: Counter[str] = field(default_factory=Counter)
    tx_dropped: Counter[str] = field(default_factory=Counter)


# dict's own item assignment and deletion for StackCounters: Counter's Python-level
# __delitem__ otherwise routes every store (``counters[name] += 1``, four per TCP
# segment) through a slot that looks the method up in Python. Set after the class is
# made: compiled (mypyc), such class-body assignments are dropped. (Deleting a missing
# name now raises KeyError, as for a dict; nothing deletes counters.)
for _name in ("__setitem__", "__delitem__"):
    setattr(StackCounters, _name, getattr(dict, _name))
