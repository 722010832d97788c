"""The vnet TCP/IP stack: sans-IO protocol engines. Imports neither vnet nor firewall."""

# Before any submodule loads: run the mypyc-compiled build if one is current (stack/compiled.py).
from . import compiled as _compiled

_compiled.activate()
