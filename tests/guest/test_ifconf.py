"""Interface configuration, call by call, against a real Linux TUN device.

tests/guest/c/ifconf_probe.c makes every SIOC* interface ioctl and a series
of rtnetlink requests (dumps of links, addresses and routes; adding and
deleting addresses and routes; MTU and up/down through RTM_NEWLINK; socket
options; a subscriber's notifications; errors for unknown indexes,
duplicates, missing entries, bad values and malformed messages) on a TUN
device `tun0` it attaches to with open("/dev/net/tun") + TUNSETIFF, and
prints one line per call: return value, errno, result fields.

- Natively (gcc), in a namespace of its own whose only other interface is
  `lo`: the probe's TUNSETIFF creates `tun0`, and the probe brings it up
  (`up`) before its calls begin, as vnet's granted devices come up. (A
  device created with `ip tuntap add` and up before a program attaches
  reports operstate UP rather than UNKNOWN: the flow compared here is the
  usual VPN one.) IPv6 address generation
  and DAD are off in the namespace (net.ipv6.conf.default.addr_gen_mode=1,
  accept_dad=0), so Linux gives the device no link-local address of its own.
- Under vnet (`vnet build --linux`), on a host with `lo` only, granted the
  device `tun0` (`GuestConfig.devices`, as `vnet run --guest-tun tun0`): the
  guest's TUNSETIFF creates it, up, as vnet's granted devices come, and the
  guest may configure it (TUNSETIFF puts its name in the guest's
  `configurable_interfaces`).

The two outputs must be equal line for line. The probe normalises only
what must differ: the interface index (printed as `idx_ok=1`: equal to
if_nametoindex) and netlink port ids (`pid_ok`, `pid_set`); and a subscriber
prints an address notification once until the address is deleted (Linux
announces an IPv6 address twice, the second time from a work queue, at a
moment the probe cannot predict). MACs do not appear: a TUN device has none.
The subscriber's notifications from other sources (the Python API, another
guest) are checked on vnet alone.

Touches: a network namespace named vnifc-PID (vnet.testing.netns), gcc,
/dev/net/tun inside that namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack.interface import InterfaceFlags
from vnet.build import LINUX_DEFINES, build_wasm
from vnet.guest.runtime import Guest, GuestConfig
from vnet.link.guest_tun import GuestDeviceGrant
from vnet.network import Host, Network
from vnet.testing.netns import Namespace, refuse, require_root, tun_problem

SOURCE = Path(__file__).resolve().parent / "c" / "ifconf_probe.c"
FRESH_TUN_FLAGS = InterfaceFlags(0x1090)  # POINTOPOINT | NOARP | MULTICAST, down


@pytest.fixture(scope="module")
def native_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    require_root("the native probe needs root: it creates a namespace and a TUN device")
    problem = tun_problem()
    if problem:
        refuse(f"the native probe {problem}")
    binary = tmp_path_factory.mktemp("native") / "ifconf_probe"
    proc = subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", str(SOURCE), "-o",
                           str(binary)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        pytest.fail(f"gcc ifconf_probe.c:\n{proc.stderr}", pytrace=False)
    sysctls = ("net.ipv6.conf.default.addr_gen_mode=1", "net.ipv6.conf.all.accept_dad=0",
               "net.ipv6.conf.default.accept_dad=0")
    with Namespace(f"vnifc-{os.getpid()}", sysctls=sysctls) as ns:
        ns.check_isolated([])
        run = ns.run(str(binary), "attach", "up", "ifname=tun0", timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.splitlines()


@pytest.fixture(scope="module")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wasm([SOURCE], tmp_path_factory.mktemp("wasm") / "ifconf_probe.wasm",
                      flags=["-Wextra", "-Werror", *LINUX_DEFINES], quiet=True)


def run_probe_on_vnet(wasm: Path, virtual_time: bool = True) -> tuple[list[str], Host]:
    """The probe on a host with lo only, granted the TUN device tun0."""
    net = Network(virtual_time=virtual_time, seed=1)
    alpha = net.host("alpha")
    out, err = bytearray(), bytearray()
    guest = Guest(net.scheduler, GuestConfig(
        module=str(wasm), args=["ifconf_probe", "attach", "up", "ifname=tun0"], host=alpha,
        stdout=out.extend, stderr=err.extend, name="ifconf_probe@alpha",
        devices=[GuestDeviceGrant("tun0")]))
    guest.start()
    finished = net.scheduler.run(until=lambda: guest.done, timeout_s=120)
    text = out.decode(errors="replace")
    assert finished and guest.exit_code == 0, f"{guest.exit_code} {guest.trap}\n{text}\n{err!r}"
    assert not guest.ctx.stats.internal_errors, guest.ctx.diagnostics
    return text.splitlines(), alpha


@pytest.fixture(scope="module")
def vnet_output(wasm: Path) -> list[str]:
    return run_probe_on_vnet(wasm)[0]


def _section(lines: list[str], netlink: bool) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("nl_socket_bad_protocol"))
    return lines[start:] if netlink else lines[:start]


def test_native_probe_ran_every_call(native_output: list[str]) -> None:
    assert native_output[-1] == "end"
    assert "sifaddr ret=0 errno=0" in native_output
    assert "getlink_dump done count=2 multi=1 seq_ok=1 pid_ok=1" in native_output


def test_ioctls_match_linux_call_by_call(native_output: list[str],
                                        vnet_output: list[str]) -> None:
    assert _section(vnet_output, netlink=False) == _section(native_output, netlink=False)


def test_rtnetlink_matches_linux_call_by_call(native_output: list[str],
                                             vnet_output: list[str]) -> None:
    assert _section(vnet_output, netlink=True) == _section(native_output, netlink=True)


def test_probe_configured_the_device_and_its_end_removed_it(wasm: Path) -> None:
    """The calls reached the stack (not only the output): the routes the probe added
    and removed, and the device itself gone with its fd when the probe exited."""
    lines, alpha = run_probe_on_vnet(wasm)
    assert "setlink_mtu error=0 seq_ok=1 pid_ok=1 echo_type=16 echo_seq_ok=1" in lines
    assert [i.name for i in alpha.stack.interfaces.values()] == ["lo"]
    assert all(r.ifindex == 1 for r in alpha.stack.routes.routes())


def test_same_output_in_real_time(wasm: Path, vnet_output: list[str]) -> None:
    assert run_probe_on_vnet(wasm, virtual_time=False)[0] == vnet_output


def test_subscriber_hears_changes_from_any_source(wasm: Path) -> None:
    """A guest subscribed to RTMGRP_* groups, blocked in recvfrom, hears a change made
    through the Python API and the changes another guest makes with ioctls."""
    net = Network(virtual_time=True, seed=1)
    lan = net.segment("lan")
    alpha = net.host("alpha")
    alpha.connect(lan, "10.0.0.1/24")
    with net.scheduler.lock:
        alpha.stack.add_point_to_point("tun0").flags = FRESH_TUN_FLAGS
    heard = bytearray()
    listener = Guest(net.scheduler, GuestConfig(module=str(wasm), args=["probe", "listen=6"],
                                                host=alpha, stdout=heard.extend,
                                                name="listener"))
    listener.start()
    assert net.scheduler.run(until=lambda: b"subscribed" in heard, timeout_s=60)
    alpha.add_address("eth0", "10.0.0.5/24")
    assert net.scheduler.run(until=lambda: heard.count(b"event") >= 2, timeout_s=60)
    configurator = Guest(net.scheduler, GuestConfig(
        module=str(wasm), args=["probe", "ifname=tun0"], host=alpha, name="configurator"))
    configurator.ctx.configurable_interfaces.add("tun0")
    configurator.start()
    assert net.scheduler.run(until=lambda: listener.done and configurator.done, timeout_s=120)
    assert listener.exit_code == 0
    assert heard.decode().splitlines() == [
        "subscribed",
        "event group=0x10 newaddr eth0 10.0.0.5/24",
        "event group=0x40 newroute 10.0.0.0/24",
        "event group=0x1 newlink tun0 flags=0x10d1",
        "event group=0x1 newlink tun0 flags=0x10d1",
        "event group=0x10 newaddr tun0 10.9.0.1/32",
        "event group=0x40 newroute 10.9.0.1/32",
        "end",
    ]


ABUSE_SOURCE = Path(__file__).resolve().parents[1] / "hostile" / "c" / "ifconf_abuse.c"


@pytest.mark.parametrize("net_admin", [True, False], ids=["net-admin", "no-grant"])
def test_vnet_run_guest_net_admin_grants_every_interface(
    tmp_path: Path, net_admin: bool,
) -> None:
    """`vnet run --guest-net-admin`: the guest may change eth0 (as with CAP_NET_ADMIN);
    without the flag every change is EPERM and reads still work."""
    wasm = build_wasm([ABUSE_SOURCE], tmp_path / "ifconf_abuse.wasm", quiet=True)
    flags = ["--guest-net-admin"] if net_admin else []
    proc = subprocess.run([sys.executable, "-m", "vnet", "run", "--virtual-time",
                           "--addr", "10.0.0.1/24", *flags, str(wasm), "other", "eth0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["gifflags"] == "ret=0 errno=0"
    expected = "ret=0 errno=0" if net_admin else "ret=-1 errno=EPERM"
    for name in ("sifflags_down", "sifmtu", "sifaddr", "sifhwaddr"):
        assert lines[name] == expected, (name, proc.stdout)
    # eth0 is down by then: a route through it is ENETDOWN, as on Linux
    assert lines["addrt"] == ("ret=-1 errno=ENETDOWN" if net_admin else "ret=-1 errno=EPERM")
    assert lines["nl_setlink"] == ("error=0" if net_admin else "error=EPERM")
    assert f"mtu_after={1200 if net_admin else 1500}" in proc.stdout.splitlines()


def test_subscriber_hears_a_guest_device_come_and_go(wasm: Path) -> None:
    """A guest's TUN device appears with TUNSETIFF and disappears when its fd closes (the
    probe exits): a subscriber hears RTM_NEWLINK first and RTM_DELLINK last."""
    net = Network(virtual_time=True, seed=1)
    alpha = net.host("alpha")
    heard = bytearray()
    listener = Guest(net.scheduler, GuestConfig(module=str(wasm), args=["probe", "listen=1000"],
                                                host=alpha, stdout=heard.extend,
                                                name="listener"))
    listener.start()
    assert net.scheduler.run(until=lambda: b"subscribed" in heard, timeout_s=60)
    device_guest = Guest(net.scheduler, GuestConfig(
        module=str(wasm), args=["probe", "attach", "up", "ifname=tun0"], host=alpha,
        name="device", devices=[GuestDeviceGrant("tun0")]))
    device_guest.start()
    assert net.scheduler.run(until=lambda: device_guest.done, timeout_s=120)
    net.run_for(0.01)
    events = [line for line in heard.decode().splitlines() if line.startswith("event")]
    try:
        assert events[0].startswith("event group=0x1 newlink tun0 ")
        assert events[-1] == "event group=0x1 dellink tun0 flags=0x1090"
        assert sum("dellink" in e for e in events) == 1
        assert [i.name for i in alpha.stack.interfaces.values()] == ["lo"]
    finally:
        net.close()
