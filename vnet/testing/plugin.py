"""The vnet pytest plugin: virtual-time networks, C guests, captures and golden captures.

Installed with vnet (``[project.entry-points.pytest11] vnet``), so any test
in a project with vnet installed can ask for its fixtures:

``vnet_network``
    A ``vnet.network.Network`` in virtual time, seeded with ``vnet_seed``,
    on the test's schedule (explore unless told otherwise, see below),
    recording every NIC (now and later) to one pcapng file, closed after the
    test. Build hosts on it and start guests with ``host.run(...)``.
``vnet_capture``
    ``vnet_capture()`` reads what ``vnet_network``'s NICs recorded so far as a
    ``vnet.testing.Capture`` (``vnet_capture("bravo/eth0")``: one NIC's
    view, each frame once); ``vnet_capture.path`` is the file.
    ``vnet_capture.segment("lan")``: the frames that crossed a segment, once
    each (``segments.pcapng``, the file to open in Wireshark).
``vnet_topology``
    ``vnet_topology("examples/demo.toml")``: ``Network.from_topology`` with
    one pcapng per NIC in the test's pcap directory (``net.pcaps``). Its seed
    and schedule are the file's own unless ``--vnet-seed`` / ``--vnet-schedule``
    or the ``vnet`` marker gives them.
``vnet_build``
    ``vnet_build("examples/tcp_echo_server.c", flags=[...])``: the path of
    the wasm guest built from C sources (relative paths from pytest's
    rootdir), built once per session and cached by content across sessions
    (``vnet.build``).
``vnet_golden``
    ``vnet_golden("tcp-handshake", path)``: the capture must equal
    ``pcaps/tcp-handshake.pcapng`` packet by packet (``vnet.testing.pcap_diff``;
    ``ignore=["IP.id"]`` leaves fields out). ``--vnet-update-goldens``
    writes the golden instead, and the run's summary lists what changed.
``vnet_seed``, ``vnet_pcap_dir``
    The test's seed, and the directory its pcaps go to.

Seeds: ``--vnet-seed N`` (default 1), ``--vnet-seed random`` (a fresh one,
shown in the header), or ``@pytest.mark.vnet(seed=N)`` on a test, which wins
(golden tests pin theirs). When a test that used these fixtures fails, its
report gets a ``vnet`` section: the seed with the command that replays the
run exactly, every pcap the test wrote (kept: a passing test's pcaps are
deleted unless ``--vnet-keep-pcaps``), and each guest's exit status and last
lines of output. Pcaps go under ``--vnet-pcap-dir DIR`` (default: pytest's
temporary directory), one directory per test.

Schedules: in virtual time the seed also orders guests runnable at the same
instant (``explore``, the default: vnet.scheduler, "Schedules"), so a test
that passes for one seed may fail for another when it assumes an order the
network does not promise. ``--vnet-schedule fifo`` (or
``@pytest.mark.vnet(schedule="fifo")``, for a test whose subject is that
order) runs them first in, first out, whatever the seed.

This module is imported by every pytest run in an environment with vnet
installed, so it imports nothing heavy at the top: vnet's network, scapy and
the compiler load when a fixture is first used. It touches the pcap and build
directories and the golden directory (only with ``--vnet-update-goldens``).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from vnet.network import Network
    from vnet.testing.expect import Capture

DEFAULT_SEED = 1
#: As vnet.scheduler.DEFAULT_SCHEDULE (not imported here: this module stays light).
DEFAULT_SCHEDULE = "explore"
SCHEDULES = ("explore", "fifo")
#: Lines of each guest's stdout and stderr a failure report shows.
OUTPUT_TAIL = 8


@dataclass
class TestRun:
    """What one test did with the plugin: its seed, networks and pcaps (for its report)."""

    nodeid: str
    seed: int
    seed_pinned: bool  # by the marker: replaying needs no --vnet-seed
    pcap_dir: Path
    #: The schedule of its virtual-time networks; pinned by the marker or given on the
    #: command line (then a replay needs no flag, or `--vnet-schedule S`).
    schedule: str = DEFAULT_SCHEDULE
    schedule_pinned: bool = False
    schedule_given: bool = False
    networks: list[Network] = field(default_factory=list)
    #: (file, seed, schedule) of each network vnet_topology built.
    topology_seeds: list[tuple[str, int, str]] = field(default_factory=list)
    failed: bool = False

    def pcaps(self) -> list[Path]:
        if not self.pcap_dir.is_dir():
            return []
        return sorted(p for p in self.pcap_dir.rglob("*.pcapng") if p.is_file())

    def flush_captures(self) -> None:
        for net in self.networks:
            for cap in [*net.captures, *net._nic_captures, *net._segment_captures]:
                cap.flush()  # nothing to do once closed

    def report(self) -> str:
        lines = []
        flag = (f"--vnet-schedule {self.schedule} "
                if self.schedule_given and not self.schedule_pinned else "")
        if self.seed_pinned:
            lines.append(f"seed {self.seed} (pinned by @pytest.mark.vnet); replay exactly: "
                         f"pytest {flag}'{self.nodeid}'")
        else:
            lines.append(f"seed {self.seed}; replay exactly: pytest --vnet-seed {self.seed} "
                         f"{flag}'{self.nodeid}'")
        lines.append(f"schedule {self.schedule}")
        for path, seed, schedule in self.topology_seeds:
            lines.append(f"topology {path}: seed {seed}, schedule {schedule}")
        pcaps = self.pcaps()
        if pcaps:
            lines.append("pcaps kept:")
            lines.extend(f"  {p}" for p in pcaps)
        else:
            lines.append(f"pcaps: none written (directory {self.pcap_dir})")
        for net in self.networks:
            for process in net.processes:
                code = process.exit_code
                status = f"exit {code}" if code is not None else (
                    "still running" if process.guest.task is not None else "not started yet")
                if process.trap:
                    status += f" ({process.trap})"
                lines.append(f"guest {process.name}: {status}")
                for label, text in (("stdout", process.stdout), ("stderr", process.stderr)):
                    tail = text.splitlines()[-OUTPUT_TAIL:]
                    if tail:
                        lines.append(f"  {label} (last {len(tail)} lines):")
                        lines.extend(f"    {line}" for line in tail)
        return "\n".join(lines)


RUN_KEY = pytest.StashKey[TestRun]()
SEED_KEY = pytest.StashKey[tuple[int, bool]]()  # (seed, given on the command line)
SCHEDULE_KEY = pytest.StashKey[tuple[str, bool]]()  # (schedule, given on the command line)
UPDATED_KEY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vnet", "vnet virtual networks")
    group.addoption("--vnet-seed", metavar="N|random", default=None,
                    help=f"seed of every vnet network (default {DEFAULT_SEED}); 'random' "
                         "picks one and shows it; a failing test's report shows the "
                         "seed that replays it")
    group.addoption("--vnet-schedule", choices=SCHEDULES, default=None,
                    help="virtual time: the order of guests runnable at the same instant: "
                         "explore (the seed picks; the default) or fifo (first in, first "
                         "out, whatever the seed)")
    group.addoption("--vnet-update-goldens", action="store_true", default=False,
                    help="write the golden captures (vnet_golden) instead of comparing")
    group.addoption("--vnet-goldens", metavar="DIR", default=None,
                    help="directory of golden captures (default: ini vnet_goldens, 'pcaps' "
                         "under the rootdir)")
    group.addoption("--vnet-pcap-dir", metavar="DIR", default=None,
                    help="where tests write their pcaps, one directory per test (default: "
                         "pytest's temporary directory)")
    group.addoption("--vnet-keep-pcaps", action="store_true", default=False,
                    help="keep the pcaps of passing tests too (a failing test's are always "
                         "kept)")
    parser.addini("vnet_goldens", "directory of golden captures, relative to the rootdir",
                  default="pcaps")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "vnet(seed=N, schedule='explore'|'fifo'): run this test's vnet networks "
                   "with seed N and that schedule, whatever --vnet-seed and --vnet-schedule say")
    text = config.getoption("--vnet-seed", None)
    if text is None:
        config.stash[SEED_KEY] = (DEFAULT_SEED, False)
    elif str(text).lower() == "random":
        config.stash[SEED_KEY] = (secrets.randbelow(2**32), True)
    else:
        try:
            seed = int(str(text), 0)
        except ValueError:
            raise pytest.UsageError(f"--vnet-seed: expected a number or 'random', not "
                                    f"{text!r}") from None
        if seed < 0:
            raise pytest.UsageError(f"--vnet-seed: {seed} is negative")
        config.stash[SEED_KEY] = (seed, True)
    schedule = config.getoption("--vnet-schedule", None)
    config.stash[SCHEDULE_KEY] = (schedule or DEFAULT_SCHEDULE, schedule is not None)
    config.stash[UPDATED_KEY] = []


def pytest_report_header(config: pytest.Config) -> str:
    seed, given = config.stash[SEED_KEY]
    how = "--vnet-seed" if given else "default"
    schedule, schedule_given = config.stash[SCHEDULE_KEY]
    schedule_how = "--vnet-schedule" if schedule_given else "default"
    update = ", updating goldens" if config.getoption("--vnet-update-goldens") else ""
    return (f"vnet: seed {seed} ({how}), schedule {schedule} ({schedule_how}), "
            f"goldens {golden_dir(config)}{update}")


def golden_dir(config: pytest.Config) -> Path:
    given = config.getoption("--vnet-goldens")
    if given:
        return Path(given).resolve()
    return (config.rootpath / str(config.getini("vnet_goldens"))).resolve()


def _test_dir_name(nodeid: str) -> str:
    """A directory name for a test: its node id with unsafe characters replaced, and short."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_.") or "test"
    if len(name) > 100:
        digest = hashlib.sha256(nodeid.encode()).hexdigest()[:10]
        name = f"{name[:80]}-{digest}"
    return name


@pytest.fixture(scope="session")
def _vnet_pcap_root(tmp_path_factory: pytest.TempPathFactory,
                    pytestconfig: pytest.Config) -> Path:
    given = pytestconfig.getoption("--vnet-pcap-dir")
    if given:
        root = Path(given).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return root
    return tmp_path_factory.mktemp("vnet-pcaps", numbered=True)


@pytest.fixture
def _vnet_run(request: pytest.FixtureRequest, _vnet_pcap_root: Path) -> Iterator[TestRun]:
    config = request.config
    seed, _given = config.stash[SEED_KEY]
    marker = request.node.get_closest_marker("vnet")
    pinned = marker is not None and "seed" in marker.kwargs
    if pinned:
        assert marker is not None
        seed = int(marker.kwargs["seed"])
    schedule, schedule_given = config.stash[SCHEDULE_KEY]
    schedule_pinned = marker is not None and "schedule" in marker.kwargs
    if schedule_pinned:
        assert marker is not None
        schedule = str(marker.kwargs["schedule"])
        if schedule not in SCHEDULES:
            raise ValueError(f"@pytest.mark.vnet(schedule={schedule!r}): one of "
                             f"{', '.join(SCHEDULES)}")
    pcap_dir = _vnet_pcap_root / _test_dir_name(request.node.nodeid)
    if pcap_dir.exists():
        shutil.rmtree(pcap_dir)  # a previous run of this test in the same directory
    run = TestRun(request.node.nodeid, seed, pinned, pcap_dir, schedule=schedule,
                  schedule_pinned=schedule_pinned, schedule_given=schedule_given)
    request.node.stash[RUN_KEY] = run
    yield run
    for net in run.networks:
        net.close()
    if not run.failed and not config.getoption("--vnet-keep-pcaps"):
        shutil.rmtree(pcap_dir, ignore_errors=True)


@pytest.fixture
def vnet_seed(_vnet_run: TestRun) -> int:
    """This test's seed: the vnet marker's, else --vnet-seed's, else 1."""
    return _vnet_run.seed


@pytest.fixture
def vnet_pcap_dir(_vnet_run: TestRun) -> Path:
    """The directory this test's pcaps go to (created; kept when the test fails)."""
    _vnet_run.pcap_dir.mkdir(parents=True, exist_ok=True)
    return _vnet_run.pcap_dir


@pytest.fixture
def vnet_network(_vnet_run: TestRun, vnet_pcap_dir: Path) -> Network:
    """A virtual-time Network seeded with vnet_seed, on the test's schedule; its NICs and
    segments recorded.

    Every NIC goes to network.pcapng (a frame twice: sent, received), every
    segment to segments.pcapng (each frame once: the file for Wireshark).
    """
    from vnet.network import Network

    net = Network(virtual_time=True, seed=_vnet_run.seed, schedule=_vnet_run.schedule)
    _vnet_run.networks.append(net)
    net.capture(vnet_pcap_dir / "network.pcapng")
    net.capture_segments(vnet_pcap_dir / "segments.pcapng")
    return net


class NetworkCapture:
    """``vnet_capture()``: what vnet_network's capture holds so far, as a ``Capture``."""

    def __init__(self, network: Network, path: Path) -> None:
        self.network = network
        self.path = path

    def __call__(self, *interfaces: str) -> Capture:
        """The whole capture, or the packets of the NICs named (``"bravo/eth0"``, ``"bravo/*"``)."""
        from vnet.testing.expect import Capture

        writer = next(c for c in self.network.captures if c.path == os.fspath(self.path))
        capture = Capture.of(writer)
        return capture.on(*interfaces) if interfaces else capture

    @property
    def segments_path(self) -> Path:
        """segments.pcapng: every segment of vnet_network, each frame once."""
        return self.path.with_name("segments.pcapng")

    def segment(self, name: str) -> Capture:
        """The frames that crossed segment ``name``, once each, as its switch forwarded them."""
        from vnet.testing.expect import Capture

        writer = next(c for c in self.network._segment_captures
                      if c.path == os.fspath(self.segments_path))
        return Capture.of(writer).on(f"{self.network.segments[name].kind}/{name}")

    def __repr__(self) -> str:
        return f"<NetworkCapture {self.path}>"


@pytest.fixture
def vnet_capture(vnet_network: Network, vnet_pcap_dir: Path) -> NetworkCapture:
    """``vnet_capture()`` reads vnet_network's pcapng so far (``vnet.testing.Capture``)."""
    return NetworkCapture(vnet_network, vnet_pcap_dir / "network.pcapng")


@pytest.fixture
def vnet_topology(_vnet_run: TestRun, vnet_pcap_dir: Path,
                  pytestconfig: pytest.Config) -> Callable[..., Network]:
    """``vnet_topology(path)``: Network.from_topology with per-NIC pcaps in the test's directory."""
    from vnet.network import Network

    _seed, given = pytestconfig.stash[SEED_KEY]

    def load(path: str | os.PathLike[str], *, seed: int | None = None,
             virtual_time: bool | None = None, schedule: str | None = None) -> Network:
        source = Path(path)
        if not source.is_absolute():
            source = pytestconfig.rootpath / source
        if seed is None and (given or _vnet_run.seed_pinned):
            seed = _vnet_run.seed
        if schedule is None and (_vnet_run.schedule_given or _vnet_run.schedule_pinned):
            schedule = _vnet_run.schedule
        count = len(_vnet_run.networks)
        pcaps = vnet_pcap_dir / (source.stem if count == 0 else f"{source.stem}-{count}")
        net = Network.from_topology(source, seed=seed, virtual_time=virtual_time,
                                    pcap_dir=pcaps, schedule=schedule)
        _vnet_run.networks.append(net)
        _vnet_run.topology_seeds.append((str(path), net.seed, net.scheduler.schedule))
        return net

    return load


@pytest.fixture(scope="session")
def vnet_build(tmp_path_factory: pytest.TempPathFactory,
               pytestconfig: pytest.Config) -> Callable[..., Path]:
    """``vnet_build("a.c", "b.c", flags=["-DX"])``: the wasm guest built from C, once a session."""
    from vnet.build import build_wasm

    out_dir = tmp_path_factory.mktemp("vnet-guests")
    built: dict[tuple[tuple[str, ...], tuple[str, ...]], Path] = {}

    def build(*sources: str | os.PathLike[str], flags: Sequence[str] = ()) -> Path:
        if not sources:
            raise ValueError("vnet_build needs at least one C source")
        paths = [Path(s) if Path(s).is_absolute() else pytestconfig.rootpath / s
                 for s in sources]
        key = (tuple(str(p) for p in paths), tuple(flags))
        if key not in built:
            digest = hashlib.sha256(repr(key).encode()).hexdigest()[:10]
            output = out_dir / digest / f"{paths[0].stem}.wasm"  # argv[0]: the plain name
            built[key] = build_wasm(paths, output, flags=list(flags), quiet=True)
        return built[key]

    return build


def _capture_path(capture: Any) -> Path:
    """The file behind a path, a ``vnet.link.capture.Capture`` or a ``vnet.testing.Capture``."""
    if isinstance(capture, (str, os.PathLike)):
        return Path(capture)
    path = getattr(capture, "path", None)
    if path is not None:
        flush = getattr(capture, "flush", None)
        if callable(flush):
            flush()
        return Path(path)
    source = getattr(capture, "source", None)
    if isinstance(source, str) and source not in ("<memory>", "<stream>"):
        return Path(source)
    raise TypeError(f"vnet_golden needs a capture file, not {capture!r}")


class GoldenCheck:
    """``vnet_golden(name, capture, ignore=())``: compare with, or update, ``pcaps/NAME.pcapng``."""

    def __init__(self, config: pytest.Config, run: TestRun) -> None:
        self.config = config
        self.run = run
        self.directory = golden_dir(config)
        self.update = bool(config.getoption("--vnet-update-goldens"))

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.pcapng"

    def __call__(self, name: str, capture: Any, *, ignore: Iterable[str] = ()) -> None:
        from vnet.testing.pcap_diff import diff_captures

        if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", name) or ".." in name:
            raise ValueError(f"golden name {name!r}: use letters, digits, - _ . and /")
        self.run.flush_captures()
        actual = _capture_path(capture)
        golden = self.path(name)
        shown = os.path.relpath(golden, self.config.rootpath)
        if self.update:
            if golden.is_file() and golden.read_bytes() == actual.read_bytes():
                return
            golden.parent.mkdir(parents=True, exist_ok=True)
            created = not golden.exists()
            shutil.copyfile(actual, golden)
            self.config.stash[UPDATED_KEY].append(
                f"{'created' if created else 'updated'} {shown} ({self.run.nodeid})")
            return
        if not golden.is_file():
            raise AssertionError(
                f"golden capture {shown} does not exist; this run's capture is {actual}.\n"
                f"Create it with: pytest --vnet-update-goldens '{self.run.nodeid}'")
        result = diff_captures(golden, actual, ignore=ignore)
        if not result.identical:
            raise AssertionError(
                f"the capture differs from golden {shown} (A: the golden, B: this run)\n"
                f"{result.report()}\n"
                f"If the change is intended: pytest --vnet-update-goldens '{self.run.nodeid}'")


@pytest.fixture
def vnet_golden(pytestconfig: pytest.Config, _vnet_run: TestRun) -> GoldenCheck:
    """``vnet_golden(name, capture)``: the capture equals pcaps/NAME.pcapng (or updates it)."""
    return GoldenCheck(pytestconfig, _vnet_run)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    run = item.stash.get(RUN_KEY, None)
    if run is None or not report.failed:
        return
    run.failed = True
    if report.when == "call":
        run.flush_captures()  # the teardown closes them; the paths are shown now
    report.sections.append(("vnet", run.report()))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    updated = config.stash.get(UPDATED_KEY, [])
    if updated:
        terminalreporter.section("vnet goldens")
        for line in updated:
            terminalreporter.line(line)
