"""HostSocket against Linux: the same Python probe on kernel sockets and on a virtual host.

tests/host_socket_probe.py records what a program sees (errors with their
errno and text, timeouts, non-blocking errors, `makefile` modes and its
reference counting, `recvmsg`/`sendmsg`, datagram truncation). It runs
as a script inside a fresh network namespace holding only `lo` (so its
127.0.0.1 and ::1 are the namespace's own) and in-process inside
`Host.sockets()` on a virtual host; the two records must be equal.
`getaddrinfo` answers for literals, services and wildcards (no name
lookup) are compared in-process with the kernel's resolver.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vnet.network import Network
from vnet.testing import netns

from .host_socket_probe import probe

PROBE = Path(__file__).with_name("host_socket_probe.py")


def kernel_record() -> dict[str, Any]:
    problem = netns.namespace_problem()
    if problem:
        netns.refuse(problem)
    with netns.Namespace(f"vhs{os.getpid()}") as ns:
        ns.check_isolated([])
        out = subprocess.run(netns.in_namespace(ns.name, sys.executable, "-I", str(PROBE)),
                             capture_output=True, text=True, timeout=60, check=True,
                             env=netns.clean_env())
    record: dict[str, Any] = json.loads(out.stdout)
    return record


def vnet_record() -> dict[str, Any]:
    net = Network(virtual_time=True, seed=5)
    host = net.host("solo")
    host.connect(net.segment("lan"), "10.0.0.1/24", "fd00::1/64")
    try:
        with host.sockets():
            record = probe()
    finally:
        net.close()
    return json.loads(json.dumps(record))  # type: ignore[no-any-return]


def test_a_python_program_sees_the_same_sockets_on_vnet_as_on_linux() -> None:
    linux = kernel_record()
    virtual = vnet_record()
    assert linux["connect refused"][:3] == ["raised", "ConnectionRefusedError", 111]
    assert linux["makefile x"][:2] == ["raised", "ValueError"]  # the probe did run fully
    assert {k: v for k, v in virtual.items() if v != linux.get(k)} == {}
    assert virtual == linux


QUERIES: list[tuple[Any, ...]] = [
    (None, 80, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE),
    (None, 80, 0, socket.SOCK_STREAM, 0, 0),
    ("127.0.0.1", 80, 0, 0, 0, 0),
    ("::1", "http", 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME),
    ("10.1.2.3", "domain", socket.AF_INET, 0, 0, 0),
    ("1.2.3.4", "nosuchservice", 0, 0, 0, 0),
    ("::1", 80, socket.AF_INET, 0, 0, 0),
    ("not-a-number", 80, 0, 0, 0, socket.AI_NUMERICHOST),
    (None, None, 0, 0, 0, 0),
    ("fd00::5", 443, socket.AF_INET6, socket.SOCK_DGRAM, 0, 0),
    ("127.0.0.1", "80", 0, socket.SOCK_RAW, 0, 0),
    ("127.0.0.1", None, 0, socket.SOCK_RAW, 0, 0),
    ("127.0.0.1", "http", 0, 0, 0, 0),
    ("127.0.0.1", "http", 0, 0, 0, socket.AI_NUMERICSERV),
    ("10.0.0.1", 53, 0, socket.SOCK_DGRAM, socket.IPPROTO_TCP, 0),
]


def answer(call: Any, query: tuple[Any, ...]) -> Any:
    try:
        return call(*query)
    except OSError as e:
        return (type(e).__name__, e.errno, str(e))


@pytest.mark.parametrize("query", QUERIES, ids=[repr(q[:2]) for q in QUERIES])
def test_getaddrinfo_answers_as_glibc_for_names_that_need_no_lookup(query: tuple[Any, ...]) -> None:
    net = Network(virtual_time=True)
    host = net.host("solo")
    try:
        assert answer(host.getaddrinfo, query) == answer(socket.getaddrinfo, query)
    finally:
        net.close()
