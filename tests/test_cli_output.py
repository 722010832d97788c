"""Output for people and scripts: `--json`, `-v`/`-q`, and drop counters explained.

`vnet sim --json` and `vnet run --json` write the run's summary as JSON (stdout
with `-`, guest output then on stderr); `-q` leaves guest output and errors
only; `-v` says the mode and seed at the start and summarises at the end; the
summary says for every drop counter whether it is normal, a limit, a
configuration matter or bad input — and a test keeps that table complete.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from vnet.sim.drop_reasons import MALFORMED, NORMAL, OTHER, explain

VNET = [sys.executable, "-m", "vnet"]
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.toml"


def vnet(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VNET, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=ROOT)


def test_sim_json_on_stdout_and_quiet_summary() -> None:
    done = vnet("sim", str(DEMO), "--virtual-time", "--seed", "3", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # nothing but the JSON on stdout
    assert summary["format"] == "vnet-summary/1" and summary["command"] == "sim"
    assert summary["ok"] is True and summary["ended"] == "clients exited"
    assert summary["virtual_time"] is True and summary["seed"] == 3
    assert summary["schedule"] == "explore"  # the default in virtual time
    by_name = {g["name"]: g for g in summary["guests"]}
    assert by_name["alice/chat"] == {"name": "alice/chat", "exit_code": 0, "trap": None,
                                     "client": True}
    assert by_name["server/chat"]["client"] is False
    assert summary["nics"]["server/eth0"]["rx_frames"] > 0
    for drop in summary["drops"]:
        assert drop["count"] > 0 and drop["kind"] and drop["meaning"]
    # guest output went to stderr, prefixed; -q printed no summary there
    assert "alice/chat" in done.stderr and "| " in done.stderr
    assert "vnet sim: clients exited" not in done.stderr and "nic " not in done.stderr


def test_sim_summary_explains_drops_and_verbose_names_seed(tmp_path: Path) -> None:
    report = tmp_path / "summary.json"
    done = vnet("sim", str(DEMO), "--virtual-time", "--seed", "3", "-v",
                "--json", str(report))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == (f"vnet sim: {DEMO}: virtual time, seed 3, "
                                           "schedule explore")
    summary = json.loads(report.read_text())
    assert "vnet sim: clients exited after" in done.stdout
    assert "drops (what each means" in done.stdout
    for drop in summary["drops"]:  # each JSON drop has its explained line in the summary
        line = re.search(rf"^  {re.escape(drop['where'])}\s+{re.escape(drop['counter'])}\s+"
                         rf"{drop['count']}  (.*)$", done.stdout, re.M)
        assert line, (drop, done.stdout)
        assert line.group(1) == f"{drop['kind']}: {drop['meaning']}"


def test_run_json_and_verbose_for_a_trap(tmp_path: Path,
                                         build_guest: Callable[..., Path]) -> None:
    source = tmp_path / "trapper.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("hi"); fflush(stdout);\n'
                      "  return *(volatile int *)0x7ffffff0; }\n")
    wasm = str(build_guest(source))
    report = tmp_path / "run.json"
    done = vnet("run", "-v", "--json", str(report), "--virtual-time", "--seed", "9", wasm)
    assert done.returncode == 134 and done.stdout == "hi\n"
    err = done.stderr.splitlines()
    assert err[0].startswith(f"vnet run: {wasm} on host ")
    assert err[0].endswith("virtual time, seed 9, schedule explore")
    assert "vnet run: guest trapped after" in done.stderr
    assert re.search(r"vnet run: \S+/eth0: \d+ frames", done.stderr)
    summary = json.loads(report.read_text())
    assert summary["command"] == "run" and summary["ok"] is False
    assert summary["exit_status"] == 134 and summary["ended"] == "guest trapped"
    assert summary["guest"]["trap"].startswith("wasm trap: out of bounds memory access")
    assert any("main" in frame for frame in summary["guest"]["backtrace"])
    assert summary["seed"] == 9 and summary["virtual_time"] is True
    assert summary["schedule"] == "explore"


def test_run_json_stdout_quiet_and_conflicts(build_guest: Callable[..., Path]) -> None:
    wasm = str(build_guest("basics"))
    done = vnet("run", "--json", "-", "-q", "-S", "inherit-network", wasm, "exit7")
    assert done.returncode == 7
    summary = json.loads(done.stdout)
    assert summary["exit_status"] == 7 and summary["guest"]["exit_code"] == 7
    assert "argv[1]=exit7" in done.stderr  # guest output moved to stderr
    assert "granted as" not in done.stderr  # -q: no notes
    both = vnet("run", "--json", "-", "--pcap", "-", wasm)
    assert both.returncode == 2 and "both want stdout" in both.stderr
    assert both.stderr.count("\n") == 1
    nowhere = vnet("run", "--json", "/nonexistent/dir/x.json", wasm)
    assert nowhere.returncode == 2 and "no such directory" in nowhere.stderr
    loud_and_quiet = vnet("run", "-q", "-v", wasm)
    assert loud_and_quiet.returncode == 2 and "not allowed with" in loud_and_quiet.stderr


DROP_CALL = re.compile(r"counters\.drop\(\s*\"([a-z0-9]+)\",\s*\"([a-z0-9_]+)\"")


def test_every_drop_reason_the_stack_counts_is_explained() -> None:
    """A new `counters.drop("proto", "reason")` in the stack needs its line in
    vnet/sim/drop_reasons.py, or the summary could only repeat its name."""
    found = set()
    for package in ("stack", "firewall", "vnet"):
        for source in (ROOT / package).rglob("*.py"):
            found.update(DROP_CALL.findall(source.read_text()))
    assert len(found) > 40
    unexplained = sorted(f"{p}.drop.{r}" for p, r in found
                         if explain(f"{p}.drop.{r}").kind == OTHER)
    assert not unexplained, unexplained
    assert explain("ipv6.drop.not_member").kind == NORMAL
    assert explain("udp.drop.bad_checksum").kind == MALFORMED  # a parser's reason
    assert explain("tcp.drop.truncated").text.startswith("malformed tcp")
    assert explain("something.drop.new_reason").kind == OTHER


def test_sim_progress_heartbeat(tmp_path: Path) -> None:
    """`--progress S`: a line on stderr every S wall seconds (real time here, so the run
    lasts long enough on any machine), the guests' output unchanged."""
    topology = tmp_path / "ticking.toml"
    topology.write_text(
        '[sim]\nvirtual_time = false\nclients = ["h/tick"]\n[segments.lan]\n'
        '[hosts.h]\n[[hosts.h.nics]]\nsegment = "lan"\naddresses = ["10.0.0.1/24"]\n'
        f'[[hosts.h.guests]]\nname = "tick"\nmodule = "{ROOT / "examples/build/ticker.wasm"}"\n'
        'args = ["t", "40"]\n')  # 40 sleeps of 1-100 ms: about 2 s of wall time
    done = vnet("sim", str(topology), "--progress", "0.3")
    assert done.returncode == 0, done.stderr
    beats = re.findall(r"^vnet sim: (\d+\.\d{3}) s simulated in (\d+\.\d) s \((\d+\.\d)x\), "
                       r"(\d+)/1 guests running, (\d+) frames$", done.stderr, re.M)
    assert len(beats) >= 2, done.stderr
    simulated = [float(b[0]) for b in beats]
    assert simulated == sorted(simulated) and simulated[-1] > simulated[0]
    assert all(b[3] in ("0", "1") for b in beats)
    assert done.stdout.count("h/tick") >= 40  # every tick line is still there
    bad = vnet("sim", str(topology), "--progress", "0")
    assert bad.returncode == 2 and "--progress SECONDS must be > 0" in bad.stderr
