"""The /etc a guest sees (vnet/guest/etc_files.py): resolv.conf and hosts, read-only,
taking no fd number, showing the resolvers its host has now, and never over a /etc
the guest was given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.dns.support import lan
from vnet.guest.context import GuestLimits

HOSTS_A = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
           "10.0.0.1\ta\nfd00::1\ta\n")


def test_guest_sees_its_hosts_resolvers_and_names_read_only(
        vnet_build: Callable[..., Path], tmp_path: Path) -> None:
    wasm = vnet_build("tests/dns/c/etc_probe.c")
    net, a, _ns, web = lan()
    a.set_resolvers(["10.0.0.53", "fd00::53"])
    proc = a.run(wasm, limits=GuestLimits(max_fds=4))  # /etc is not counted
    assert proc.wait(30) == 0, proc.stderr
    assert proc.stdout_lines[0] == "first fd 3"  # numbered as on Linux
    lines = proc.stdout_lines[1:]
    assert lines[:4] == ["/etc/resolv.conf: # vnet resolv.conf for host a",
                         "/etc/resolv.conf: nameserver 10.0.0.53",
                         "/etc/resolv.conf: nameserver fd00::53",
                         "/etc/resolv.conf: options timeout:1 attempts:2"]
    assert lines[4:8] == ["/etc/hosts: 127.0.0.1\tlocalhost",
                          "/etc/hosts: ::1\tlocalhost ip6-localhost ip6-loopback",
                          "/etc/hosts: 10.0.0.1\ta", "/etc/hosts: fd00::1\ta"]
    assert lines[8:] == [
        "entry hosts", "entry resolv.conf",
        "open for writing: Read-only file system", "create: Read-only file system",
        "mkdir: Read-only file system", "unlink: Read-only file system",
        f"stat: ok size={len(HOSTS_A)}",
        "open /etc/../etc/hosts: Operation not permitted"]

    a.set_resolvers(["10.0.0.54"])  # read at open: the next guest sees the new list
    again = a.run(wasm)
    assert again.wait(30) == 0
    assert again.stdout_lines[2] == "/etc/resolv.conf: nameserver 10.0.0.54"

    plain = web.run(wasm)  # no resolvers: no nameserver (the SDK asks the host call)
    assert plain.wait(30) == 0
    assert plain.stdout_lines[1:4] == ["/etc/resolv.conf: # vnet resolv.conf for host web",
                                       "/etc/resolv.conf: options timeout:1 attempts:2",
                                       "/etc/hosts: 127.0.0.1\tlocalhost"]

    own = tmp_path / "etc"
    own.mkdir()
    (own / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    mine = a.run(wasm, dirs={"/etc": own})  # the guest's own /etc wins
    assert mine.wait(30) == 0
    assert mine.stdout_lines[1:3] == ["/etc/resolv.conf: nameserver 192.0.2.1",
                                      "open /etc/hosts: No such file or directory"]
    net.close()
