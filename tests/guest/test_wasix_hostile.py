"""A hostile guest against the wasix_32v1 socket imports: errnos, never a crash or trap.

Each case is a hand-written module making raw WASIX calls with bad pointers,
unknown fds, sockets in the wrong state, absurd option values, addresses the
host does not own, broadcasts without SO_BROADCAST, or thousands of sockets.
It writes each call's errno (u16) to stdout; the test compares with the errno
a Linux host gives (in WASI numbering) and checks that the runtime neither
trapped nor hit an internal error, and that the network still works after.
"""

from __future__ import annotations

from pathlib import Path

from tests.guest.wat import compile_wat
from vnet.guest.runtime import Guest, GuestConfig
from vnet.guest.wasi_types import Errno
from vnet.network import Network

TOP = 65536
SOCK_OPEN = '(import "wasix_32v1" "sock_open" (func $open (param i32 i32 i32 i32) (result i32)))'


def _run(tmp_path: Path, imports: str, body: str, data: str = "") -> tuple[list[int], Guest]:
    module = compile_wat(tmp_path, f"""
      {imports}
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      {data}
      (global $out (mut i32) (i32.const 4096))
      (func $emit (param $e i32)
        (i32.store16 (global.get $out) (local.get $e))
        (global.set $out (i32.add (global.get $out) (i32.const 2))))
      (func (export "_start")
        {body}
        (i32.store (i32.const 8) (i32.const 4096))
        (i32.store (i32.const 12) (i32.sub (global.get $out) (i32.const 4096)))
        (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16))))
    """)
    net = Network(virtual_time=True, seed=1)
    host = net.host("h")
    host.connect(net.segment("lan"), "10.0.0.5/24")
    out = bytearray()
    guest = Guest(net.scheduler, GuestConfig(module=str(module), args=["t"], host=host,
                                             stdout=out.extend, name="hostile"))
    guest.start()
    net.scheduler.run(until=lambda: guest.done)
    assert guest.trap is None, guest.trap
    assert guest.exit_code == 0
    assert not guest.ctx.stats.internal_errors, guest.ctx.diagnostics
    codes = [int.from_bytes(out[i:i + 2], "little") for i in range(0, len(out), 2)]
    # the network still works for everyone else afterwards
    other = net.host("other")
    other.connect(net.segments["lan"], "10.0.0.6/24")
    assert other.ping("10.0.0.5")[0] is not None
    return codes, guest


# addr_port for 10.0.0.9:80 at 200 (not ours), 255.255.255.255:9 at 300, 10.0.0.5:9 at 400
ADDRS = r'''(data (i32.const 200) "\01\00\00\50\0a\00\00\09")
            (data (i32.const 300) "\01\00\00\09\ff\ff\ff\ff")
            (data (i32.const 400) "\01\00\00\09\0a\00\00\05")
            (data (i32.const 500) "\00\00\00\00")'''


def test_bad_pointers_unknown_fds_and_wrong_states(tmp_path: Path) -> None:
    imports = "\n".join([
        SOCK_OPEN,
        '(import "wasix_32v1" "sock_bind" (func $bind (param i32 i32) (result i32)))',
        '(import "wasix_32v1" "sock_connect" (func $connect (param i32 i32) (result i32)))',
        '(import "wasix_32v1" "sock_listen" (func $listen (param i32 i32) (result i32)))',
        '(import "wasix_32v1" "sock_send_to" '
        '(func $sendto (param i32 i32 i32 i32 i32 i32) (result i32)))',
        '(import "wasix_32v1" "sock_recv_from" '
        '(func $recvfrom (param i32 i32 i32 i32 i32 i32 i32) (result i32)))',
        '(import "wasix_32v1" "sock_accept_v2" '
        '(func $accept (param i32 i32 i32 i32) (result i32)))',
        '(import "wasix_32v1" "sock_addr_peer" (func $peer (param i32 i32) (result i32)))',
        '(import "wasix_32v1" "sock_set_opt_size" '
        '(func $setsize (param i32 i32 i64) (result i32)))',
        '(import "wasix_32v1" "sock_set_opt_flag" '
        '(func $setflag (param i32 i32 i32) (result i32)))',
    ])
    body = f"""
      (call $emit (call $open (i32.const 1) (i32.const 2) (i32.const 0) (i32.const {TOP - 2})))
      (call $emit (call $open (i32.const 9) (i32.const 2) (i32.const 0) (i32.const 100)))
      (call $emit (call $open (i32.const 1) (i32.const 7) (i32.const 0) (i32.const 100)))
      (call $emit (call $open (i32.const 1) (i32.const 2) (i32.const 0) (i32.const 100)))
      (call $emit (call $bind (i32.const 99) (i32.const 400)))
      (call $emit (call $bind (i32.const 1) (i32.const 400)))
      (call $emit (call $bind (i32.load (i32.const 100)) (i32.const {TOP - 4})))
      (call $emit (call $bind (i32.load (i32.const 100)) (i32.const 200)))
      (i32.store (i32.const 600) (i32.const 700))
      (i32.store (i32.const 604) (i32.const 4))
      (call $emit (call $sendto (i32.load (i32.const 100)) (i32.const 600) (i32.const 1)
                                (i32.const 0) (i32.const 300) (i32.const 120)))
      (i32.store (i32.const 608) (i32.const {TOP - 2}))
      (i32.store (i32.const 612) (i32.const 64))
      (call $emit (call $sendto (i32.load (i32.const 100)) (i32.const 608) (i32.const 1)
                                (i32.const 0) (i32.const 400) (i32.const 120)))
      (call $emit (call $recvfrom (i32.load (i32.const 100)) (i32.const 600) (i32.const 1)
                                  (i32.const 0) (i32.const {TOP}) (i32.const 124)
                                  (i32.const 800)))
      (call $emit (call $listen (i32.load (i32.const 100)) (i32.const 5)))
      (call $emit (call $accept (i32.load (i32.const 100)) (i32.const 0) (i32.const 130)
                                (i32.const 900)))
      (call $emit (call $setsize (i32.load (i32.const 100)) (i32.const 15)
                                 (i64.const 0x7fffffffffff)))
      (call $emit (call $setflag (i32.load (i32.const 100)) (i32.const 200) (i32.const 1)))
      (call $emit (call $setflag (i32.load (i32.const 100)) (i32.const 2) (i32.const 7)))
      (call $emit (call $open (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 104)))
      (call $emit (call $peer (i32.load (i32.const 104)) (i32.const 900)))
      (call $emit (call $connect (i32.load (i32.const 104)) (i32.const 500)))
    """
    codes, guest = _run(tmp_path, imports, body, ADDRS)
    expected = [
        Errno.EFAULT,           # fd result pointer outside memory
        Errno.EAFNOSUPPORT,     # unknown address family
        Errno.EINVAL,           # unknown socket type
        Errno.SUCCESS,          # a UDP socket
        Errno.EBADF,            # unknown fd
        Errno.ENOTSOCK,         # bind on stdout
        Errno.EFAULT,           # address outside memory
        Errno.EADDRNOTAVAIL,    # an address the host does not own
        Errno.EACCES,           # broadcast without SO_BROADCAST (as Linux)
        Errno.EFAULT,           # iovec buffer running past memory
        Errno.EFAULT,           # result pointer outside memory
        Errno.ENOTSUP,          # listen on a datagram socket (Linux: EOPNOTSUPP)
        Errno.ENOTSUP,          # accept on a datagram socket
        Errno.EINVAL,           # absurd buffer size
        Errno.EINVAL,           # unknown option
        Errno.EINVAL,           # a flag that is not a bool
        Errno.SUCCESS,          # a TCP socket
        Errno.ENOTCONN,         # peer of an unconnected socket
        Errno.EAFNOSUPPORT,     # connect to an unspecified-family address
    ]
    assert [Errno(c).name for c in codes] == [e.name for e in expected]
    assert guest.ctx.stats.faults  # bad pointers are counted


def test_thousands_of_sockets_hit_a_limit_not_the_host(tmp_path: Path) -> None:
    imports = SOCK_OPEN
    body = """
      (local $e i32) (local $ok i32)
      (block $done
        (loop $more
          (local.set $e (call $open (i32.const 1) (i32.const 2) (i32.const 0) (i32.const 100)))
          (br_if $done (i32.ne (local.get $e) (i32.const 0)))
          (local.set $ok (i32.add (local.get $ok) (i32.const 1)))
          (br_if $more (i32.lt_u (local.get $ok) (i32.const 20000)))))
      (call $emit (local.get $e))
      (call $emit (local.get $ok))
    """
    codes, _guest = _run(tmp_path, imports, body, "")
    assert codes[0] == Errno.EMFILE
    assert 1000 <= codes[1] < 20000  # the fd cap (1024 by default) stopped it
