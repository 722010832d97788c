"""Units as people write them: "10Mbit", "2ms", "64KB" -- one parser for topology files
and the Python API alike.

- durations: ``"500ms"``, ``"2s"``, ``"1.5us"``, ``"3m"`` / ``"3min"``, ``"1h"``; a bare
  number is seconds. Result: integer nanoseconds.
- rates: ``"10Mbit"``, ``"1.5Gbit"``, ``"64kbit"``, ``"800bit"`` (also ``"10Mbps"``,
  ``"10Mbit/s"``; ``"1MB/s"`` / ``"1MBps"`` are bytes per second, times 8); decimal
  prefixes (k = 1000) as tc and iperf use them; a bare number is bits per second.
  Result: integer bits per second.
- sizes: ``"64KB"``, ``"1.5MB"``, ``"1500B"``, ``"64KiB"``; KB/MB/GB are binary
  (1024, as tc's ``limit 64kb``), KiB/MiB/GiB too, a bare number is bytes. Result:
  integer bytes.

A bad value raises ``ValueError`` with a one-line reason naming examples; the
topology loader turns it into ``FILE:LINE: reason``. Touches nothing.
"""

from __future__ import annotations

import re

__all__ = ["parse_duration_ns", "parse_rate_bps", "parse_size_bytes"]

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_DURATION = re.compile(r"^\s*" + _NUMBER + r"\s*(ns|us|µs|ms|s|sec|m|min|h)?\s*$")
_DURATION_NS = {None: 1_000_000_000, "s": 1_000_000_000, "sec": 1_000_000_000,
                "ms": 1_000_000, "us": 1_000, "µs": 1_000, "ns": 1,
                "m": 60_000_000_000, "min": 60_000_000_000, "h": 3_600_000_000_000}
_RATE = re.compile(r"^\s*" + _NUMBER + r"\s*([kKmMgGtT]?)(bit|bps|b|B|Bps)?(/s)?\s*$")
_DECIMAL = {"": 1, "k": 10**3, "K": 10**3, "m": 10**6, "M": 10**6, "g": 10**9, "G": 10**9,
            "t": 10**12, "T": 10**12}
_SIZE = re.compile(r"^\s*" + _NUMBER + r"\s*([kKmMgG]?)(i?)(B|b|bytes)?\s*$")
_BINARY = {"": 1, "k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30,
           "G": 1 << 30}


def _number(value: object, what: str, examples: str) -> float | None:
    if isinstance(value, bool):
        raise ValueError(f"bad {what} {value!r} (examples: {examples})")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a {what} cannot be negative: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"bad {what} {value!r} (examples: {examples})")
    return None


def parse_duration_ns(value: object) -> int:
    """Nanoseconds from "2ms", "1.5s", "3min", or a number of seconds."""
    examples = '"500ms", "2s", "1us", 1.5'
    number = _number(value, "duration", examples)
    if number is not None:
        return int(number * 1_000_000_000)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"bad duration {value!r} (examples: {examples})")
    return int(float(match.group(1)) * _DURATION_NS[match.group(2)])


def parse_rate_bps(value: object) -> int:
    """Bits per second from "10Mbit", "1Gbit", "64kbit", "1MB/s", or a number of bit/s."""
    examples = '"10Mbit", "1Gbit", "512kbit", 1000000'
    number = _number(value, "rate", examples)
    if number is None:
        match = _RATE.match(str(value))
        if match is None:
            raise ValueError(f"bad rate {value!r} (examples: {examples})")
        unit = match.group(3) or "bit"
        number = float(match.group(1)) * _DECIMAL[match.group(2)] * (
            8 if unit in ("B", "Bps") else 1)
    rate = int(number)
    if rate <= 0:
        raise ValueError(f"a rate must be above 0 bit/s: {value!r}")
    return rate


def parse_size_bytes(value: object) -> int:
    """Bytes from "64KB", "1.5MB", "1500B", "64KiB", or a number of bytes."""
    examples = '"64KB", "1MB", "1500B", 65536'
    number = _number(value, "size", examples)
    if number is None:
        match = _SIZE.match(str(value))  # "64kb" is bytes, as in tc's "limit 64kb"
        if match is None:
            raise ValueError(f"bad size {value!r} (examples: {examples})")
        number = float(match.group(1)) * _BINARY[match.group(2)]
    return int(number)
