"""Guests from Python: ``host.run(...)`` and its ``GuestProcess``; ``Network.from_topology``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP

from vnet.network import Network
from vnet.sim.topology import TopologyError
from vnet.testing import Capture

ROOT = Path(__file__).resolve().parents[2]


def test_run_gives_args_env_and_directories(vnet_network: Network, vnet_build: Any,
                                            tmp_path: Path) -> None:
    host = vnet_network.host("h")
    tour = host.run(vnet_build("examples/fs_tour.c"), "/data", "hello", "world",
                    env={"GREETING": "hi"}, dirs={"/data": tmp_path})
    assert tour.exit_code is None and not tour.done  # nothing runs until the network does
    assert tour.wait(timeout=5) == 0
    assert tour.stdout_lines[:2] == ["3 argument(s) after the program name", "GREETING is hi"]
    assert "tour.txt holds 12 bytes: hello world" in tour.stdout_lines
    assert (tmp_path / "tour.txt").read_text() == "hello world\n"
    assert tour.stderr_lines == [] and tour.trap is None
    assert vnet_network.processes == [tour] and tour.name == "h/fs_tour"


def test_wait_times_out_in_virtual_time_and_kill_stops_the_guest(vnet_network: Network,
                                                                 vnet_build: Any) -> None:
    lan = vnet_network.segment("lan")
    host = vnet_network.host("server")
    host.connect(lan, "10.0.0.1/24")
    server = host.run(vnet_build("examples/tcp_echo_server.c"), "7000")
    server.wait_for("listening on port 7000", timeout=1)
    with pytest.raises(TimeoutError) as failure:
        server.wait(timeout=2)
    assert "guest server/tcp_echo_server did not exit within 2 s" in str(failure.value)
    assert "tcp_echo_server: listening on port 7000" in str(failure.value)  # its output so far
    assert vnet_network.scheduler.monotonic_ns() >= 2_000_000_000  # two virtual seconds passed
    assert server.exit_code is None
    assert server.kill() == 137  # as SIGKILL
    assert server.done and server.exit_code == 137 and server.trap == "guest killed"
    with pytest.raises(TimeoutError, match="never printed 'anything'"):
        server.wait_for("anything", timeout=1)


def test_a_guest_that_can_never_exit_is_reported_at_once(vnet_network: Network,
                                                         vnet_build: Any) -> None:
    host = vnet_network.host("lonely")
    lan = vnet_network.segment("lan")
    host.connect(lan, "10.0.0.1/24")
    server = host.run(vnet_build("examples/tcp_echo_server.c"), "7000")
    with pytest.raises(TimeoutError, match="cannot exit: every guest is blocked"):
        server.wait()  # no timeout: blocked in accept() with nothing left to happen
    server.kill()


def test_a_delayed_guest_starts_late_or_never(vnet_network: Network, vnet_build: Any,
                                              tmp_path: Path) -> None:
    host = vnet_network.host("h")
    tour = vnet_build("examples/fs_tour.c")
    late = host.run(tour, "/d", env={"GREETING": "late"}, dirs=[f"{tmp_path}::/d"], delay=0.5)
    never = host.run(tour, "/d", env={"GREETING": "never"}, dirs=[f"{tmp_path}::/d"], delay=1)
    vnet_network.run_for(0.4)
    assert late.stdout == "" and not late.done
    assert never.kill() == 137 and never.done
    assert late.wait(timeout=1) == 0 and "GREETING is late" in late.stdout_lines
    vnet_network.run_for(1)
    assert never.stdout == ""  # killed before its start: it never ran


def test_from_topology_builds_the_demo_into_python_objects(tmp_path: Path) -> None:
    net = Network.from_topology(ROOT / "examples" / "demo.toml", pcap_dir=tmp_path)
    try:
        assert net.virtual and net.seed == 42 and net.topology is not None
        assert sorted(net.hosts) == ["alice", "bob", "carol", "server", "web"]
        assert list(net.segments) == ["lan"]
        assert net.topology.clients[0] == "alice/chat"
        assert net.pcaps == [tmp_path / f"{h}-eth0.pcapng"
                             for h in ("server", "alice", "bob", "carol", "web")]
        # poke at it: the hosts and their addresses are live
        assert net.hosts["alice"].ping("10.0.0.1", count=2, timeout=1)[1] == pytest.approx(0.002)
    finally:
        net.close()
    at_server = Capture.load(tmp_path / "server-eth0.pcapng")
    at_server.expect(IP(src="10.0.0.11", dst="10.0.0.1") / ICMP(type=8))
    assert Network.from_topology(ROOT / "examples" / "demo.toml", seed=5).seed == 5


def test_from_topology_reports_a_bad_file(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "demo.toml", tmp_path / "demo.toml")
    with pytest.raises(TopologyError, match=r"demo\.toml:\d+: guest module build/"):
        Network.from_topology(tmp_path / "demo.toml")  # its modules are not next to the copy
