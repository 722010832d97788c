"""Guest programs talk to kernel-side servers and clients across the TUN bridge.

Scripted guests (HostSocket) fetch from `python3 -m http.server`, converse
with `nc -l` over TCP and with `nc -u` over UDP, in both directions and both
address families. The example guests built to wasm (tcp_echo_client,
tcp_echo_server, udp_echo) do the same against kernel-side echo peers and nc.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.network import SOCK_DGRAM, SOCK_STREAM

from . import scripted
from .conftest import GUEST4, GUEST6, KERNEL4, KERNEL6, KernelLab, Payload, wait_until

FAMILIES = pytest.mark.parametrize(
    ("family", "kernel", "guest"),
    [(socket.AF_INET, KERNEL4, GUEST4), (socket.AF_INET6, KERNEL6, GUEST6)],
    ids=["ipv4", "ipv6"])


@FAMILIES
def test_guest_fetches_file_from_kernel_python_http_server(
        kernel_lab: Callable[..., KernelLab], payloads: Callable[[int], Payload],
        tmp_path: Path, family: int, kernel: str, guest: str) -> None:
    payload = payloads(2_000_000)
    site = tmp_path / "site"
    site.mkdir()
    (site / "file.bin").write_bytes(payload.data)
    lab = kernel_lab()
    server = lab.popen(sys.executable, "-m", "http.server", "--bind", kernel,
                       "--directory", str(site), "8000", name="http.server")
    lab.wait_listening(8000)

    def fetch() -> bytes:
        with lab.guest.socket(family, SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect((kernel, 8000))
            sock.sendall(b"GET /file.bin HTTP/1.0\r\nHost: kernel\r\n\r\n")
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
            return b"".join(chunks)

    response = lab.in_guest(fetch)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK"), head
    assert f"Content-Length: {len(payload.data)}".encode() in head
    assert hashlib.sha256(body).hexdigest() == payload.sha256
    # The kernel saw the guest's own address (no NAT on this bridge).
    wait_until(lambda: b"GET /file.bin" in server.stderr, what="http.server's log line")
    assert bytes(server.stderr).startswith(guest.encode()), server.describe()


@FAMILIES
def test_guest_tcp_client_converses_with_kernel_nc_listener(
        kernel_lab: Callable[..., KernelLab], family: int, kernel: str, guest: str) -> None:
    lab = kernel_lab()
    nc = lab.popen("nc", "-n", "-N", "-l", kernel, "7000", stdin=subprocess.PIPE, name="nc -l")
    lab.wait_listening(7000)

    def converse() -> tuple[bytes, tuple[object, ...]]:
        with lab.guest.socket(family, SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect((kernel, 7000))
            sock.sendall(b"hello from vnet\n")
            reply = b""
            while data := sock.recv(4096):  # until nc shuts its side down
                reply += data
            return reply, sock.getsockname()

    job = lab.start_guest(converse)
    nc.wait_for(b"hello from vnet\n")
    nc.write(b"hello from the kernel\n", close=True)
    reply, local = job.result()
    assert reply == b"hello from the kernel\n"
    assert local[0] == guest
    assert nc.wait() == 0, nc.describe()


@FAMILIES
def test_guest_udp_exchanges_datagrams_with_kernel_nc(
        kernel_lab: Callable[..., KernelLab], family: int, kernel: str, guest: str) -> None:
    lab = kernel_lab()
    nc = lab.popen("nc", "-n", "-u", "-l", kernel, "9000", stdin=subprocess.PIPE,
                   name="nc -u -l")
    lab.wait_listening(9000, udp=True)

    def exchange() -> tuple[bytes, tuple[object, ...]]:
        with lab.guest.socket(family, SOCK_DGRAM) as sock:
            sock.settimeout(30)
            sock.bind((guest, 40000))
            sock.sendto(b"datagram from vnet\n", (kernel, 9000))
            return sock.recvfrom(2048)

    job = lab.start_guest(exchange)
    nc.wait_for(b"datagram from vnet\n")
    nc.write(b"datagram from the kernel\n")  # nc -u -l answers its first sender
    data, sender = job.result()
    assert data == b"datagram from the kernel\n"
    assert sender[:2] == (kernel, 9000)


@FAMILIES
def test_kernel_nc_udp_client_talks_to_guest_echo_server(
        kernel_lab: Callable[..., KernelLab], family: int, kernel: str, guest: str) -> None:
    lab = kernel_lab()
    ready: list[bool] = []
    job = lab.start_guest(lambda: scripted.udp_echo_server(lab.guest, family, 9001, 2, ready))
    wait_until(lambda: bool(ready) or job.done, what="the guest UDP server")
    nc = lab.popen("nc", "-n", "-u", guest, "9001", stdin=subprocess.PIPE, name="nc -u")
    nc.write(b"first\n")
    nc.wait_for(b"first\n")
    nc.write(b"second\n")
    nc.wait_for(b"first\nsecond\n")
    seen = job.result()
    assert [data for data, _ in seen] == [b"first\n", b"second\n"]
    assert all(sender[0] == kernel for _, sender in seen), seen


# --- the example guests, built to wasm ---------------------------------------------------
@FAMILIES
def test_wasm_tcp_echo_client_against_kernel_echo_server(
        kernel_lab: Callable[..., KernelLab], kernel_example: Callable[[str], Path],
        family: int, kernel: str, guest: str) -> None:
    module = kernel_example("tcp_echo_client")
    lab = kernel_lab()
    peer = lab.echo_peer("tcp-echo", kernel, 7001)
    client = lab.start_wasm(module, kernel, "7001", "hello", "kernel", "from vnet")
    assert client.wait() == 0, client.text
    assert f"connected to {kernel} port 7001" in client.text
    assert client.text.count("echo ok") == 3, client.text
    assert peer.wait() == 0
    assert f"echoed 20 bytes to {guest}".encode() in peer.stdout, peer.describe()


@FAMILIES
def test_kernel_nc_against_wasm_tcp_echo_server(
        kernel_lab: Callable[..., KernelLab], kernel_example: Callable[[str], Path],
        family: int, kernel: str, guest: str) -> None:
    module = kernel_example("tcp_echo_server")
    lab = kernel_lab()
    server = lab.start_wasm(module, "7002", "1")
    server.wait_for("listening on port 7002")
    proc = lab.run("nc", "-n", "-N", guest, "7002", input=b"echo me, please\n")
    assert proc.stdout == b"echo me, please\n"
    assert server.wait() == 0, server.text
    assert f"client {kernel} done, 16 bytes echoed" in server.text, server.text


@FAMILIES
def test_wasm_udp_echo_client_against_kernel_echo_peer(
        kernel_lab: Callable[..., KernelLab], kernel_example: Callable[[str], Path],
        family: int, kernel: str, guest: str) -> None:
    module = kernel_example("udp_echo")
    lab = kernel_lab()
    peer = lab.echo_peer("udp-echo", kernel, 9002, 3)
    client = lab.start_wasm(module, "client", kernel, "9002", "ping", "3")
    assert client.wait() == 0, client.text
    assert "3 of 3 echoed" in client.text, client.text
    assert peer.wait() == 0
    assert peer.stdout.count(f"to {guest} port".encode()) == 3, peer.describe()


@FAMILIES
def test_kernel_nc_udp_client_against_wasm_udp_echo_server(
        kernel_lab: Callable[..., KernelLab], kernel_example: Callable[[str], Path],
        family: int, kernel: str, guest: str) -> None:
    module = kernel_example("udp_echo")
    lab = kernel_lab()
    server = lab.start_wasm(module, "server", "9003", "2")
    server.wait_for("listening on port 9003")
    nc = lab.popen("nc", "-n", "-u", guest, "9003", stdin=subprocess.PIPE, name="nc -u")
    nc.write(b"ping 1")
    nc.wait_for(b"ping 1")
    time.sleep(0.05)
    nc.write(b"ping 2")
    nc.wait_for(b"ping 1ping 2")
    assert server.wait() == 0, server.text
    assert f'6 bytes from {kernel}: "ping 2"' in server.text, server.text
