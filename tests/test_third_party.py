"""Third-party sources for examples (vnet/third_party.py): fetched once, checked by
SHA-256, only the named files extracted into the cache, every mistake one line.

The archives here are made by the test and served by file:// URLs (urllib's own
scheme), so nothing leaves the machine; the examples' real manifests name PyPI sdists.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from vnet.third_party import ThirdPartyError, fetch


def _archive(path: Path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(example: Path, url: str, digest: str, files: list[str],
              compile_: list[str]) -> None:
    example.mkdir(exist_ok=True)
    (example / "third_party.toml").write_text(
        f'[[sources]]\nname = "lib"\nurl = "{url}"\nsha256 = "{digest}"\n'
        f"files = {files!r}\ncompile = {compile_!r}\n".replace("'", '"'))


def test_fetch_extracts_only_named_files_once(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNET_CACHE_DIR", str(tmp_path / "cache"))
    archive = tmp_path / "lib-1.0.tar.gz"
    digest = _archive(archive, {"lib-1.0/lib.c": b"int lib(void) { return 7; }\n",
                                "lib-1.0/lib.h": b"int lib(void);\n",
                                "lib-1.0/setup.py": b"print('not wanted')\n"})
    example = tmp_path / "example"
    _manifest(example, archive.as_uri(), digest, ["lib-1.0/lib.c", "lib-1.0/lib.h"],
              ["lib.c"])
    fetched = fetch(example)
    (where,) = fetched.include_dirs
    assert sorted(p.name for p in where.iterdir() if not p.name.startswith(".")) == [
        "lib.c", "lib.h"]
    assert fetched.sources == [where / "lib.c"]
    assert not list(example.glob("lib*"))  # nothing written next to the example
    archive.unlink()  # a second fetch needs neither the network nor the archive
    assert fetch(example).sources == fetched.sources


def test_fetch_refuses_wrong_digest_missing_member_and_bad_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNET_CACHE_DIR", str(tmp_path / "cache"))
    archive = tmp_path / "lib.tar.gz"
    digest = _archive(archive, {"lib/lib.c": b"int x;\n"})
    example = tmp_path / "example"
    _manifest(example, archive.as_uri(), "0" * 64, ["lib/lib.c"], [])
    with pytest.raises(ThirdPartyError, match="SHA-256 mismatch"):
        fetch(example)
    _manifest(example, archive.as_uri(), digest, ["lib/missing.c"], [])
    with pytest.raises(ThirdPartyError, match=r"the archive has no lib/missing\.c"):
        fetch(example)
    _manifest(example, (tmp_path / "gone.tar.gz").as_uri(), "1" * 64, ["lib/lib.c"], [])
    with pytest.raises(ThirdPartyError, match="cannot download"):
        fetch(example)
    (example / "third_party.toml").write_text("[[sources]]\nname = 1\n")
    with pytest.raises(ThirdPartyError, match="needs url, sha256 and files"):
        fetch(example)
    assert fetch(tmp_path).sources == []  # no manifest: nothing to add
