"""The `vnet` command line: build and run guests.

    vnet build SRC.c [SRC.c ...] -o OUT.wasm [-I DIR] [-D NAME[=VALUE]] [-O LEVEL]
             [-g0] [--strip] [-v] [--linux]
    vnet cc|c++ CLANG-ARGS...   (a compiler for configure, Make, CMake: vnet.cc)
    vnet cc --print-toolchain   (the CMake toolchain file)
    vnet GUEST.wasm|GUEST.wat [ARGS...]   (= vnet run GUEST ARGS, as in wasmtime)
    vnet run [--dir HOST[::GUEST]] [--env NAME=VALUE] [--addr CIDR] [--tcplisten ADDR:PORT]
             [--pcap FILE|-] [--pcap-filter MATCH] [--pcap-loopback]
             [--virtual-time] [--seed N] [--schedule explore|fifo] GUEST.wasm [ARGS...]
    vnet sim TOPOLOGY.toml [--virtual-time] [--seed N] [--schedule explore|fifo]
             [--pcap-dir DIR] [--duration D]
             [--pcap-segment NAME] [--pcap FILE|-] [--pcap-filter MATCH] [--pcap-loopback]
             [--draw FILE.svg]
    vnet sweep TOPOLOGY.toml --seeds 1-1000 [--check CMD] [--results DIR] [--keep]
             [--workers N | --cluster ADDRESS] [--duration D] [--schedule explore|fifo]
    vnet firewall check [--strict] FILE...
    vnet firewall show [--firewall FILE] [--allow G] [--allow-out G] [--deny G] [--deny-out G]
    vnet pcap diff A.pcapng B.pcapng [--ignore FIELD[,FIELD]] [--max N]
    vnet pcap ladder CAPTURE.pcapng -o FLOW.svg [--filter MATCH] [--max N]

`vnet run` enforces the sandbox rules of `firewall.grants` (the guest reaches
its own virtual network and nothing beyond) unless `--firewall FILE` names
other rules; `--allow`/`--allow-out`/`--deny`/`--deny-out PROTO:HOST:PORTS`
grants go first, in order.

Flag spellings follow `wasmtime run` where the two overlap (`--dir`,
`--env`). Usage errors, bad files and invalid modules print one line naming
the problem and exit with status 2; `vnet run` otherwise exits with the
guest's exit status (134 if it trapped, as wasmtime does). SIGINT or SIGTERM
stops `vnet run` and `vnet sim` cleanly (vnet.sim.signals): captures closed
complete, the summary printed, TUN devices and namespaces removed, exit
status 130 or 143. `--pcap -` streams pcapng to stdout for `wireshark -k -i
-`; guest output and summaries then go to stderr. This module parses
arguments and reports; the work is done by vnet.build, vnet.guest, vnet.sim
and vnet.pictures.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vnet.guest.fdtable import InputStream
    from vnet.scheduler import Scheduler

USAGE_ERROR = 2


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message}")


def _parse_env(values: Sequence[str]) -> list[tuple[str, str]]:
    env = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            # wasmtime's --env NAME inherits NAME from the host environment
            if not name or name not in os.environ:
                raise CliError(f"--env {item!r}: expected NAME=VALUE (or NAME set on the host)")
            value = os.environ[name]
        if not name or "\0" in name or "\0" in value:
            raise CliError(f"--env {item!r}: expected NAME=VALUE with a non-empty NAME")
        env.append((name, value))
    return env


def _parse_dirs(values: Sequence[str]) -> list[tuple[str, str]]:
    dirs = []
    for item in values:
        host, sep, guest = item.partition("::")
        if not host:
            raise CliError(f"--dir {item!r}: expected HOST_DIR[::GUEST_DIR]")
        if not sep:
            guest = host
        if not guest:
            raise CliError(f"--dir {item!r}: the guest path after '::' is empty")
        if not Path(host).is_dir():
            raise CliError(f"--dir {item!r}: {host} is not a directory")
        dirs.append((host, guest))
    return dirs


def _resolvers(values: Sequence[str]) -> list[str]:
    """`--resolver` addresses, checked (CliError for one that is not an address)."""
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise CliError(f"vnet run: --resolver {value!r} is not an IP address") from None
    return list(values)


def _parse_addrs(values: Sequence[str]) -> list[str]:
    import ipaddress

    out = []
    for item in values:
        if "/" not in item:
            raise CliError(f"--addr {item!r}: expected ADDRESS/PREFIX, e.g. 10.0.0.2/24")
        try:
            ipaddress.ip_interface(item)
        except ValueError:
            raise CliError(f"--addr {item!r}: not an IPv4 or IPv6 address with prefix") from None
        out.append(item)
    return out


def _parse_tcplisten(values: Sequence[str]) -> list[tuple[str, int]]:
    import ipaddress

    out = []
    for item in values:
        addr, sep, port = item.rpartition(":")
        addr = addr.strip("[]")
        try:
            if not sep:
                raise ValueError
            ipaddress.ip_address(addr)
            number = int(port)
            if not 0 < number < 65536:
                raise ValueError
        except ValueError:
            raise CliError(f"--tcplisten {item!r}: expected ADDR:PORT, e.g. 0.0.0.0:8080") \
                from None
        out.append((addr, number))
    return out


def _open_tun(ns: argparse.Namespace, net: Any, host: Any, addrs: list[str],
              capture: Any) -> Any:
    import ipaddress

    from firewall.nat import Publish
    from vnet.link.tun_bridge import TunBridge, TunBridgeError

    if ns.virtual_time:
        raise CliError("vnet run: --tun runs in real time only (drop --virtual-time)")
    kernel_addrs = _parse_addrs(ns.tun_kernel_addr) or ["10.200.0.1/30"]
    tun_addrs = _parse_addrs(ns.tun_addr) or ["10.200.0.2/30"]
    try:
        publish = [Publish.parse(p) for p in ns.publish]
    except ValueError as e:
        raise CliError(str(e)) from None
    # With --tun-nat the kernel gets no route back: the guest is reached through NAT only.
    routes = [] if ns.tun_nat else sorted({str(ipaddress.ip_interface(a).network)
                                           for a in addrs})
    _check_tun_device(ns.tun_device, ns.tun_netns)
    try:
        bridge = TunBridge(net, host, device=ns.tun_device, netns=ns.tun_netns,
                           kernel_addresses=kernel_addrs, router_addresses=tun_addrs,
                           routes=routes, snat=ns.tun_nat, publish=publish)
        bridge.open()
    except TunBridgeError as e:
        raise CliError(f"vnet run: {e}") from None
    for cidr in tun_addrs:
        default = "::/0" if ":" in cidr else "0.0.0.0/0"
        host.add_route(default, ifname=bridge.port_name, metric=100)
    # Answer the kernel from the address it asked for (--addr), not the bridge's own.
    for family in (4, 6):
        own = [a for a in addrs if ipaddress.ip_interface(a).version == family]
        if own and not ns.tun_nat:
            with net.scheduler.lock:
                host.stack.prefer_source(bridge.port_name, own[0])
    if capture is not None:
        capture.describe(f"{host.name}/{bridge.port_name}",
                         f"{host.name} {bridge.port_name}: TUN bridge to kernel device "
                         f"{bridge.device}" + (f" in namespace {bridge.netns}" if bridge.netns
                                               else "")
                         + f" (kernel {' '.join(kernel_addrs)}, vnet {' '.join(tun_addrs)})")
        bridge.capture(capture)
    return bridge


IFNAMSIZ = 16  # Linux's limit on a network device's name, with its NUL


def _parse_guest_tun(specs: Sequence[str]) -> list[Any]:
    """--guest-tun NAME[:tun|tap][=CIDR,...] → vnet.link.guest_tun.GuestDeviceGrant each."""
    from vnet.link.guest_tun import parse_guest_tun

    grants = []
    for spec in specs:
        try:
            grants.append(parse_guest_tun(spec))
        except ValueError as e:
            raise CliError(f"vnet run: --guest-tun {spec!r}: {e}") from None
    names = [g.name for g in grants]
    if len(set(names)) != len(names):
        raise CliError("vnet run: --guest-tun: a device name is granted twice")
    return grants


def _check_tun_name(name: str) -> None:
    if not name or len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name) \
            or name in (".", ".."):
        raise CliError(f"vnet run: --tun-device {name!r}: a Linux device name is 1 to "
                       f"{IFNAMSIZ - 1} characters, without '/' or spaces")


def _device_exists(name: str, netns: str | None) -> bool:
    import subprocess

    if netns is None:
        return os.path.exists(f"/sys/class/net/{name}")
    try:
        proc = subprocess.run(["ip", "-n", netns, "link", "show", "dev", name],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _check_tun_device(name: str, netns: str | None) -> None:
    """Refuse a device name that is taken: vnet deletes only the TUN device it created."""
    _check_tun_name(name)
    if _device_exists(name, netns):
        where = f" in namespace {netns}" if netns else ""
        raise CliError(f"vnet run: --tun-device {name}: a network device of that name already "
                       f"exists{where}; vnet creates (and later deletes) its own device, so "
                       "name one that does not exist")


def _check_pcap_dir(directory: str) -> None:
    """`--pcap-dir`: made if missing and tried for writing before anything runs."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".vnet-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CliError(f"vnet sim: --pcap-dir {directory}: cannot write there: "
                       f"{e.strerror or e}") from None


def _capture_filter(text: str | None, where: str = "--pcap-filter") -> Any:
    from vnet.link.capture import CaptureFilter

    if text is None:
        return None
    try:
        return CaptureFilter(text)
    except ValueError as e:
        raise CliError(f"{where}: {e}") from None


def _cmd_sim(ns: argparse.Namespace) -> int:
    from vnet.guest.runtime import GuestLoadError
    from vnet.scheduler import DEFAULT_SCHEDULE
    from vnet.sim.report import sim_summary, write_json
    from vnet.sim.runner import CapturePlan, print_summary, run
    from vnet.sim.signals import Interrupts
    from vnet.sim.topology import TopologyError, _duration, _Locator, load

    _check_output_flags(ns, "sim")
    if ns.progress is not None and not ns.progress > 0:
        raise CliError("vnet sim: --progress SECONDS must be > 0")
    if ns.pcap_dir:
        _check_pcap_dir(ns.pcap_dir)
    plan = CapturePlan(pcap_dir=Path(ns.pcap_dir) if ns.pcap_dir else None, pcap=ns.pcap,
                       segments=ns.pcap_segment, loopback=ns.pcap_loopback,
                       filter=_capture_filter(ns.pcap_filter, "vnet sim: --pcap-filter"))
    with Interrupts() as interrupts:
        try:
            topo = load(ns.topology)
            if ns.draw:
                from vnet.pictures.topology import write_topology_svg

                write_topology_svg(topo, ns.draw)
            duration = None
            if ns.duration is not None:
                duration = _duration(ns.duration, (Path(ns.topology), _Locator(""),
                                                   ("duration",)))
            virtual = topo.virtual_time if ns.virtual_time is None else ns.virtual_time
            seed = topo.seed if ns.seed is None else ns.seed
            schedule = ns.schedule or topo.schedule or DEFAULT_SCHEDULE
            if ns.verbose:
                print(f"vnet sim: {ns.topology}: "
                      + (f"virtual time, seed {seed}, schedule {schedule}" if virtual
                         else "real time"), file=sys.stderr)
            result = run(topo, virtual_time=ns.virtual_time, seed=ns.seed, duration_ns=duration,
                         plan=plan, interrupted=interrupts.interrupted,
                         out=sys.stderr.buffer if ns.json == "-" else None,
                         schedule=ns.schedule, progress_s=ns.progress, settle=True)
        except TopologyError as e:
            raise CliError(f"vnet sim: {e}") from None
        except GuestLoadError as e:
            raise CliError(f"vnet sim: {e}") from None
        except ValueError as e:
            raise CliError(f"vnet sim: {e}") from None
        except OSError as e:
            raise CliError(f"vnet sim: {e.filename}: {e.strerror}") from None
        except KeyboardInterrupt:  # a second signal: the captures are closed, no summary
            print(f"vnet sim: interrupted by {interrupts.name or 'SIGINT'} (twice)",
                  file=sys.stderr)
            return interrupts.exit_status if interrupts.signum else 130
        if not ns.quiet:
            print_summary(result, sys.stderr if plan.live or ns.json == "-" else None)
        if ns.json is not None:
            try:
                write_json(sim_summary(result, seed=seed, virtual_time=virtual,
                                       schedule=schedule), ns.json)
            except OSError as e:
                raise CliError(f"vnet sim: --json {ns.json}: {e.strerror}") from None
        if interrupts.interrupted():
            print(f"vnet sim: interrupted by {interrupts.name}", file=sys.stderr)
            return interrupts.exit_status
    return 0 if result.ok else 1


def _cmd_demo(ns: argparse.Namespace) -> int:
    from vnet.sim.demo import main as demo_main

    return demo_main([ns.workdir] if ns.workdir else [])


def _cmd_sweep(ns: argparse.Namespace) -> int:
    from vnet.sim.sweep import main_args
    from vnet.sim.topology import TopologyError, _duration, _Locator

    try:
        duration = None if ns.duration is None else _duration(
            ns.duration, (Path(ns.topology), _Locator(""), ("duration",)))
        return main_args(ns.topology, ns.seeds, workers=ns.workers, cluster=ns.cluster,
                         check=ns.check, results=ns.results, keep=ns.keep,
                         duration_ns=duration, schedule=ns.schedule)
    except (TopologyError, ValueError, RuntimeError) as e:
        raise CliError(f"vnet sweep: {e}") from None


def _add_schedule_flag(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--schedule", choices=("fifo", "explore"), default=None,
                        help="virtual time: the order of guests runnable at the same instant: "
                        "explore (the seed picks) or fifo (first in, first out, whatever the "
                        f"seed) (default: {default})")


def _add_output_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", metavar="FILE",
                        help=f"write {what} as JSON to FILE ('-': stdout, and guest output "
                        "goes to stderr)")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true",
                          help="print no summary and no notes: guest output and errors only")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="say more: the seed and mode at the start, a summary at the end")


def _check_output_flags(ns: argparse.Namespace, command: str) -> None:
    if ns.json == "-" and ns.pcap == "-":
        raise CliError(f"vnet {command}: --json - and --pcap - both want stdout: give one "
                       "of them a file")
    if ns.json not in (None, "-"):
        parent = Path(ns.json).resolve().parent
        if not parent.is_dir():
            raise CliError(f"vnet {command}: --json {ns.json}: no such directory {parent}")


def _add_firewall_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--firewall", metavar="FILE",
                        help="enforce this rule file instead of the sandbox rules (by default "
                        "the guest reaches its own virtual network and nothing beyond)")
    for flag, meaning in (("--allow", "accept traffic coming in from HOST to local PORTS"),
                          ("--allow-out", "accept traffic going out to HOST:PORTS"),
                          ("--deny", "drop traffic coming in from HOST to local PORTS"),
                          ("--deny-out", "reject traffic going out to HOST:PORTS")):
        parser.add_argument(flag, action="append", default=[], metavar="PROTO:HOST:PORTS",
                            help=f"{meaning}, e.g. tcp:10.0.0.0/8:443, udp:*.game.test:27015, "
                            "tcp:[fd00::/8]:80,443 (repeatable; first match wins)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vnet",
        description="Run untrusted WebAssembly network programs on a virtual, inspectable, "
        "reproducible network.",
        epilog="Also: `vnet cc ARGS` / `vnet c++ ARGS` compile and link like clang for "
        "wasm32-wasi with the vnet SDK (CC=\"vnet cc\" ./configure --host=wasm32-wasi; "
        "CMake: -DCMAKE_TOOLCHAIN_FILE=$(vnet cc --print-toolchain)); `vnet GUEST.wasm ARGS` "
        "is `vnet run GUEST.wasm ARGS`.",
    )
    parser.add_argument("--version", action="version", version=f"vnet {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    build = sub.add_parser(
        "build", help="compile C sources to a wasm32-wasip1 guest (zig + the vnet SDK)",
        description="Compile portable C to a wasm32-wasip1 guest with the zig compiler from "
        "the ziglang package, adding the vnet SDK's headers and sources. Builds are cached "
        "by content (~/.cache/vnet/build, or $VNET_CACHE_DIR).",
    )
    build.add_argument("sources", nargs="+", metavar="SRC.c", help="C source files")
    build.add_argument("-o", "--output", required=True, metavar="OUT.wasm",
                       help="where to write the module")
    build.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                       help="add an include directory")
    build.add_argument("-D", dest="define", action="append", default=[], metavar="NAME[=VALUE]",
                       help="define a preprocessor macro")
    build.add_argument("-O", dest="opt", default="2", choices=["0", "1", "2", "3", "s", "z"],
                       help="optimisation level (default 2)")
    # -g is a flag and -g0..-g3 are options of their own, as a compiler spells them:
    # `vnet build -g x.c` must not read x.c as the level
    build.add_argument("-g", dest="debug_info", action="store_const", const="", default=None,
                       help="debug information (DWARF: file:line in trap backtraces)")
    for level in "0123":
        build.add_argument(f"-g{level}", dest="debug_info", action="store_const", const=level,
                           help="no debug information, for small modules" if level == "0"
                           else argparse.SUPPRESS)
    build.add_argument("--strip", action="store_true",
                       help="strip debug information and names from the module (smallest)")
    build.add_argument("-v", "--verbose", action="store_true",
                       help="print progress (building 3/10 x.c) even when stderr is not a "
                       "terminal")
    build.add_argument("--no-cache", action="store_true", help="always run the compiler")
    build.add_argument("-pthread", action="store_true",
                       help="POSIX threads (vnet's green threads: the module is transformed "
                       "by Binaryen's Asyncify, installed from npm on first use)")
    build.add_argument("--linux", action="store_true",
                       help="define __linux__ (and __linux), for programs with a Linux branch "
                       "(same as -D__linux__ -D__linux; `vnet cc --linux` too)")
    build.set_defaults(func=_cmd_build, parser=build)

    run = sub.add_parser(
        "run", help="run a guest on its own virtual host",
        description="Run a wasm32-wasip1 guest under vnet's own WASI implementation. "
        "Exits with the guest's exit status (134 if it trapped).",
    )
    run.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                     help="preopen a host directory, optionally under another guest path "
                     "(repeatable)")
    run.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                     help="set an environment variable for the guest (repeatable)")
    run.add_argument("--addr", action="append", default=[], metavar="CIDR",
                     help="an address for the guest host's eth0, e.g. 10.0.0.2/24 or "
                     "fd00::2/64 (repeatable; eth0 always has an IPv6 link-local address)")
    run.add_argument("--resolver", action="append", default=[], metavar="ADDRESS",
                     help="a DNS server for the guest's host (repeatable): listed in the "
                     "guest's /etc/resolv.conf, asked by the SDK's getaddrinfo, and the only "
                     "place the default firewall lets DNS (port 53) go")
    run.add_argument("--tcplisten", action="append", default=[], metavar="ADDR:PORT",
                     help="open a listening TCP socket for the guest before it starts "
                     "(fd 3, 4, …), as wasmtime's --tcplisten does (repeatable). Unlike "
                     "wasmtime's, the socket is on the guest's virtual host, not the "
                     "machine's: reach it from the host with --tun --publish")
    run.add_argument("--guest-net-admin", action="store_true",
                     help="let the guest configure every interface of its virtual host "
                     "(SIOCS* ioctls, rtnetlink changes), as CAP_NET_ADMIN does; without it "
                     "a guest configures only the interfaces it was given")
    run.add_argument("-S", dest="wasi_options", action="append", default=[],
                     metavar="OPTION[=VALUE]",
                     help="wasmtime's WASI options: tcplisten=ADDR:PORT (= --tcplisten, a "
                     "virtual socket), inherit-network (granted as --allow-out tcp:*:* "
                     "--allow-out udp:*:*; beyond the virtual network only with --tun), "
                     "allow-ip-name-lookup (always on: names resolve through the virtual "
                     "network's resolver)")
    run.add_argument("-W", dest="wasm_options", action="append", default=[],
                     metavar="OPTION=VALUE",
                     help="wasmtime's wasm options: max-memory-size=BYTES (= --max-memory), "
                     "timeout=DURATION (wall-clock, e.g. 10s, 500ms: stop the guest, exit 134), "
                     "fuel=N is not supported")
    run.add_argument("--invoke", metavar="FUNCTION",
                     help="run this export instead of _start, with ARGS as its arguments; its "
                     "results are printed one per line (as wasmtime run --invoke)")
    run.add_argument("--pcap", metavar="FILE",
                     help="capture eth0 (and the TUN port, with --tun) to a pcapng file; "
                     "'-' streams pcapng to stdout, flushed per packet (guest output then "
                     "goes to stderr): vnet run --pcap - ... | wireshark -k -i -")
    run.add_argument("--pcap-filter", metavar="MATCH",
                     help="capture only packets matching this firewall match, e.g. "
                     "'tcp dport 80', 'ip saddr 10.0.0.0/24 udp', or several joined by "
                     "'or': 'tcp dport 80 or tcp sport 80'")
    run.add_argument("--pcap-loopback", action="store_true",
                     help="capture the guest host's loopback interface too")
    run.add_argument("--guest-tun", action="append", default=[],
                     metavar="NAME[:tun|tap][=CIDR,...]",
                     help="grant the guest a TUN (default) or TAP device NAME, which it "
                     "creates with open(\"/dev/net/tun\") and ioctl(TUNSETIFF) and which "
                     "appears on its host with these addresses (repeatable; not the kernel "
                     "bridge --tun)")
    tun = run.add_argument_group(
        "TUN bridge (real time, needs CAP_NET_ADMIN and /dev/net/tun)",
        "Bridge the guest's host to the Linux kernel through a TUN device: the kernel side "
        "gets --tun-kernel-addr and routes to the guest's --addr prefixes; the guest host "
        "gets --tun-addr and a default route through the bridge.")
    tun.add_argument("--tun", action="store_true", help="give the guest a TUN bridge")
    tun.add_argument("--tun-device", default="vnet0", metavar="NAME",
                     help="TUN device name (default vnet0)")
    tun.add_argument("--tun-netns", metavar="NS",
                     help="create the device in this network namespace (created if missing)")
    tun.add_argument("--tun-kernel-addr", action="append", default=[], metavar="CIDR",
                     help="kernel-side address of the device (default 10.200.0.1/30)")
    tun.add_argument("--tun-addr", action="append", default=[], metavar="CIDR",
                     help="the guest host's address on the bridge (default 10.200.0.2/30)")
    tun.add_argument("--tun-nat", action="store_true",
                     help="source-NAT the guest's traffic to its bridge address")
    tun.add_argument("--publish", action="append", default=[],
                     metavar="[HOSTADDR:]PORT:GUESTADDR:PORT[/udp]",
                     help="forward kernel-side traffic for HOSTADDR:PORT (default: the guest's "
                     "bridge address) to a guest service (repeatable)")
    run.add_argument("--virtual-time", action="store_true",
                     help="run in deterministic virtual time")
    run.add_argument("--seed", type=int, default=0,
                     help="seed for random_get in virtual time (default 0)")
    _add_schedule_flag(run, "explore")
    run.add_argument("--max-memory", type=int, default=256, metavar="MIB",
                     help="cap on the guest's linear memory plus what its sockets hold, "
                          "in MiB (default 256); past it the guest is killed (137)")
    run.add_argument("--max-fds", type=int, default=1024, metavar="N",
                     help="cap on the guest's open file descriptors (default 1024)")
    run.add_argument("--cpu-time-limit", type=int, default=0, metavar="MS",
                     help="stop the guest after this much CPU time (default: no limit)")
    _add_firewall_flags(run)
    run.add_argument("--show-firewall", action="store_true",
                     help="print the firewall's rules with their counters to stderr at exit")
    run.add_argument("--debug", action="store_true",
                     help="print vnet-internal errors with tracebacks")
    _add_output_flags(run, "a summary of the run (exit status, trap, frames, drops)")
    run.add_argument("module", metavar="GUEST.wasm", help="the guest module")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                     help="arguments passed to the guest")
    run.set_defaults(func=_cmd_run, parser=run)

    sim = sub.add_parser(
        "sim", help="run a topology file: hosts, segments and their guests",
        description="Run every guest of a TOML topology on its virtual host, show their "
        "output prefixed by host/guest, write one pcapng per NIC, and print a summary when "
        "the client guests have exited. Exit status 0 when every client exited 0.",
    )
    sim.add_argument("topology", metavar="TOPOLOGY.toml", help="the topology file")
    sim.add_argument("--virtual-time", action="store_true", default=None,
                     help="deterministic virtual time (overrides the file's [sim] setting)")
    sim.add_argument("--seed", type=int, default=None, help="seed for virtual time")
    _add_schedule_flag(sim, "the file's [sim] schedule, else explore")
    sim.add_argument("--pcap-dir", metavar="DIR", help="write DIR/HOST-NIC.pcapng per NIC")
    sim.add_argument("--pcap-segment", action="append", default=[], metavar="NAME",
                     help="capture segment NAME once per frame, as a switch's monitor port "
                     "sees it (what Wireshark's TCP analysis needs): into --pcap, else "
                     "DIR/segment-NAME.pcapng in --pcap-dir (repeatable)")
    sim.add_argument("--pcap", metavar="FILE",
                     help="one pcapng of the --pcap-segment segments (default: every "
                     "segment); '-' streams it to stdout, flushed per packet, and sends guest "
                     "output and the summary to stderr")
    sim.add_argument("--pcap-filter", metavar="MATCH",
                     help="capture only packets matching this firewall match, e.g. "
                     "'tcp dport 80'")
    sim.add_argument("--pcap-loopback", action="store_true",
                     help="capture each host's loopback interface too")
    sim.add_argument("--draw", metavar="FILE.svg",
                     help="draw the topology (hosts, segments, routers, addresses) as SVG")
    sim.add_argument("--duration", metavar="D",
                     help="stop after this long, e.g. 30s (overrides the file)")
    _add_output_flags(sim, "the run's summary")
    sim.add_argument("--progress", nargs="?", type=float, const=5.0, default=None,
                     metavar="SECONDS",
                     help="print a heartbeat on stderr every SECONDS of wall time (default "
                     "5): simulated time, speed, guests still running, frames")
    sim.set_defaults(func=_cmd_sim, parser=sim)

    demo = sub.add_parser(
        "demo", help="run the built-in demo (a chat, a game lobby and a web page on one LAN)",
        description="Run the demo topology in virtual time and say where its captures went. "
        "In a checkout it uses examples/ (as scripts/demo); from an installed package it "
        "copies the packaged examples into DIR, builds them there and runs them.")
    demo.add_argument("workdir", nargs="?", metavar="DIR",
                      help="where to build and capture (default: the checkout's examples/, "
                      "or ./vnet-demo when vnet is installed from a wheel)")
    demo.set_defaults(func=_cmd_demo, parser=demo)

    sweep = sub.add_parser(  # vnet.sim.sweep does the work
        "sweep", help="run a topology once per seed (virtual time) and list failing seeds",
        description="Run the topology in virtual time once per seed, on every local core "
        "or a Dask cluster; print the failing seeds, each with the command that replays it. "
        "Exit status 0 when every seed passed.")
    sweep.add_argument("topology", metavar="TOPOLOGY.toml", help="the topology file")
    sweep.add_argument("--seeds", required=True, metavar="LIST",
                       help="seeds to run: 1-1000, 7, 1,5,10-12")
    sweep.add_argument("--check", metavar="CMD",
                       help="a seed passes when CMD (shell, run in the seed's results "
                       "directory, VNET_SWEEP_SEED/DIR/TOPOLOGY/CLIENTS_OK set) exits 0; "
                       "default: when every client exited 0")
    sweep.add_argument("--results", metavar="DIR",
                       help="where RESULTS/seed-N/ go (default ./sweep-TOPOLOGY)")
    sweep.add_argument("--keep", action="store_true", help="keep passing seeds' pcaps too")
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="local worker processes (default: every core)")
    sweep.add_argument("--cluster", metavar="ADDRESS",
                       help="run on this Dask scheduler (tcp://HOST:8786) instead")
    sweep.add_argument("--duration", metavar="D", help="stop each run after D (virtual)")
    _add_schedule_flag(sweep, "the file's [sim] schedule, else explore")
    sweep.set_defaults(func=_cmd_sweep, parser=sweep)

    fw = sub.add_parser(
        "firewall", help="check rule files; show the rules vnet run enforces",
        description="Validate firewall rule files, or print the rules `vnet run` would "
        "enforce with the given flags (rule syntax, with counters).",
    )
    fw_sub = fw.add_subparsers(dest="firewall_command", metavar="COMMAND", required=True)
    fw_check = fw_sub.add_parser("check", help="validate rule files (file:line:col errors)")
    fw_check.add_argument("files", nargs="+", metavar="FILE", help="rule files")
    fw_check.add_argument("--strict", action="store_true", help="exit 1 on warnings")
    fw_check.set_defaults(func=_cmd_firewall_check, parser=fw_check)
    fw_show = fw_sub.add_parser("show", help="print the rules vnet run would enforce")
    _add_firewall_flags(fw_show)
    fw_show.set_defaults(func=_cmd_firewall_show, parser=fw_show)

    pcap = sub.add_parser("pcap", help="work with captures",
                          description="Work with pcapng captures written by vnet.")
    pcap_sub = pcap.add_subparsers(dest="pcap_command", metavar="COMMAND", required=True)
    pcap_sub.add_parser(  # main() hands `vnet pcap diff ...` to vnet.testing.pcap_diff
        "diff", help="compare two captures packet by packet (0 same, 1 differ, 2 error)")
    ladder = pcap_sub.add_parser(
        "ladder", help="draw packets between hosts over time as SVG (a flow graph)",
        description="Draw a capture as a ladder diagram: one lane per host, one arrow per "
        "packet from sender to receiver, labelled with the packet's summary, time going "
        "down. Use a per-segment capture (vnet sim --pcap-segment) so each frame is drawn "
        "once; in a capture of several NICs each frame's received copy is skipped.")
    ladder.add_argument("capture", metavar="CAPTURE.pcapng", help="the capture")
    ladder.add_argument("-o", "--output", required=True, metavar="FLOW.svg",
                        help="where to write the SVG")
    ladder.add_argument("--filter", metavar="MATCH",
                        help="draw only packets matching this firewall match, e.g. "
                        "'tcp dport 7000 or tcp sport 7000' (default: every IP packet)")
    ladder.add_argument("--max", type=int, default=500, metavar="N",
                        help="draw at most N packets (default 500)")
    ladder.set_defaults(func=_cmd_pcap_ladder, parser=ladder)
    return parser



def _cmd_pcap_ladder(ns: argparse.Namespace) -> int:
    from vnet.pictures.ladder import LadderError, write_ladder_svg

    keep = _capture_filter(ns.filter, "vnet pcap ladder: --filter")
    if ns.max <= 0:
        raise CliError("vnet pcap ladder: --max must be > 0")
    try:
        drawn = write_ladder_svg(ns.capture, ns.output, filter=keep, max_packets=ns.max)
    except LadderError as e:
        raise CliError(f"vnet pcap ladder: {e}") from None
    except OSError as e:
        raise CliError(f"vnet pcap ladder: {e.filename}: {e.strerror}") from None
    print(f"vnet pcap ladder: {drawn.packets} packets between {len(drawn.lanes)} hosts "
          f"-> {ns.output}", file=sys.stderr)
    return 0


def _cmd_firewall_check(ns: argparse.Namespace) -> int:
    from firewall.commands import check

    if "-" not in ns.files:
        return check(ns.files, sys.stdout, sys.stderr, strict=ns.strict)
    status = 0
    for path in ns.files:  # '-' is the rule text on stdin, named <stdin> in messages
        result = _check_stdin(ns.strict) if path == "-" else check(
            [path], sys.stdout, sys.stderr, strict=ns.strict)
        status = max(status, result)
    return status


def _check_stdin(strict: bool) -> int:
    from firewall.parser import RuleFileError, parse_text

    try:
        ruleset = parse_text(sys.stdin.read(), file="<stdin>")
    except RuleFileError as e:
        print(e.render(), file=sys.stderr)
        errors = len(e.errors)
        print(f"<stdin>: {errors} error{'s' if errors != 1 else ''}", file=sys.stderr)
        return 2
    for warning in ruleset.warnings:
        print(warning.render(), file=sys.stderr)
    rules = sum(len(c.rules) for c in ruleset.chains.values())
    note = f", {len(ruleset.warnings)} warnings" if ruleset.warnings else ""
    print(f"<stdin>: ok ({len(ruleset.chains)} chains, {rules} rules{note})")
    return 1 if strict and ruleset.warnings else 0


def _cmd_firewall_show(ns: argparse.Namespace) -> int:
    from firewall.commands import show

    return show(sys.stdout, sys.stderr, ns.firewall, ns.allow, ns.allow_out, ns.deny,
                ns.deny_out)


def _cmd_build(ns: argparse.Namespace) -> int:
    from vnet.build import BuildError, build_wasm

    for source in ns.sources:
        if not Path(source).is_file():
            raise CliError(f"vnet build: {source}: no such source file")
    flags = [f"-I{d}" for d in ns.include] + [f"-D{d}" for d in ns.define]
    if getattr(ns, "linux", False):
        from vnet.build import LINUX_DEFINES

        flags += LINUX_DEFINES
    if ns.debug_info is not None:
        flags.append(f"-g{ns.debug_info}" if ns.debug_info != "" else "-g")
    link_flags = ["-s"] if ns.strip else []
    try:
        build_wasm(ns.sources, ns.output, flags=flags, optimize=f"-O{ns.opt}",
                   use_cache=not ns.no_cache, link_flags=link_flags,
                   verbose=True if ns.verbose else None, make_dirs=False,
                   threads=ns.pthread)
    except BuildError as e:
        print(f"vnet build: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_run(ns: argparse.Namespace) -> int:
    from firewall.commands import FirewallConfigError, run_ruleset
    from vnet.guest.runtime import GuestLoadError, load_module
    from vnet.sim.signals import Interrupts

    _check_output_flags(ns, "run")
    _apply_wasmtime_options(ns)
    env = _parse_env(ns.env)
    dirs = _parse_dirs(ns.dir)
    addrs = _parse_addrs(ns.addr)
    listeners = _parse_tcplisten(ns.tcplisten)
    if ns.tun:
        _check_tun_name(ns.tun_device)
    if ns.max_memory <= 0 or ns.max_fds < 3 or ns.cpu_time_limit < 0:
        raise CliError("vnet run: --max-memory must be > 0, --max-fds >= 3, "
                       "--cpu-time-limit >= 0")
    try:
        rules = run_ruleset(ns.firewall, ns.allow, ns.allow_out, ns.deny, ns.deny_out,
                            _resolvers(ns.resolver))
    except FirewallConfigError as e:
        raise CliError(f"vnet run: {e}") from None
    compiled = _wat_to_wasm(ns.module)
    try:
        module = load_module(compiled, ns.invoke or "_start")
    except GuestLoadError as e:  # named as the user named it, not as the .wat's cache entry
        raise CliError(f"vnet run: {str(e).replace(compiled, ns.module)}") from None
    keep = _capture_filter(ns.pcap_filter, "vnet run: --pcap-filter")
    if ns.pcap_loopback and not ns.pcap:
        raise CliError("vnet run: --pcap-loopback needs --pcap FILE (or -)")
    live = ns.pcap == "-"
    with Interrupts() as interrupts:
        facts: dict[str, Any] = {}
        status = _run_guest(ns, rules, module, env, dirs, addrs, listeners, keep, live,
                            interrupts, facts)
    _report_run(ns, status, facts)
    return status


def _report_run(ns: argparse.Namespace, status: int, facts: dict[str, Any]) -> None:
    """`vnet run -v` and `--json`: what happened, for people and for scripts."""
    from vnet.scheduler import DEFAULT_SCHEDULE
    from vnet.sim.drop_reasons import explain
    from vnet.sim.report import FORMAT, drops_json, write_json
    from vnet.sim.runner import host_nic_stats

    guest, host = facts.get("guest"), facts.get("host")
    if guest is None or host is None:
        return
    nics = host_nic_stats(host)
    drops = {host.name: host.counters.drops()}
    if ns.verbose:
        print(f"vnet run: {facts['ended']} after {facts['elapsed_ns'] / 1e9:.3f} s, "
              f"exit status {status}", file=sys.stderr)
        for name, stats in nics.items():
            print(f"vnet run: {name}: {stats['tx_frames']} frames ({stats['tx_bytes']} bytes) "
                  f"out, {stats['rx_frames']} ({stats['rx_bytes']} bytes) in",
                  file=sys.stderr)
        for counter, count in sorted(drops[host.name].items()):
            why = explain(counter)
            print(f"vnet run: dropped {count} {counter}: {why.kind}: {why.text}",
                  file=sys.stderr)
    if ns.json is not None:
        summary = {
            "format": FORMAT, "command": "run", "ok": status == 0, "ended": facts["ended"],
            "exit_status": status, "elapsed_s": facts["elapsed_ns"] / 1e9,
            "virtual_time": bool(ns.virtual_time), "seed": ns.seed,
            "schedule": ns.schedule or DEFAULT_SCHEDULE,
            "guest": {"name": guest.config.name, "exit_code": guest.exit_code,
                      "trap": guest.trap, "backtrace": guest.trap_backtrace},
            "nics": nics, "drops": drops_json(drops),
            "pcap": ns.pcap, "pcap_packets": facts.get("pcap_packets"),
        }
        try:
            write_json(summary, ns.json)
        except OSError as e:
            raise CliError(f"vnet run: --json {ns.json}: {e.strerror}") from None


def _run_guest(ns: argparse.Namespace, rules: Any, module: Any, env: list[tuple[str, str]],
               dirs: list[tuple[str, str]], addrs: list[str], listeners: list[tuple[str, int]],
               keep: Any, live: bool, interrupts: Any, facts: dict[str, Any]) -> int:
    """`vnet run` once its arguments are checked: build, run, clean up, report.
    `facts` receives the guest, its host and how the run ended, for _report_run."""
    from vnet.guest.context import GuestLimits
    from vnet.guest.runtime import (
        KILLED_EXIT_CODE,
        TRAP_EXIT_CODE,
        Guest,
        GuestConfig,
        GuestLoadError,
        settle_heap,
        write_through,
    )
    from vnet.link.capture import Capture
    from vnet.link.loopback_tap import capture_loopback
    from vnet.network import Network
    from vnet.scheduler import DEFAULT_SCHEDULE
    from vnet.sim.runner import address_names, nic_description

    net = Network(virtual_time=ns.virtual_time, seed=ns.seed,
                  schedule=ns.schedule or DEFAULT_SCHEDULE)
    sched = net.scheduler
    if ns.schedule == "explore" and ns.virtual_time:  # asked for; else stderr is the guest's
        print(f"vnet run: virtual time, seed {ns.seed}, schedule explore", file=sys.stderr)
    host = net.host(Path(ns.module).stem.replace("_", "-")[:32] or "guest")
    firewall = host.set_firewall(rules)  # logs go to the captures: net.capture wires them
    capture = None
    if ns.pcap:  # attached first, so the capture holds the address announcements too
        try:
            if live:
                capture = Capture.to_stream(sys.stdout.buffer, clock=sched.realtime_ns,
                                            filter=keep)
                net.captures.append(capture)
            else:
                capture = net.capture(ns.pcap)
                capture.filter = keep
        except OSError as e:
            raise CliError(f"vnet run: --pcap {ns.pcap}: {e.strerror}") from None
        capture.describe(f"{host.name}/eth0", nic_description(host.name, "eth0", None, addrs,
                                                              "lan"))
        if ns.pcap_loopback:
            capture_loopback(host.stack, capture, sched.realtime_ns, host.name)
    out = sys.stderr if live or ns.json == "-" else sys.stdout  # a live capture owns stdout
    facts.update(host=host, ended="guest exited", elapsed_ns=0)
    started_wall = time.monotonic()
    bridge = None
    guest = None
    blocked = False
    try:
        host.connect(net.segment("lan"), *addrs, ifname="eth0")
        host.set_resolvers(_resolvers(ns.resolver))  # the guest's /etc/resolv.conf
        if ns.tun:
            bridge = _open_tun(ns, net, host, addrs, capture)
        if capture is not None:
            names = address_names(net)
            if bridge is not None:
                import ipaddress

                names += [(ipaddress.ip_interface(a).ip.packed, "kernel")
                          for a in (_parse_addrs(ns.tun_kernel_addr) or ["10.200.0.1/30"])]
            capture.add_names(names)
        limits = GuestLimits(memory_bytes=ns.max_memory * 1024 * 1024, max_fds=ns.max_fds,
                             cpu_time_ms=ns.cpu_time_limit)
        config = GuestConfig(
            module=ns.module, args=[ns.module, *ns.args], env=env, preopens=dirs,
            stdin=_stdin_for(sched),
            stdout=write_through(out), stderr=write_through(sys.stderr),
            limits=limits, name=Path(ns.module).stem, debug=ns.debug, host=host,
            tcplisten=listeners, devices=_parse_guest_tun(ns.guest_tun),
            net_admin=ns.guest_net_admin,
        )
        if ns.invoke not in (None, "_start"):
            config.entry = ns.invoke
            config.invoke_args = list(ns.args)
        try:
            guest = Guest(sched, config, module)
        except (GuestLoadError, OSError) as e:
            raise CliError(f"vnet run: {e}") from None
        facts["guest"] = guest
        if ns.verbose:
            print(f"vnet run: {ns.module} on host {host.name} "
                  f"({', '.join(addrs) or 'no addresses'}), "
                  + (f"virtual time, seed {ns.seed}, schedule {sched.schedule}"
                     if ns.virtual_time else "real time"), file=sys.stderr)
        guest.start()
        settle_heap()  # one run per process: full collections need not walk the start-up heap
        running = guest
        timer = _start_timeout(ns, sched)
        sched.run(until=lambda: running.done or interrupts.interrupted() or timer.expired)
        timer.cancel()
        facts["elapsed_ns"] = (sched.monotonic_ns() if ns.virtual_time
                               else int((time.monotonic() - started_wall) * 1e9))
        if timer.expired and not running.done:
            print(f"vnet run: guest interrupted: -W timeout={ns.timeout_text} expired",
                  file=sys.stderr)
            facts["ended"] = f"-W timeout={ns.timeout_text} expired"
            return TRAP_EXIT_CODE  # wasmtime's timeout is an interrupt trap
        blocked = not running.done
    except KeyboardInterrupt:  # a second signal while stopping
        if interrupts.signum is None:
            interrupts.signum = 2
    finally:
        sched.stop_all()
        if bridge is not None:
            bridge.close()
        if capture is not None:
            capture.close()
            facts["pcap_packets"] = capture.packets
        if ns.show_firewall and firewall is not None:
            print(firewall.show(), end="", file=sys.stderr)
    if interrupts.interrupted():
        where = ""
        if capture is not None:
            where = f"; {capture.packets} packets in {'stdout' if live else ns.pcap}"
        print(f"vnet run: interrupted by {interrupts.name}{where}", file=sys.stderr)
        facts["ended"] = f"interrupted by {interrupts.name}"
        return int(interrupts.exit_status)
    assert guest is not None
    if blocked or guest.exit_code is None:
        print("vnet run: guest blocked forever (nothing left that could wake it)",
              file=sys.stderr)
        facts["ended"] = "guest blocked forever"
        return KILLED_EXIT_CODE
    if guest.trap:
        facts["ended"] = "guest trapped"
    if guest.trap and not guest.ctx.stats.oom_kills:  # an OOM kill said why on its stderr
        print(f"vnet run: guest trapped: {guest.trap}", file=sys.stderr)
        print_backtrace(guest.trap_backtrace, "vnet run")
    for line in guest.ctx.diagnostics:
        print(f"vnet run: {line}", file=sys.stderr)
    return int(guest.exit_code)


def print_backtrace(frames: list[str], prefix: str) -> None:
    """wasmtime's backtrace of a trap on stderr, and how to get file:line when it has none."""
    if not frames:
        return
    print(f"{prefix}: wasm backtrace:", file=sys.stderr)
    for frame in frames:
        print(frame, file=sys.stderr)
    if not any(frame.strip().startswith("at ") for frame in frames):
        print(f"{prefix}: for file:line, set WASMTIME_BACKTRACE_DETAILS=1 (the module "
              "needs its debug information: not built with -g0 or --strip)", file=sys.stderr)


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str, where: str) -> float:
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?", text.strip())
    if not match:
        raise CliError(f"vnet run: {where}: expected a duration such as 10s, 500ms or 2m")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def _apply_wasmtime_options(ns: argparse.Namespace) -> None:
    """Map wasmtime's `-S`/`-W`/`--invoke` spellings onto vnet's own flags (or refuse)."""
    import math

    ns.timeout_seconds = None
    ns.timeout_text = ""
    for item in ns.wasi_options:
        for option in item.split(","):
            name, _sep, value = option.partition("=")
            if name == "tcplisten" and value:
                ns.tcplisten.append(value)
            elif name == "inherit-network" and value in ("", "y", "yes", "true", "1"):
                ns.allow_out += ["tcp:*:*", "udp:*:*"]
                if not ns.quiet:
                    print("vnet run: -S inherit-network: granted as --allow-out tcp:*:* "
                          "--allow-out udp:*:* (the guest's network is virtual: the "
                          "machine's network is reached only through --tun)", file=sys.stderr)
            elif name in ("inherit-network", "allow-ip-name-lookup", "tcp", "udp", "network",
                          "cli", "preview2") and value in ("", "y", "yes", "true", "1"):
                pass  # always on in vnet: sockets and name lookup on the virtual network
            else:
                raise CliError(f"vnet run: -S {option}: not supported (vnet takes "
                               "tcplisten=ADDR:PORT, inherit-network, allow-ip-name-lookup)")
    for item in ns.wasm_options:
        for option in item.split(","):
            name, _sep, value = option.partition("=")
            if name == "max-memory-size" and value:
                try:
                    size = int(value, 0)
                except ValueError:
                    raise CliError(f"vnet run: -W {option}: expected a size in bytes") from None
                if size <= 0:
                    raise CliError(f"vnet run: -W {option}: the size must be > 0")
                ns.max_memory = max(1, math.ceil(size / (1024 * 1024)))
            elif name == "timeout" and value:
                ns.timeout_seconds = _seconds(value, f"-W {option}")
                ns.timeout_text = value
            elif name == "fuel":
                raise CliError(f"vnet run: -W {option}: fuel is not supported (vnet limits a "
                               "guest with --cpu-time-limit MS or -W timeout=DURATION)")
            else:
                raise CliError(f"vnet run: -W {option}: not supported (vnet takes "
                               "max-memory-size=BYTES, timeout=DURATION)")


class _Timeout:
    """`-W timeout=`: a real-time deadline that wakes the scheduler when it passes."""

    def __init__(self, seconds: float | None, sched: Scheduler) -> None:
        self.expired = False
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._fire, args=(sched,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sched: Scheduler) -> None:
        with sched.lock:
            self.expired = True
            sched.notify()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _start_timeout(ns: argparse.Namespace, sched: Scheduler) -> _Timeout:
    return _Timeout(getattr(ns, "timeout_seconds", None), sched)


def _wat_to_wasm(module: str) -> str:
    """A `.wat` module compiled to a .wasm beside vnet's cache (wasmtime compiles the text)."""
    if not module.endswith(".wat"):
        return module
    import hashlib

    import wasmtime

    from vnet.build import cache_dir

    try:
        text = Path(module).read_text()
    except OSError as e:
        raise CliError(f"vnet run: {module}: {e.strerror}") from None
    try:
        binary = wasmtime.wat2wasm(text)
    except Exception as e:  # wasmtime raises its own error type with the parser's message
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CliError(f"vnet run: {module}: not valid WebAssembly text: {first}") from None
    out = cache_dir().parent / "wat" / f"{hashlib.sha256(binary).hexdigest()[:32]}.wasm"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file():
        partial = out.with_name(f"{out.name}.tmp{os.getpid()}")
        partial.write_bytes(binary)
        os.replace(partial, out)
    return str(out)


def _stdin_for(sched: Scheduler) -> InputStream | bytes:
    """The guest's stdin: host fd 0, streamed in real time, read whole in virtual time.

    Virtual time reads all of it up front, so that the guest sees the same
    bytes at the same virtual moments on every run.
    """
    from vnet.guest.fdtable import InputStream

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return b""
    if sched.virtual:
        return b"" if os.isatty(fd) else sys.stdin.buffer.read()
    stream = InputStream(b"", eof=False)

    def pump() -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with sched.lock:
                if data:
                    stream.feed(data)
                else:
                    stream.close_input()
                sched.notify()
            if not data:
                return

    threading.Thread(target=pump, name="vnet-stdin", daemon=True).start()
    return stream


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from stack import compiled  # which build of the stack runs (scripts/compile-stack)

    try:
        number = version("vnet")
    except PackageNotFoundError:
        number = "unknown (not installed)"
    return f"{number} (stack: {compiled.STATE})"


def _implicit_run(args: list[str]) -> list[str]:
    """`vnet GUEST.wasm ARGS` is `vnet run GUEST.wasm ARGS`, as in wasmtime."""
    if not args or args[0].startswith("-") or args[0] in ("build", "run", "sim", "firewall",
                                                          "pcap", "cc", "c++", "ar", "ranlib"):
        return args
    if args[0].endswith((".wasm", ".wat")):
        return ["run", *args]
    try:
        with open(args[0], "rb") as f:
            magic = f.read(4)
    except OSError:
        return args
    return ["run", *args] if magic == b"\0asm" else args


def _toolchain_command(args: list[str]) -> int | None:
    """`vnet cc`, `vnet c++`, `vnet ar`, `vnet ranlib`: every argument goes to the tool."""
    if not args or args[0] not in ("cc", "c++", "ar", "ranlib"):
        return None
    if args[0] in ("cc", "c++"):
        from vnet.cc import main as cc_main

        return cc_main(args[1:], language=args[0])
    import subprocess

    from vnet.build import _zig_env, zig_command

    return subprocess.run([*zig_command(), args[0], *args[1:]], env=_zig_env()).returncode


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["pcap", "diff"]:  # its own parser, flags first or last
        from vnet.testing.pcap_diff import main as pcap_diff_main

        return pcap_diff_main(args[2:])
    args = _implicit_run(args)
    toolchain = _toolchain_command(args)
    if toolchain is not None:
        return toolchain
    parser = _build_parser()
    ns: argparse.Namespace | None = None
    try:
        ns = parser.parse_args(args)
        if ns.command is None:
            parser.print_help()
            return USAGE_ERROR
        return int(ns.func(ns))
    except CliError as e:
        message = str(e)
        if not message.startswith("vnet"):
            message = f"vnet {getattr(ns, 'command', '') or ''}: {message}".replace("  ", " ")
        print(message, file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
