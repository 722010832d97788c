"""The POSIX pieces beyond sockets, natively and as a vnet guest: tests/guest/c/posix_all.c.

`posix_all.c` checks pipe/pipe2 (Linux's 16 x 4096-byte pipe buffer, page
merging of small writes, non-blocking EAGAIN, poll readiness, EOF, EPIPE),
dup/dup2/dup3 (one file description behind several fds: shared offset and
status flags, closing one leaves the other working, sockets too),
mkstemp/mkstemps/mkostemp/mkdtemp in a writable directory,
getrandom/getentropy and gethostname/uname, one `ok NAME` / `FAIL NAME` line
per check. The same source is

- compiled with gcc and run in a throwaway network namespace (only `lo`)
  and UTS namespace whose host name is ``alpha`` (`unshare --uts`), which
  validates every check against Linux;
- built with `vnet build` and run on the virtual host ``alpha`` with a
  preopened directory, in virtual and in real time, with `sandbox=1`, which
  adds the checks of what a sandbox cannot have (fork, daemon, exec, system,
  popen, wait, chroot fail as programs expect; root until a setuid drop,
  which is then final; the built-in root/nobody user database) and a syslog
  line that must reach the guest's stderr.

getrandom's bytes come from random_get, seeded in virtual time: the same
seed gives the same bytes, another seed other bytes.

Touches: ``ip`` (a namespace named vnposix-PID, through vnet.testing.netns),
``unshare``, gcc, pytest's tmp_path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vnet.build import build_wasm
from vnet.guest.runtime import Guest, GuestConfig
from vnet.network import Network
from vnet.testing.netns import Namespace, require_root

SOURCE = Path(__file__).resolve().parent / "c" / "posix_all.c"
HOST = "alpha"
LINE = re.compile(r"^(ok|FAIL) (\S+?)(?:: (.*))?$")
#: checks only the sandbox run makes (Linux would really fork, daemonize, exec …)
SANDBOX_CHECKS = {
    "fork", "vfork", "daemon", "setsid", "execv", "execvp", "execl", "chroot", "waitpid",
    "wait", "system_no_shell", "system", "popen", "getppid", "sethostname_refused",
    "root_in_sandbox", "getpwnam_nobody", "getpwnam_unknown", "getpwuid_root",
    "getgrnam_nogroup", "getpwnam_r", "getpwnam_r_erange", "drop_setgroups", "drop_setgid",
    "drop_setuid", "drop_is_final", "drop_seteuid_final", "drop_setgroups_final",
    "setuid_same", "syslog_called",
}


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def checks(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for line in self.stdout.splitlines():
            m = LINE.match(line)
            if m:
                found[m.group(2)] = None if m.group(1) == "ok" else (m.group(3) or "")
        return found

    def value(self, prefix: str) -> str:
        for line in self.stdout.splitlines():
            if line.startswith(prefix + " "):
                return line[len(prefix) + 1:]
        raise AssertionError(f"no {prefix!r} line\n{self.describe()}")

    def describe(self) -> str:
        return f"exit {self.exit_code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def _assert_all_pass(outcome: Outcome) -> None:
    failures = {k: v for k, v in outcome.checks.items() if v is not None}
    assert not failures, outcome.describe()
    m = re.search(r"^summary: (\d+) passed, 0 failed$", outcome.stdout, re.M)
    assert m and int(m.group(1)) == len(outcome.checks) > 60, outcome.describe()
    assert outcome.exit_code == 0, outcome.describe()


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    require_root("the native POSIX test creates a network namespace")
    base = tmp_path_factory.mktemp("native")
    binary = base / "posix_all"
    proc = subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", str(SOURCE), "-o",
                           str(binary)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"gcc posix_all.c:\n{proc.stderr}", pytrace=False)
    work = base / "work"
    work.mkdir()
    with Namespace(f"vnposix-{os.getpid()}") as ns:
        ns.check_isolated([])
        run = ns.run("unshare", "--uts", "sh", "-c", f'hostname {HOST} && exec "$0" "$@"',
                     str(binary), f"dir={work}", f"host={HOST}", check=False, timeout=120)
    yield Outcome(run.returncode, run.stdout, run.stderr)


@pytest.fixture(scope="module")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wasm([SOURCE], tmp_path_factory.mktemp("wasm") / "posix_all.wasm",
                      flags=["-Wextra", "-Werror"], quiet=True)


def run_on_vnet(wasm: Path, workdir: Path, virtual_time: bool = True, seed: int = 1,
                sandbox: bool = True) -> Outcome:
    net = Network(virtual_time=virtual_time, seed=seed)
    alpha = net.host(HOST)
    alpha.connect(net.segment("lan"), "10.0.0.1/24")
    out, err = bytearray(), bytearray()
    args = ["posix_all", "dir=/work", f"host={HOST}", f"sandbox={int(sandbox)}"]
    guest = Guest(net.scheduler, GuestConfig(
        module=str(wasm), args=args, preopens=[(str(workdir), "/work")], host=alpha,
        stdout=out.extend, stderr=err.extend, name=f"posix_all@{HOST}"))
    guest.start()
    finished = net.scheduler.run(until=lambda: guest.done, timeout_s=120)
    text_err = err.decode(errors="replace") + (f"[trap: {guest.trap}]\n" if guest.trap else "")
    code = guest.exit_code if guest.done and guest.exit_code is not None else -1
    outcome = Outcome(code, out.decode(errors="replace"), text_err)
    assert finished, f"posix_all did not finish under vnet\n{outcome.describe()}"
    return outcome


@pytest.fixture(scope="module")
def vnet_run(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run_on_vnet(wasm, tmp_path_factory.mktemp("vnet-work"))


def test_every_check_passes_natively(native: Outcome) -> None:
    _assert_all_pass(native)


def test_every_check_passes_on_vnet(vnet_run: Outcome) -> None:
    _assert_all_pass(vnet_run)


def test_every_check_passes_on_vnet_in_real_time(wasm: Path, tmp_path: Path) -> None:
    _assert_all_pass(run_on_vnet(wasm, tmp_path, virtual_time=False))


def test_same_checks_as_linux_plus_the_sandbox_ones(native: Outcome, vnet_run: Outcome) -> None:
    assert set(vnet_run.checks) - set(native.checks) == SANDBOX_CHECKS
    assert set(native.checks) <= set(vnet_run.checks)


def test_pipe_poll_bits_are_linuxs(native: Outcome, vnet_run: Outcome) -> None:
    """Linux's pipe_poll: an empty pipe without writers is POLLHUP alone (0x10), a pipe
    without readers POLLOUT|POLLERR (0xc); a socket's hang-up stays POLLIN|POLLHUP."""
    for outcome in (native, vnet_run):
        assert outcome.value("info pipe_eof_revents") == "0x10"
        assert outcome.value("info pipe_no_reader_revents") == "0xc"


def test_syslog_writes_to_the_guests_stderr(vnet_run: Outcome) -> None:
    assert vnet_run.stderr == "posix_all[42]: syslog line 7: No such file or directory\n"


def test_temporary_files_are_created_in_the_preopened_directory(wasm: Path,
                                                                 tmp_path: Path) -> None:
    """The guest removes what it made; a leftover name would show the template filled in."""
    _assert_all_pass(run_on_vnet(wasm, tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_getrandom_is_seeded_in_virtual_time(wasm: Path, vnet_run: Outcome,
                                             tmp_path: Path) -> None:
    first = vnet_run.value("random")
    assert len(first) == 128
    for name in ("again", "other"):
        (tmp_path / name).mkdir()
    again = run_on_vnet(wasm, tmp_path / "again")
    assert again.value("random") == first
    other = run_on_vnet(wasm, tmp_path / "other", seed=2)
    assert other.value("random") != first


DAEMON_PROGRAM = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int foreground = argc > 1 && strcmp(argv[1], "-f") == 0;
    if (!foreground && daemon(0, 0) < 0)
        printf("daemon: %s; staying in the foreground\n", strerror(errno));
    pid_t child = fork();
    if (child < 0)
        printf("fork: %s\n", strerror(errno));
    if (waitpid(-1, NULL, WNOHANG) < 0)
        printf("waitpid: %s\n", strerror(errno));
    struct utsname u;
    char name[64];
    if (uname(&u) == 0 && gethostname(name, sizeof name) == 0)
        printf("serving on %s (%s)\n", u.nodename, name);
    return 0;
}
"""


def test_vnet_cc_links_process_calls_and_a_daemon_carries_on(tmp_path: Path) -> None:
    """`vnet cc` (the SDK as an archive, linked before wasi-libc) resolves fork, daemon,
    waitpid and the SDK's uname; run, the program takes its error paths and serves."""
    src = tmp_path / "daemon.c"
    src.write_text(DAEMON_PROGRAM)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    vnet = [sys.executable, "-m", "vnet"]
    built = subprocess.run([*vnet, "cc", "-O2", "-Wall", "-Werror", str(src), "-o",
                            str(tmp_path / "daemon.wasm")], capture_output=True, text=True,
                           env=env, timeout=600)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([*vnet, "run", "--virtual-time", str(tmp_path / "daemon.wasm")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == (  # `vnet run` names the virtual host after the module
        "daemon: Function not implemented; staying in the foreground\n"
        "fork: Function not implemented\n"
        "waitpid: No child process\n"
        "serving on daemon (daemon)\n")


LINUX_BRANCH_PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

int main(void) {
#ifdef __linux__
    int p[2];
    unsigned char r[4];
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int tos = 0x10;
    if (pipe2(p, O_NONBLOCK) == 0 && getrandom(r, sizeof r, GRND_NONBLOCK) == 4 &&
        setsockopt(s, IPPROTO_IP, IP_TOS, &tos, sizeof tos) == 0)
        puts("linux branch");
#else
    puts("portable branch");
#endif
    return 0;
}
"""


def test_linux_flag_defines_linux_and_the_linux_branch_builds(tmp_path: Path) -> None:
    """`vnet build --linux` and `vnet cc --linux` take a program's `#ifdef __linux__`
    branch, as gcc on Linux does; without the flag the portable branch is built."""
    src = tmp_path / "branch.c"
    src.write_text(LINUX_BRANCH_PROGRAM)
    native = subprocess.run(["gcc", "-Wall", "-Werror", str(src), "-o", str(tmp_path / "n")],
                            capture_output=True, text=True, timeout=120)
    assert native.returncode == 0, native.stderr
    assert subprocess.run([str(tmp_path / "n")], capture_output=True, text=True,
                          timeout=60).stdout == "linux branch\n"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    vnet = [sys.executable, "-m", "vnet"]
    builds = {
        "build --linux": ["build", "--linux", str(src), "-o", str(tmp_path / "a.wasm")],
        "cc --linux": ["cc", "--linux", "-Wall", "-Werror", str(src), "-o",
                       str(tmp_path / "b.wasm")],
        "build": ["build", str(src), "-o", str(tmp_path / "c.wasm")],
    }
    outputs = {}
    for label, argv in builds.items():
        built = subprocess.run([*vnet, *argv], capture_output=True, text=True, env=env,
                               timeout=600)
        assert built.returncode == 0, f"{label}: {built.stderr}"
        ran = subprocess.run([*vnet, "run", "--virtual-time", argv[-1]], capture_output=True,
                             text=True, env=env, timeout=120)
        assert ran.returncode == 0, f"{label}: {ran.stderr}"
        outputs[label] = ran.stdout
    assert outputs == {"build --linux": "linux branch\n", "cc --linux": "linux branch\n",
                       "build": "portable branch\n"}
