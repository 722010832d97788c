"""vnet.testing.pcap_diff on real virtual-time captures: same seed identical, differences named."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.utils import PcapNgReader

from vnet.testing import Capture, diff_captures
from vnet.testing.pcap_diff import main

from .scenario import run_scenario


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("diff")
    variants = {"seed1": {}, "seed1_again": {}, "seed2": {"seed": 2},
                "hellp": {"payload": b"hellp"}, "extra": {"extra_udp": True}}
    paths = {}
    for name, options in variants.items():
        paths[name] = folder / f"{name}.pcapng"
        run_scenario(paths[name], **options)  # type: ignore[arg-type]
    return paths


def first_difference_by_scapy(a: Path, b: Path) -> int | None:
    """Independently of vnet: the first position where bytes or time stamps differ."""
    with PcapNgReader(str(a)) as left, PcapNgReader(str(b)) as right:
        for position, (x, y) in enumerate(zip(left, right, strict=False)):
            if bytes(x) != bytes(y) or x.time != y.time:
                return position
    return None


def test_two_runs_with_the_same_seed_are_identical(runs: dict[str, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    result = diff_captures(runs["seed1"], runs["seed1_again"])
    assert result.identical and result.first is None
    assert result.a_count == result.b_count > 30
    assert result.report().endswith("identical")
    assert main([str(runs["seed1"]), str(runs["seed1_again"])]) == 0
    assert "identical" in capsys.readouterr().out


def test_a_changed_payload_is_named_and_can_be_ignored(runs: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    result = diff_captures(runs["seed1"], runs["hellp"])
    data_segment = Capture.load(runs["seed1"]).expect(TCP(flags="PA"))
    assert result.first is not None
    assert result.first.position == data_segment.index
    assert result.first.position == first_difference_by_scapy(runs["seed1"], runs["hellp"])
    fields = {f.field: (f.a, f.b) for f in result.first.fields}
    assert fields["Raw.load"] == ("b'hello'", "b'hellp'")
    assert set(fields) == {"Raw.load", "TCP.chksum"}
    assert len(result.differences) == 2  # sent by a, received by b
    report = result.report()
    assert f"first at packet #{data_segment.index}" in report
    assert "Raw.load: b'hello' ≠ b'hellp'" in report
    ignoring = diff_captures(runs["seed1"], runs["hellp"], ignore=["Raw.load"])
    assert ignoring.identical and "identical (ignoring Raw.load)" in ignoring.report()
    assert main([str(runs["seed1"]), str(runs["hellp"])]) == 1
    assert f"packet #{data_segment.index}:" in capsys.readouterr().out
    assert main([str(runs["seed1"]), str(runs["hellp"]), "--ignore", "raw.load"]) == 0


def test_a_different_seed_names_the_first_packet_and_field(runs: dict[str, Path]) -> None:
    result = diff_captures(runs["seed1"], runs["seed2"])
    assert not result.identical and result.first is not None
    expected_first = first_difference_by_scapy(runs["seed1"], runs["seed2"])
    assert result.first.position == expected_first
    first = result.first
    assert first.a is not None and first.b is not None
    named = {f.field for f in first.fields}
    assert named and all(f.a != f.b for f in first.fields)
    for difference in first.fields:  # each named field really differs, as scapy reads it
        if "." in difference.field and difference.field.split(".")[0] in ("IP", "ICMP", "TCP"):
            layer, name = difference.field.split(".")
            assert getattr(first.a[layer], name) != getattr(first.b[layer], name)
    ignored = sorted(f for f in named if f not in ("time", "interface", "comment")
                     and not f.endswith("chksum"))
    later = diff_captures(runs["seed1"], runs["seed2"], ignore=ignored)
    assert later.first is not None and later.first.position > first.position
    assert not any(f.field in ignored for d in later.differences for f in d.fields)
    assert len(later.differences) < len(result.differences)


def test_different_packet_counts_and_unreadable_files(runs: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    result = diff_captures(runs["seed1"], runs["extra"])
    assert result.b_count == result.a_count + 2  # the extra datagram, sent and received
    tail = result.differences[-1]
    assert tail.a is None and tail.b is not None
    assert [(f.field, f.a, f.b) for f in tail.fields] == [("packet", "absent", "present")]
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(runs["seed1"].read_bytes()[:-10])
    assert main([str(runs["seed1"]), str(cut)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("vnet pcap diff: ") and str(cut) in error and "truncated" in error


def test_the_vnet_pcap_diff_command(runs: dict[str, Path]) -> None:
    """`vnet pcap diff` as a user runs it: 0 same, 1 different (naming the field), 2 unreadable."""
    import subprocess
    import sys

    def vnet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vnet", "pcap", "diff", *args],
                              capture_output=True, text=True, timeout=120)

    same = vnet(str(runs["seed1"]), str(runs["seed1_again"]))
    assert same.returncode == 0 and same.stdout.rstrip().endswith("identical")
    changed = vnet(str(runs["seed1"]), str(runs["hellp"]))
    assert changed.returncode == 1 and "Raw.load" in changed.stdout
    ignored = vnet("--ignore", "Raw.load,TCP.chksum", str(runs["seed1"]), str(runs["hellp"]))
    assert ignored.returncode == 0, ignored.stdout
    missing = vnet(str(runs["seed1"]), str(runs["seed1"].with_name("absent.pcapng")))
    assert missing.returncode == 2
    assert missing.stderr.startswith("vnet pcap diff: ") and missing.stderr.count("\n") == 1


def test_a_missing_packet_is_reported_alone_not_as_a_shift(runs: dict[str, Path],
                                                           tmp_path: Path) -> None:
    from vnet.link.capture import Capture as CaptureWriter
    from vnet.testing import read_pcapng

    original = read_pcapng(runs["seed1"])
    dropped = original.packets[10]
    copy = tmp_path / "one-less.pcapng"
    writer = CaptureWriter.to_file(copy, clock=lambda: 0)
    for packet in original.packets:
        if packet is not dropped:
            writer.interface(packet.interface, packet.linktype).record(
                packet.data, packet.direction, timestamp_ns=packet.timestamp_ns)
    writer.close()
    result = diff_captures(runs["seed1"], copy)
    assert len(result.differences) == 1  # not every packet after it
    only = result.differences[0]
    assert only.position == 10 and only.b is None
    assert only.a is not None and (only.a.index, only.a.data) == (10, dropped.data)
    assert f"packet #10: only in A\n  A {dropped.summary()}\n  B (no packet)" in result.report()
    back = diff_captures(copy, runs["seed1"])
    assert [(d.position, d.a, d.b and d.b.data) for d in back.differences] == [
        (10, None, dropped.data)]
    assert "packet #10: only in B" in back.report()
