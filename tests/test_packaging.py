"""The wheel is what a user installs: its metadata says what the runtime needs, and
it runs everything, the demo included, without a checkout.

Builds the wheel with pip (setuptools from PyPI in pip's build isolation, as any
install does), installs it into a private directory and runs `vnet demo` from
there in an empty directory: the packaged examples are copied, built and run,
and the LAN capture equals the checkout's `vnet sim` of the same topology byte
for byte. Touches a temporary directory and PyPI (for the build backend).
"""

from __future__ import annotations

import ast
import email
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DEPENDENCIES = {"wasmtime", "scapy", "python-pytun", "netaddr", "ziglang"}
# import name -> distribution name, for what the runtime imports
DISTRIBUTION = {"wasmtime": "wasmtime", "scapy": "scapy", "pytun": "python-pytun",
                "netaddr": "netaddr", "ziglang": "ziglang", "matplotlib": "matplotlib",
                "distributed": "distributed"}
OPTIONAL_IMPORTS = {"matplotlib": "bench", "distributed": "cluster"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(out), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("vnet-*.whl")
    return path


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def _third_party_imports() -> dict[str, set[str]]:
    """import name -> the runtime modules importing it (vnet/testing and vnet/bench are
    for tests and benchmarks)."""
    found: dict[str, set[str]] = {}
    for package in ("vnet", "stack", "firewall"):
        for source in (ROOT / package).rglob("*.py"):
            relative = source.relative_to(ROOT)
            if relative.parts[:2] in (("vnet", "testing"), ("vnet", "bench")):
                continue
            for node in ast.walk(ast.parse(source.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module
                         and node.level == 0 else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in DISTRIBUTION:
                        found.setdefault(top, set()).add(str(relative))
    return found


def test_metadata_lists_what_the_runtime_imports(wheel: Path) -> None:
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in meta.get_all("License-File", [])
    required = [r for r in meta.get_all("Requires-Dist", []) if "extra ==" not in r]
    names = {r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip()
             for r in required}
    assert names == RUNTIME_DEPENDENCIES
    pytun = next(r for r in required if r.startswith("python-pytun"))
    assert 'sys_platform == "linux"' in pytun
    extras = [r for r in meta.get_all("Requires-Dist", []) if "extra ==" in r]
    for import_name, users in _third_party_imports().items():
        distribution = DISTRIBUTION[import_name]
        if import_name in OPTIONAL_IMPORTS:
            extra = OPTIONAL_IMPORTS[import_name]
            assert any(r.startswith(distribution) and f'extra == "{extra}"' in r
                       for r in extras), (import_name, users)
        else:
            assert distribution in names, (import_name, users)


def test_installed_wheel_runs_the_demo(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    assert (target / "vnet" / "sim" / "examples" / "demo.toml").is_file()
    assert not (target / "examples").exists()
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    demo = subprocess.run([sys.executable, "-m", "vnet", "demo"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "vnet sim: clients exited" in demo.stdout
    where = subprocess.run([sys.executable, "-c", "import vnet; print(vnet.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(target))  # the wheel ran, not the checkout
    packaged = work / "vnet-demo" / "examples" / "build" / "demo-pcaps" / "segment-lan.pcapng"
    reference = tmp_path / "reference"
    sim = subprocess.run([sys.executable, "-m", "vnet", "sim", str(ROOT / "examples" /
                                                                   "demo.toml"),
                          "--pcap-dir", str(reference), "--pcap-segment", "lan", "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert sim.returncode == 0, sim.stderr
    assert packaged.read_bytes() == (reference / "segment-lan.pcapng").read_bytes()
