"""A hostile guest's poll(): far more subscriptions than it may have descriptors.

The attacker (tests/hostile/c/poll_attack.c) polls 350,000 pollfds twenty
times, then 1000 (within its 1024 descriptors). Linux refuses a poll whose
nfds exceeds RLIMIT_NOFILE with EINVAL; vnet's rule for poll_oneoff is the
same limit in subscriptions — at most 2 x --max-fds + 1 (a read and a write
subscription per descriptor, plus the timeout's clock) — checked before any
subscription is read, so the refused call costs nothing under the network
lock. Beside it the victim moves 8 MiB over TCP. Virtual and real time; the
same C runs natively as the Linux reference (RLIMIT_NOFILE 1024).

Before: each 350,000-subscription call scanned every subscription under
the network lock for about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.guest.wat import compile_wat
from tests.hostile.guestres_support import (
    ATTACKS,
    MIB,
    RSS_SLACK,
    VICTIM_MIB,
    AttackResult,
    native_available,
    run_attack,
    run_native,
)
from vnet.guest.context import GuestLimits
from vnet.guest.runtime import run_module
from vnet.guest.wasi_types import Errno

ROUNDS = 20


@pytest.fixture(scope="module", params=[True, False], ids=["virtual", "real"])
def attack(request: pytest.FixtureRequest, build_guest: Callable[..., Path],
           example_wasm: Callable[[str], Path]) -> AttackResult:
    wasm = build_guest(ATTACKS / "poll_attack.c", "-Wextra", "-Werror")
    return run_attack(wasm, [str(ROUNDS)], example_wasm("bulk"), max_memory=128 * MIB,
                      virtual_time=request.param)


def test_350000_subscriptions_are_einval_and_1000_work(attack: AttackResult) -> None:
    calls = attack.calls()
    assert calls["poll_350000"] == (-1, "EINVAL"), attack.describe()
    assert attack.value("rounds") == ROUNDS, attack.describe()
    assert calls["poll_1000"] == (0, "OK"), attack.describe()  # nothing ready: 0 events
    # the same count straight to poll_oneoff (past the SDK's check): refused by vnet itself
    assert calls["poll_oneoff_350000"] == (-1, "EINVAL"), attack.describe()
    assert attack.value("oneoff_rounds") == ROUNDS, attack.describe()
    assert attack.attacker_exit == 0 and not attack.internal_errors, attack.describe()


def test_victim_completes_beside_the_poller(attack: AttackResult) -> None:
    assert attack.victims_done, attack.describe()
    sent, received = attack.victim_transfer()
    assert sent == received and sent.startswith(f"{VICTIM_MIB * MIB} bytes"), attack.describe()


def test_vnet_rss_stays_within_the_guests_limits(attack: AttackResult) -> None:
    assert attack.rss_growth < attack.max_memory_total + RSS_SLACK, attack.describe()


def test_linux_refuses_the_same_poll(tmp_path: Path) -> None:
    reason = native_available()
    if reason:
        pytest.fail(reason, pytrace=False)
    stdout = run_native(ATTACKS / "poll_attack.c", ["3"], tmp_path, max_fds=1024)
    native = AttackResult(stdout, 0, None, "", "", True, 0, 0, 0)
    assert native.calls()["poll_350000"] == (-1, "EINVAL"), stdout
    assert native.value("rounds") == 3, stdout
    assert native.calls()["poll_1000"] == (0, "OK"), stdout


@pytest.mark.parametrize("max_fds", [8, 1024])
def test_the_limit_is_two_subscriptions_per_fd_plus_one(tmp_path: Path, max_fds: int) -> None:
    """poll_oneoff with 2 x max_fds + 1 (zeroed: immediate clock) subscriptions works; one
    more is EINVAL, before any subscription or result pointer is looked at."""
    limit = 2 * max_fds + 1
    wasm = compile_wat(tmp_path, f"""
      (import "wasi_snapshot_preview1" "poll_oneoff"
        (func $poll (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 4)
      (func (export "_start")
        (i32.store16 (i32.const 0)
          (call $poll (i32.const 1024) (i32.const 131072) (i32.const {limit}) (i32.const 64)))
        (i32.store16 (i32.const 2)
          (call $poll (i32.const 1024) (i32.const 131072) (i32.const {limit + 1})
                      (i32.const 64)))
        (i32.store16 (i32.const 4)  ;; far too many, and pointers outside memory: EINVAL first
          (call $poll (i32.const -16) (i32.const -16) (i32.const 350000) (i32.const -4)))
        (i32.store (i32.const 8) (i32.const 0))
        (i32.store (i32.const 12) (i32.const 6))
        (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16))))
    """)
    result = run_module(wasm, ["t"], limits=GuestLimits(max_fds=max_fds))
    assert result.trap is None and result.exit_code == 0, result.trap
    codes = [int.from_bytes(result.stdout[i:i + 2], "little") for i in range(0, 6, 2)]
    assert codes == [Errno.SUCCESS, Errno.EINVAL, Errno.EINVAL]
