"""`mypyc_attr` for the modules vnet/compile_stack.py compiles, with or without mypy installed.

mypyc reads the decorator (``mypy_extensions.mypyc_attr``) when it compiles a class; at run
time it does nothing. The pure-Python build needs only python3 and vnet's dependencies,
which do not include mypy, so without it the decorator is a stand-in that returns the
class unchanged. Not compiled itself; touches nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import IdentityFunction

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # pure Python without mypy installed

    def mypyc_attr(*attrs: str, **kwattrs: object) -> IdentityFunction:
        return lambda cls: cls


__all__ = ["mypyc_attr"]
