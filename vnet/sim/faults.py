"""Faults on a schedule: links down and up, partitions, impairment changes, killed guests,
frozen hosts.

A fault plan is a list of `FaultEvent`s, each at a virtual (or real) time
since the run started. `FaultInjector` arms one scheduler timer per event on
a built network and applies it when it falls due, logging one line per event
(`FaultInjector.log`, printed in `vnet sim`'s summary). Topology files give
plans as ``[[faults]]`` tables and ``[random_faults]`` bounds (parsed by
vnet.sim.topology into `FaultSpec` / `RandomFaults`); `plan` turns them into
events, drawing the random ones from the run's seed, so a plan is the same on
every run with that seed.

Actions
-------
``link-down`` / ``link-up`` (``nic = "HOST/IF"``)
    `Nic.set_link`: while down the NIC drops every frame both ways (counted
    as ``tx/rx_dropped_link_down``), so its captures show the gap.
``partition`` (``segment``, ``groups = [["a", "b"], ["c"]]``) / ``heal``
    Frames between hosts of different groups stop at the switch; hosts left
    out of every group form one more group (`Segment.partition`: the switch
    drops a copy for a port of another group, counted on the port as
    ``partitioned`` and in the log). Frames already past the switch when the
    partition starts are still delivered. A segment has one partition at a
    time: a later ``partition`` replaces the groups, and any ``heal`` joins the whole segment again.
``impair`` (``nic`` or ``segment``; ``loss``, ``delay``, ``jitter``, ``rate``)
    Both directions of the NIC(s) get a new impairment (seeded from the run's
    seed); with ``for`` the previous ones come back afterwards.
``kill`` / ``restart`` (``guest = "HOST/NAME"``)
    As SIGKILL: the guest stops at once, its sockets closed as at any exit
    (FIN, or RST when unread data was queued), exit status 137. ``restart``
    starts it again with the same module, arguments, environment and
    directories; its output goes on under the same prefix and it replaces
    the old one among the run's guests (a restarted client is waited for).

``freeze`` / ``thaw`` (``host = "NAME"``; virtual time only)
    The host stops as a paused VM does (`Scheduler.freeze`): none of its
    guests runs, and its stack's timers (TCP retransmits, delayed ACKs,
    neighbour probes) and its guests' deadlines that fall due wait for the
    thaw, when they fire in their order, before its guests run again. Frames
    that arrive for it meanwhile are captured as they arrive and queued on
    the NIC that received them, as a paused VM's virtio NIC holds its
    receive ring: up to `FROZEN_RX_QUEUE_FRAMES` (256, virtio-net's default
    ring) per NIC; past that they are dropped and counted
    (``rx_dropped_frozen``, in the run's drops and in the thaw's log line).
    At the thaw the queued frames reach the stack first, in arrival order,
    then the held timers fire, then its guests run. Its clocks jump by the
    pause, as a paused VM's do.

Every action but ``heal``/``link-up``/``restart``/``thaw`` takes ``for = DURATION``,
which schedules its reverse (for ``kill``, a restart). ``after = { guest =
"HOST/NAME", prints = "TEXT" }`` makes ``at`` count from the first time that
guest writes TEXT (a trigger, logged too) instead of from the start.

This module touches the network it is given (NIC link state and receive
callback, segment port impairment slots, `Segment.partition`), guest tasks
(their ``killed`` flag) and the scheduler (timers, `freeze`/`thaw`); it
reads no clock of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from vnet.link.impairment import Impairment
from vnet.link.segment import DROP_PARTITIONED

if TYPE_CHECKING:
    from vnet.guest.runtime import Guest
    from vnet.link.nic import Nic
    from vnet.link.segment import Segment, SegmentPort
    from vnet.network import Host, Network

__all__ = ["ACTIONS", "FaultEvent", "FaultInjector", "FaultSpec", "RandomFaults",
           "draw_random", "plan"]

ACTIONS = ("link-down", "link-up", "partition", "heal", "impair", "kill", "restart", "freeze",
           "thaw")
#: What ``for = D`` schedules after each action.
REVERSE = {"link-down": "link-up", "partition": "heal", "impair": "restore", "kill": "restart",
           "freeze": "thaw"}
#: Frames a frozen host's NIC holds (each); later ones are dropped (``rx_dropped_frozen``).
FROZEN_RX_QUEUE_FRAMES = 256


@dataclass
class FaultSpec:
    """One ``[[faults]]`` table (or a Python API call): an action at a time."""

    at_ns: int
    action: str
    nic: str | None = None  # "host/ifname"
    segment: str | None = None
    groups: list[list[str]] = field(default_factory=list)
    guest: str | None = None  # "host/name"
    host: str | None = None  # freeze / thaw
    loss: float | None = None
    delay_ns: int | None = None
    jitter_ns: int | None = None
    rate_bps: int | None = None
    duration_ns: int | None = None  # ``for``: undo after this long
    #: ``after = { guest = "host/name", prints = "TEXT" }``: ``at`` counts from the
    #: virtual instant that guest first writes TEXT (stdout or stderr), not from the start.
    after_guest: str | None = None
    after_output: str | None = None


@dataclass
class RandomFaults:
    """``[random_faults]``: bounds of a plan drawn from the seed.

    Up to ``partitions`` partitions of up to ``partition_max_ns`` each,
    up to ``link_flaps`` link flaps of up to ``link_flap_max_ns``, up to
    ``kills`` kills of one of ``kill_guests`` (restarted after up to
    ``restart_max_ns``, if given), up to ``freezes`` freezes of one of
    ``freeze_hosts`` (default: every host with a NIC) of up to
    ``freeze_max_ns``, all starting within ``within_ns``. Freezes are drawn
    last, so adding them leaves the other draws of a seed as they were.
    """

    within_ns: int
    partitions: int = 0
    partition_max_ns: int = 5_000_000_000
    segments: list[str] = field(default_factory=list)  # default: every segment
    link_flaps: int = 0
    link_flap_max_ns: int = 1_000_000_000
    nics: list[str] = field(default_factory=list)  # default: every NIC
    kills: int = 0
    kill_guests: list[str] = field(default_factory=list)
    restart_max_ns: int | None = None
    freezes: int = 0
    freeze_max_ns: int = 1_000_000_000
    freeze_hosts: list[str] = field(default_factory=list)  # default: every host with a NIC


@dataclass(order=True)
class FaultEvent:
    """One thing to do at ``at_ns``; ``index`` keeps events at one time in plan order."""

    at_ns: int
    index: int
    action: str = field(compare=False)
    spec: FaultSpec = field(compare=False)


_MIN_RANDOM_NS = 100_000_000  # a drawn fault lasts at least 100 ms


def draw_random(bounds: RandomFaults, seed: int, segments: dict[str, list[str]],
                nics: list[str]) -> list[FaultSpec]:
    """The random part of a plan for ``seed``: the same seed, the same faults.

    ``segments`` maps each segment to the hosts on it; ``nics`` lists every
    "host/ifname". Counts are drawn uniformly from 0..bound; a partition
    splits its segment's hosts into two non-empty groups.
    """
    rng = random.Random(f"vnet-faults:{seed}")
    drawn: list[FaultSpec] = []

    def when_and_length(longest: int) -> tuple[int, int]:
        at = rng.randrange(0, max(1, bounds.within_ns))
        return at, rng.randrange(_MIN_RANDOM_NS, max(_MIN_RANDOM_NS + 1, longest + 1))

    names = bounds.segments or sorted(segments)
    splittable = [s for s in names if len(segments.get(s, ())) >= 2]
    for _ in range(rng.randint(0, bounds.partitions) if splittable else 0):
        segment = rng.choice(splittable)
        hosts = sorted(segments[segment])
        rng.shuffle(hosts)
        cut = rng.randint(1, len(hosts) - 1)
        at, length = when_and_length(bounds.partition_max_ns)
        drawn.append(FaultSpec(at, "partition", segment=segment,
                               groups=[sorted(hosts[:cut]), sorted(hosts[cut:])],
                               duration_ns=length))
    flappable = bounds.nics or nics
    for _ in range(rng.randint(0, bounds.link_flaps) if flappable else 0):
        nic = rng.choice(flappable)
        at, length = when_and_length(bounds.link_flap_max_ns)
        drawn.append(FaultSpec(at, "link-down", nic=nic, duration_ns=length))
    for _ in range(rng.randint(0, bounds.kills) if bounds.kill_guests else 0):
        guest = rng.choice(bounds.kill_guests)
        at = rng.randrange(0, max(1, bounds.within_ns))
        restart = (rng.randrange(_MIN_RANDOM_NS, max(_MIN_RANDOM_NS + 1,
                                                     bounds.restart_max_ns + 1))
                   if bounds.restart_max_ns is not None else None)
        drawn.append(FaultSpec(at, "kill", guest=guest, duration_ns=restart))
    freezable = bounds.freeze_hosts or sorted({h for hosts in segments.values() for h in hosts})
    for _ in range(rng.randint(0, bounds.freezes) if freezable else 0):
        host = rng.choice(freezable)
        at, length = when_and_length(bounds.freeze_max_ns)
        drawn.append(FaultSpec(at, "freeze", host=host, duration_ns=length))
    return drawn


def plan(specs: list[FaultSpec], start_ns: int | None = None) -> list[FaultEvent]:
    """Expand ``for`` into reverse events; order by time (plan order at equal times).

    Without ``start_ns``, specs with an ``after`` trigger are left out:
    `FaultInjector.trigger` plans them when their trigger happens
    (``start_ns`` = then).
    """
    events: list[FaultEvent] = []
    for spec in specs:
        if spec.after_guest is not None and start_ns is None:
            continue
        at = (start_ns or 0) + spec.at_ns
        events.append(FaultEvent(at, len(events), spec.action, spec))
        if spec.duration_ns is not None and spec.action in REVERSE:
            events.append(FaultEvent(at + spec.duration_ns, len(events),
                                     REVERSE[spec.action], spec))
    return sorted(events)


class _Partition:
    """A segment's partition as the fault schedule set it (counts what it dropped)."""

    def __init__(self, segment: Segment) -> None:
        self.segment = segment

    @property
    def dropped(self) -> int:
        return sum(port.counters.drops.get(DROP_PARTITIONED, 0) for port in self.segment.ports)


class FaultInjector:
    """Applies fault events to a built network (see the module docstring).

    ``guests`` maps "host/name" to the running `Guest`; a restart replaces the
    entry, so whoever holds the dict sees the new guest. ``seed`` seeds the
    impairments it creates.
    """

    def __init__(self, net: Network, hosts: dict[str, Host] | None = None,
                 guests: dict[str, Guest] | None = None, seed: int = 0) -> None:
        self.net = net
        self.hosts = hosts if hosts is not None else dict(net.hosts)
        self.guests = guests if guests is not None else {}
        self.seed = seed
        self.log: list[str] = []
        self._partitions: dict[str, _Partition] = {}
        self._saved: dict[int, list[tuple[SegmentPort, str, Any]]] = {}
        #: Guests a fault killed and nobody restarted: "host/name" -> virtual time (ns).
        self.killed: dict[str, int] = {}
        self.on_restart: list[Callable[[str, Guest], None]] = []
        #: Frames a frozen host's NIC dropped because its queue was full: "host/if" -> count.
        self.rx_dropped_frozen: dict[str, int] = {}
        self._frozen: dict[str, list[_FrozenNic]] = {}  # host -> its NICs' held frames
        self._waiting: dict[str, list[FaultSpec]] = {}  # guest -> specs it triggers
        self._tails: dict[str, bytes] = {}  # guest -> output since its last newline

    # --- scheduling ----------------------------------------------------------
    def schedule(self, events: list[FaultEvent]) -> None:
        """Check every target now (ValueError naming it), then arm a timer per event."""
        for event in events:
            self._check(event)
        sched = self.net.scheduler
        for event in events:
            sched.call_at(event.at_ns, partial(self.apply, event))

    def schedule_after(self, specs: list[FaultSpec]) -> None:
        """Arm specs with an ``after`` trigger (see `watch_output`); each fires once."""
        for spec in specs:
            if spec.after_guest is None:
                continue
            self._check(FaultEvent(0, 0, spec.action, spec))
            if spec.after_guest not in self.guests:
                raise ValueError(f"fault {spec.action}: after: no guest {spec.after_guest!r}")
            self._waiting.setdefault(spec.after_guest, []).append(spec)

    def watch_output(self, label: str, sink: Callable[[bytes], None]) -> Callable[[bytes], None]:
        """Wrap a guest's output sink so ``after = {guest, prints}`` triggers can see it."""

        def watched(data: bytes) -> None:
            waiting = self._waiting.get(label)
            if waiting:
                text = self._tails.get(label, b"") + data
                for spec in [w for w in waiting if (w.after_output or "").encode() in text]:
                    waiting.remove(spec)
                    self.trigger(spec, f"{label} printed {spec.after_output!r}")
                self._tails[label] = text[text.rfind(b"\n") + 1:][-4096:]
            sink(data)

        return watched

    def trigger(self, spec: FaultSpec, why: str) -> None:
        """A trigger happened now: plan ``spec`` from this instant."""
        sched = self.net.scheduler
        now = sched.monotonic_ns()
        self.log.append(f"{now / 1e9:9.3f} s  {why}")
        for event in plan([spec], start_ns=now):
            sched.call_at(event.at_ns, partial(self.apply, event))

    def _check(self, event: FaultEvent) -> None:
        spec = event.spec
        if spec.nic is not None:
            self._nic(spec.nic)
        if spec.segment is not None and spec.segment not in self.net.segments:
            raise ValueError(f"fault {spec.action}: no segment {spec.segment!r}")
        if spec.action in ("freeze", "thaw"):
            if spec.host is None or spec.host not in self.hosts:
                raise ValueError(f"fault {spec.action}: no host {spec.host!r} (hosts: "
                                 f"{', '.join(sorted(self.hosts)) or 'none'})")
            if not self.net.scheduler.virtual:
                raise ValueError(f"fault {spec.action}: freezing a host needs virtual time")
        if spec.guest is not None and spec.guest not in self.guests:
            raise ValueError(f"fault {spec.action}: no guest {spec.guest!r} (guests: "
                             f"{', '.join(sorted(self.guests)) or 'none'})")

    def _nic(self, name: str) -> Nic:
        host_name, _, ifname = name.partition("/")
        host = self.hosts.get(host_name)
        if host is None or ifname not in host.nics:
            raise ValueError(f"fault: no NIC {name!r} (write HOST/IFNAME, e.g. server/eth0)")
        return host.nics[ifname]

    # --- applying -------------------------------------------------------------
    def apply(self, event: FaultEvent) -> None:
        spec = event.spec
        sched = self.net.scheduler
        with sched.lock, sched.atomic():
            what = getattr(self, "_" + event.action.replace("-", "_"))(event, spec)
        # a killed guest blocked in a host call must be looked at again (as after any
        # change that may unblock a guest), so that it stops now, not at its next wake-up
        sched.notify()
        self.log.append(f"{sched.monotonic_ns() / 1e9:9.3f} s  {what}")

    def _link_down(self, _event: FaultEvent, spec: FaultSpec) -> str:
        assert spec.nic is not None
        self._nic(spec.nic).set_link(False)
        return f"link down {spec.nic}"

    def _link_up(self, _event: FaultEvent, spec: FaultSpec) -> str:
        assert spec.nic is not None
        self._nic(spec.nic).set_link(True)
        return f"link up {spec.nic}"

    def _partition_of(self, segment: str) -> _Partition:
        partition = self._partitions.get(segment)
        if partition is None:
            partition = _Partition(self.net.segments[segment])
            self._partitions[segment] = partition
        return partition

    def _segment_hosts(self, segment: str) -> dict[str, list[bytes]]:
        """Host name -> MACs of its NICs on ``segment``."""
        found: dict[str, list[bytes]] = {}
        seg = self.net.segments[segment]
        for host in self.hosts.values():
            for nic in host.nics.values():
                if nic.port is not None and nic.port.segment is seg:
                    found.setdefault(host.name, []).append(nic.mac)
        return found

    def _partition(self, _event: FaultEvent, spec: FaultSpec) -> str:
        assert spec.segment is not None
        partition = self._partition_of(spec.segment)
        seg = partition.segment
        ports: dict[str, list[SegmentPort]] = {}
        for host in self.hosts.values():
            for nic in host.nics.values():
                if nic.port is not None and nic.port.segment is seg:
                    ports.setdefault(host.name, []).append(nic.port)
        named = {host for group in spec.groups for host in group}
        rest = [h for h in ports if h not in named]
        port_groups = [[p for host in group for p in ports.get(host, [])]
                       for group in spec.groups]
        if rest:
            port_groups.append([p for host in rest for p in ports[host]])
        seg.partition(port_groups)
        groups = [sorted(g) for g in spec.groups] + ([sorted(rest)] if rest else [])
        return f"partition {spec.segment}: " + " | ".join(" ".join(g) for g in groups)

    def _heal(self, _event: FaultEvent, spec: FaultSpec) -> str:
        assert spec.segment is not None
        partition = self._partition_of(spec.segment)
        partition.segment.partition(None)
        return f"heal {spec.segment} ({partition.dropped} frames dropped so far)"

    def _ports(self, spec: FaultSpec) -> list[tuple[str, SegmentPort]]:
        if spec.nic is not None:
            nic = self._nic(spec.nic)
            return [(spec.nic, nic.port)] if nic.port is not None else []
        assert spec.segment is not None
        found = []
        seg = self.net.segments[spec.segment]
        for host in self.hosts.values():
            for ifname, nic in host.nics.items():
                if nic.port is not None and nic.port.segment is seg:
                    found.append((f"{host.name}/{ifname}", nic.port))
        return found

    def _impair(self, event: FaultEvent, spec: FaultSpec) -> str:
        saved: list[tuple[SegmentPort, str, Any]] = []
        for name, port in self._ports(spec):
            for direction, slot in (("tx", "ingress"), ("rx", "egress")):
                new = Impairment(loss=spec.loss or 0.0, delay_ns=spec.delay_ns or 0,
                                 jitter_ns=spec.jitter_ns or 0, rate_bps=spec.rate_bps,
                                 seed=_fault_seed(self.seed, event.index, name, direction))
                saved.append((port, slot, getattr(port, slot)))
                setattr(port, slot, new)
        self._saved[id(spec)] = saved
        target = spec.nic or f"segment {spec.segment}"
        parts = [f"loss {spec.loss:g}" if spec.loss is not None else "",
                 f"delay {(spec.delay_ns or 0) / 1e6:g} ms" if spec.delay_ns else "",
                 f"jitter {(spec.jitter_ns or 0) / 1e6:g} ms" if spec.jitter_ns else "",
                 f"rate {spec.rate_bps} bit/s" if spec.rate_bps else ""]
        return f"impair {target}: " + (", ".join(p for p in parts if p) or "none")

    def _restore(self, _event: FaultEvent, spec: FaultSpec) -> str:
        for port, slot, previous in self._saved.pop(id(spec), []):
            setattr(port, slot, previous)
        return f"impairment of {spec.nic or 'segment ' + str(spec.segment)} restored"

    def _kill(self, _event: FaultEvent, spec: FaultSpec) -> str:
        assert spec.guest is not None
        guest = self.guests[spec.guest]
        task = guest.task
        if task is None or task.done:
            return f"kill {spec.guest}: not running"
        task.killed = True
        if task.on_kill is not None:
            task.on_kill()
        self.killed[spec.guest] = self.net.scheduler.monotonic_ns()
        return f"kill {spec.guest}"

    def _restart(self, _event: FaultEvent, spec: FaultSpec) -> str:
        from vnet.guest.runtime import Guest

        assert spec.guest is not None
        old = self.guests[spec.guest]
        if old.task is not None and not old.task.done:
            return f"restart {spec.guest}: still running, left alone"
        guest = Guest(old.scheduler, old.config, old.module)
        self.guests[spec.guest] = guest
        self.killed.pop(spec.guest, None)
        guest.start()
        for callback in self.on_restart:
            callback(spec.guest, guest)
        return f"restart {spec.guest}"

    def _freeze(self, _event: FaultEvent, spec: FaultSpec) -> str:
        assert spec.host is not None
        if spec.host in self._frozen:
            return f"freeze {spec.host}: already frozen"
        host = self.hosts[spec.host]
        held = []
        for ifname, nic in host.nics.items():
            queue = _FrozenNic(f"{spec.host}/{ifname}", nic, self.rx_dropped_frozen)
            nic.on_receive = queue.hold
            held.append(queue)
        self._frozen[spec.host] = held
        self.net.scheduler.freeze(host)
        return f"freeze {spec.host}"

    def _thaw(self, _event: FaultEvent, spec: FaultSpec) -> str:
        assert spec.host is not None
        held = self._frozen.pop(spec.host, None)
        if held is None:
            return f"thaw {spec.host}: not frozen"
        delivered = dropped = 0
        for queue in held:  # the NICs' queues first, in arrival order, then the timers
            delivered += queue.queued
            dropped += queue.dropped
            queue.release()
        self.net.scheduler.thaw(self.hosts[spec.host])
        held_text = f"{delivered} frame{'' if delivered == 1 else 's'} held"
        return (f"thaw {spec.host} ({held_text}, {dropped} dropped: queue full)"
                if dropped else f"thaw {spec.host} ({held_text})")


class _FrozenNic:
    """A frozen host's NIC: receives into a bounded queue until the thaw (see ``freeze``)."""

    def __init__(self, name: str, nic: Nic, drops: dict[str, int]) -> None:
        self.name = name
        self.nic = nic
        self.on_receive = nic.on_receive
        self.frames: list[Any] = []
        self.queued = 0  # wire frames (a super-frame counts as the frames it stands for)
        self.dropped = 0
        self._drops = drops

    def hold(self, frame: Any) -> None:
        count = getattr(frame, "gso_segs", 1)
        if self.queued + count > FROZEN_RX_QUEUE_FRAMES:
            self.dropped += count
            self._drops[self.name] = self._drops.get(self.name, 0) + count
            return
        self.queued += count
        self.frames.append(frame)

    def release(self) -> None:
        """Give the NIC back its receive path and deliver what it held, in order."""
        if self.nic.on_receive == self.hold:
            self.nic.on_receive = self.on_receive
        frames, self.frames = self.frames, []
        for frame in frames:
            self.on_receive(frame)


def _fault_seed(seed: int, index: int, nic: str, direction: str) -> int:
    import zlib

    return zlib.crc32(f"{seed}:fault:{index}:{nic}:{direction}".encode())
