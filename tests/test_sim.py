"""`vnet sim` on the built-in demo topology: guests talk, and runs are reproducible."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from vnet.sim.runner import run
from vnet.sim.topology import load

DEMO = EXAMPLES / "demo.toml"
DEMO_MODULES = ["chat_server", "chat_client", "http_server", "http_get", "lobby"]


@pytest.fixture(scope="module")
def demo_topology(tmp_path_factory: pytest.TempPathFactory,
                  example_wasm: Callable[[str], Path]) -> Path:
    """The demo topology pointing at freshly built example guests."""
    directory = tmp_path_factory.mktemp("demo")
    (directory / "build").mkdir()
    for name in DEMO_MODULES:
        shutil.copyfile(example_wasm(name), directory / "build" / f"{name}.wasm")
    shutil.copyfile(EXAMPLES / "ticker.c", directory / "ticker.c")
    topology = directory / "demo.toml"
    topology.write_text(DEMO.read_text())
    return topology


def _run(topology: Path, pcaps: Path) -> tuple[str, object]:
    out = io.BytesIO()
    result = run(load(topology), pcap_dir=pcaps, out=out)
    return out.getvalue().decode(), result


def test_demo_guests_chat_lobby_and_fetch(demo_topology: Path, tmp_path: Path) -> None:
    text, result = _run(demo_topology, tmp_path / "pcaps")
    assert result.ok, text  # type: ignore[attr-defined]
    assert "lobby: alice heard 2 peer(s): bob carol" in text
    assert "lobby: carol heard 2 peer(s): alice bob" in text
    assert "bob/chat    | < alice: hello bob" in text
    assert "carol/chat  | < bob: hi carol" in text
    ticker_len = len((demo_topology.parent / "ticker.c").read_bytes())
    assert f"HTTP/1.1 200 OK, {ticker_len} body bytes" in text
    assert sorted(p.name for p in (tmp_path / "pcaps").iterdir()) == [
        "alice-eth0.pcapng", "bob-eth0.pcapng", "carol-eth0.pcapng", "server-eth0.pcapng",
        "web-eth0.pcapng"]


def test_same_seed_gives_byte_identical_pcaps(demo_topology: Path, tmp_path: Path) -> None:
    first_text, _ = _run(demo_topology, tmp_path / "a")
    second_text, _ = _run(demo_topology, tmp_path / "b")
    assert first_text == second_text
    for pcap in sorted((tmp_path / "a").iterdir()):
        assert pcap.read_bytes() == (tmp_path / "b" / pcap.name).read_bytes(), pcap.name
    assert len((tmp_path / "a" / "server-eth0.pcapng").read_bytes()) > 2000


def test_demo_pcaps_are_clean_in_tshark(demo_topology: Path, tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is missing: run scripts/install-test-tools (scripts/test does)"
    _run(demo_topology, tmp_path)
    for pcap in sorted(tmp_path.iterdir()):
        out = subprocess.run([tshark, "-r", str(pcap), "-o", "ip.check_checksum:TRUE",
                              "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                              "-Y", "_ws.malformed || _ws.expert.severity >= warning"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == "", (pcap.name, out.stdout)


def test_vnet_sim_cli_prints_the_summary(demo_topology: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(demo_topology),
                           "--pcap-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "vnet sim: clients exited" in proc.stdout
    assert "web/get      0 (client)" in proc.stdout
    assert f"pcaps: {tmp_path}/ (5 files)" in proc.stdout


def test_vnet_sim_cli_rejects_a_bad_topology(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[hosts.a]\nnics = [{ segment = \"nowhere\" }]\n")
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"vnet sim: {bad}:")
    assert "segment 'nowhere' is not defined" in proc.stderr


def test_the_demo_command_finds_its_topology() -> None:
    """`scripts/demo` runs `python -m vnet.sim.demo`, which reads examples/demo.toml."""
    from vnet.sim import demo

    assert demo.TOPOLOGY.is_file(), demo.TOPOLOGY
    assert demo.PCAPS.parent == demo.TOPOLOGY.parent / "build"
