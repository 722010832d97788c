"""`vnet run --guest-tun`: the grant of a TUN/TAP device to the guest, from the command line.

tests/guest/c/tun_probe.c (hostile mode) run by the CLI: granted tun0, it
creates it and is refused everything else; without the flag
/dev/net/tun does not exist; a malformed grant is a usage error naming it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

VNET = [sys.executable, "-m", "vnet"]
PROBE = "tests/guest/c/tun_probe.c"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VNET, "run", "--virtual-time", *args], capture_output=True,
                          text=True, timeout=120)


def test_guest_tun_flag_grants_the_device(vnet_build: Callable[..., Path]) -> None:
    wasm = str(vnet_build(PROBE))
    granted = _run("--guest-tun", "tun0=10.8.0.1/24", wasm, "hostile")
    assert granted.returncode == 0, granted.stderr
    lines = granted.stdout.splitlines()
    assert "setiff 0" in lines and "setiff_ungranted -1 EPERM" in lines
    assert "write_legit 60" in lines and "tiny reads 3 then EAGAIN" in lines
    refused = _run(wasm, "hostile")
    # without the grant open("/dev/net/tun") failed (ENOENT, tests/guest/test_guest_tun.py),
    # so TUNSETIFF got fd -1
    assert "setiff -1 EBADF" in refused.stdout.splitlines()


def test_bad_guest_tun_grant_is_a_usage_error(vnet_build: Callable[..., Path]) -> None:
    result = _run("--guest-tun", "tun0:tcp", str(vnet_build(PROBE)))
    assert result.returncode != 0
    assert "--guest-tun 'tun0:tcp'" in result.stderr and "neither tun nor tap" in result.stderr
