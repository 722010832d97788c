"""Threads for guests built with -pthread (vnet/guest/threads.py, vnet/sdk/pthread/).

The thread-per-connection echo server and the multi-threaded client
(examples/threaded_echo_server.c, examples/threaded_client.c) run natively
(gcc -pthread, in the examples' two network namespaces, tests/examples/harness.py)
and under vnet in real time and in virtual time, with the same output (sorted:
native threads interleave as they like). In virtual time a rerun gives
byte-identical captures and output. A thread blocked in recv() lets the other
threads of its guest run; the pthread calls (mutexes incl. trylock and
recursive, condition variables incl. timedwait, once, keys, exit, detach)
and setjmp/longjmp (which -pthread gives through the same Asyncify
transform) print the same as natively; two threads move 1 MiB through a
pipe (the writer's loop gets short counts rather than waiting with its
sibling shut out); and single-threaded code behaves the same built
with -pthread or without. About 30 s of CPU (the first run also installs
Binaryen from npm and builds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.examples.harness import HOSTS, Lab, NativeLab, NativeNet, VnetLab
from vnet.guest.runtime import Guest, GuestConfig, load_module
from vnet.guest.threads import GuestThreads
from vnet.link.nic import Nic
from vnet.network import Host, Network

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GUEST_C = ROOT / "tests" / "guest" / "c"
THREADS, MESSAGES = 4, 5


class ThreadLab(VnetLab):
    """The examples' two-host lab on vnet, in real or in virtual time."""

    def __init__(self, wasm: Callable[[str], Path], virtual_time: bool, seed: int = 1,
                 pcap: Path | None = None) -> None:
        self.wasm = wasm
        self.net = Network(virtual_time=virtual_time, seed=seed)
        if pcap is not None:
            self.net.capture(pcap)
        self.lan = self.net.segment("lan")
        self.hosts: dict[str, Host] = {}
        self.nics: dict[str, Nic] = {}
        for spec in HOSTS:
            host = self.net.host(spec.name)
            self.nics[spec.name] = host.connect(self.lan, spec.ipv4, spec.ipv6)
            self.hosts[spec.name] = host
        self.programs = []


@pytest.fixture(scope="module")
def threaded_wasm(build_guest: Callable[..., Path]) -> Callable[[str], Path]:
    def get(name: str) -> Path:
        return build_guest(EXAMPLES / f"{name}.c", "-pthread")
    return get


@pytest.fixture(scope="module")
def native_threaded(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    out_dir = tmp_path_factory.mktemp("native-threads")

    def get(path: str) -> Path:
        source = Path(path) if "/" in path else EXAMPLES / f"{path}.c"
        out = out_dir / source.stem
        if not out.exists():
            proc = subprocess.run(["gcc", "-O2", "-Wall", "-pthread", str(source), "-o", str(out)],
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
        return out
    return get


@pytest.fixture(scope="module")
def native_net() -> Iterator[NativeNet]:
    net = NativeNet()
    try:
        net.create()
        yield net
    finally:
        net.delete()


def _echo_pair(lab: Lab) -> tuple[list[str], list[str]]:
    """Server on alpha, client on bravo: both programs' stdout lines, sorted."""
    server = lab.start("alpha", "threaded_echo_server", "7000", str(THREADS))
    server.wait_for("listening on port 7000")
    client = lab.start("bravo", "threaded_client", "10.0.0.1", "7000", str(THREADS),
                       str(MESSAGES))
    assert client.wait() == 0, client.describe()
    assert server.wait() == 0, server.describe()
    return sorted(server.lines()), sorted(client.lines())


def test_threaded_examples_same_output_natively_and_under_vnet(
        native_net: NativeNet, native_threaded: Callable[[str], Path],
        threaded_wasm: Callable[[str], Path]) -> None:
    native = NativeLab(native_net, native_threaded)
    try:
        expected = _echo_pair(native)
    finally:
        native.close()
    line = "threaded_client: thread 0: 5 of 5 echoes matched"
    assert line in expected[1]
    assert f"threaded_echo_server: served {THREADS} clients, 380 bytes, up to {THREADS} at once" \
        in expected[0]
    for virtual_time in (False, True):
        lab = ThreadLab(threaded_wasm, virtual_time)
        try:
            assert _echo_pair(lab) == expected, f"virtual_time={virtual_time}"
        finally:
            lab.close()


def test_virtual_time_rerun_gives_identical_captures(threaded_wasm: Callable[[str], Path],
                                                     tmp_path: Path) -> None:
    results = []
    for run in range(2):
        pcap = tmp_path / f"run{run}.pcapng"
        lab = ThreadLab(threaded_wasm, True, seed=7, pcap=pcap)
        try:
            server = lab.start("alpha", "threaded_echo_server", "7000", "8")
            server.wait_for("listening on port 7000")  # the seed may run the client first
            client = lab.start("bravo", "threaded_client", "10.0.0.1", "7000", "8", "20")
            assert client.wait() == 0 and server.wait() == 0, client.describe()
            outputs = (server.stdout, client.stdout)  # unsorted: the interleaving itself
        finally:
            lab.close()
        results.append((pcap.read_bytes(), outputs))
    assert len(results[0][0]) > 10_000
    assert results[0] == results[1]


def _run_guest(wasm: Path, virtual_time: bool) -> tuple[int | None, str]:
    out = bytearray()
    with Network(virtual_time=virtual_time, seed=1) as net:
        host = net.host("solo")
        guest = Guest(net.scheduler, GuestConfig(module=str(wasm), args=[wasm.stem], host=host,
                                                 stdout=out.extend, stderr=out.extend))
        guest.start()
        assert net.scheduler.run(until=lambda: guest.done, timeout_s=60)
        return guest.exit_code, out.decode()


@pytest.mark.parametrize("virtual_time", [False, True], ids=["real", "virtual"])
def test_a_thread_blocked_in_recv_lets_another_thread_run(
        build_guest: Callable[..., Path], virtual_time: bool) -> None:
    code, text = _run_guest(build_guest(GUEST_C / "threads_recv_block.c", "-pthread"),
                            virtual_time)
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0] == "reader: blocking in recv"
    assert lines[1:6] == [f"main: step {i} while the reader waits" for i in range(5)]
    assert lines[6:] == ['reader: got "wake up"', "main: reader woke after 5 steps"]


@pytest.mark.parametrize("virtual_time", [False, True], ids=["real", "virtual"])
def test_pthread_calls_print_what_they_print_natively(
        build_guest: Callable[..., Path], native_threaded: Callable[[str], Path],
        virtual_time: bool) -> None:
    source = GUEST_C / "threads_api.c"
    native = subprocess.run([str(native_threaded(str(source)))], capture_output=True,
                            text=True, timeout=60)  # no sockets: no namespace needed
    assert native.returncode == 0
    assert "counter 4000 (want 4000)" in native.stdout
    code, text = _run_guest(build_guest(source, "-pthread"), virtual_time)
    assert code == 0
    assert text == native.stdout


@pytest.mark.parametrize("virtual_time", [False, True], ids=["real", "virtual"])
def test_setjmp_longjmp_print_what_they_print_natively(
        build_guest: Callable[..., Path], native_threaded: Callable[[str], Path],
        virtual_time: bool) -> None:
    source = GUEST_C / "setjmp_longjmp.c"
    native = subprocess.run([str(native_threaded(str(source)))], capture_output=True,
                            text=True, timeout=60)
    assert native.returncode == 0
    assert 'parse "abcdef!": error 106 (deepest 6)' in native.stdout
    code, text = _run_guest(build_guest(source, "-pthread"), virtual_time)
    assert code == 0
    # the three threads' lines come in the order their sleeps end, natively as they like
    assert sorted(text.splitlines()) == sorted(native.stdout.splitlines())
    assert text.splitlines()[:5] == native.stdout.splitlines()[:5]


@pytest.mark.parametrize("virtual_time", [False, True], ids=["real", "virtual"])
def test_two_threads_talk_through_a_pipe_larger_than_it_holds(
        build_guest: Callable[..., Path], native_threaded: Callable[[str], Path],
        virtual_time: bool) -> None:
    """The writer's write loop gets short counts instead of blocking the reader out."""
    source = GUEST_C / "threads_pipe.c"
    native = subprocess.run([str(native_threaded(str(source)))], capture_output=True,
                            text=True, timeout=60)
    assert native.returncode == 0
    assert native.stdout == "written 1048576, read 1048576, wrong 0\n"
    code, text = _run_guest(build_guest(source, "-pthread"), virtual_time)
    assert (code, text) == (0, native.stdout)


def test_single_threaded_code_behaves_the_same_built_with_pthread(
        build_guest: Callable[..., Path]) -> None:
    outputs = []
    for flags in ((), ("-pthread",)):
        server_wasm = build_guest(EXAMPLES / "tcp_echo_server.c", *flags)
        client_wasm = build_guest(EXAMPLES / "tcp_echo_client.c", *flags)
        lab = ThreadLab({"tcp_echo_server": server_wasm,
                         "tcp_echo_client": client_wasm}.__getitem__, True)
        try:
            server = lab.start("alpha", "tcp_echo_server", "7000", "1")
            server.wait_for("listening on port 7000")
            client = lab.start("bravo", "tcp_echo_client", "alpha", "7000", "one", "two")
            assert client.wait() == 0 and server.wait() == 0, client.describe()
            outputs.append((server.stdout, client.stdout))
        finally:
            lab.close()
    assert outputs[0] == outputs[1]


def test_vnet_build_pthread_gives_a_module_the_host_can_switch(tmp_path: Path) -> None:
    out = tmp_path / "client.wasm"
    proc = subprocess.run([sys.executable, "-m", "vnet", "build", "-pthread",
                           str(EXAMPLES / "threaded_client.c"), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    module = load_module(out)
    assert GuestThreads.wanted(module)
    assert "vnet_thread_start" in {e.name for e in module.exports}


def test_pthread_without_binaryen_is_one_line_before_compiling(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "VNET_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": str(tmp_path / "nothing-here"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "vnet", "build", "-pthread",
                           str(EXAMPLES / "threaded_client.c"), "-o", str(tmp_path / "x.wasm")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert proc.stderr == ("vnet build: -pthread needs Binaryen's wasm-opt: install node and "
                           "npm (apt-get install nodejs npm) or set VNET_WASM_OPT\n")
    assert not (tmp_path / "cache" / "obj").exists()  # nothing was compiled


def test_vnet_cc_pthread_compiles_and_links_separately(tmp_path: Path,
                                                      native_threaded: Callable[[str], Path]
                                                      ) -> None:
    """As a build system drives it: `vnet cc -pthread -c`, then `vnet cc -pthread x.o`."""
    source = GUEST_C / "threads_api.c"
    obj, out = tmp_path / "threads_api.o", tmp_path / "threads_api.wasm"
    for args in (["-pthread", "-O2", "-c", str(source), "-o", str(obj)],
                 ["-pthread", str(obj), "-o", str(out)]):
        proc = subprocess.run([sys.executable, "-m", "vnet", "cc", *args], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    native = subprocess.run([str(native_threaded(str(source)))], capture_output=True,
                            text=True, timeout=60)
    code, text = _run_guest(out, True)
    assert code == 0 and text == native.stdout
