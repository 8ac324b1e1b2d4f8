#!/usr/bin/env bash
# End-to-end load benchmark: the daemon, a no-durability baseline and the floor
# (the baseline made as durable as the delivery promise needs), side by side.
# Tunables: BENCH_EVENTS (full-speed events, default 20000), BENCH_RATE_SECONDS
# (seconds at 1000 events/s, default 10), BENCH_CONCURRENCY (connections, default 32),
# BENCH_TARGETS (default baseline,floor,waflow; one of them alone for profiling),
# BENCH_ROUNDS (rounds of both sides, default 3; the verdict takes the median),
# BENCH_MATCH (percent of events a rule answers with a send, default 20; the rest is
# chat no rule matches; 100 = every event answered),
# BENCH_PIN (default 1: each server alone on core 1, the load on core 0; 0 = shared cores).
# BENCH_WAFLOW=PATH: the daemon binary to measure (default: this tree's release build; an
# older build for a before/after comparison).
# BENCH_INSTANCES=1,10,100: instead, the scale benchmark (one daemon serving that many numbers).
# BENCH_POSTGRES=1: the daemon on PostgreSQL too (target waflow-pg), on a throwaway
# server of the distribution's postgresql package, pinned with the daemon (core 1).
# BENCH_PROCESSES=3 (with BENCH_POSTGRES=1): instead, that many daemons on one database,
# the webhooks spread over them, then the failover time after the sender is killed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin waflow --example load

if [ "${BENCH_POSTGRES:-0}" = 1 ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    pgdir=$(mktemp -d /tmp/waflow-bench-pg.XXXXXX)
    as=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$pgdir"
        as=(runuser -u postgres --)
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/initdb" -D "$pgdir/data" -U waflow --auth=trust -E UTF8 >/dev/null
    pin=()
    if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then pin=(taskset -c 1); fi
    # Durable like the SQLite store (fsync and synchronous_commit on, the defaults).
    "${pin[@]}" "${as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $pgdir" start >/dev/null
    trap '"${as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null; rm -rf "$pgdir"' EXIT
    export BENCH_PG_URL="postgres://waflow@127.0.0.1:$port/postgres"
    export BENCH_PG_PID=$(head -1 "$pgdir/data/postmaster.pid")
    target/release/examples/load "${BENCH_WAFLOW:-target/release/waflow}"
    exit
fi
exec target/release/examples/load "${BENCH_WAFLOW:-target/release/waflow}"
