"""vnet: run untrusted WebAssembly network programs on a virtual network."""
