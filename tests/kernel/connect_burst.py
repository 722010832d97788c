"""Many clients connecting at once to a small listen backlog; run inside a test namespace
with `python3 -I connect_burst.py`, or imported (the server loop) by a vnet guest script.

    clients ADDR PORT COUNT              COUNT threads connect at the same instant, each
                                         sends "hello N", waits for its echo and prints
                                         one JSON line: {"ok": n, "<ERRNO>": m, ...}
    server ADDR PORT BACKLOG DELAY COUNT listen(BACKLOG), print "ready", wait DELAY
                                         seconds (the queues overflow), then accept and
                                         echo COUNT clients one after another

Ordinary Linux sockets when run as a script: the kernel is the reference.
Touches nothing else.
"""

from __future__ import annotations

import errno
import json
import socket
import sys
import threading
import time
from collections import Counter
from typing import Any

CLIENT_TIMEOUT_S = 60.0


def clients(addr: str, port: int, count: int) -> dict[str, int]:
    results: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(count)

    def one(n: int) -> None:
        outcome = "ok"
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(CLIENT_TIMEOUT_S)
                start.wait()
                sock.connect((addr, port))
                message = f"hello {n}".encode()
                sock.sendall(message)
                echoed = b""
                while len(echoed) < len(message):
                    data = sock.recv(100)
                    if not data:
                        break
                    echoed += data
                if echoed != message:
                    outcome = "wrong echo"
        except TimeoutError:
            outcome = "timeout"
        except OSError as e:
            outcome = errno.errorcode.get(e.errno or 0, str(e))
        with lock:
            results[outcome] += 1

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(results)


def serve(server: Any, backlog: int, delay_s: float, count: int,
          ready: Any = None) -> int:
    """Listen on the bound `server` socket, wait, then echo `count` clients; returns how
    many were served. `server` is a socket.socket or a vnet HostSocket."""
    server.listen(backlog)
    if ready is not None:
        ready()
    time.sleep(delay_s)
    served = 0
    server.settimeout(CLIENT_TIMEOUT_S)
    while served < count:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(CLIENT_TIMEOUT_S)
            data = conn.recv(100)
            conn.sendall(data)
        served += 1
    return served


def main(argv: list[str]) -> None:
    if argv[:1] == ["clients"] and len(argv) == 4:
        print(json.dumps(clients(argv[1], int(argv[2]), int(argv[3]))), flush=True)
    elif argv[:1] == ["server"] and len(argv) == 6:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((argv[1], int(argv[2])))
            served = serve(server, int(argv[3]), float(argv[4]), int(argv[5]),
                           ready=lambda: print("ready", flush=True))
        print(f"served {served}", flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
