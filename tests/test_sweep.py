"""`vnet sweep`: seeds run on a process pool or a Dask cluster give one table of failures.

The topology is a UDP echo client on a lossy LAN that gives up on an echo
after 1 s: it fails for some seeds and passes for others. The sweep must
find exactly the seeds whose own `vnet.sim.runner.run` fails, keep their
pcaps (and only theirs), print a replay command that reproduces a failure
byte-identically, and give the same table and byte-identical pcaps on a Dask
LocalCluster the test starts (Dask distributed is installed into the venv if
missing: the `cluster` extra). VNET_SWEEP=long sweeps 200 seeds on both:

    VNET_SWEEP=long .venv/bin/pytest tests/test_sweep.py -q
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

from vnet.sim.runner import run
from vnet.sim.sweep import SweepResult, parse_seeds, summarize, sweep
from vnet.sim.topology import load

SEEDS = range(1, 201) if os.environ.get("VNET_SWEEP") == "long" else range(1, 11)

LOSSY_ECHO = """
[sim]
virtual_time = true
duration = "30s"
clients = ["client/echo"]

[segments.lan]
latency = "1ms"
loss = 0.03

[hosts.server]
[[hosts.server.nics]]
segment = "lan"
addresses = ["10.0.0.1/24"]
[[hosts.server.guests]]
name = "echo"
module = "udp_echo.wasm"
args = ["server", "9000"]

[hosts.client]
[[hosts.client.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
[[hosts.client.guests]]
name = "echo"
module = "udp_echo.wasm"
args = ["client", "10.0.0.1", "9000", "ping", "3"]
start = "10ms"
"""


@pytest.fixture(scope="module")
def lossy_topology(tmp_path_factory: pytest.TempPathFactory,
                   example_wasm: Callable[[str], Path]) -> Path:
    directory = tmp_path_factory.mktemp("lossy")
    shutil.copyfile(example_wasm("udp_echo"), directory / "udp_echo.wasm")
    topology = directory / "lossy.toml"
    topology.write_text(LOSSY_ECHO)
    return topology


@pytest.fixture(scope="module")
def pool_sweep(lossy_topology: Path, tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    results = tmp_path_factory.mktemp("pool")
    return sweep(lossy_topology, SEEDS, results_dir=results, workers=2, keep=True)


def _pcaps(seed_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((seed_dir / "pcaps").iterdir())}


def test_seed_lists_parse() -> None:
    assert parse_seeds("1-3,7,2") == [1, 2, 3, 7]
    with pytest.raises(ValueError):
        parse_seeds("5-1")
    with pytest.raises(ValueError):
        parse_seeds("one")


def test_sweep_finds_exactly_the_seeds_whose_client_fails(lossy_topology: Path,
                                                          pool_sweep: SweepResult) -> None:
    verdicts = summarize(pool_sweep.outcomes)
    assert sorted(verdicts) == list(SEEDS)
    # each seed run alone, in this process, as `vnet sim --seed N --schedule explore` would
    # (a sweep explores schedules unless told otherwise)
    assert pool_sweep.schedule == "explore"
    for seed in list(SEEDS)[:10]:
        alone = run(load(lossy_topology), virtual_time=True, seed=seed, out=io.BytesIO(),
                    schedule="explore")
        assert verdicts[seed] == alone.ok, seed
    assert any(verdicts.values()) and not all(verdicts.values()), verdicts
    failing = [o.seed for o in pool_sweep.failed]
    assert [seed for seed, _, _ in pool_sweep.table()] == failing
    for outcome in pool_sweep.failed:
        assert outcome.reason == "exit client/echo=1"
        text = (pool_sweep.results_dir / f"seed-{outcome.seed}" / "output.txt").read_text()
        assert "client/echo | udp_echo: " in text and "of 3 echoed" in text


def test_replay_command_reproduces_a_failure_byte_identically(pool_sweep: SweepResult) -> None:
    seed, _, command = pool_sweep.table()[0]
    argv = shlex.split(command)
    assert argv[:2] == ["vnet", "sim"] and argv[argv.index("--seed") + 1] == str(seed)
    proc = subprocess.run([sys.executable, "-m", "vnet", *argv[1:]], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # the client failed again
    seed_dir = pool_sweep.results_dir / f"seed-{seed}"
    replayed = {p.name: p.read_bytes() for p in sorted((seed_dir / "replay").iterdir())}
    assert replayed == _pcaps(seed_dir)
    assert len(replayed) == 2 and all(len(data) > 500 for data in replayed.values())
    lines = [line for line in proc.stdout.splitlines() if " | " in line]
    assert "\n".join(lines) + "\n" == (seed_dir / "output.txt").read_text()


def test_cli_table_keeps_only_failing_pcaps_and_check_gets_the_results(
        lossy_topology: Path, pool_sweep: SweepResult, tmp_path: Path) -> None:
    seeds = list(SEEDS)[:6]
    expected_failing = [s for s in seeds if not summarize(pool_sweep.outcomes)[s]]
    results = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "vnet", "sweep", str(lossy_topology),
                           "--seeds", f"{seeds[0]}-{seeds[-1]}", "--workers", "2",
                           "--results", str(results)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == (1 if expected_failing else 0), proc.stderr
    table = [line.split() for line in proc.stdout.splitlines()
             if line.strip() and line.split()[0].isdigit()]
    assert [int(row[0]) for row in table] == expected_failing
    for row in table:
        assert " ".join(row[3:]) == shlex.join(
            ["vnet", "sim", str(lossy_topology), "--virtual-time", "--seed", row[0],
             "--schedule", "explore", "--pcap-dir", str(results / f"seed-{row[0]}" / "replay")])
    for seed in seeds:
        kept = (results / f"seed-{seed}" / "pcaps").exists()
        assert kept == (seed in expected_failing), seed
    # A check command sees the seed's directory and the clients' verdict: this one
    # inverts the verdict, so exactly the other seeds fail.
    check = ('test "$VNET_SWEEP_CLIENTS_OK" = 0 && test -s "$VNET_SWEEP_DIR/output.txt" '
             '&& test "$PWD" = "$VNET_SWEEP_DIR" && test -f "$VNET_SWEEP_TOPOLOGY"')
    inverted = sweep(lossy_topology, seeds, results_dir=tmp_path / "check", workers=2,
                     check=check)
    assert [o.seed for o in inverted.failed] == [s for s in seeds if s not in expected_failing]
    assert all(o.reason == "check exited 1 (check.txt)" for o in inverted.failed)


def _ensure_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                               "distributed>=2024.1"], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            pytest.skip(f"could not install Dask distributed (the cluster extra): {last}")


def test_dask_cluster_gives_the_same_table_and_byte_identical_pcaps(
        lossy_topology: Path, pool_sweep: SweepResult, tmp_path: Path) -> None:
    _ensure_distributed()
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        on_cluster = sweep(lossy_topology, SEEDS, results_dir=tmp_path / "cluster",
                           cluster=cluster.scheduler_address, keep=True)
    assert on_cluster.engine.startswith("dask cluster tcp://")
    assert summarize(on_cluster.outcomes) == summarize(pool_sweep.outcomes)
    assert on_cluster.table() != [] and [row[:2] for row in on_cluster.table()] == [
        row[:2] for row in pool_sweep.table()]
    for seed in SEEDS:
        here = on_cluster.results_dir / f"seed-{seed}"
        there = pool_sweep.results_dir / f"seed-{seed}"
        assert _pcaps(here) == _pcaps(there), seed
        assert (here / "output.txt").read_bytes() == (there / "output.txt").read_bytes()


def test_a_seed_whose_run_breaks_fails_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "udp_echo.wasm").write_bytes(b"not wasm at all")
    topology = tmp_path / "broken.toml"
    topology.write_text(LOSSY_ECHO)
    result = sweep(topology, [4, 5], results_dir=tmp_path / "results", workers=1)
    assert [o.seed for o in result.failed] == [4, 5]
    for outcome in result.failed:
        assert outcome.reason.startswith("error: GuestLoadError: ")
        assert "not a WebAssembly module" in outcome.reason
        assert (tmp_path / "results" / f"seed-{outcome.seed}" / "result.json").is_file()


CHECK_TEST = '''
import os
from pathlib import Path

from vnet.testing.pcap import read_pcapng

RESULTS = Path(os.environ["VNET_SWEEP_DIR"])


def test_every_echo_came_back():
    assert "udp_echo: 3 of 3 echoed" in (RESULTS / "output.txt").read_text()


def test_the_client_sent_its_probes():
    probes = [p for p in read_pcapng(RESULTS / "pcaps" / "client-eth0.pcapng")
              if p.direction == 2 and b"ping " in p.data]
    assert len(probes) >= 3
'''


def test_a_pytest_file_as_the_check(lossy_topology: Path, pool_sweep: SweepResult,
                                    tmp_path: Path) -> None:
    verdicts = summarize(pool_sweep.outcomes)
    seeds = [next(s for s in SEEDS if verdicts[s]), next(s for s in SEEDS if not verdicts[s])]
    check_file = tmp_path / "test_run.py"
    check_file.write_text(CHECK_TEST)
    check = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider {check_file}"
    result = sweep(lossy_topology, seeds, results_dir=tmp_path / "results", workers=1,
                   check=check)
    assert summarize(result.outcomes) == {seed: verdicts[seed] for seed in seeds}
    passed, failed = (tmp_path / "results" / f"seed-{seed}" / "check.txt" for seed in seeds)
    assert "2 passed" in passed.read_text()
    assert "1 failed, 1 passed" in failed.read_text()
    assert result.failed[0].reason == "check exited 1 (check.txt)"
