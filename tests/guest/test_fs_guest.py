"""The filesystem through real guests, against wasmtime's own WASI as the reference.

Each test builds a C guest, runs it under vnet (`run_module`) and under
wasmtime-py's built-in WASI (`tests.guest.reference`) on two identical
directory trees, and compares what a user can observe: the exit status,
everything the guest printed, and the files it left. Both trees sit next to
an `outside` directory that must come through untouched.

- `fs_probe` calls the raw wasi_snapshot_preview1 imports, so escapes reach
  the host exactly as written (libc would refuse `..` and `/` first);
  scenarios below are its command lists.
- `fs_ops` goes through ordinary libc calls (open, pread, rename, utimensat…).
- `examples/fs_tour.c` is also compiled natively with gcc when it is present:
  the native program and the wasm guest must print the same.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.guest.reference import run_reference
from vnet.guest.runtime import RunResult, run_module

ROOT = Path(__file__).resolve().parents[2]

Snapshot = dict[str, tuple[str, str]]


def make_tree(base: Path) -> Path:
    """base/root (to be preopened) with files, dirs and symlinks of every kind, and
    base/outside with a secret. Returns the root."""
    root, outside = base / "root", base / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("secret\n")
    (root / "f").write_text("hello\n")
    (root / "a" / "g").write_text("data\n")
    for name, target in [
        ("to_etc", "/etc"), ("up", "../outside"), ("up_secret", "../outside/secret"),
        ("lf", "f"), ("lag", "a/g"), ("loop1", "loop2"), ("loop2", "loop1"), ("self", "self"),
        ("climb", "a/b/../../.."), ("dangling", "nothere"), ("la", "a"), ("abs", "/etc/passwd"),
        ("a/lup", "../f"),
    ]:
        os.symlink(target, root / name)
    return root


def snapshot(root: Path) -> Snapshot:
    """Every path under root (symlinks not followed) with its kind and content."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("symlink", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", "")
            else:
                found[rel] = ("file", path.read_bytes().decode(errors="replace"))
    return found


def assert_outside_untouched(base: Path) -> None:
    outside = base / "outside"
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_text() == "secret\n"
    assert (outside / "secret").stat().st_nlink == 1
    assert sorted(os.listdir(base)) == ["outside", "root"]


def run_both(tmp_path: Path, wasm: Path, args: list[str], guest_dir: str = ".",
             ) -> tuple[RunResult, str, Snapshot, Snapshot]:
    """Run under vnet and wasmtime on twin trees; returns vnet's result, wasmtime's
    stdout and both trees after the run (after checking that the outsides are intact)."""
    ours_base, ref_base = tmp_path / "vnet", tmp_path / "wasmtime"
    ours_root, ref_root = make_tree(ours_base), make_tree(ref_base)
    ours = run_module(wasm, args, preopens=[(str(ours_root), guest_dir)], timeout_s=60)
    ref = run_reference(wasm, args, preopens=[(str(ref_root), guest_dir)])
    assert ours.trap is None and not ref.trapped
    assert ours.exit_code == ref.exit_code == 0, ours.stderr
    assert not ours.guest.ctx.stats.internal_errors, ours.guest.ctx.diagnostics
    assert_outside_untouched(ours_base)
    assert_outside_untouched(ref_base)
    return ours, ref.stdout.decode(), snapshot(ours_root), snapshot(ref_root)


# --- raw preview1 calls ------------------------------------------------------------

# name → fs_probe commands (see the header of tests/guest/c/fs_probe.c).
SCENARIOS: dict[str, str] = {
    "escapes": """
        open 3 0 .. 0 r 0   open 3 0 ../outside/secret 0 r 0   open 3 0 /etc/passwd 0 r 0
        open 3 0 / 0 r 0   open 3 0 a/../.. 0 r 0   open 3 0 a/b/../../../outside 0 r 0
        open 3 1 to_etc 0 r 0   open 3 0 to_etc 0 r 0   open 3 1 to_etc/passwd 0 r 0
        open 3 1 up 0 r 0   open 3 1 up_secret 0 r 0   open 3 0 up/secret 0 r 0
        open 3 0 up/planted 1 rw 0   open 3 1 climb 0 r 0   open 3 1 abs 0 r 0
        open 3 0 abs 0 r 0   open 3 1 loop1 0 r 0   open 3 1 self 0 r 0   open 3 0 loop1/x 0 r 0
        stat 3 1 up_secret   stat 3 0 ..   stat 3 0 /etc   mkdir 3 ../evil   mkdir 3 up/evil
        rmdir 3 ../outside   unlink 3 ../outside/secret   unlink 3 up/secret
        rename 3 ../outside/secret 3 stolen   rename 3 f 3 ../f   rename 3 f 3 up/f
        symlink /etc/passwd 3 s_abs   symlink ../outside 3 s_rel   open 3 1 s_rel/secret 0 r 0
        link 3 0 ../outside/secret 3 hl   link 3 0 up/secret 3 hl   link 3 1 up_secret 3 hl
        link 3 0 f 3 ../hl   readlink 3 ../x 10   utimes 3 0 ../outside 5 6 5
        utimes 3 1 up_secret 5 6 5   open 3 0 a 0 r 0   open s0 0 .. 0 r 0   open s0 1 lup 0 r 0
        open s0 0 b/../.. 0 r 0   stat s0 0 b/..
    """,
    "open_flags": """
        open 3 0 f 0 r 0   open 3 1 lf 0 r 0   open 3 0 lf 0 r 0   open 3 1 lag 0 r 0
        open 3 1 a/lup 0 r 0   open 3 0 "" 0 r 0   open 3 0 . 0 r 0   open 3 0 f/ 0 r 0
        open 3 0 a/ 0 r 0   open 3 0 la/ 0 r 0   open 3 0 la 2 r 0   open 3 0 lf 2 r 0
        open 3 0 f/. 0 r 0   open 3 0 a//b 0 r 0   open 3 0 nothere/x 0 r 0
        open 3 0 dangling/ 0 r 0   open 3 0 newf 1 rw 0   open 3 0 newd/ 1 rw 0
        open 3 0 dangling 1 rw 0   open 3 1 dangling 1 rw 0   open 3 0 f 5 rw 0
        open 3 0 a 0 w 0   open 3 0 a 8 r 0   open 3 0 f 3 rw 0   open 3 0 a 6 r 0
        open 3 0 f 0 none 0   open 3 0 f 0 r 16   open 3 0 f 0 r 2   open 3 0 f 0 r 1
        open 3 0 f 0 r 4   open 3 0 a 0 r 1   open 3 0 a/. 5 r 0   open 3 0 a/. 1 r 0
        open 3 0 f/ 1 rw 0   open 3 0 . 8 rw 0   open 3 0 nn 9 none 0   write s0 x
        open 3 0 n2 1 r 0   write s0 y   open 3 0 f 2 r 0   open s3 0 x 0 r 0
    """,
    "file_io": """
        open 3 0 f 0 r 0   write s0 xx   read s0 3   read s0 10   read s0 10   tell s0
        seek s0 -2 1   seek s0 -100 1   seek s0 100 0   read s0 5   seek s0 -1 0   seek s0 2 2
        pread s0 3 1   tell s0   pwrite s0 zz 0   fsetsize s0 2
        open 3 0 f 0 w 0   read s1 2   pread s1 2 0   write s1 HE   tell s1   pwrite s1 LL 2
        tell s1   fsetsize s1 10   fstat s1
        open 3 0 f 0 w 1   write s2 TAIL   tell s2   pwrite s2 P 0   tell s2   fstat s2
        seek s2 0 0   write s2 Q   tell s2
        open 3 0 f 0 rw 0   read s3 100   setflags s3 1   write s3 Z   tell s3   setflags s3 16
        setflags s3 2   setflags s3 4   fdstat s3   setflags s3 0   fdstat s3   sync s3
        datasync s3   advise s3   allocate s3 0 10   close s3   close s3   read s3 1
        open 3 0 f 9 rw 0   fstat s4
    """,
    "fd_calls_on_dirs_and_stdio": """
        sync 3   datasync 3   advise 3   allocate 3 0 1   fsetsize 3 0   fstat 3   read 3 1
        write 3 x   seek 3 0 0   tell 3   pread 3 1 0   fdstat 3   setflags 3 0
        ftimes 3 0 0 10   readdir 1 100 0   open 1 0 f 0 r 0   stat 1 0 f   mkdir 1 x
        open 3 0 f 0 r 0   readdir s0 100 0   open s0 0 x 0 r 0   stat s0 0 x   mkdir 99 x
    """,
    "readdir": """
        open 3 0 a 0 r 0   ls s0 200   readdir s0 30 0   readdir s0 24 0   readdir s0 10 0
        readdir s0 25 1   readdir s0 52 0   readdir s0 200 2   readdir s0 200 3
        readdir s0 200 4   readdir s0 200 99   readdir s0 0 0   ls 3 64   ls 3 30
    """,
    "mkdir_rmdir_unlink": """
        mkdir 3 nd   mkdir 3 nd   mkdir 3 nd2/   mkdir 3 f   mkdir 3 lf   mkdir 3 dangling
        mkdir 3 x/y   mkdir 3 ""   mkdir 3 .   mkdir 3 a/..   rmdir 3 nd2   rmdir 3 nd/
        rmdir 3 a   rmdir 3 f   rmdir 3 la   rmdir 3 .   rmdir 3 ""   rmdir 3 a/b/..
        rmdir 3 nothere   rmdir 3 up   unlink 3 a   unlink 3 a/   unlink 3 f/   unlink 3 la/
        unlink 3 la   unlink 3 nothere   unlink 3 up   unlink 3 lf   unlink 3 .   ls 3 4096
    """,
    "symlink_readlink_link": """
        symlink f 3 s3   symlink f 3 s3   symlink x 3 a/   symlink x 3 nn/   symlink "" 3 s5
        symlink x 3 ""   symlink a/../.. 3 s6   symlink x 3 f/   symlink x 3 .
        readlink 3 lf 100   readlink 3 lf 0   readlink 3 up 3   readlink 3 f 10   readlink 3 a 10
        readlink 3 nothere 10   readlink 3 la/ 10   readlink 3 a/lup 100   readlink 3 "" 10
        readlink 3 lf/ 10   link 3 0 f 3 hl   link 3 0 f 3 hl   link 3 0 lf 3 hl3
        link 3 0 a 3 hl4   link 3 0 up_secret 3 hl5   link 3 0 f 3 a/   link 3 0 f 3 new/
        link 3 0 f/ 3 hl9   link 3 0 nothere 3 hl10   link 3 0 dangling 3 hl11   stat 3 0 hl3
        stat 3 0 f   stat 3 1 hl3
    """,
    "stat_and_times": """
        stat 3 0 .   stat 3 0 ""   stat 3 0 f/   stat 3 0 a/   stat 3 0 la   stat 3 1 la
        stat 3 0 la/   stat 3 0 to_etc   stat 3 1 dangling   stat 3 0 a/..   stat 3 0 a/b/../..
        stat 3 0 f/.   stat 3 0 a/.   stat 3 0 lf/   stat 3 1 lf/
        utimes 3 0 f 1000000000 2000000000 5   times 3 0 f   utimes 3 0 f 0 0 10   times 3 0 f
        utimes 3 0 f 1 1 3   utimes 3 0 f 1 1 12   utimes 3 0 f 7 9 1   times 3 0 f
        utimes 3 0 lf 5 6 5   times 3 0 lf   times 3 0 f   utimes 3 1 lf 5 6 5   times 3 0 f
        utimes 3 0 a/ 5 6 4   times 3 0 a   utimes 3 0 nothere 1 1 5   utimes 3 0 f 1 1 0
        utimes 3 1 la/ 3 3 5   times 3 0 a   utimes 3 1 a/.. 8 8 5   times 3 0 .
        open 3 0 f 0 r 0   ftimes s0 3 4 5   times 3 0 f   ftimes s0 3 4 3   ftimes s0 0 0 10
        times 3 0 f
    """,
    "rename": """
        rename 3 f 3 f2   rename 3 f2 3 a/f3   rename 3 nothere 3 x   rename 3 a 3 a/b/c
        rename 3 a 3 la   rename 3 la 3 la2   rename 3 la2/ 3 la3   rename 3 lf 3 lf/
        rename 3 lf/ 3 lf2   rename 3 a/ 3 a2/   rename 3 a2 3 a3/   rename 3 a3/. 3 a4
        rename 3 . 3 x   rename 3 a3/.. 3 x   rename 3 "" 3 x   rename 3 lf 3 ""
        rename 3 lf 3 a3   mkdir 3 e   rename 3 e 3 a3   rename 3 a3 3 e2   mkdir 3 e3
        rename 3 e3 3 e2   rename 3 up 3 up2   mkdir 3 q   open 3 0 q 0 r 0   rename 3 lf s0 lf
        rename s0 lf 3 lf   rename 3 lag 3 nn/   rename 3 lf 3 ./lf3   ls 3 4096
    """,
}

# What the escape scenario must show whatever the reference does.
MUST_BE_REFUSED = [
    "open ..: EPERM", "open ../outside/secret: EPERM", "open /etc/passwd: EPERM",
    "open up/secret: EPERM", "open up_secret: EPERM", "open climb: EPERM", "open loop1: ELOOP",
    "open self: ELOOP", "mkdir ../evil: EPERM", "rename ../outside/secret stolen: EPERM",
    "symlink /etc/passwd s_abs: EPERM", "open s_rel/secret: EPERM",
    "link ../outside/secret hl: EPERM", "link up_secret hl: EINVAL",
]


@pytest.fixture(scope="module")
def probe(build_guest: Callable[..., Path]) -> Path:
    return build_guest("fs_probe")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_raw_preview1_calls_match_wasmtime(tmp_path: Path, probe: Path, scenario: str) -> None:
    args = ["fs_probe", *shlex.split(SCENARIOS[scenario])]
    ours, ref_stdout, our_tree, ref_tree = run_both(tmp_path, probe, args)
    assert ours.stdout.decode().splitlines() == ref_stdout.splitlines()
    assert our_tree == ref_tree
    assert "probe:" not in ref_stdout  # every command was understood


def test_escape_attempts_are_refused(tmp_path: Path, probe: Path) -> None:
    args = ["fs_probe", *shlex.split(SCENARIOS["escapes"])]
    ours, _, tree, _ = run_both(tmp_path, probe, args)
    lines = ours.stdout.decode().splitlines()
    for expected in MUST_BE_REFUSED:
        assert expected in lines
    assert "s_abs" not in tree and "hl" not in tree
    assert tree["s_rel"] == ("symlink", "../outside")  # made, but can't be followed


# --- libc ----------------------------------------------------------------------------

def test_libc_file_operations_match_wasmtime(tmp_path: Path,
                                             build_guest: Callable[..., Path]) -> None:
    ours, ref_stdout, our_tree, ref_tree = run_both(
        tmp_path, build_guest("fs_ops"), ["fs_ops", "/sandbox"], guest_dir="/sandbox")
    out = ours.stdout.decode()
    assert out == ref_stdout
    assert our_tree == ref_tree
    assert "cat work/data.txt: [Jello, WORLD+more]" in out  # append, pwrite, truncate
    assert "open via symlink up: Operation not permitted" in out
    assert our_tree["work/d3/data.txt"] == ("file", "truncated\n")
    assert our_tree["work/ln"] == ("symlink", "d3/data.txt")


# --- the example -------------------------------------------------------------------------

def test_fs_tour_example_runs_the_same_natively_and_under_both_runtimes(
        tmp_path: Path, example_wasm: Callable[[str], Path]) -> None:
    wasm = example_wasm("fs_tour")
    args = ["fs_tour", "box", "hello", "from", "a", "guest"]
    env = [("GREETING", "hi there")]
    outputs = {}
    for name in ("vnet", "wasmtime"):
        (tmp_path / name / "box").mkdir(parents=True)
        preopens = [(str(tmp_path / name / "box"), "box")]
        if name == "vnet":
            result = run_module(wasm, args, env, preopens)
            assert result.exit_code == 0 and result.trap is None
            outputs[name] = result.stdout
        else:
            ref = run_reference(wasm, args, env, preopens)
            assert ref.exit_code == 0
            outputs[name] = ref.stdout
        assert (tmp_path / name / "box" / "tour.txt").read_text() == "hello from a guest\n"
    assert outputs["vnet"] == outputs["wasmtime"]
    assert b"tour.txt holds 19 bytes: hello from a guest\n" in outputs["vnet"]
    assert b"GREETING is hi there\n" in outputs["vnet"]
    assert b": no\n" not in outputs["vnet"]

    gcc = shutil.which("gcc")
    if gcc is None:
        return
    native = tmp_path / "fs_tour"
    subprocess.run([gcc, "-std=gnu11", "-O1", str(ROOT / "examples" / "fs_tour.c"), "-o",
                    str(native)], check=True, capture_output=True)
    (tmp_path / "native" / "box").mkdir(parents=True)
    ran = subprocess.run([str(native), *args[1:]], cwd=tmp_path / "native", capture_output=True,
                         env={**os.environ, "GREETING": "hi there"}, check=True, timeout=30)
    assert ran.stdout == outputs["vnet"]
