"""The mypyc-compiled stack (scripts/compile-stack) behaves as the pure-Python one, to the byte.

The build holds the stack's hot modules and the host-call modules of vnet/ around it
(vnet.compile_stack.COMPILED_VNET_MODULES): each run below says, from each module's
``__file__``, that every one of them was the extension module (or the source).

The built-in demo topology (examples/demo.toml: TCP chat, HTTP, IPv4 multicast, in
virtual time with its seed) runs twice in subprocesses, once on the compiled build and
once with VNET_PURE_PYTHON=1: the guests' output and every NIC's pcapng must be
identical. The build is the current one in build/compiled-stack when there is one
(scripts/compile-stack, or scripts/test's set-up where it can compile, makes it), else
the test makes its own under .vnet-cache/compiled-stack (about 150 CPU-seconds, once per
change of stack/ or of a compiled vnet/ module). That test is skipped only when this
machine cannot compile (no C compiler or Python headers: scripts/install-test-tools
installs gcc and python3-dev when run as root); the fallback tests run everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stack import compiled
from tests.conftest import EXAMPLES
from vnet import compile_stack

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODULES = ["chat_server", "chat_client", "http_server", "http_get", "lobby"]
TEST_BUILD = ROOT / ".vnet-cache" / "compiled-stack"

# Run in a child: say which build runs and from which files, then run `vnet ARGS`.
CHILD = """
import importlib, sys
from stack import compiled
from vnet import compile_stack
print("STATE", compiled.ACTIVE, compiled.STATE, file=sys.stderr)
names = [path[:-3].replace("/", ".") for path in compile_stack.compiled_paths()]
print("FILE", *(importlib.import_module(name).__file__ for name in names), file=sys.stderr)
from vnet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VNET_PURE_PYTHON", "VNET_COMPILED_STACK")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def _vnet(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, *args], env=_env(**env), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def compiled_build() -> Path:
    """A current compiled build of this checkout's stack/ (made here if need be)."""
    if compiled.check_build(compiled.DEFAULT_BUILD_DIR)[0] is not None:
        return compiled.DEFAULT_BUILD_DIR
    if compiled.check_build(TEST_BUILD)[0] is None:
        missing = compile_stack.missing_prerequisite()
        if missing is not None:
            pytest.skip(f"cannot compile the stack here: {missing}")
        proc = subprocess.run([sys.executable, "-m", "vnet.compile_stack", "--out",
                               str(TEST_BUILD)], env=_env(), cwd=ROOT, capture_output=True,
                              text=True, timeout=1500)
        assert proc.returncode == 0, proc.stderr
    usable, state = compiled.check_build(TEST_BUILD)
    assert usable is not None, state
    return TEST_BUILD


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
    topology.write_text((EXAMPLES / "demo.toml").read_text())
    return topology


def _stderr_lines(proc: subprocess.CompletedProcess[str], tag: str) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith(tag + " ")]


def test_compiled_and_pure_stacks_give_byte_identical_pcaps(
        compiled_build: Path, demo_topology: Path, tmp_path: Path) -> None:
    suffix = compiled.platform_tag()["ext_suffix"]
    runs = {}
    for name, env in (("compiled", {"VNET_COMPILED_STACK": str(compiled_build)}),
                      ("pure", {"VNET_PURE_PYTHON": "1"})):
        pcaps = tmp_path / name
        proc = _vnet(["sim", str(demo_topology), "--pcap-dir", str(pcaps)], **env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = (proc, pcaps)
    compiled_run, pure_run = runs["compiled"][0], runs["pure"][0]
    # Each ran the build it was asked for: extension modules, or the .py sources.
    assert _stderr_lines(compiled_run, "STATE")[0].startswith("STATE True mypyc-compiled")
    compiled_files = _stderr_lines(compiled_run, "FILE")[0].split()[1:]
    assert len(compiled_files) == len(compile_stack.compiled_paths())
    assert any(f.endswith(f"/vnet/guest/abi{suffix}") for f in compiled_files)
    not_compiled = [f for f in compiled_files if not f.endswith(suffix)]
    assert not not_compiled, not_compiled
    assert _stderr_lines(pure_run, "STATE") == [
        "STATE False pure Python (VNET_PURE_PYTHON is set)"]
    assert all(f.endswith(".py") for f in _stderr_lines(pure_run, "FILE")[0].split()[1:])
    # The guests did their work, and saw and sent the same bytes at the same virtual times.
    assert "bob/chat    | < alice: hello bob" in pure_run.stdout
    assert (compiled_run.stdout.replace(str(runs["compiled"][1]), "PCAPS")
            == pure_run.stdout.replace(str(runs["pure"][1]), "PCAPS"))
    names = sorted(p.name for p in runs["pure"][1].iterdir())
    assert names == sorted(p.name for p in runs["compiled"][1].iterdir())
    assert len(names) == 5
    for name in names:
        assert (runs["compiled"][1] / name).read_bytes() == (runs["pure"][1] / name).read_bytes(), \
            name


#: Tests whose code outside the stack reaches into stack objects: assigns an interface's
#: flags (a compiled class never calls ``__setattr__``), keeps per-host state (a compiled
#: class takes no weak references and no undeclared attributes), observes `lo`; and the
#: stack's own that failed or crashed on the compiled TCP engine before it was fixed: a
#: TIME-WAIT record refers to its connection weakly (stack/weak_handle.py) and is sent
#: through `TcpLayer.output`, whose compiled signature checks what it is given.
REACHING_IN = ["tests/guest/test_ifconf.py", "tests/hostile/test_ifconfig_abuse.py",
               "tests/captures/test_segment_capture.py",
               "tests/stack/test_tcp_time_wait_record.py",
               "tests/stack/test_tcp_abort_on_data.py",
               # a guest context whose memory is set and unset (a declared, deletable slot)
               # and given to the compiled ABI bridge; poll's unlocked path
               "tests/hostile/test_memory.py::"
               "test_a_host_call_over_the_limit_reclaims_first_and_runs_or_is_the_oom_kill",
               "tests/guest/test_poll_unlocked.py",
               # Python subclasses of the compiled FileDescription (files, pipes, netlink)
               "tests/guest/test_fdtable_subclasses.py"]


def test_code_that_reaches_into_the_stack_passes_its_tests_on_the_compiled_build(
        compiled_build: Path) -> None:
    """Each failed on the compiled build before the stack declared what they use."""
    child = ("import sys, pytest\n"
             "from stack import compiled\n"
             "assert compiled.ACTIVE, compiled.STATE\n"
             "sys.exit(pytest.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", child, "-q", "-p", "no:cacheprovider",
                           *REACHING_IN], env=_env(VNET_COMPILED_STACK=str(compiled_build)),
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout.splitlines()[-1]


def _fake_build(tmp_path: Path, **changes: object) -> Path:
    """A build directory whose manifest matches these sources, but for `changes`."""
    manifest = {"format": compiled.MANIFEST_FORMAT, "platform": compiled.platform_tag(),
                "sources": compiled.sources_digest(), "modules": {}}
    manifest.update(changes)
    (tmp_path / compiled.MANIFEST).write_text(json.dumps(manifest))
    return tmp_path


@pytest.mark.parametrize(("changes", "reason"), [
    ({"sources": "0" * 64}, "a compiled source changed since the build"),
    ({"platform": {"cache_tag": "cpython-27", "ext_suffix": ".so"}}, "for another Python"),
    ({"modules": {"stack.udp": "stack/udp.missing.so"}}, "compiled build incomplete"),
])
def test_a_build_that_does_not_match_runs_the_pure_stack_and_says_why(
        tmp_path: Path, changes: dict[str, object], reason: str) -> None:
    build = _fake_build(tmp_path, **changes)
    proc = subprocess.run([sys.executable, "-m", "vnet", "--version"], cwd=ROOT,
                          env=_env(VNET_COMPILED_STACK=str(build)), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "stack: pure Python (" in proc.stdout and reason in proc.stdout, proc.stdout


def test_an_edit_to_a_compiled_vnet_module_makes_the_whole_build_fall_back(
        tmp_path: Path) -> None:
    """The digest covers the compiled vnet/ sources as well as stack/: a build made from
    an abi.py that differs by one byte is not used, and says why."""
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "stack", copy / "stack",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "vnet" / "guest").mkdir(parents=True)
    outside = ["vnet/guest/abi.py"]
    abi = (ROOT / outside[0]).read_bytes()
    (copy / outside[0]).write_bytes(abi)
    assert compiled.sources_digest(copy / "stack", outside) == compiled.sources_digest(
        outside=outside)
    (copy / outside[0]).write_bytes(abi + b"\n")
    edited = compiled.sources_digest(copy / "stack", outside)
    assert edited != compiled.sources_digest(outside=outside)
    so = tmp_path / "build" / "abi.so"
    so.parent.mkdir()
    so.write_bytes(b"")
    build = _fake_build(tmp_path / "build", sources=edited,
                        modules={"vnet.guest.abi": "abi.so"})
    usable, state = compiled.check_build(build)
    assert usable is None and "a compiled source changed since the build" in state
    # the same build, had abi.py been as it is, would be taken
    current = _fake_build(tmp_path / "build", sources=compiled.sources_digest(outside=outside),
                          modules={"vnet.guest.abi": "abi.so"})
    assert compiled.check_build(current)[0] == {"vnet.guest.abi": so}


def test_an_edit_to_a_module_the_compiled_code_calls_into_makes_the_build_fall_back(
        tmp_path: Path) -> None:
    """Compiled code checks what an uncompiled module gives it against that module's
    annotations: with a build made before `Impairment.decide` returned a list instead of
    a tuple (an edit the sources take in their stride), the compiled segment raised
    TypeError on the first impaired frame while the build still counted as current. The
    build lists the uncompiled vnet/ modules the compiled ones import (`reads`) and its
    digest covers them: a build from an impairment.py that differs by one byte is not
    used, and says why."""
    reads = compile_stack.read_sources(ROOT)
    assert {"vnet/link/impairment.py", "vnet/guest/wasi_types.py"} <= set(reads)
    assert not set(reads) & set(compile_stack.compiled_paths())
    modules = {"vnet.link.segment": "segment.so"}
    outside = compiled.outside_sources(modules) + reads
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "stack", copy / "stack",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for rel in outside:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, copy / rel)
    impairment = copy / "vnet/link/impairment.py"
    impairment.write_bytes(impairment.read_bytes() + b"\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "segment.so").write_bytes(b"")
    stale = _fake_build(tmp_path / "build", modules=modules, reads=reads,
                        sources=compiled.sources_digest(copy / "stack", outside))
    usable, state = compiled.check_build(stale)
    assert usable is None and "a compiled source changed since the build" in state
    # the same build, had impairment.py been as it is, would be taken
    current = _fake_build(tmp_path / "build", modules=modules, reads=reads,
                          sources=compiled.sources_digest(outside=outside))
    assert compiled.check_build(current)[0] == {"vnet.link.segment":
                                                tmp_path / "build" / "segment.so"}


def test_vnet_imports_the_stack_first_so_its_compiled_modules_can_load() -> None:
    """The finder must be in place before any compiled vnet module is imported."""
    proc = subprocess.run([sys.executable, "-c",
                           "import sys, vnet; print('stack.compiled' in sys.modules)"],
                          env=_env(VNET_PURE_PYTHON="1"), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.split() == ["True"], proc.stderr


def test_without_a_c_compiler_the_install_step_says_so_and_succeeds(tmp_path: Path) -> None:
    """A machine with only python3: `compile-stack --if-possible` (the bootstrap's step)
    exits 0 with one line, builds nothing, and the stack runs as pure Python."""
    out = tmp_path / "build"
    env = _env(PATH=str(tmp_path))  # no cc, gcc or clang on it
    proc = subprocess.run([sys.executable, "-m", "vnet.compile_stack", "--if-possible",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "no C compiler" in lines[0], proc.stderr
    assert lines[0].endswith("the stack runs as pure Python")
    assert not out.exists()
    version = subprocess.run([sys.executable, "-m", "vnet", "--version"], cwd=ROOT,
                             env=_env(PATH=str(tmp_path), VNET_COMPILED_STACK=str(out)),
                             capture_output=True, text=True, timeout=120)
    assert "stack: pure Python (no compiled build" in version.stdout, version.stdout


#: Built for every packet or segment the stack receives: a dataclass's generated
#: ``__init__`` would stay interpreted Python on the compiled build (0.5-0.8 us each,
#: about 4 % of a TCP connection's CPU), so these are written-out compiled classes.
PER_PACKET_CLASSES = ["stack.ip:IpMeta", "stack.wire.tcp:TcpOptions"]


def test_what_the_stack_builds_per_packet_is_built_by_compiled_code(
        compiled_build: Path) -> None:
    """Their constructors are compiled code, not generated Python functions."""
    child = ("import importlib, sys, types\n"
             "from stack import compiled\n"
             "assert compiled.ACTIVE, compiled.STATE\n"
             "for spec in sys.argv[1:]:\n"
             "    module, name = spec.split(':')\n"
             "    init = getattr(importlib.import_module(module), name).__init__\n"
             "    print(spec, isinstance(init, types.FunctionType))\n")
    proc = subprocess.run([sys.executable, "-c", child, *PER_PACKET_CLASSES],
                          env=_env(VNET_COMPILED_STACK=str(compiled_build)), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:-1] == [f"{spec} False" for spec in PER_PACKET_CLASSES]
