"""The fd table closes a description when its last fd goes, and counts stack sockets.

`FdTable` keeps a reference count per open description (instead of scanning
every fd on each close) and the number of fds that refer to stack sockets (the
per-guest socket limit). These check what a guest would see: a description
dup'd, dup2'd or renumbered over stays open exactly as long as one fd refers
to it, as on Linux.
"""

from __future__ import annotations

from vnet.guest.fdtable import FdTable, FileDescription


class _Probe(FileDescription):
    """A description that records when it is closed."""

    def __init__(self, stack_socket: bool = False) -> None:
        super().__init__()
        self.closed = 0
        self.is_stack_socket = stack_socket

    def close(self) -> None:
        self.closed += 1


def test_a_dupd_description_closes_with_its_last_fd() -> None:
    fds = FdTable()
    probe = _Probe()
    first = fds.add(probe)
    second = fds.dup(first)
    fds.close(first)
    assert probe.closed == 0
    fds.close(second)
    assert probe.closed == 1


def test_dup2_over_an_fd_closes_what_it_referred_to_once() -> None:
    fds = FdTable()
    kept, replaced = _Probe(), _Probe()
    source = fds.add(kept)
    target = fds.add(replaced)
    fds.dup_to(source, target)
    assert (kept.closed, replaced.closed) == (0, 1)
    fds.dup_to(source, target)  # onto an fd of the same description: nothing closes
    fds.close(source)
    assert kept.closed == 0
    fds.close(target)
    assert kept.closed == 1


def test_renumber_closes_the_target_but_not_a_shared_description() -> None:
    fds = FdTable()
    shared, other = _Probe(), _Probe()
    a = fds.add(shared)
    b = fds.dup(a)
    c = fds.add(other)
    fds.renumber(a, c)
    assert (shared.closed, other.closed) == (0, 1)
    fds.renumber(c, b)  # both refer to `shared`: it stays open through the fd left
    assert shared.closed == 0
    fds.close(b)
    assert shared.closed == 1


def test_close_all_closes_each_description_once() -> None:
    fds = FdTable()
    probe = _Probe()
    fd = fds.add(probe)
    fds.dup(fd)
    fds.dup_to(fd, 10)
    fds.close_all()
    assert probe.closed == 1


def test_stack_socket_fds_are_counted_as_they_come_and_go() -> None:
    fds = FdTable()
    sock = fds.add(_Probe(stack_socket=True))
    fds.add(_Probe())
    assert fds.socket_fds == 1
    dup = fds.dup(sock)
    assert fds.socket_fds == 2
    fds.close(sock)
    fds.dup_to(dup, 20)
    assert fds.socket_fds == 2
    fds.close(dup)
    fds.close(20)
    assert fds.socket_fds == 0
