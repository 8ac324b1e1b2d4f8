#!/usr/bin/env bash
# Checks the built package on this machine (as root): its contents, an
# install, the installed unit, the installed binary on the packaged config
# and rules, that nothing was started, and that removing it keeps the
# (changed) config. Run after packaging/build-deb.sh; purges it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/debian/waflow_*.deb | head -1)
echo "package: $deb"
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/waflow ./lib/systemd/system/waflow.service ./etc/waflow/waflow.yaml \
    ./etc/waflow/env ./etc/waflow/rules/10-greeting.yaml ./etc/waflow/rules/tests/starter.yaml \
    ./usr/share/man/man1/waflow.1.gz ./usr/share/bash-completion/completions/waflow \
    ./usr/share/zsh/vendor-completions/_waflow ./usr/share/fish/vendor_completions.d/waflow.fish; do
    grep -q " $path\$" <<<"$contents" || { echo "missing from the package: $path" >&2; exit 1; }
done
grep -q ' ./etc/waflow/env$' <<<"$(grep -- '-rw-r-----' <<<"$contents")" \
    || { echo "/etc/waflow/env is not mode 0640 in the package" >&2; exit 1; }
conffiles=$(dpkg-deb -I "$deb" conffiles)
for f in /etc/waflow/waflow.yaml /etc/waflow/env; do
    grep -qx "$f" <<<"$conffiles" || { echo "not a conffile: $f" >&2; exit 1; }
done

dpkg -i "$deb"
/usr/bin/waflow --version
[ "$(stat -c %a /etc/waflow/env)" = 640 ] || { echo "/etc/waflow/env is not 0640" >&2; exit 1; }
out=$(systemd-analyze verify --man=no /lib/systemd/system/waflow.service 2>&1) || { echo "$out" >&2; exit 1; }
[ -z "$out" ] || { echo "systemd-analyze verify warned: $out" >&2; exit 1; }
echo "systemd-analyze verify (installed unit): ok"
(cd / && env -u WAFLOW_CONFIG waflow -c /etc/waflow/waflow.yaml check)
(cd / && waflow -c /etc/waflow/waflow.yaml test /etc/waflow/rules/tests)
if systemctl is-enabled waflow.service >/dev/null 2>&1; then
    echo "the package enabled the service before it was configured" >&2; exit 1
fi

echo "# changed by the administrator" >> /etc/waflow/waflow.yaml
dpkg -r waflow
[ ! -e /usr/bin/waflow ] || { echo "dpkg -r left the binary" >&2; exit 1; }
grep -q "changed by the administrator" /etc/waflow/waflow.yaml \
    || { echo "dpkg -r did not keep the changed conffile" >&2; exit 1; }
echo "dpkg -r: binary gone, changed config kept"
dpkg --purge waflow
[ ! -e /etc/waflow/waflow.yaml ] || { echo "dpkg --purge left the config" >&2; exit 1; }
echo "package checks: ok"
