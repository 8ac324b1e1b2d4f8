#!/usr/bin/env bash
# Builds the Debian package: target/debian/waflow_<version>-1_<arch>.deb.
# Needs cargo-deb (cargo install --locked cargo-deb). The binary writes its
# own completions and man page; the unit and the config are the repository's,
# with the paths of a package (/usr/bin, /etc/waflow, /var/lib/waflow).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin waflow
assets=target/deb-assets
rm -rf "$assets" && mkdir -p "$assets/rules/tests"
bin=target/release/waflow
"$bin" completions bash > "$assets/waflow.bash"
"$bin" completions zsh > "$assets/_waflow"
"$bin" completions fish > "$assets/waflow.fish"
"$bin" man | gzip -9n > "$assets/waflow.1.gz"
"$bin" schema > "$assets/waflow.schema.json"
sed 's#/usr/local/bin/waflow#/usr/bin/waflow#' systemd/waflow.service > "$assets/waflow.service"
# The starter config, with the package's paths and no secret in it: the
# webhook secret comes from /etc/waflow/env (empty: every webhook is refused).
sed -e 's#path: ${WAFLOW_STORE:-waflow.db}#path: ${WAFLOW_STORE:-/var/lib/waflow/waflow.db}#' \
    -e 's#^rules: rules #rules: /etc/waflow/rules #' \
    -e 's#${WAFLOW_WEBHOOK_SECRET:-@WEBHOOK_SECRET@}#${WAFLOW_WEBHOOK_SECRET:-}       #' \
    starter/waflow.yaml > "$assets/waflow.yaml"
grep -q '/etc/waflow/rules' "$assets/waflow.yaml" && ! grep -q '@WEBHOOK_SECRET@' "$assets/waflow.yaml" \
    || { echo "the packaged config was not adapted" >&2; exit 1; }
cp starter/rules/*.yaml "$assets/rules/"
cp starter/rules/tests/*.yaml "$assets/rules/tests/"
cargo deb --no-build --locked "$@"
