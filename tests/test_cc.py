"""`vnet cc` and `vnet build` as build systems and users drive them.

A compile (`-c`) and a link done separately; a tiny CMake project through the
shipped toolchain file; a tiny autoconf/automake project through
`CC="vnet cc" ./configure --host=wasm32-wasi && make` (Debian's autoconf and
automake are installed with apt-get if missing); the build cache hit by any
spelling of a path with no compiler run; progress, `--strip`, `-o` into a
missing directory, and the one-line reason when a program needs something
WASI cannot have. Every built program is run under vnet and its output read.

`VNET_SLOW=1` adds the c-ares tests: c-ares from the pycares sdist on PyPI
(deps/c-ares, unmodified) built once with CMake and the toolchain file and
once with autoreconf, `CC="vnet cc" ./configure --host=wasm32-wasi` and
make (libtool from apt-get if missing); each time c-ares's `adig` asks a DNS
responder guest on another host under `vnet sim` (several minutes of CPU).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import vnet.build as vnet_build
from vnet.build import BuildError, build_wasm

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
VNET = [sys.executable, "-m", "vnet"]


def _env(bin_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def vnet(*args: str, cwd: Path | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VNET, *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=timeout)


@pytest.fixture(scope="module")
def vnet_on_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a `vnet` command (this checkout's), for CC= and CMake."""
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "vnet"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m vnet \"$@\"\n")
    shim.chmod(0o755)
    return bin_dir


SOCKET_MAIN = r"""
#include <stdio.h>
#include <sys/socket.h>
#include <netinet/in.h>
const char *greeting(void);
int main(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(5353);
    int bound = bind(fd, (struct sockaddr *)&a, sizeof a);
    printf("%s: socket fd %d, bind %d\n", greeting(), fd, bound);
    return 0;
}
"""


def test_cc_compiles_and_links_separately(tmp_path: Path) -> None:
    (tmp_path / "main.c").write_text(SOCKET_MAIN)
    (tmp_path / "greet.c").write_text('const char *greeting(void) { return "separate"; }\n')
    for name in ("main", "greet"):
        compiled = vnet("cc", "-O2", "-Wall", "-c", f"{name}.c", "-o", f"{name}.o",
                        cwd=tmp_path)
        assert compiled.returncode == 0, compiled.stderr
        assert (tmp_path / f"{name}.o").read_bytes()[:4] == b"\0asm"
    linked = vnet("cc", "main.o", "greet.o", "-o", "prog.wasm", cwd=tmp_path)
    assert linked.returncode == 0, linked.stderr
    ran = vnet("run", str(tmp_path / "prog.wasm"))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "separate: socket fd 3, bind 0\n"


def test_cc_prints_the_cmake_toolchain_file() -> None:
    printed = vnet("cc", "--print-toolchain")
    assert printed.returncode == 0
    path = Path(printed.stdout.strip())
    assert path.is_file() and path.suffix == ".cmake"
    assert "CMAKE_SYSTEM_NAME" in path.read_text()


def test_cmake_project_builds_with_the_toolchain_file(tmp_path: Path,
                                                      vnet_on_path: Path) -> None:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (pip install cmake)")
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.c").write_text(SOCKET_MAIN)
    (src / "greet.c").write_text('const char *greeting(void) { return "cmake"; }\n')
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(tiny C)\n"
        "include(CheckSymbolExists)\n"
        "check_symbol_exists(getaddrinfo netdb.h HAVE_GETADDRINFO)\n"
        "if(NOT HAVE_GETADDRINFO)\n  message(FATAL_ERROR \"no getaddrinfo\")\nendif()\n"
        "add_library(greet STATIC greet.c)\n"
        "add_executable(tiny main.c)\ntarget_link_libraries(tiny greet)\n")
    toolchain = vnet("cc", "--print-toolchain").stdout.strip()
    env = _env(vnet_on_path)
    configure = subprocess.run(["cmake", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", "-B",
                                str(tmp_path / "build"), str(src)], capture_output=True,
                               text=True, env=env, timeout=900)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = subprocess.run(["cmake", "--build", str(tmp_path / "build")], capture_output=True,
                           text=True, env=env, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    ran = vnet("run", str(tmp_path / "build" / "tiny.wasm"))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "cmake: socket fd 3, bind 0\n"


def _have_autotools() -> bool:
    if shutil.which("autoreconf") and shutil.which("automake"):
        return True
    if shutil.which("apt-get") is None:
        return False
    subprocess.run(["apt-get", "install", "-y", "-q", "autoconf", "automake"],
                   capture_output=True, timeout=600)
    return bool(shutil.which("autoreconf") and shutil.which("automake"))


def proc_log(directory: Path) -> str:
    return (directory / "config.log").read_text() + (directory / "configure.out").read_text()


def test_autoconf_project_configures_and_makes_with_vnet_cc(tmp_path: Path,
                                                             vnet_on_path: Path) -> None:
    if not _have_autotools():
        pytest.skip("autoconf/automake missing and apt-get could not install them")
    (tmp_path / "configure.ac").write_text(
        "AC_INIT([tiny], [1.0])\nAM_INIT_AUTOMAKE([foreign])\nAC_PROG_CC\n"
        "AC_CHECK_HEADERS([sys/socket.h netinet/in.h])\n"
        "AC_CHECK_FUNCS([socket getaddrinfo kill])\n"
        "AC_CONFIG_HEADERS([config.h])\nAC_CONFIG_FILES([Makefile])\nAC_OUTPUT\n")
    (tmp_path / "Makefile.am").write_text("bin_PROGRAMS = tiny\ntiny_SOURCES = main.c greet.c\n")
    (tmp_path / "main.c").write_text('#include "config.h"\n' + SOCKET_MAIN)
    (tmp_path / "greet.c").write_text(
        '#include "config.h"\nconst char *greeting(void) {\n#if defined(HAVE_SOCKET) && '
        'defined(HAVE_GETADDRINFO) && !defined(HAVE_KILL)\n  return PACKAGE_STRING;\n#else\n'
        '  return "wrong config";\n#endif\n}\n')
    env = _env(vnet_on_path)
    steps = [["autoreconf", "-i"], ["./configure", "--host=wasm32-wasi", "CC=vnet cc"],
             ["make"]]
    for step in steps:
        proc = subprocess.run(step, cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=900)
        assert proc.returncode == 0, f"{step}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        if step[0] == "./configure":
            (tmp_path / "configure.out").write_text(proc.stdout)
    assert "checking whether we are cross compiling... yes" in proc_log(tmp_path)
    ran = vnet("run", str(tmp_path / "tiny"))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "tiny 1.0: socket fd 3, bind 0\n"


def test_cache_hit_by_any_path_spelling_runs_no_compiler(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # a fresh module/object cache, but zig's own (libc) cache stays the shared one
    monkeypatch.setenv("ZIG_GLOBAL_CACHE_DIR",
                       os.environ.get("ZIG_GLOBAL_CACHE_DIR",
                                      str(vnet_build.cache_dir().parent / "zig")))
    monkeypatch.setenv("VNET_CACHE_DIR", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "inc").mkdir()
    (work / "inc" / "msg.h").write_text('#define MSG "spelled"\n')
    src = work / "spell.c"
    src.write_text('#include <stdio.h>\n#include "msg.h"\n'
                   'int main(void) { puts(MSG); return 0; }\n')
    (tmp_path / "link.c").symlink_to(src)
    first = build_wasm([src], tmp_path / "first.wasm", flags=[f"-I{work / 'inc'}"],
                       quiet=True)
    calls: list[list[str]] = []

    def no_compiler() -> list[str]:
        calls.append(["zig"])
        return ["false"]

    monkeypatch.setattr(vnet_build, "zig_command", no_compiler)
    monkeypatch.chdir(work)
    for i, (spelling, include) in enumerate([
            ("spell.c", ["-Iinc"]), ("./spell.c", ["-I", "./inc"]), (str(src), ["-Iinc/"]),
            ("../work/spell.c", [f"-I{work}/inc"]), (str(tmp_path / "link.c"), ["-I../work/inc"]),
            (f"{work}//spell.c", ["-I", "inc"])]):
        out = build_wasm([spelling], tmp_path / f"again{i}.wasm", flags=include, quiet=True)
        assert out.read_bytes() == first.read_bytes(), (spelling, include)
    assert calls == []  # every rebuild was a hit: the compiler was never asked for
    (work / "inc" / "msg.h").write_text('#define MSG "changed"\n')
    with pytest.raises(BuildError):  # a changed header misses the cache: the compiler runs
        build_wasm([src], tmp_path / "changed.wasm", flags=["-Iinc"], quiet=True)
    assert calls


def test_build_progress_strip_and_missing_output_dir(tmp_path: Path) -> None:
    src = tmp_path / "small.c"
    src.write_text('#include <stdio.h>\nint main(void) { puts("small"); return 0; }\n')
    plain = vnet("build", "-v", str(src), "-o", str(tmp_path / "plain.wasm"))
    assert plain.returncode == 0, plain.stderr
    lines = [line for line in plain.stderr.splitlines() if line.startswith("building ")]
    assert lines[0].startswith("building 1/") and lines[0].endswith(" small.c")
    total = lines[0].split()[1].split("/")[1]
    assert lines[-1] == f"building {total}/{total} plain.wasm"
    assert len(lines) == int(total)
    stripped = vnet("build", "--strip", "-g0", str(src), "-o", str(tmp_path / "small.wasm"))
    assert stripped.returncode == 0, stripped.stderr
    assert (tmp_path / "small.wasm").stat().st_size < (tmp_path / "plain.wasm").stat().st_size
    assert vnet("run", str(tmp_path / "small.wasm")).stdout == "small\n"
    missing = vnet("build", str(src), "-o", str(tmp_path / "nodir" / "x.wasm"))
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert "No such file or directory" in missing.stderr
    assert not (tmp_path / "nodir").exists()


@pytest.mark.parametrize(("header", "call", "reason"), [
    ("signal.h", "kill(1, 9)", "kill: WASI has no signals between processes"),
    ("signal.h", "sigaction(SIGINT, 0, 0)", "sigaction: WASI has no signals"),
    ("setjmp.h", "setjmp(0)", "setjmp/longjmp: build with -pthread"),
])
def test_build_names_what_wasi_cannot_have_in_one_line(tmp_path: Path, header: str, call: str,
                                                       reason: str) -> None:
    src = tmp_path / "proc.c"
    src.write_text(f"#include <{header}>\nint main(void) {{ return {call}; }}\n")
    built = vnet("build", str(src), "-o", str(tmp_path / "proc.wasm"))
    assert built.returncode == 1
    last = built.stderr.strip().splitlines()[-1]
    assert last.startswith("vnet build:") and reason in last
    cc = vnet("cc", str(src), "-o", str(tmp_path / "proc2.wasm"))
    assert cc.returncode != 0
    assert reason in cc.stderr.strip().splitlines()[-1]


SLOW = pytest.mark.skipif(os.environ.get("VNET_SLOW") != "1", reason="VNET_SLOW=1: builds c-ares")
ADIG_TOPOLOGY = """
[sim]
virtual_time = true
seed = 1
duration = "30s"
clients = ["client/adig"]

[segments.lan]
latency = "1ms"

[hosts.ns]
[[hosts.ns.nics]]
segment = "lan"
addresses = ["10.0.0.53/24"]
[[hosts.ns.guests]]
name = "dns"
module = "{responder}"
args = ["10.0.0.99"]

[hosts.client]
[[hosts.client.nics]]
segment = "lan"
addresses = ["10.0.0.2/24"]
[[hosts.client.guests]]
name = "adig"
module = "{adig}"
args = ["-s", "10.0.0.53", "www.example.test"]
start = "100ms"
"""


@pytest.fixture(scope="module")
def c_ares(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """c-ares's sources, unmodified, from the pycares sdist on PyPI (deps/c-ares)."""
    where = tmp_path_factory.mktemp("pycares")
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "pycares",
                              "--no-binary", ":all:", "--no-deps", "-d", str(where)],
                             capture_output=True, text=True, timeout=600)
    assert fetched.returncode == 0, fetched.stderr
    with tarfile.open(next(where.glob("pycares-*.tar.gz"))) as tar:
        tar.extractall(where, filter="data")
    return next(where.glob("pycares-*/deps/c-ares"))


def _adig_answers(adig: Path, tmp_path: Path) -> None:
    """adig (a c-ares example program) asks a DNS responder guest on another host."""
    responder = build_wasm([HERE / "cc" / "dns_responder.c"], tmp_path / "dnsr.wasm",
                           quiet=True)
    topology = tmp_path / "adig.toml"
    topology.write_text(ADIG_TOPOLOGY.format(responder=responder, adig=adig))
    ran = vnet("sim", str(topology), timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ns/dns      | query type 1 answered" in ran.stdout
    assert "status: NOERROR" in ran.stdout
    answer = [line for line in ran.stdout.splitlines() if line.startswith("client/adig")
              and "IN\tA\t" in line]
    assert answer and answer[0].split()[-1] == "10.0.0.99"


@SLOW
def test_c_ares_builds_unmodified_with_cmake_and_adig_asks_a_dns_guest(
        tmp_path: Path, vnet_on_path: Path, c_ares: Path) -> None:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    toolchain = vnet("cc", "--print-toolchain").stdout.strip()
    env = _env(vnet_on_path)
    build = tmp_path / "build"
    # CARES_THREADS=OFF: its event thread needs pipe(), which wasi-libc lacks
    for step in (["cmake", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", "-DCARES_STATIC=ON",
                  "-DCARES_SHARED=OFF", "-DCARES_BUILD_TOOLS=ON", "-DCARES_THREADS=OFF",
                  "-DCMAKE_BUILD_TYPE=Release", "-B", str(build), str(c_ares)],
                 ["cmake", "--build", str(build), "-j", "2"]):
        proc = subprocess.run(step, capture_output=True, text=True, env=env, timeout=3600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    _adig_answers(build / "bin" / "adig.wasm", tmp_path)


@SLOW
def test_c_ares_builds_unmodified_with_configure_and_make(
        tmp_path: Path, vnet_on_path: Path, c_ares: Path) -> None:
    if not _have_autotools() or shutil.which("libtoolize") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "libtool"], capture_output=True,
                       timeout=600)
    if shutil.which("libtoolize") is None or shutil.which("autoreconf") is None:
        pytest.skip("autoconf/automake/libtool missing and apt-get could not install them")
    source = tmp_path / "c-ares"
    shutil.copytree(c_ares, source)
    env = _env(vnet_on_path)
    # Cross-compiling answers configure cannot find by linking: zig's include path
    # has musl's <sys/epoll.h> and wasi-libc declares gethostname, but neither links.
    steps = [["autoreconf", "-fi"],
             ["./configure", "--host=wasm32-wasi", "CC=vnet cc", "--disable-shared",
              "--enable-static", "--disable-tests", "--disable-cares-threads",
              "ac_cv_header_sys_epoll_h=no", "ac_cv_have_decl_epoll_create1=no",
              "ac_cv_have_decl_gethostname=no"],
             ["make", "-j2"]]
    for step in steps:
        proc = subprocess.run(step, cwd=source, capture_output=True, text=True, env=env,
                              timeout=3600)
        assert proc.returncode == 0, f"{step}: {proc.stdout[-4000:]}{proc.stderr[-4000:]}"
    _adig_answers(source / "src" / "tools" / "adig", tmp_path)


def test_cxx_builds_with_vnet_cxx(tmp_path: Path) -> None:
    """`vnet c++` is zig's clang++ and libc++ (no exceptions in wasm32-wasi: it says so)."""
    (tmp_path / "hello.cpp").write_text(
        "#include <iostream>\n#include <string>\n#include <vector>\n#include <sys/socket.h>\n"
        "int main() { std::vector<std::string> words{\"c++\", \"on\", \"vnet\"};\n"
        "  int fd = socket(AF_INET, SOCK_DGRAM, 0);\n"
        "  for (const auto &w : words) std::cout << w << ' ';\n"
        "  std::cout << \"fd \" << fd << std::endl; return 0; }\n")
    built = vnet("c++", "-O2", "hello.cpp", "-o", "hello.wasm", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    ran = vnet("run", str(tmp_path / "hello.wasm"))
    assert ran.stdout == "c++ on vnet fd 3\n"
    (tmp_path / "throw.cpp").write_text(
        "#include <stdexcept>\nint main() { throw std::runtime_error(\"no\"); }\n")
    refused = vnet("c++", "-O2", "throw.cpp", "-o", "throw.wasm", cwd=tmp_path)
    assert refused.returncode != 0
    assert "C++ exceptions" in refused.stderr.strip().splitlines()[-1]
