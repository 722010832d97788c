"""The coverage-guided fuzz targets in fuzz/ still run, and still reach what they test.

With atheris installed (the test extra installs it where it has a wheel),
each target runs under libFuzzer for a few thousand inputs through the
entry point scripts/fuzz uses (`python -m fuzz.run TARGET --runs N`), on a
fresh corpus made from its seeds, and must finish with no crash file. Without
atheris the same targets run in-process on their seeds and on a fixed set of
seeded mutations (`fuzz.run.run_mutations`): fewer paths, but the targets
and their invariants still execute; the test says which mode ran.

The seeds themselves are checked to reach the code each target is for (a
parser accepts its seeds; the TCP engine's seeds establish a connection and
move data both ways), so a target cannot rot into one that rejects
everything early. About 40 s of CPU in all.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import all_targets
from fuzz.run import run_mutations
from fuzz.tcp_engine import EngineRun, Reader
from fuzz.wire_targets import public_fields
from stack.ip import IpMeta
from stack.wire.errors import WireError
from stack.wire.tcp import TcpOptions, TcpPacket

ROOT = Path(__file__).resolve().parent.parent
TARGETS, SEEDS = all_targets()
SLOW = {"frame": 1500, "tcp_engine": 1500}  # about 200 inputs/s under instrumentation
HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_runs_clean(name: str, tmp_path: Path) -> None:
    runs = SLOW.get(name, 3000)
    if not HAVE_ATHERIS:
        print(f"atheris is not installed: {name} on its seeds and {runs} seeded mutations")
        assert run_mutations(TARGETS[name], SEEDS[name], runs) == runs + len(SEEDS[name])
        return
    proc = subprocess.run([sys.executable, "-m", "fuzz.run", name, "--runs", str(runs),
                           "--results", str(tmp_path), "--", "-seed=1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    crashes = list((tmp_path / "crashes" / name).iterdir())
    assert proc.returncode == 0 and not crashes, proc.stderr[-4000:]
    assert f"Done {runs} runs" in proc.stderr, proc.stderr[-2000:]
    assert len(list((tmp_path / "corpus" / name).iterdir())) > len(SEEDS[name]), \
        "libFuzzer found no new coverage: is the target instrumented?"


@pytest.mark.parametrize("name", sorted(set(TARGETS) - {"frame", "tcp_engine"}))
def test_header_seeds_are_accepted_by_their_parser(name: str) -> None:
    from fuzz.wire_targets import DST4, DST6, SRC4, SRC6
    from stack.wire import arp, dns, ethernet, icmpv4, icmpv6, igmp, ipv4, ipv6, tcp, udp

    parse = {
        "ethernet": lambda b: ethernet.EthernetFrame.parse(b),
        "arp": lambda b: arp.ArpPacket.parse(b),
        "ipv4": lambda b: ipv4.Ipv4Packet.parse(b[1:], partial=bool(b[0] & 4)),
        "ipv6": lambda b: ipv6.Ipv6Packet.parse(b[1:], partial=bool(b[0] & 4)),
        "icmpv4": lambda b: icmpv4.Icmpv4Packet.parse(b[1:]),
        "icmpv6": lambda b: icmpv6.Icmpv6Packet.parse(b[1:], SRC6, DST6, verify_checksum=False),
        "igmp": lambda b: igmp.parse(b[1:]),
        "tcp": lambda b: tcp.TcpPacket.parse(b[1:], SRC4, DST4, verify_checksum=False),
        "udp": lambda b: udp.UdpPacket.parse(b[1:], SRC4, DST4, verify_checksum=False),
        "dns": lambda b: dns.parse(b),
    }[name]
    assert SEEDS[name]
    for seed in SEEDS[name]:
        assert not isinstance(parse(seed), WireError), seed.hex()


def test_the_parser_targets_read_every_field_on_either_build() -> None:
    """What the parser targets read of a parsed value: the same fields on the compiled
    build (whose classes have no ``__slots__``) as on the pure one, so a field the
    compiled parser gets wrong is read there too; TcpOptions and IpMeta were dataclasses
    until they were written out for speed, and the compiled build then read none of
    theirs (nor ever a TcpPacket's)."""
    assert {"mss", "wscale", "sack_permitted", "sack_blocks", "timestamp"} <= set(
        public_fields(TcpOptions))
    assert {"src_port", "seq", "ack", "flags", "options", "payload"} <= set(
        public_fields(TcpPacket))
    assert {"version", "src", "dst", "ttl", "tos", "packet"} <= set(public_fields(IpMeta))


def test_tcp_engine_seeds_establish_and_move_data_both_ways() -> None:
    received = sent = 0
    for seed in SEEDS["tcp_engine"]:
        run = EngineRun(Reader(seed))
        run.open()
        ops = run.ops()
        while run.r.more():
            ops[run.r.byte() % len(ops)]()
        received += run.app_received
        sent += run.stack_max
    assert received > 1000 and sent > 1000, (received, sent)


def test_frame_seeds_reach_every_protocol_without_drops() -> None:
    from fuzz.wire_targets import FrameLab, _seed_frames

    lab = FrameLab()
    for frame in _seed_frames():
        lab.stack.receive_frame(lab.iface, frame)
    drops = {k: v for k, v in lab.stack.counters.drops().items() if "ratelimit" not in k}
    assert not drops, drops
    assert lab.sent, "the stack answered none of the seed frames"


# Inputs the fuzzers reported, replayed as they were found. A stack bug also has a test of
# its own (tests/stack/test_tcp_fuzz_regressions.py); the others were the target's model
# of a peer being wrong, fixed in the target.
FOUND = {
    # stack: an ACK to a listener in the first 128 s raised from the SYN-cookie check
    "syncookie_counter_before_the_clock": ("tcp_engine", bytes.fromhex(
        "0000c0000000000000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e"
        "1f202122232425262728292a2b18191a2728292a2b2c2d2e2f30303631373d3e3f")),
    # target: slow start at a 64-byte MSS needs more than 200 rounds of ACKs
    "many_acks_at_a_tiny_mss": ("tcp_engine", bytes.fromhex(
        "00009900009905b406555555000000000000000000000000000d0404040404041718191d1e1f2021"
        "22232425262728292a2b2c2d2e2f303132333435363738393a423c3d3e3f")),
    # target: the cooperative peer must resend data a full window did not take
    "peer_resends_what_a_small_window_refused": ("tcp_engine", bytes.fromhex(
        "1f009907b407ff06ffff990505b407ff2df70826101010000000000000218b0010818e00ffff05dc"
        "9080101010000810000d080d081d1d1d1d1d1d1d1d1d1d1d1d00108100")),
    # target: a fuzzed segment's FIN got in, so the cooperative peer's own FIN one octet on
    # restarted TIME-WAIT for ever ("still TIME_WAIT 20 minutes after close()")
    "no_second_fin_after_a_fuzzed_one": ("tcp_engine", bytes.fromhex(
        "000810000dafafafafafafaf4c000099000810000da908060a9905b407ffff03000902ff00108100"
        "03ffffffffffffffffffff")),
    "no_second_fin_after_a_fuzzed_one_2": ("tcp_engine", bytes.fromhex(
        "00009905b407fbff030001020304191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303130"
        "6d35373d3d3d3d3d3d33fbfbfbfb313131393a3b3c3d3e3f")),
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_inputs_the_fuzzers_found_now_pass(name: str) -> None:
    target, data = FOUND[name]
    TARGETS[target](data)
