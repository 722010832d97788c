"""Run one fuzz target: with atheris (libFuzzer, coverage-guided), or replay inputs.

    python -m fuzz.run TARGET [--runs N] [--seconds T] [--results DIR] [-- LIBFUZZER_ARGS]
    python -m fuzz.run TARGET --replay FILE...     run saved inputs (crashes, corpus files)
    python -m fuzz.run TARGET --mutate N [--seed S]   no atheris: seeds + N seeded mutations
    python -m fuzz.run --list

The corpus lives in DIR/corpus/TARGET (created from the target's seeds on the
first run, and grown by libFuzzer), crashes in DIR/crashes/TARGET/ (libFuzzer's
``crash-<sha1>`` files; replay one with --replay). DIR defaults to
fuzz-results/ at the repository root. The stack is instrumented for coverage
(atheris.instrument_imports) before it is imported. libFuzzer prints its
progress (``#N ... cov: C ft: F corp: ... exec/s: E``) on stderr; the last
line says how many inputs ran.

`--mutate` is what tests/test_fuzz_targets.py uses when atheris cannot be
installed: each target on its seeds and on N deterministic mutations of them.

Touches: DIR (corpus and crash files); nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
Target = Callable[[bytes], None]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded mutation in libFuzzer's spirit: flip, set, insert, erase, splice, shrink."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(6)
        if choice == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif choice == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif choice == 2:
            at = rng.randint(0, len(buf))
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif choice == 3 and buf:
            at = rng.randrange(len(buf))
            del buf[at:at + rng.randint(1, 8)]
        elif choice == 4 and len(buf) > 4:
            at, size = rng.randrange(len(buf)), rng.randint(1, 16)
            to = rng.randint(0, len(buf))
            buf[to:to] = buf[at:at + size]
        elif buf:
            del buf[rng.randint(0, len(buf)):]
    return bytes(buf)


def run_mutations(target: Target, seeds: Sequence[bytes], count: int, seed: int = 0) -> int:
    """The target on every seed and on `count` mutations; returns the inputs run."""
    rng = random.Random(seed)
    for data in seeds:
        target(data)
    corpus = list(seeds) or [b""]
    for _ in range(count):
        data = mutate(rng.choice(corpus), rng)
        try:
            target(data)
        except BaseException:
            sys.stderr.write(f"failing input: {data.hex()}\n")
            raise
    return len(seeds) + count


def _write_seeds(corpus: Path, seeds: Sequence[bytes]) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for data in seeds:
        (corpus / ("seed-" + hashlib.sha1(data).hexdigest())).write_bytes(data)


def keep_going(args: argparse.Namespace, extra: list[str]) -> int:
    """Run libFuzzer in child processes, restarting after each crash, and add up its stats."""
    import re
    import subprocess

    deadline = time.monotonic() + args.seconds if args.seconds else None
    runs_left = args.runs
    total_runs = crashes = 0
    cov = features = 0
    started = time.monotonic()
    log = args.results / "logs" / f"{args.target}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    while True:
        argv = [sys.executable, "-m", "fuzz.run", args.target, "--results", str(args.results)]
        if deadline is not None:
            left = int(deadline - time.monotonic())
            if left <= 0:
                break
            argv += ["--seconds", str(left)]
        if runs_left is not None:
            if runs_left <= 0:
                break
            argv += ["--runs", str(runs_left)]
        offset = log.stat().st_size if log.exists() else 0
        with log.open("a") as f:  # libFuzzer's progress, readable while it runs
            proc = subprocess.run(argv + (["--", *extra] if extra else []), cwd=ROOT,
                                  stdout=f, stderr=subprocess.STDOUT, text=True)
        with log.open() as f:
            f.seek(offset)
            output = f.read()
        ran = sum(int(n) for n in re.findall(r"stat::number_of_executed_units: (\d+)",
                                              output))
        total_runs += ran
        if runs_left is not None:
            runs_left -= ran
        for c, ft in re.findall(r"cov: (\d+) ft: (\d+)", output):
            cov, features = max(cov, int(c)), max(features, int(ft))
        if proc.returncode == 0:
            break
        crashes += 1
        if ran == 0 or "Test unit written" not in output:
            sys.stderr.write(output[-3000:])
            return proc.returncode
    elapsed = time.monotonic() - started
    print(f"{args.target}: {total_runs} inputs in {elapsed:.0f} s "
          f"({total_runs / max(elapsed, 1e-9):.0f}/s), cov {cov}, ft {features}, "
          f"{crashes} crash(es) in {args.results / 'crashes' / args.target}")
    return 1 if crashes else 0


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_in:
        at = args_in.index("--")
        args_in, extra = args_in[:at], args_in[at + 1:]
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("target", nargs="?")
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--runs", type=int, help="stop after N inputs")
    parser.add_argument("--seconds", type=int, help="stop after T seconds")
    parser.add_argument("--results", type=Path, default=ROOT / "fuzz-results")
    parser.add_argument("--replay", type=Path, nargs="+", help="run these inputs and exit")
    parser.add_argument("--mutate", type=int, help="no atheris: seeds + N seeded mutations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-going", action="store_true",
                        help="after a crash, start again on the grown corpus until --runs or "
                        "--seconds is used up; print the totals")
    args = parser.parse_args(args_in)
    if args.keep_going:
        return keep_going(args, extra)

    if args.list or args.replay or args.mutate is not None:
        from fuzz import all_targets

        targets, seeds = all_targets()
        if args.list:
            print("\n".join(f"{name}\t{len(seeds[name])} seeds" for name in targets))
            return 0
        if args.target not in targets:
            parser.error(f"unknown target {args.target!r}; --list shows them")
        if args.replay:
            for path in args.replay:
                targets[args.target](path.read_bytes())
                print(f"{path}: ok")
            return 0
        started = time.monotonic()
        ran = run_mutations(targets[args.target], seeds[args.target], args.mutate, args.seed)
        elapsed = time.monotonic() - started
        print(f"{args.target}: {ran} inputs in {elapsed:.1f} s ({ran / elapsed:.0f}/s), no failure")
        return 0

    import atheris

    with atheris.instrument_imports(include=["stack", "fuzz"]):
        from fuzz import all_targets

        targets, seeds = all_targets()
    if args.target not in targets:
        parser.error(f"unknown target {args.target!r}; --list shows them")
    corpus = args.results / "corpus" / args.target
    crashes = args.results / "crashes" / args.target
    crashes.mkdir(parents=True, exist_ok=True)
    _write_seeds(corpus, seeds[args.target])
    libfuzzer = [sys.argv[0], str(corpus), f"-artifact_prefix={crashes}/",
                 "-print_final_stats=1", "-max_len=4096", "-timeout=60", "-rss_limit_mb=4096"]
    if args.runs is not None:
        libfuzzer.append(f"-runs={args.runs}")
    if args.seconds is not None:
        libfuzzer.append(f"-max_total_time={args.seconds}")
    atheris.Setup(libfuzzer + extra, targets[args.target])
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
