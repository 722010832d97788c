"""vnet's benchmarks: the data path next to the same C programs run natively.

`scripts/bench` (or `python -m vnet.bench`) runs each workload twice in one
run — the example C program compiled with gcc over the Linux kernel's
loopback, inside a network namespace made for the purpose and deleted
after, and the same source built to wasm and run as vnet guests in real
time — and reports each figure side by side, with vnet ÷ native as a ratio:

    TCP bulk throughput (MTU 1500 and 65520)    examples/bulk.c
    UDP 64-byte datagram rate and loss          examples/bulk.c
    TCP connection rate                         examples/connrate.c
    UDP round-trip latency p50 / p99            examples/udp_rtt.c
    TCP through the TUN bridge, both ways       examples/bulk.c (kernel side native)
    memory per idle guest, most guests at once  examples/tcp_echo_server.c
    cost of one socket call                     vnet/bench/hostcall.c

Output: a table on the terminal, `bench-results/bench.json` (every figure,
every repetition, and the machine: CPU, cores, Python, wasmtime, gcc, date,
load) and `bench-results/bench.png`. `--quick` is a smoke run (well under
two minutes); the default is the full run. `--profile` profiles the TCP
bulk workload instead (vnet.bench.profile). docs/performance.md has the
numbers and what they say.

Modules: `cli` (options, orchestration), `settings` (quick/full sizes),
`workloads` (one function per workload), `labs` (native namespace, virtual
hosts, TUN bridge), `figures` (what is reported and how ratios are taken),
`scale` (the concurrent-guest search, run as a child process), `profile`,
`report` (table, JSON, chart), `machine`.

Benchmarks never assert on speed; tests/test_bench.py only checks that a
quick run produces every figure.
"""
