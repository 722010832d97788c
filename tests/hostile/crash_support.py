"""The crash-mid-flow program and its cases, shared by tests/hostile/test_crash_midflow.py
(native, vnet virtual and real time) and tests/kernel/test_close_reset.py (the kernel
as the victim's side, through the TUN bridge)."""

from __future__ import annotations

from pathlib import Path

from tests.examples.harness import HOSTS

SOURCE = Path(__file__).resolve().parent / "c" / "crash_midflow.c"
SERVER = HOSTS[0].ipv4.split("/")[0]
PORT = "7300"
VIRTUAL_LIMIT_NS = 30 * 1_000_000_000

# (the server's way of dying, the client's loop, what the client prints: a regex)
CASES = {
    "close-then-peer-writes": ("close", "write", r"write error: EPIPE after 1 writes"),
    "trap-after-writing": ("trap-write", "read", r"EOF after 65536 bytes"),
    "exit-with-unread-data": ("exit-unread", "sendwait", r"read error: ECONNRESET after 0 bytes"),
    "trap-while-peer-floods": ("trap-read", "flood",
                               r"write error: (ECONNRESET|EPIPE) after \d+ writes"),
}
