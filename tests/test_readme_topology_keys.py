"""The README documents every topology key with an example.

Every key the topology parser accepts (the key sets `vnet/sim/topology.py`
checks tables against) must appear as `key = ...` or as a `[table]` in one
of the README's TOML examples, and every TOML example must be valid TOML, so a
new key cannot land undocumented and the examples cannot rot into syntax
errors.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _parser_keys() -> set[str]:
    tree = ast.parse((ROOT / "vnet" / "sim" / "topology.py").read_text())
    keys: set[str] = set()
    for node in ast.walk(tree):
        sets: list[ast.AST] = []
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_check_keys":
            sets = node.args[1:2]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id.endswith("_KEYS") and node.value:
                sets = [node.value]
        for found in sets:
            keys.update(n.value for n in ast.walk(found)
                        if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return keys


def _toml_examples() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_every_topology_key_has_an_example_in_the_readme() -> None:
    keys = _parser_keys()
    assert {"virtual_time", "bandwidth", "devices", "resolvers", "mroutes"} <= keys
    text = "\n".join(_toml_examples())
    undocumented = sorted(
        key for key in keys
        if not re.search(rf"(^|[\s{{,]){re.escape(key)}\s*=|[\[.]{re.escape(key)}[\].]", text,
                         re.M))
    assert not undocumented, f"topology keys with no README example: {undocumented}"


def test_every_toml_example_in_the_readme_is_valid_toml() -> None:
    examples = _toml_examples()
    assert len(examples) >= 8
    for example in examples:
        # "…" stands for text a user fills in
        tomllib.loads(example.replace("…64 hex digits…", "0" * 64))
