"""http_server: the same responses for the same requests, natively and on vnet.

The client is tests/examples/http_fetch.py: a real socket in the client's
namespace natively, a vnet HostSocket on the client's virtual host.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from .harness import Lab, NativeLab, VnetLab
from .http_fetch import Request, fetch

INDEX = "<h1>vnet</h1>\n"
NOTES = "plain text, " * 100 + "\n"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "notes.txt").write_text(NOTES)
    (root / "sub" / "index.html").write_text("sub\n")
    (root / "space name.txt").write_text("spaced\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "secret.txt").write_text("do not serve\n")  # next to the root, not in it
    return root


def http(lab: Lab, port: int, requests: list[Request]) -> list[dict[str, Any]]:
    """Send requests on one connection from bravo to alpha; the parsed responses."""
    if isinstance(lab, NativeLab):
        out = lab.exec_python("bravo", str(Path(__file__).with_name("http_fetch.py")), "10.0.0.1",
                              str(port), json.dumps(requests))
        result: list[dict[str, Any]] = json.loads(out)
        return result
    assert isinstance(lab, VnetLab)
    with lab.hosts["bravo"].socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(("10.0.0.1", port))
        return json.loads(json.dumps(fetch(sock, requests, "10.0.0.1")))


def test_get_head_and_errors_on_one_keep_alive_connection(lab: Lab, site: Path) -> None:
    server = lab.start("alpha", "http_server", "/www", "8080", "1", dirs={"/www": site})
    server.wait_for("serving")
    responses = http(lab, 8080, [
        ("GET", "/", {}),
        ("GET", "/notes.txt", {}),
        ("HEAD", "/notes.txt", {}),
        ("GET", "/sub/", {}),
        ("GET", "/sub", {}),
        ("GET", "/space%20name.txt?x=1", {}),
        ("GET", "/data.bin", {}),
        ("GET", "/missing.html", {}),
        ("POST", "/", {"Content-Length": "0"}),
        ("GET", "/index.html", {"Connection": "close"}),
    ])
    statuses = [(r["status"], r["headers"].get("content-type"), r["headers"].get("content-length"))
                for r in responses[:-1]]
    assert statuses == [
        (200, "text/html; charset=utf-8", str(len(INDEX))),
        (200, "text/plain; charset=utf-8", str(len(NOTES))),
        (200, "text/plain; charset=utf-8", str(len(NOTES))),
        (200, "text/html; charset=utf-8", "4"),
        (200, "text/html; charset=utf-8", "4"),
        (200, "text/plain; charset=utf-8", "7"),
        (200, "application/octet-stream", "16384"),
        (404, "text/plain; charset=utf-8", "14"),
        (405, "text/plain; charset=utf-8", "23"),
        (200, "text/html; charset=utf-8", str(len(INDEX))),
    ]
    bodies = [r["body"] for r in responses[:-1]]
    assert bodies[:6] == [INDEX, NOTES, "", "sub\n", "sub\n", "spaced\n"]
    assert bodies[6] == (bytes(range(256)) * 64).decode("latin-1")
    assert bodies[7:] == ["404 Not Found\n", "405 Method Not Allowed\n", INDEX]
    assert responses[8]["headers"]["allow"] == "GET, HEAD"
    assert [r["headers"]["connection"] for r in responses[:-1]] == ["keep-alive"] * 9 + ["close"]
    assert responses[-1] == {"closed_by_server": True}
    assert server.wait() == 0, server.describe()
    assert server.lines() == [
        "http_server: serving /www on port 8080".replace("/www", str(site) if isinstance(
            lab, NativeLab) else "/www"),
        f"http_server: GET / 200 {len(INDEX)}",
        f"http_server: GET /notes.txt 200 {len(NOTES)}",
        "http_server: HEAD /notes.txt 200 0",
        "http_server: GET /sub/ 200 4",
        "http_server: GET /sub 200 4",
        "http_server: GET /space%20name.txt?x=1 200 7",
        "http_server: GET /data.bin 200 16384",
        "http_server: GET /missing.html 404 0",
        "http_server: POST / 405 0",
        f"http_server: GET /index.html 200 {len(INDEX)}",
        "http_server: bye",
    ]


@pytest.mark.parametrize("target", ["/../secret.txt", "/%2e%2e/secret.txt",
                                    "/sub/../../secret.txt", "/sub/%2E%2E/%2e%2e/secret.txt",
                                    "/..%2fsecret.txt", "/%00", "/./index.html", "..%5csecret.txt"])
def test_path_traversal_is_refused(lab: Lab, site: Path, target: str) -> None:
    server = lab.start("alpha", "http_server", "/www", "8081", "1", dirs={"/www": site})
    server.wait_for("serving")
    responses = http(lab, 8081, [("GET", target, {"Connection": "close"})])
    assert responses[0]["status"] == 403
    assert responses[0]["body"] == "403 Forbidden\n"
    assert server.wait() == 0
    assert server.lines()[1] == f"http_server: GET {target} 403 0"


def test_http_1_0_closes_after_one_response(lab: Lab, site: Path) -> None:
    server = lab.start("alpha", "http_server", "/www", "8082", "1", dirs={"/www": site})
    server.wait_for("serving")
    if isinstance(lab, NativeLab):
        script = ("import socket,sys;s=socket.create_connection(('10.0.0.1',8082));"
                  "s.sendall(b'GET /sub/ HTTP/1.0\\r\\n\\r\\n');b=b''\n"
                  "while (c:=s.recv(4096)): b+=c\n"
                  "sys.stdout.write(b.hex())")
        raw = bytes.fromhex(lab.exec_python("bravo", "-c", script)).decode()
    else:
        assert isinstance(lab, VnetLab)
        with lab.hosts["bravo"].socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.connect(("10.0.0.1", 8082))
            sock.sendall(b"GET /sub/ HTTP/1.0\r\n\r\n")
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            raw = b"".join(chunks).decode()
    assert raw == ("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                   "Content-Length: 4\r\nConnection: close\r\n\r\nsub\n")
    assert server.wait() == 0
