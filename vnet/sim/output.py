"""Guest output shown to a person: lines prefixed with the guest's name.

`PrefixedLines` is a guest stdout/stderr sink that buffers partial lines and
writes each complete line to a stream as `name | line`. Several guests may
share one stream; a lock keeps their lines whole. Touches only the stream.
"""

from __future__ import annotations

import threading
from typing import BinaryIO

_stream_locks: dict[int, threading.Lock] = {}


class PrefixedLines:
    def __init__(self, prefix: str, stream: BinaryIO, width: int = 0) -> None:
        self.prefix = f"{prefix:<{width}} | ".encode()
        self.stream = stream
        self._partial = b""
        self._lock = _stream_locks.setdefault(id(stream), threading.Lock())

    def __call__(self, data: bytes) -> None:
        text = self._partial + data
        *lines, self._partial = text.split(b"\n")
        if lines:
            out = b"".join(self.prefix + line + b"\n" for line in lines)
            with self._lock:
                self.stream.write(out)
                self.stream.flush()

    def flush(self) -> None:
        if self._partial:
            with self._lock:
                self.stream.write(self.prefix + self._partial + b"\n")
                self.stream.flush()
            self._partial = b""
