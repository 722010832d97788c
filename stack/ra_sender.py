"""Router advertisements sent by a router: when (RFC 4861 6.2.4, 6.2.6) and what.

`AdvertSchedule` is the sans-IO part: given the time, it says when the next
unsolicited advertisement is due and when to answer a Router Solicitation.
`RouterAdvertiser` glues one schedule per interface to a `HostStack`: it
arms a driver timer, builds the RA (`RaConfig`: prefixes with their flags
and lifetimes, the MTU option, RDNSS per RFC 8106) and sends it to
all-nodes through `HostStack.output_control`. Touches only its host.

Theory of operation
-------------------
Unsolicited RAs go out at uniformly random intervals between
MinRtrAdvInterval (a third of `interval_ns`, RFC 4861's default ratio) and
MaxRtrAdvInterval (`interval_ns`); the first `MAX_INITIAL_RTR_ADVERTISEMENTS`
ones at most `MAX_INITIAL_RTR_ADVERT_INTERVAL` apart, so hosts that missed
the first get one soon. A Router Solicitation is answered with a multicast
RA after a random 0..`MAX_RA_DELAY_TIME`, but never sooner than
`MIN_DELAY_BETWEEN_RAS` after the previous multicast RA; an answer already
pending is not moved, and one due after the next unsolicited RA is not
needed (6.2.6). Randomness comes from the host's generator, so virtual-time
runs repeat exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ip import ALL_NODES_V6
from .wire import ndp

if TYPE_CHECKING:
    from .driver import TimerHandle
    from .host import HostStack
    from .interface import Interface

__all__ = ["AdvertSchedule", "RaConfig", "RouterAdvertiser"]

SECOND = 1_000_000_000
MAX_INITIAL_RTR_ADVERT_INTERVAL_NS = 16 * SECOND
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MIN_DELAY_BETWEEN_RAS_NS = 3 * SECOND
MAX_RA_DELAY_TIME_NS = SECOND // 2


@dataclass(frozen=True)
class RaConfig:
    """What one interface advertises. Lifetimes in seconds; `mtu` 0: no MTU option."""

    prefixes: tuple[ndp.PrefixInfo, ...] = ()
    interval_ns: int = 600 * SECOND  # MaxRtrAdvInterval
    router_lifetime_s: int = 1800
    mtu: int = 0
    rdnss: tuple[bytes, ...] = ()
    rdnss_lifetime_s: int | None = None  # None: 3 x MaxRtrAdvInterval (RFC 8106 5.1)
    managed: bool = False
    other: bool = False
    hop_limit: int = 64

    def message(self, source_mac: bytes) -> ndp.RouterAdvert:
        other: tuple[tuple[int, bytes], ...] = ()
        if self.rdnss:
            lifetime = self.rdnss_lifetime_s
            if lifetime is None:
                lifetime = 3 * self.interval_ns // SECOND
            other = ((ndp.OPT_RDNSS, bytes(2) + min(lifetime, 0xFFFFFFFF).to_bytes(4, "big")
                      + b"".join(self.rdnss)),)
        return ndp.RouterAdvert(
            cur_hop_limit=self.hop_limit, managed=self.managed, other_config=self.other,
            router_lifetime=self.router_lifetime_s,
            options=ndp.NdpOptions(source_lladdr=source_mac, mtu=self.mtu or None,
                                   prefixes=self.prefixes, other=other))


@dataclass
class AdvertSchedule:
    """When one interface advertises: see the module docstring."""

    interval_ns: int
    rng: random.Random
    next_ns: int = 0  # the next unsolicited RA
    answer_ns: int | None = None  # a pending answer to a solicitation
    last_multicast_ns: int | None = None
    sent: int = 0

    def start(self, now: int) -> None:
        self.next_ns = now + int(self.rng.random() * MAX_RA_DELAY_TIME_NS)

    def next_deadline(self) -> int:
        return self.next_ns if self.answer_ns is None else min(self.next_ns, self.answer_ns)

    def solicited(self, now: int) -> None:
        """A Router Solicitation arrived."""
        if self.answer_ns is not None:
            return
        when = now + int(self.rng.random() * MAX_RA_DELAY_TIME_NS)
        if self.last_multicast_ns is not None:
            when = max(when, self.last_multicast_ns + MIN_DELAY_BETWEEN_RAS_NS)
        if when < self.next_ns:
            self.answer_ns = when

    def due(self, now: int) -> bool:
        """True when an RA goes out now; then the next one is scheduled."""
        if now < self.next_deadline():
            return False
        self.answer_ns = None
        self.sent += 1
        self.last_multicast_ns = now
        low = self.interval_ns // 3
        interval = low + int(self.rng.random() * (self.interval_ns - low))
        if self.sent <= MAX_INITIAL_RTR_ADVERTISEMENTS:
            interval = min(interval, MAX_INITIAL_RTR_ADVERT_INTERVAL_NS)
        self.next_ns = now + interval
        return True


@dataclass
class _Advertising:
    iface: Interface
    config: RaConfig
    schedule: AdvertSchedule
    timer: TimerHandle | None = None


@dataclass
class RouterAdvertiser:
    """The interfaces a router advertises on (`HostStack.router_adverts.advertiser`)."""

    host: HostStack
    interfaces: dict[int, _Advertising] = field(default_factory=dict)

    def advertise(self, ifname: str, config: RaConfig) -> None:
        """Start advertising on an interface (the first RA within half a second)."""
        iface = self.host.interface(ifname)
        schedule = AdvertSchedule(config.interval_ns, self.host.rng)
        schedule.start(self.host.driver.now_ns())
        state = _Advertising(iface, config, schedule)
        old = self.interfaces.get(iface.index)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        self.interfaces[iface.index] = state
        self._arm(state)

    def stop(self, ifname: str) -> None:
        """Stop advertising; a final RA with router lifetime 0 tells hosts (6.2.5)."""
        iface = self.host.interface(ifname)
        state = self.interfaces.pop(iface.index, None)
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
        final = RaConfig(state.config.prefixes, state.config.interval_ns, 0, state.config.mtu)
        self._send(state.iface, final)

    def solicited(self, iface: Interface) -> None:
        state = self.interfaces.get(iface.index)
        if state is None:
            return
        state.schedule.solicited(self.host.driver.now_ns())
        self._arm(state)

    def _arm(self, state: _Advertising) -> None:
        if state.timer is not None:
            state.timer.cancel()
        index = state.iface.index
        state.timer = self.host.driver.call_at(state.schedule.next_deadline(),
                                               lambda: self._on_timer(index))

    def _on_timer(self, index: int) -> None:
        state = self.interfaces.get(index)
        if state is None:
            return
        state.timer = None
        if state.schedule.due(self.host.driver.now_ns()):
            self._send(state.iface, state.config)
        self._arm(state)

    def _send(self, iface: Interface, config: RaConfig) -> None:
        src = iface.link_local_v6()
        if src is None or iface.mac is None or not iface.is_up:
            self.host.counters.drop("ndp", "ra_no_link_local")
            return
        self.host.counters["ndp.ra_out"] += 1
        message = config.message(iface.mac).build(src, ALL_NODES_V6)
        self.host.output_control(iface, src, ALL_NODES_V6, message, hop_limit=255)
