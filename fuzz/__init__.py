"""Coverage-guided fuzz targets for vnet's stack (run them with scripts/fuzz; see README.md).

Each target is a function that takes one input (bytes) and raises only when
it found a bug: an exception escaping the code under test, or a violated
invariant (AssertionError). `TARGETS` maps a target's name to it and
`SEEDS` to the inputs its corpus starts from. The targets need no fuzzer:
`fuzz.run` drives them with atheris (libFuzzer) when it is installed, and
tests/test_fuzz_targets.py runs them on their seeds and fixed mutations.

Touches: nothing but the stack objects each input builds (no files, no clocks).
"""

from __future__ import annotations

from collections.abc import Callable

Target = Callable[[bytes], None]


def all_targets() -> tuple[dict[str, Target], dict[str, list[bytes]]]:
    """Every target and its seeds (imported here, so a caller can instrument the import)."""
    from fuzz import dns_targets, tcp_engine, wire_targets

    targets: dict[str, Target] = {**wire_targets.TARGETS, **tcp_engine.TARGETS,
                                  **dns_targets.TARGETS}
    seeds: dict[str, list[bytes]] = {**wire_targets.SEEDS, **tcp_engine.SEEDS,
                                     **dns_targets.SEEDS}
    return targets, seeds
