"""curl in the kernel namespace fetches pages from an HTTP server on a guest host.

Two servers: the HTTP example guest (examples/http_server.c as wasm under
vnet, serving a preopened directory as /www) and a scripted HostSocket
server (`scripted.http_server`) that does not depend on the C SDK. Both are
fetched over IPv4 and IPv6, including a body of several megabytes whose
SHA-256 must match the file's.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from vnet.guest.runtime import Guest, GuestConfig

from . import scripted
from .conftest import GUEST4, GUEST6, KernelLab, Payload, sha256_file, wait_until

BIG = 6_000_000
INDEX = b"<!doctype html><title>vnet</title><p>hello from a guest host</p>\n"


def _url(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


def _curl(lab: KernelLab, url: str, out: Path) -> tuple[int, int, float]:
    """Fetch url into out; returns (status, bytes, bytes per second) as curl saw them."""
    proc = lab.run("curl", "-sS", "-g", "--noproxy", "*", "--max-time", "120", "-o", str(out),
                   "-w", "%{http_code} %{size_download} %{speed_download}", url,
                   timeout_s=130)
    status, size, speed = proc.stdout.decode().split()
    return int(status), int(size), float(speed)


@pytest.fixture
def site(tmp_path: Path, payloads: Callable[[int], Payload]) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_bytes(INDEX)
    (root / "big.bin").write_bytes(payloads(BIG).data)
    return root


@pytest.mark.parametrize("address", [GUEST4, GUEST6], ids=["ipv4", "ipv6"])
def test_curl_fetches_pages_from_scripted_guest_server(
        kernel_lab: Callable[..., KernelLab], site: Path, payloads: Callable[[int], Payload],
        interop_results: Callable[..., None], address: str) -> None:
    lab = kernel_lab()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    ready: list[bool] = []
    job = lab.start_guest(lambda: scripted.http_server(lab.guest, family, 8080, site, 3, ready))
    wait_until(lambda: bool(ready) or job.done, what="the guest HTTP server")

    status, size, _ = _curl(lab, _url(address, 8080, "/"), lab.tmp / "index.html")
    assert (status, size) == (200, len(INDEX))
    assert (lab.tmp / "index.html").read_bytes() == INDEX

    status, size, speed = _curl(lab, _url(address, 8080, "/big.bin"), lab.tmp / "big.bin")
    assert (status, size) == (200, BIG)
    assert sha256_file(lab.tmp / "big.bin") == payloads(BIG).sha256

    status, _, _ = _curl(lab, _url(address, 8080, "/missing"), lab.tmp / "missing")
    assert status == 404
    assert job.result() == [f"GET / 200 {len(INDEX)}", f"GET /big.bin 200 {BIG}",
                            "GET /missing 404 14"]
    interop_results(f"curl scripted server {'ipv6' if ':' in address else 'ipv4'}",
                    bytes=BIG, mb_per_s=round(speed / 1e6, 2))


@pytest.mark.parametrize("address", [GUEST4, GUEST6], ids=["ipv4", "ipv6"])
def test_curl_fetches_pages_from_wasm_http_server(
        kernel_lab: Callable[..., KernelLab], kernel_example: Callable[[str], Path],
        site: Path, payloads: Callable[[int], Payload], interop_results: Callable[..., None],
        address: str) -> None:
    module = kernel_example("http_server")
    lab = kernel_lab()
    output = bytearray()
    lock = threading.Lock()

    def sink(data: bytes) -> None:
        with lock:
            output.extend(data)

    guest = Guest(lab.net.scheduler, GuestConfig(
        module=str(module), args=["http_server", "/www", "8080", "3"], host=lab.guest,
        preopens=[(str(site), "/www")], stdout=sink, stderr=sink, name="http_server"))
    guest.start()
    wait_until(lambda: b"serving /www on port 8080" in output or guest.done,
               what="http_server to start")
    assert not guest.done, output.decode(errors="replace")

    status, size, _ = _curl(lab, _url(address, 8080, "/"), lab.tmp / "index.html")
    assert (status, size) == (200, len(INDEX))
    assert (lab.tmp / "index.html").read_bytes() == INDEX

    status, size, speed = _curl(lab, _url(address, 8080, "/big.bin"), lab.tmp / "big.bin")
    assert (status, size) == (200, BIG)
    assert sha256_file(lab.tmp / "big.bin") == payloads(BIG).sha256

    status, _, _ = _curl(lab, _url(address, 8080, "/../etc/passwd"), lab.tmp / "forbidden")
    assert status in (403, 404)  # curl may normalise the dots away before sending
    wait_until(lambda: guest.done, what="http_server to exit after 3 connections")
    assert guest.exit_code == 0, output.decode(errors="replace")
    log = output.decode()
    assert f"GET /big.bin 200 {BIG}" in log, log
    interop_results(f"curl wasm http_server {'ipv6' if ':' in address else 'ipv4'}",
                    bytes=BIG, mb_per_s=round(speed / 1e6, 2))
