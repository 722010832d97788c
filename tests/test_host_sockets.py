"""Python programs on virtual hosts: the stdlib's clients and servers inside `Host.sockets()`.

`http.client` and `urllib.request` fetch pages from the wasm `http_server`
example guest; a `socketserver` server runs as a scheduler task
(`Host.spawn`) and serves `smtplib` and plain `socket.create_connection`
clients; all in virtual time. The socket module is patched only for the
thread inside the block and is restored afterwards, also on an exception.
"""

from __future__ import annotations

import http.client
import select
import selectors
import smtplib
import socket
import socketserver
import threading
import urllib.request
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from vnet.network import HostSocket, Network

KERNEL_SOCKET = socket.socket
PAGE = "<h1>hello from a wasm guest</h1>\n"


@pytest.fixture
def net() -> Iterator[Network]:
    network = Network(virtual_time=True, seed=7)
    lan = network.segment("lan")
    network.host("alpha").connect(lan, "10.0.0.1/24", "fd00::1/64")
    network.host("bravo").connect(lan, "10.0.0.2/24", "fd00::2/64")
    yield network
    network.close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    (root / "data.bin").write_bytes(bytes(range(256)) * 100)
    return root


def start_http_server(net: Network, example_wasm: Callable[[str], Path], site: Path) -> None:
    server = net.hosts["alpha"].run(example_wasm("http_server"), "/www", "8080",
                                    dirs={"/www": site})
    server.wait_for("serving", timeout=5)


def test_http_client_fetches_a_page_from_the_wasm_http_server(
        net: Network, example_wasm: Callable[[str], Path], site: Path) -> None:
    start_http_server(net, example_wasm, site)
    with net.hosts["bravo"].sockets():
        conn = http.client.HTTPConnection("alpha", 8080, timeout=10)  # a topology host name
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        assert (response.status, response.getheader("Content-Type")) == (
            200, "text/html; charset=utf-8")
        assert body == PAGE.encode()
        conn.request("GET", "/data.bin")  # the same keep-alive connection
        response = conn.getresponse()
        assert response.read() == bytes(range(256)) * 100
        conn.request("GET", "/missing")
        missing = conn.getresponse()
        assert missing.status == 404
        missing.read()
        peer = conn.sock.getpeername()
        conn.close()
    assert peer[:2] == ("fd00::1", 8080)  # IPv6 first, as glibc orders the answers
    assert socket.socket is KERNEL_SOCKET  # restored after the block


def test_urllib_request_opens_a_url_naming_a_virtual_host(
        net: Network, example_wasm: Callable[[str], Path], site: Path) -> None:
    start_http_server(net, example_wasm, site)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy from env
    with net.hosts["bravo"].sockets():
        with opener.open("http://alpha:8080/index.html", timeout=10) as reply:
            assert reply.status == 200
            assert reply.read().decode() == PAGE
        with pytest.raises(urllib.error.HTTPError) as missing:
            opener.open("http://alpha:8080/nothing-here", timeout=10)
        assert missing.value.code == 404
        missing.value.close()
        with pytest.raises(urllib.error.URLError) as unknown:  # a name the network lacks
            opener.open("http://charlie:8080/", timeout=10)
        assert isinstance(unknown.value.reason, socket.gaierror)
        assert unknown.value.reason.errno == socket.EAI_NONAME


class UpperHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line.upper())


def test_socketserver_on_one_host_serves_clients_on_another(net: Network) -> None:
    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]
    served: list[str] = []

    def serve() -> None:
        with socketserver.TCPServer(("alpha", 7000), UpperHandler) as server:
            served.append(str(server.server_address))
            for _ in range(2):
                server.handle_request()  # waits through selectors.PollSelector

    task = alpha.spawn("upper", serve)
    net.run_for(0.001)  # the server reaches listen()
    replies = []
    with bravo.sockets():
        for text in (b"one\n", b"two\nthree\n"):
            with socket.create_connection(("alpha", 7000), timeout=5) as sock:
                with sock.makefile("rwb") as stream:
                    stream.write(text)
                    stream.flush()
                    sock.shutdown(socket.SHUT_WR)
                    replies.append(stream.read())
    net.run_for(0.01)
    assert replies == [b"ONE\n", b"TWO\nTHREE\n"]
    assert served == ["('10.0.0.1', 7000)"]
    assert task.done and task.error is None


class FakeSmtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib.send_message: the messages go to server.mail."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 alpha fake ESMTP")
        mail: dict[str, object] = {"rcpt": []}
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                mail["helo"] = line.split(" ", 1)[1]
                self.reply("250 alpha")
            elif verb == "MAIL":
                mail["from"] = line[10:]
                self.reply("250 ok")
            elif verb == "RCPT":
                mail["rcpt"].append(line[8:])  # type: ignore[attr-defined]
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                lines = []
                while (data := self.rfile.readline()) != b".\r\n":
                    lines.append(data)
                mail["data"] = b"".join(lines)
                self.server.mail.append(mail)  # type: ignore[attr-defined]
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 no")


def test_smtplib_sends_mail_to_a_socketserver_fake(net: Network) -> None:
    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]
    mailbox: list[dict[str, object]] = []

    def serve() -> None:
        with socketserver.TCPServer(("", 25), FakeSmtp) as server:
            server.mail = mailbox  # type: ignore[attr-defined]
            server.handle_request()

    alpha.spawn("smtpd", serve)
    net.run_for(0.001)
    message = EmailMessage()
    message["From"] = "py@bravo"
    message["To"] = "ops@alpha"
    message["Subject"] = "virtual"
    message.set_content("sent from a virtual host\n")
    with bravo.sockets(), smtplib.SMTP("alpha", 25, timeout=5) as client:
        client.send_message(message)
    net.run_for(0.01)
    assert len(mailbox) == 1
    # smtplib says EHLO [address of gethostname()] when getfqdn() has no dot: the virtual host's
    assert mailbox[0]["helo"] == "[10.0.0.2]"
    assert mailbox[0]["from"] == "<py@bravo>"
    assert mailbox[0]["rcpt"] == ["<ops@alpha>"]
    assert b"sent from a virtual host" in mailbox[0]["data"]  # type: ignore[operator]


# --- the patch itself ----------------------------------------------------------------
def test_the_block_patches_only_its_thread_and_restores_everything(net: Network) -> None:
    originals = (socket.socket, socket.getaddrinfo, socket.gethostname, select.select,
                 select.poll, selectors.PollSelector._selector_cls)  # type: ignore[attr-defined]
    other_thread: list[object] = []
    with net.hosts["bravo"].sockets():
        inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        assert isinstance(inside, HostSocket) and isinstance(inside, socket.socket)
        assert socket.gethostname() == "bravo"
        assert socket.gethostbyname("alpha") == "10.0.0.1"

        def elsewhere() -> None:
            kernel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            other_thread.extend([type(kernel), socket.gethostname()])
            kernel.close()

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        with net.hosts["alpha"].sockets():  # nested: the innermost host wins
            assert socket.gethostname() == "alpha"
        assert socket.gethostname() == "bravo"
        inside.close()
    assert other_thread == [socket.socket, socket.gethostname()]
    assert (socket.socket, socket.getaddrinfo, socket.gethostname, select.select, select.poll,
            selectors.PollSelector._selector_cls) == originals  # type: ignore[attr-defined]
    with pytest.raises(ZeroDivisionError), net.hosts["alpha"].sockets():
        raise ZeroDivisionError
    assert (socket.socket, socket.getaddrinfo, socket.gethostname, select.select, select.poll,
            selectors.PollSelector._selector_cls) == originals  # type: ignore[attr-defined]


def test_select_waits_in_virtual_time(net: Network) -> None:
    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]
    with alpha.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("alpha", 5000))
        start = net.scheduler.monotonic_ns()
        with alpha.sockets():
            assert select.select([rx], [], [], 2.5) == ([], [], [])
            assert net.scheduler.monotonic_ns() - start == 2_500_000_000
            with bravo.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.sendto(b"ping", ("alpha", 5000))
                sender = ("10.0.0.2", tx.getsockname()[1])
            assert select.select([rx], [rx], [], 1)[:2] == ([rx], [rx])
            poller = select.poll()
            poller.register(rx, select.POLLIN)
            assert poller.poll(100) == [(rx.fileno(), select.POLLIN)]
            assert rx.recvfrom(100) == (b"ping", sender)
            with pytest.raises(TimeoutError):  # nothing left that could ever wake it
                poller.poll()
            with selectors.DefaultSelector() as selector:  # epoll on Linux
                selector.register(rx, selectors.EVENT_READ, "rx")
                before = net.scheduler.monotonic_ns()
                assert selector.select(0.75) == []
                assert net.scheduler.monotonic_ns() - before == 750_000_000
                with bravo.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                    tx.sendto(b"again", ("alpha", 5000))
                [(key, events)] = selector.select(1)
                assert (key.data, events) == ("rx", selectors.EVENT_READ)


def test_http_client_in_real_time(example_wasm: Callable[[str], Path], site: Path) -> None:
    network = Network(virtual_time=False, seed=7)
    try:
        lan = network.segment("lan")
        network.host("alpha").connect(lan, "10.0.0.1/24")
        network.host("bravo").connect(lan, "10.0.0.2/24")
        start_http_server(network, example_wasm, site)
        with network.hosts["bravo"].sockets():
            conn = http.client.HTTPConnection("alpha", 8080, timeout=10)
            conn.request("GET", "/")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, PAGE.encode())
            conn.close()
    finally:
        network.close()


def test_host_create_connection_and_create_server(net: Network) -> None:
    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]
    with alpha.create_server(("", 9000)) as listener:
        assert listener.getsockname() == ("0.0.0.0", 9000)
        with bravo.create_connection(("alpha", 9000), timeout=5) as client:
            server, peer = listener.accept()
            assert peer == client.getsockname() == ("10.0.0.2", peer[1])
            assert client.gettimeout() == 5
            client.sendmsg([b"two ", b"parts"])
            assert server.recv(100) == b"two parts"
            server.close()
        with pytest.raises(ConnectionRefusedError):
            bravo.create_connection(("alpha", 9001), timeout=5)
        with pytest.raises(socket.gaierror):
            bravo.create_connection(("nowhere", 9000), timeout=5)


def fnv1a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def test_a_wasm_client_fetches_from_python_http_server(
        net: Network, example_wasm: Callable[[str], Path], site: Path) -> None:
    import functools
    import http.server

    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]
    logged: list[str] = []

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            logged.append(format % args)

    def serve() -> None:
        with http.server.HTTPServer(("", 8000), functools.partial(
                QuietHandler, directory=str(site))) as server:
            assert server.server_name == "alpha"  # socket.getfqdn() on the virtual host
            server.handle_request()

    task = alpha.spawn("httpd", serve)
    net.run_for(0.001)
    client = bravo.run(example_wasm("http_get"), "alpha", "8000", "/index.html")
    assert client.wait(timeout=30) == 0
    net.run_for(0.01)
    assert task.done and task.error is None
    body = PAGE.encode()
    assert client.stdout_lines == [f"HTTP/1.0 200 OK, {len(body)} body bytes, "
                                   f"fnv1a {fnv1a(body):08x}"]
    assert len(logged) == 1 and '"GET /index.html HTTP/1.1" 200' in logged[0]


def test_threads_in_real_time_threading_server_and_concurrent_clients() -> None:
    """In real time any thread may wait on the network: ThreadingTCPServer, client threads."""
    network = Network(virtual_time=False)
    try:
        lan = network.segment("lan")
        network.host("alpha").connect(lan, "10.0.0.1/24")
        network.host("bravo").connect(lan, "10.0.0.2/24")
        alpha, bravo = network.hosts["alpha"], network.hosts["bravo"]
        with alpha.sockets():
            server = socketserver.ThreadingTCPServer(("alpha", 7), UpperHandler)

        def serve() -> None:
            with alpha.sockets():
                server.serve_forever(poll_interval=0.05)

        def client(number: int) -> None:
            with bravo.sockets(), socket.create_connection(("alpha", 7), timeout=10) as sock:
                sock.sendall(b"client %d\n" % number)
                sock.shutdown(socket.SHUT_WR)
                replies[number] = sock.makefile("rb").read()

        replies: dict[int, bytes] = {}
        serving = threading.Thread(target=serve)
        serving.start()
        clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(30)
        server.shutdown()
        serving.join(10)
        server.server_close()
        assert replies == {n: b"CLIENT %d\n" % n for n in range(4)}
        assert socket.socket is KERNEL_SOCKET
    finally:
        network.close()
