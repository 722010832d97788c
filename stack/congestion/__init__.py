"""TCP congestion control: sans-IO window arithmetic, one module per algorithm.

Touches nothing but numbers. An algorithm object holds ``cwnd`` and
``ssthresh`` (bytes) and changes them when the connection engine reports an
event; it never reads a clock (time arrives as ``now_ns``), sends, arms a
timer or sees a segment. The engine owns loss detection, recovery
(retransmission, any cwnd inflation or PRR), RTT estimation and the RTO;
it asks the algorithm only how big the window is.

Modules: ``newreno`` (RFC 5681 with RFC 3465 byte counting), ``cubic``
(RFC 9438, the default in Linux; shares NewReno's slow start) and ``hystart``
(RFC 9406, the slow-start exit both use).

The interface, ``CongestionControl``:

- ``cwnd``, ``ssthresh``: bytes. ``ssthresh`` starts "arbitrarily high"
  (2**31); ``cwnd`` starts at the RFC 6928 initial window
  ``min(10*MSS, max(2*MSS, 14600))``. ``name``: ``"newreno"``/``"cubic"``.
- ``on_ack(now_ns, acked, rtt_ns, in_flight)``: a cumulative ACK of
  ``acked`` new bytes, outside recovery. ``rtt_ns`` is an RTT sample from
  this ACK or ``None`` (Karn); the connection's SRTT works too.
  ``in_flight`` is the FlightSize the ACK found (``SND.MAX - SND.UNA``
  before it, the acked bytes included); cwnd grows only if that was at
  least half of cwnd (RFC 7661), so an application-limited sender does not
  inflate its window.
- ``in_flight`` in the other methods is likewise FlightSize at the event.
- ``on_congestion(now_ns, in_flight)``: loss found by duplicate ACKs or
  SACK, entering fast recovery: ssthresh is set and cwnd = ssthresh. Call
  it once per recovery episode. ``on_recovery_exit(now_ns)``: recovery
  ended, cwnd = ssthresh.
- ``on_timeout(now_ns, in_flight)``: the RTO fired: ssthresh per the
  algorithm, cwnd = 1 MSS, slow start again. ssthresh is reduced once per
  loss episode: it is held when the timer fires again before new data is
  acknowledged, or fires during fast recovery. The engine leaves recovery
  on a timeout without calling ``on_recovery_exit``.
- ``on_idle_restart(now_ns)``: sending resumes after more than an RTO of
  idleness: cwnd = min(cwnd, IW).
- ``set_mss(mss)``: the effective MSS changed (after the handshake, or
  PMTU). Before the first event it recomputes the initial window.
- ``on_round_start(now_ns)``: a round trip begins (the first ACK at or
  beyond the SND.MAX of the previous round's start); HyStart++ (RFC 9406,
  ``hystart``) counts its rounds by it.
- ``snapshot()`` / ``undo(state)``: the engine saves the state before a
  loss episode and restores it when D-SACK or timestamps show the episode
  was spurious (RFC 3708 / RFC 3522; Linux's undo).

``make(name, mss)`` builds one by name (``"cubic"``, ``"newreno"`` or
``"reno"``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .cubic import Cubic
from .newreno import INITIAL_SSTHRESH, NewReno, initial_window

__all__ = [
    "ALGORITHMS",
    "INITIAL_SSTHRESH",
    "CongestionControl",
    "Cubic",
    "NewReno",
    "initial_window",
    "make",
]


@runtime_checkable
class CongestionControl(Protocol):
    """What the TCP engine needs from a congestion-control algorithm (sizes in bytes)."""

    cwnd: int
    ssthresh: int
    mss: int
    name: str

    def set_mss(self, mss: int) -> None: ...

    def on_ack(self, now_ns: int, acked: int, rtt_ns: int | None, in_flight: int,
               acks: int = 1) -> None: ...

    def on_congestion(self, now_ns: int, in_flight: int) -> None: ...

    def on_recovery_exit(self, now_ns: int) -> None: ...

    def on_timeout(self, now_ns: int, in_flight: int) -> None: ...

    def on_idle_restart(self, now_ns: int) -> None: ...

    def on_round_start(self, now_ns: int) -> None: ...

    def snapshot(self) -> tuple[Any, ...]: ...

    def undo(self, state: tuple[Any, ...]) -> None: ...


#: Algorithm classes by name; each takes ``(mss)``.
ALGORITHMS: dict[str, type[NewReno]] = {"cubic": Cubic, "newreno": NewReno, "reno": NewReno}


def make(name: str, mss: int) -> NewReno:
    """A fresh algorithm by name (case-insensitive); ValueError for an unknown name."""
    cls = ALGORITHMS.get(name.lower())
    if cls is None:
        known = ", ".join(sorted(ALGORITHMS))
        raise ValueError(f"unknown congestion control {name!r} (known: {known})")
    return cls(mss)
