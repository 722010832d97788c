"""vnet: run untrusted WebAssembly network programs on a virtual network."""

# Before any submodule loads: importing the stack activates its compiled build
# (stack/compiled.py), which also holds the hot host-call modules of vnet/guest and vnet/link.
import stack as _stack  # noqa: F401
