"""TCP socket behaviours, differentially: each scenario runs on the Linux kernel and on vnet.

The kernel side runs in a network namespace this module creates and deletes
(linux_reference.py: lo plus a veth pair kept inside it, no route out); the
vnet side on a virtual host with the same interface and addresses, in virtual
time. Each scenario's outcomes (return values or errno names, ephemeral ports
normalised) must be equal, step by step. The scenarios are the corner cases
a review found vnet getting wrong: what a reset does to a connection waiting
in the accept queue, recv() after a refused connect(), reconnecting a 4-tuple
that is in TIME-WAIT, TCP_INFO.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from socket import (
    AF_INET,
    SO_ERROR,
    SO_LINGER,
    SO_REUSEADDR,
    SOCK_STREAM,
    SOL_SOCKET,
)
from typing import Any

import pytest

from .linux_reference import (
    EPHEMERAL_RANGE,
    LinuxNamespace,
    Outcome,
    Step,
    linux_namespace,
    normalise,
    require_root,
    run_virtual,
)

ME4 = "10.0.0.1"
SERVER = (ME4, 7100)
WAIT = 0.5  # receive/accept timeout when something is expected
LINGER_ZERO = struct.pack("@ii", 1, 0)  # struct linger {on, 0 s}: close() resets
REUSEADDR = (SOL_SOCKET, SO_REUSEADDR, 1)
TCP_INFO = 11

SCENARIOS: dict[str, list[Step]] = {}


def scenario(name: str, *steps: Step) -> None:
    assert name not in SCENARIOS, name
    SCENARIOS[name] = list(steps)


def stream(name: str, port: int | None = None) -> list[Step]:
    """A TCP socket with SO_REUSEADDR, bound to ME4:port when a port is given."""
    steps: list[Step] = [("socket", name, AF_INET, SOCK_STREAM),
                         ("setsockopt", name, *REUSEADDR)]
    if port is not None:
        steps.append(("bind", name, (ME4, port)))
    return steps


def listener(name: str = "l") -> list[Step]:
    return [*stream(name, SERVER[1]), ("listen", name, 8)]


# --- a connection reset while it waits in the accept queue ------------------
# Linux keeps the (now closed) child in the queue: accept() returns it, with the
# peer's address; its first recv() is ECONNRESET, the next ones 0 (end of stream).
scenario("reset-in-accept-queue",
         *listener(),
         *stream("c"), ("connect", "c", SERVER),
         ("setsockopt", "c", SOL_SOCKET, SO_LINGER, LINGER_ZERO), ("close", "c"),
         ("sleep", 0.1),
         ("accept", "l", "s", WAIT),
         ("getpeername", "s"),
         ("recv", "s", 16, WAIT),
         ("recv", "s", 16, WAIT),
         ("send", "s", b"x"))

# a reset one does not hide the healthy one queued behind it
scenario("reset-then-healthy-in-accept-queue",
         *listener(),
         *stream("c1"), ("connect", "c1", SERVER),
         *stream("c2"), ("connect", "c2", SERVER), ("send", "c2", b"hello"),
         ("setsockopt", "c1", SOL_SOCKET, SO_LINGER, LINGER_ZERO), ("close", "c1"),
         ("sleep", 0.1),
         ("accept", "l", "s1", WAIT), ("recv", "s1", 16, WAIT),
         ("accept", "l", "s2", WAIT), ("recv", "s2", 16, WAIT))


# --- recv() after a refused connect() ------------------------------------------
# connect() reports ECONNREFUSED; recv() then sees end of stream, as after a reset
scenario("recv-after-refused-connect",
         *stream("c"), ("connect", "c", (ME4, 6001)),
         ("getsockopt", "c", SOL_SOCKET, SO_ERROR),
         ("recv", "c", 16, WAIT), ("recv", "c", 16, WAIT),
         ("send", "c", b"x"))
# a non-blocking connect() is not disconnected by its failure: the first recv()
# reports it, the next ones see end of stream (tcp_done shut the receive side)
scenario("recv-after-refused-nonblocking-connect",
         *stream("c"), ("connect_nb", "c", (ME4, 6001)), ("sleep", 0.1),
         ("recv", "c", 16, WAIT), ("recv", "c", 16, WAIT),
         ("send", "c", b"x"), ("getsockopt", "c", SOL_SOCKET, SO_ERROR))
scenario("so-error-after-refused-nonblocking-connect",
         *stream("c"), ("connect_nb", "c", (ME4, 6001)), ("sleep", 0.1),
         ("getsockopt", "c", SOL_SOCKET, SO_ERROR),
         ("recv", "c", 16, WAIT), ("send", "c", b"x"))


# --- connect() again: Linux goes by the socket's own state (sock->state) -----------
# a non-blocking connect() that got through: the next connect() says 0, then EISCONN
scenario("connect-again-after-nonblocking-success",
         *listener(),
         *stream("c"), ("connect_nb", "c", SERVER), ("sleep", 0.05),
         ("connect_nb", "c", SERVER), ("connect_nb", "c", SERVER),
         ("accept", "l", "s", WAIT), ("send", "c", b"hi"), ("recv", "s", 16, WAIT))
# one that was refused: the next connect() reports it (ECONNABORTED once SO_ERROR
# took the errno) and disconnects the socket; the one after that starts anew
scenario("connect-again-after-nonblocking-refusal",
         *stream("c"), ("connect_nb", "c", (ME4, 6001)), ("sleep", 0.05),
         ("getsockopt", "c", SOL_SOCKET, SO_ERROR),
         ("connect_nb", "c", (ME4, 6001)), ("recv", "c", 16, WAIT),
         ("connect", "c", (ME4, 6001)))
scenario("connect-again-after-nonblocking-refusal-unread",
         *stream("c"), ("connect_nb", "c", (ME4, 6001)), ("sleep", 0.05),
         ("connect_nb", "c", (ME4, 6001)), ("getsockopt", "c", SOL_SOCKET, SO_ERROR),
         ("recv", "c", 16, WAIT))
# a connected socket stays connected for connect(), even after a reset
scenario("connect-again-after-reset",
         *listener(),
         *stream("c"), ("connect", "c", SERVER), ("accept", "l", "s", WAIT),
         ("setsockopt", "s", SOL_SOCKET, SO_LINGER, LINGER_ZERO), ("close", "s"),
         ("sleep", 0.05), ("recv", "c", 16, WAIT), ("connect", "c", SERVER),
         ("connect", "c", (ME4, 6001)))


# --- connect() from a bound port to a 4-tuple in TIME-WAIT -----------------------
# With timestamps (both sides' default) the TIME-WAIT gives way (tcp_twsk_unique:
# an explicitly bound port skips net.ipv4.tcp_tw_reuse's conditions).
CLIENT_PORT = 40000  # below the ephemeral range: compared as it is


def active_close_then_reconnect(name: str, *close: Step) -> None:
    scenario(name,
             *listener(),
             *stream("c", CLIENT_PORT), ("connect", "c", SERVER),
             ("accept", "l", "s", WAIT), ("send", "c", b"abc"), ("recv", "s", 16, WAIT),
             *close,
             ("sleep", 0.2),
             *stream("c2", CLIENT_PORT), ("connect", "c2", SERVER),
             ("accept", "l", "s2", WAIT), ("send", "c2", b"new"), ("recv", "s2", 16, WAIT),
             ("send", "s2", b"back"), ("recv", "c2", 16, WAIT))


active_close_then_reconnect("reconnect-time-wait-4-tuple",
                            ("close", "c"), ("recv", "s", 16, WAIT), ("close", "s"))
active_close_then_reconnect("reconnect-time-wait-after-shutdown-close",
                            ("shutdown", "c", 1), ("recv", "s", 16, WAIT), ("close", "s"),
                            ("sleep", 0.2), ("recv", "c", 16, WAIT), ("close", "c"))
# the first socket still open (its connection in TIME-WAIT): the same
active_close_then_reconnect("reconnect-time-wait-socket-still-open",
                            ("shutdown", "c", 1), ("recv", "s", 16, WAIT), ("close", "s"),
                            ("sleep", 0.2), ("recv", "c", 16, WAIT))
# an ephemeral connect() only reuses a TIME-WAIT under net.ipv4.tcp_tw_reuse, whose
# default (2) limits it to loopback addresses: not 10.0.0.1, even >1 s later
scenario("ephemeral-port-held-by-time-wait",
         ("port_range", 41000, 41000),
         *listener(),
         *stream("c"), ("connect", "c", SERVER), ("accept", "l", "s", WAIT),
         ("close", "c"), ("recv", "s", 16, WAIT), ("close", "s"),
         ("sleep", 1.5),
         *stream("c2"), ("connect", "c2", SERVER))
# a live connection's 4-tuple is never given away
scenario("reconnect-live-4-tuple",
         *listener(),
         *stream("c", CLIENT_PORT), ("connect", "c", SERVER), ("accept", "l", "s", WAIT),
         *stream("c2", CLIENT_PORT), ("connect", "c2", SERVER))
# nor one the peer closed first while this side has not closed yet (CLOSE-WAIT)
scenario("reconnect-close-wait-4-tuple",
         *listener(),
         *stream("c", CLIENT_PORT), ("connect", "c", SERVER), ("accept", "l", "s", WAIT),
         ("close", "s"), ("sleep", 0.1), ("recv", "c", 16, WAIT),
         *stream("c2", CLIENT_PORT), ("connect", "c2", SERVER))


# --- getsockopt(TCP_INFO) -------------------------------------------------------
# struct tcp_info's length, the socket's state as Linux numbers it (a socket whose
# connection is in TIME-WAIT reads TCP_CLOSE), the negotiated options, and a
# listener's accept queue (tcpi_unacked) and backlog (tcpi_sacked)
STATE = ("state",)
LIVE = ("state", "options", "ecn_word", "ssthresh", "snd_mss=TCP_MAXSEG", "rto>=200ms", "cwnd>0",
        "advmss>0", "snd_wnd>0", "rcv_wnd>0")
scenario("tcp-info-states",
         *stream("u"), ("tcp_info", "u", STATE),
         *listener(), ("tcp_info", "l", ("state", "unacked", "sacked")),
         *stream("c", CLIENT_PORT), ("connect", "c", SERVER),
         ("sleep", 0.05), ("tcp_info", "l", ("state", "unacked", "sacked")),
         ("accept", "l", "s", WAIT),
         ("send", "c", b"ping"), ("recv", "s", 16, WAIT),
         ("tcp_info", "c", LIVE), ("tcp_info", "s", LIVE),
         ("shutdown", "c", 1), ("sleep", 0.05),
         ("tcp_info", "c", STATE), ("tcp_info", "s", STATE),
         ("close", "s"), ("sleep", 0.05),
         ("tcp_info", "c", STATE), ("tcp_info", "l", ("state", "unacked")))
scenario("tcp-info-after-reset",
         *listener(),
         *stream("c"), ("connect", "c", SERVER), ("accept", "l", "s", WAIT),
         ("setsockopt", "s", SOL_SOCKET, SO_LINGER, LINGER_ZERO), ("close", "s"),
         ("sleep", 0.05), ("tcp_info", "c", STATE),
         ("recv", "c", 16, WAIT), ("tcp_info", "c", STATE))
scenario("tcp-info-passive-close",
         *listener(),
         *stream("c"), ("connect", "c", SERVER), ("accept", "l", "s", WAIT),
         ("close", "c"), ("sleep", 0.05), ("tcp_info", "s", STATE),
         ("close", "s"), ("tcp_info", "l", ("state", "unacked")))

# the accept queue holds backlog + 1 (sk_acceptq_is_full compares with >), listen(0)
# takes one, and the backlog a listener reports (tcpi_sacked) is the one it was given
scenario("accept-queue-holds-backlog-plus-one",
         *stream("l", SERVER[1]), ("listen", "l", 2),
         *(step for n in range(4) for step in (
             *stream(f"c{n}"), ("connect_nb", f"c{n}", SERVER))),
         ("sleep", 0.1), ("tcp_info", "l", ("unacked", "sacked")))
scenario("listen-backlogs",
         *stream("a", 7201), ("listen", "a", 0), ("tcp_info", "a", ("unacked", "sacked")),
         *stream("b", 7202), ("listen", "b", 100000), ("tcp_info", "b", ("sacked",)),
         ("listen", "a", 3), ("tcp_info", "a", ("sacked",)))


@pytest.fixture(scope="module")
def linux() -> Iterator[tuple[LinuxNamespace, dict[str, list[Outcome]]]]:
    require_root()
    with linux_namespace() as ns:
        yield ns, ns.run(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_tcp_matches_linux(name: str,
                           linux: tuple[LinuxNamespace, dict[str, list[Outcome]]]) -> None:
    _, results = linux
    theirs = normalise(results[name], EPHEMERAL_RANGE)
    ours = normalise(run_virtual(SCENARIOS[name], EPHEMERAL_RANGE), EPHEMERAL_RANGE)
    assert ours == theirs, (
        f"{name}: vnet differs from Linux\n"
        + "\n".join(f"  {i:2} {step!r}: linux={t!r} vnet={o!r}"
                    for i, (step, t, o) in enumerate(zip(SCENARIOS[name], theirs, ours,
                                                         strict=True)) if t != o))


def test_namespace_has_no_way_out(linux: tuple[LinuxNamespace, Any]) -> None:
    ns, _ = linux
    ns.check_isolated()
    assert ns.exec("ip", "route", "show", "default").strip() == ""
