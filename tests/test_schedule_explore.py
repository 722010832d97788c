"""Seeds that explore: in virtual time the seed also orders guests runnable at one instant.

examples/race.toml runs examples/registration.c: two clients start at the same
virtual instant and register with a server that takes the first connection
to be client A. Under `--schedule fifo` client A always runs first, so every
seed passes; `vnet sweep` explores (the seed picks who runs first), so some
seeds fail, the table lists them with a replay command, and the replay is
byte-identical (pcaps and guest output). The default suite sweeps 20 seeds;
VNET_SLOW=1 sweeps 200:

    VNET_SLOW=1 .venv/bin/pytest tests/test_schedule_explore.py -q
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from vnet.scheduler import GuestTask, Scheduler
from vnet.sim.runner import run
from vnet.sim.sweep import SweepResult, summarize, sweep
from vnet.sim.topology import load
from vnet.testing.pcap import read_pcapng

SEEDS = range(1, 201) if os.environ.get("VNET_SLOW") == "1" else range(1, 21)


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory,
         example_wasm: Callable[[str], Path]) -> Path:
    """examples/race.toml beside a freshly built examples/registration.c."""
    directory = tmp_path_factory.mktemp("race")
    (directory / "build").mkdir()
    shutil.copyfile(example_wasm("registration"), directory / "build" / "registration.wasm")
    shutil.copyfile(EXAMPLES / "race.toml", directory / "race.toml")
    return directory / "race.toml"


@pytest.fixture(scope="module")
def explored(race: Path, tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    return sweep(race, SEEDS, results_dir=tmp_path_factory.mktemp("explore"), workers=1)


def test_the_race_passes_for_every_seed_under_fifo(race: Path, tmp_path: Path) -> None:
    fifo = sweep(race, SEEDS, results_dir=tmp_path, workers=1, schedule="fifo")
    assert fifo.schedule == "fifo" and fifo.failed == []
    for outcome in fifo.outcomes:
        text = (tmp_path / f"seed-{outcome.seed}" / "output.txt").read_text()
        assert 'registration: A was given "role A"' in text, outcome.seed


def test_exploration_finds_seeds_that_lose_the_race_and_lists_them(
        explored: SweepResult) -> None:
    verdicts = summarize(explored.outcomes)
    assert explored.schedule == "explore"
    assert any(verdicts.values()) and not all(verdicts.values()), verdicts
    table = explored.table()
    assert [seed for seed, _, _ in table] == sorted(s for s, ok in verdicts.items() if not ok)
    for seed, reason, command in table:
        assert reason == "exit a/register=1 b/register=1"
        assert shlex.split(command) == [
            "vnet", "sim", str(explored.topology), "--virtual-time", "--seed", str(seed),
            "--schedule", "explore", "--pcap-dir",
            str(explored.results_dir / f"seed-{seed}" / "replay")]
        text = (explored.results_dir / f"seed-{seed}" / "output.txt").read_text()
        assert 'registration: B was given "role A": the server mixed the clients up' in text
        assert 'connection 1 said "register B": role A' in text
    for outcome in explored.outcomes:
        if outcome.passed:
            text = (explored.results_dir / f"seed-{outcome.seed}" / "output.txt").read_text()
            assert 'connection 1 said "register A": role A' in text


def test_a_failing_seed_replays_byte_identically(explored: SweepResult) -> None:
    seed, _, command = explored.table()[0]
    argv = shlex.split(command)
    proc = subprocess.run([sys.executable, "-m", "vnet", *argv[1:]], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert f"(virtual time, seed {seed}, schedule explore)" in proc.stdout
    seed_dir = explored.results_dir / f"seed-{seed}"
    replayed = {p.name: p.read_bytes() for p in sorted((seed_dir / "replay").iterdir())}
    kept = {p.name: p.read_bytes() for p in sorted((seed_dir / "pcaps").iterdir())}
    assert replayed == kept and len(kept) == 3
    lines = [line for line in proc.stdout.splitlines() if " | " in line]
    assert "\n".join(lines) + "\n" == (seed_dir / "output.txt").read_text()
    # and under fifo the same seed passes: only the order of the two clients changed
    fifo = subprocess.run([sys.executable, "-m", "vnet", *argv[1:argv.index("--schedule")],
                           "--schedule", "fifo"], capture_output=True, text=True, timeout=120)
    assert fifo.returncode == 0, fifo.stdout + fifo.stderr


def test_vnet_sweep_prints_the_failing_seeds_with_their_replay_commands(
        race: Path, explored: SweepResult, tmp_path: Path) -> None:
    seeds = list(SEEDS)[:8]
    failing = [s for s in seeds if not summarize(explored.outcomes)[s]]
    assert failing, "seeds 1-8 include a lost race (see the sweep above)"
    proc = subprocess.run([sys.executable, "-m", "vnet", "sweep", str(race), "--seeds",
                           f"{seeds[0]}-{seeds[-1]}", "--workers", "1", "--results",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"vnet sweep: {len(seeds)} seeds, "
                                  f"{len(seeds) - len(failing)} passed, {len(failing)} failed "
                                  "(schedule explore, process pool (1 worker), ")
    rows = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] and
            line.split()[0].isdigit()]
    assert [int(row[0]) for row in rows] == failing
    for row in rows:  # seed, why ("exit a/register=1 b/register=1"), replay command
        assert row[1:4] == ["exit", "a/register=1", "b/register=1"]
        assert " ".join(row[4:]) == shlex.join([
            "vnet", "sim", str(race), "--virtual-time", "--seed", row[0], "--schedule",
            "explore", "--pcap-dir", str(tmp_path / f"seed-{row[0]}" / "replay")])


def _syns(pcap: Path) -> list[tuple[int, int]]:
    """(source port, sequence number) of each TCP SYN (no ACK) a NIC sent, IPv4."""
    found = []
    for packet in read_pcapng(pcap):
        data = packet.data
        if packet.direction == 2 and data[12:14] == b"\x08\x00" and data[23] == 6:
            tcp = data[14 + (data[14] & 0x0F) * 4:]
            if tcp[13] & 0x12 == 0x02:
                found.append((int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[4:8], "big")))
    return found


def test_exploring_does_not_shift_the_seeds_other_draws(race: Path, tmp_path: Path) -> None:
    """The schedule has its own random stream: ports and ISNs are fifo's, whoever ran first."""
    orders = set()
    for seed in (3, 4, 6):
        for schedule in ("fifo", "explore"):
            run(load(race), seed=seed, schedule=schedule, pcap_dir=tmp_path / f"{schedule}{seed}",
                out=io.BytesIO())
        for client in ("a", "b"):
            fifo = _syns(tmp_path / f"fifo{seed}" / f"{client}-eth0.pcapng")
            explore = _syns(tmp_path / f"explore{seed}" / f"{client}-eth0.pcapng")
            assert fifo == explore and len(fifo) == 1, (seed, client)
        server = read_pcapng(tmp_path / f"explore{seed}" / "server-eth0.pcapng")
        first_syn = next(p for p in server if p.direction == 1 and p.data[12:14] == b"\x08\x00"
                         and p.data[23] == 6)
        orders.add(first_syn.data[26:30])  # which client's SYN reached the server first
    assert len(orders) == 2  # seeds 3, 4, 6 cover both orders (see the sweep above)


def _first_runs(schedule: str, seed: int, tasks: int = 6) -> list[str]:
    """Which of `tasks` guests runnable at instant 0 ran in what order (three turns each)."""
    sched = Scheduler(virtual=True, seed=seed, schedule=schedule)
    order: list[str] = []

    def body(name: str) -> Callable[[GuestTask], None]:
        def go(task: GuestTask) -> None:
            for _ in range(3):
                order.append(name)
                sched.yield_task(task)
        return go

    for i in range(tasks):
        sched.spawn(f"g{i}", body(f"g{i}"))
    assert sched.run()
    return order


def test_explore_orders_simultaneous_guests_by_seed_and_fifo_does_not() -> None:
    fifo = _first_runs("fifo", 1)
    assert fifo == [f"g{i}" for i in range(6)] * 3
    assert _first_runs("fifo", 2) == fifo
    explored = {seed: _first_runs("explore", seed) for seed in range(1, 6)}
    for seed, order in explored.items():
        assert sorted(order) == sorted(fifo)  # every guest ran all its turns
        assert _first_runs("explore", seed) == order  # the same seed, the same order
    assert len({tuple(order) for order in explored.values()}) == 5


def test_an_unknown_schedule_is_refused(race: Path) -> None:
    with pytest.raises(ValueError, match="schedule 'random': one of fifo, explore"):
        Scheduler(virtual=True, schedule="random")
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(race), "--schedule",
                           "random"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'random'" in proc.stderr
    bad = race.parent / "bad.toml"
    bad.write_text(race.read_text().replace("virtual_time = true",
                                            "virtual_time = true\nschedule = \"lifo\""))
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    line = bad.read_text().splitlines().index('schedule = "lifo"') + 1
    assert proc.stderr.strip() == f"vnet sim: {bad}:{line}: schedule 'lifo': one of fifo, explore"


def test_a_topology_can_ask_for_exploration(race: Path, explored: SweepResult) -> None:
    """``[sim] schedule = "explore"``: plain `vnet sim --seed N` then explores too."""
    failing = explored.table()[0][0]
    path = race.parent / "explore.toml"
    path.write_text(race.read_text().replace("virtual_time = true",
                                             "virtual_time = true\nschedule = \"explore\""))
    assert load(path).schedule == "explore"
    result = run(load(path), seed=failing, out=io.BytesIO())
    assert result.schedule == "explore" and not result.ok


def _hand_over(seed: int, items: int) -> tuple[list[list[int]], list[str], int]:
    """A sender hands `items` over one host call each to a blocked receiver while two
    bystanders yield in a loop: what the receiver took each time, the bystanders' turns,
    and the decisions the seed took."""
    sched = Scheduler(virtual=True, seed=seed, schedule="explore")
    queue: list[int] = []
    taken: list[list[int]] = []
    bystanders: list[str] = []

    def receiver(task: GuestTask) -> None:
        got = 0
        while got < items:
            with sched.host_call_lock, sched.atomic():
                sched.block(task, lambda: bool(queue), None)
                batch = list(queue)
                queue.clear()
            taken.append(batch)
            got += len(batch)

    def sender(task: GuestTask) -> None:
        for i in range(items):
            with sched.host_call_lock, sched.atomic():
                queue.append(i)
                sched.wake()
            sched.charge_host_call(task, 0, 0)

    def bystander(name: str) -> Callable[[GuestTask], None]:
        def go(task: GuestTask) -> None:
            for _ in range(20):
                bystanders.append(name)
                sched.yield_task(task)
        return go

    recv_task = sched.spawn("receiver", receiver)
    assert sched.run(until=lambda: recv_task.state.value == "blocked")
    sched.spawn("sender", sender)
    for name in ("x", "y"):
        sched.spawn(name, bystander(name))
    assert sched.run()
    return taken, bystanders, sched.schedule_choices


def test_explore_still_runs_a_woken_guest_before_its_waker_goes_on() -> None:
    """Under every explored seed the receiver takes each item before the sender's next
    call, as under fifo (no woken receiver starved behind a sender's burst), while the
    seed still orders the other guests runnable with them."""
    items = 200
    orders = set()
    for seed in range(1, 6):
        taken, bystanders, choices = _hand_over(seed, items)
        assert [i for batch in taken for i in batch] == list(range(items))
        assert all(len(batch) == 1 for batch in taken), seed
        assert sorted(bystanders) == ["x"] * 20 + ["y"] * 20
        assert choices > 20
        orders.add(tuple(bystanders))
    assert len(orders) > 1
