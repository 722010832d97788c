"""Third-party C sources an example builds with, fetched from PyPI and cached.

An example directory may carry a `third_party.toml` naming source archives —
sdists on PyPI, pinned by URL and SHA-256 — and the files it needs from each:

    [[sources]]
    name = "monocypher"
    url = "https://files.pythonhosted.org/.../pymonocypher-4.0.3.4.tar.gz"
    sha256 = "5e56e3d3…"
    files = ["pymonocypher-4.0.3.4/monocypher.c", "pymonocypher-4.0.3.4/monocypher.h"]
    compile = ["monocypher.c"]

`fetch(example_dir)` downloads each archive once (checking its SHA-256),
extracts only the named files into the build cache
(`vnet.build.cache_dir()/third-party/SHA256/`) and returns what to add to the
build: the sources to compile and the directories to put on the include path.
Nothing fetched is ever written into the repository. Touches the network (the
archive's URL, once per archive) and the cache directory.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from vnet.build import cache_dir

MANIFEST = "third_party.toml"
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024


class ThirdPartyError(Exception):
    """A manifest, a download or an archive is not what it should be (one line)."""


@dataclass
class Fetched:
    sources: list[Path] = field(default_factory=list)  # to compile with the example
    include_dirs: list[Path] = field(default_factory=list)


def fetch(example_dir: Path) -> Fetched:
    """Download (once) and extract what `example_dir/third_party.toml` names."""
    manifest = example_dir / MANIFEST
    fetched = Fetched()
    if not manifest.is_file():
        return fetched
    try:
        entries = tomllib.loads(manifest.read_text()).get("sources", [])
    except tomllib.TOMLDecodeError as e:
        raise ThirdPartyError(f"{manifest}: {e}") from None
    for entry in entries:
        try:
            url, digest = str(entry["url"]), str(entry["sha256"]).lower()
            members = [str(m) for m in entry["files"]]
            compile_names = [str(c) for c in entry.get("compile", [])]
        except (KeyError, TypeError):
            raise ThirdPartyError(f"{manifest}: each [[sources]] needs url, sha256 and "
                                  "files") from None
        where = _extract(url, digest, members)
        fetched.include_dirs.append(where)
        for name in compile_names:
            if not (where / name).is_file():
                raise ThirdPartyError(f"{manifest}: compile = {name!r} is not among the "
                                      "extracted files")
            fetched.sources.append(where / name)
    return fetched


def _extract(url: str, digest: str, members: list[str]) -> Path:
    where = cache_dir() / "third-party" / digest
    done = where / ".complete"
    if done.is_file():
        return where
    archive = where.with_name(f"{digest}.download")
    archive.parent.mkdir(parents=True, exist_ok=True)
    if not archive.is_file() or _sha256(archive) != digest:
        _download(url, archive)
    if _sha256(archive) != digest:
        archive.unlink()
        raise ThirdPartyError(f"{url}: SHA-256 mismatch (expected {digest})")
    where.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            for member in members:
                try:
                    info = tar.getmember(member)
                except KeyError:
                    raise ThirdPartyError(f"{url}: the archive has no {member}") from None
                if not info.isfile():
                    raise ThirdPartyError(f"{url}: {member} is not a regular file")
                source = tar.extractfile(info)
                assert source is not None
                (where / PurePosixPath(member).name).write_bytes(source.read())
    except tarfile.TarError as e:
        raise ThirdPartyError(f"{url}: not a readable archive: {e}") from None
    done.touch()
    return where


def _download(url: str, target: Path) -> None:
    partial = target.with_name(f"{target.name}.part{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            total = 0
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > MAX_ARCHIVE_BYTES:
                    raise ThirdPartyError(f"{url}: larger than {MAX_ARCHIVE_BYTES} bytes")
                out.write(chunk)
        os.replace(partial, target)
    except OSError as e:
        raise ThirdPartyError(f"{url}: cannot download: {e}") from None
    finally:
        partial.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
