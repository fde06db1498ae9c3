#!/bin/sh
# systemd-analyze verify on vtrackd's units (the installed ones point at the install prefix, so
# a copy points ExecStart at the freshly built daemon and the shipped example configuration).
# usage: verify_units.sh VTRACKD_SERVICE VTRACKD_SOCKET VTRACKD_BINARY VTRACKD_JSON
set -eu
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze is not installed (Debian package systemd): units not verified" >&2
    exit 77
fi
bin=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
cfg=$(cd "$(dirname "$4")" && pwd)/$(basename "$4")
set -- "$1" "$2" "$bin" "$cfg"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#^ExecStart=.*#ExecStart=$3 --config $4#" "$1" >"$dir/vtrackd.service"
cp "$2" "$dir/vtrackd.socket"
# Any warning counts: verify prints them on stderr and may still exit 0.
out=$(systemd-analyze verify "$dir/vtrackd.service" "$dir/vtrackd.socket" 2>&1) || {
    printf '%s\n' "$out" >&2
    exit 1
}
if [ -n "$out" ]; then
    printf 'systemd-analyze verify complained:\n%s\n' "$out" >&2
    exit 1
fi
grep -q '^Type=notify$' "$dir/vtrackd.service"
grep -q '^RestartPreventExitStatus=78$' "$dir/vtrackd.service"
# The daemon accepts the configuration the unit passes it.
"$3" --check --config "$4" --log-level error >/dev/null
echo "units verified: $(systemd-analyze --version | head -1)"
