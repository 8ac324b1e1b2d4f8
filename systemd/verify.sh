#!/usr/bin/env bash
# Checks systemd/waflow.service with `systemd-analyze verify` (any warning fails)
# and prints its `systemd-analyze security` exposure. Needs a built binary:
# target/debug/waflow (or the path in $WAFLOW_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${WAFLOW_BIN:-$PWD/target/debug/waflow}"
[ -x "$bin" ] || { echo "no waflow binary at $bin: run cargo build first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The unit names the installed path; point it at the built binary for the check.
sed "s#/usr/local/bin/waflow#$bin#" systemd/waflow.service > "$tmp/waflow.service"
out=$(systemd-analyze verify --man=no "$tmp/waflow.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
    echo "systemd-analyze verify warned:" >&2
    echo "$out" >&2
    exit 1
fi
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=true "$tmp/waflow.service" 2>/dev/null | tail -1 || true
