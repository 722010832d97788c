"""A small lab for the scheduling attacks: wasm guests on virtual hosts of one LAN.

`GuestLab` builds a `vnet.network.Network` (virtual or real time) with hosts
on one switched segment, starts guests compiled from C on them, and runs the
network until chosen guests exit, recording when each one did (scheduler
nanoseconds: virtual or real). `build_hostile_guest("busywait")` compiles
tests/hostile/c/busywait.c. Used by test_spinning.py and
test_flood_fairness.py; touches only the network it builds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vnet.guest.runtime import Guest, GuestConfig, load_module
from vnet.network import Host, Network

HOSTILE_C = Path(__file__).parent / "c"


class LabGuest:
    """One guest in the lab: its output and, once it exited, when."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.output = bytearray()
        self.started_ns: int | None = None
        self.exited_ns: int | None = None

    def start(self) -> None:
        self.started_ns = self.guest.scheduler.monotonic_ns()
        self.guest.start()

    @property
    def took_ns(self) -> int:
        """Scheduler time from the guest's start to its exit (it must have exited)."""
        assert self.started_ns is not None and self.exited_ns is not None
        return self.exited_ns - self.started_ns

    @property
    def done(self) -> bool:
        return self.guest.done

    @property
    def exit_code(self) -> int | None:
        return self.guest.exit_code

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


class GuestLab:
    """Hosts h1..hN at 10.0.0.1..N on one segment, and the guests started on them."""

    def __init__(self, virtual: bool, hosts: int, seed: int = 1,
                 latency_ns: int = 200_000) -> None:
        self.net = Network(virtual_time=virtual, seed=seed)
        self.sched = self.net.scheduler
        lan = self.net.segment("lan", latency_ns=latency_ns)
        self.hosts: dict[str, Host] = {}
        for n in range(1, hosts + 1):
            host = self.net.host(f"h{n}")
            host.connect(lan, f"10.0.0.{n}/24")
            self.hosts[f"h{n}"] = host
        self.guests: dict[str, LabGuest] = {}

    def start(self, name: str, host: str, wasm: Path, *args: str,
              at_ns: int = 0) -> LabGuest:
        """Start `wasm` with argv [name, *args] on `host` now (or at scheduler time at_ns)."""
        lab_guest: LabGuest
        config = GuestConfig(module=str(wasm), args=[name, *args], name=name,
                             host=self.hosts[host],
                             stdout=lambda data: lab_guest.output.extend(data),
                             stderr=lambda data: lab_guest.output.extend(data))
        lab_guest = LabGuest(Guest(self.sched, config, load_module(wasm)))
        self.guests[name] = lab_guest
        if at_ns:
            self.sched.call_at(at_ns, lab_guest.start)
        else:
            lab_guest.start()
        return lab_guest

    def run_until_output(self, name: str, text: str, timeout_s: float = 60) -> None:
        """Run until guest `name` has printed `text` (a server listening, say)."""
        guest = self.guests[name]
        self.sched.run(until=lambda: text in guest.text or guest.done, timeout_s=timeout_s)
        assert text in guest.text, guest.text

    def run_until_exited(self, names: list[str], timeout_s: float = 120,
                         limit_ns: int | None = None) -> bool:
        """Run until every named guest exited (True), or the time limit/timeout (False)."""
        sched = self.sched
        watched = [self.guests[n] for n in names]

        def all_exited() -> bool:
            now = sched.monotonic_ns()
            for g in watched:
                if g.exited_ns is None and g.done:
                    g.exited_ns = now
            return all(g.exited_ns is not None for g in watched) or (
                limit_ns is not None and now >= limit_ns)

        if sched.virtual and limit_ns is not None:
            sched.call_at(limit_ns, lambda: None)
        sched.run(until=all_exited, timeout_s=None if sched.virtual else timeout_s)
        return all(g.exited_ns is not None for g in watched)

    def close(self) -> None:
        self.net.close()


def hostile_source(name: str) -> Path:
    return HOSTILE_C / f"{name}.c"


GuestBuilder = Callable[..., Path]
