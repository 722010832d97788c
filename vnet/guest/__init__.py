"""The wasm guest host: WASI preview1 in Python, the socket ABI, per-guest limits."""
