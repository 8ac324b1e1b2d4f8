#!/usr/bin/env bash
# End-to-end load benchmark: the daemon, a no-durability baseline and the floor
# (the baseline made as durable as the delivery promise needs), side by side.
# Tunables: BENCH_EVENTS (full-speed events, default 20000), BENCH_RATE_SECONDS
# (seconds at 1000 events/s, default 10), BENCH_CONCURRENCY (connections, default 32),
# BENCH_TARGETS (default baseline,floor,waflow; one of them alone for profiling),
# BENCH_ROUNDS (rounds of both sides, default 3; the verdict takes the median),
# BENCH_PIN (default 1: each server alone on core 1, the load on core 0; 0 = shared cores).
# BENCH_INSTANCES=1,10,100: instead, the scale benchmark (one daemon serving that many numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin waflow --example load
exec target/release/examples/load target/release/waflow
