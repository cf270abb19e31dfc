#!/usr/bin/env bash
# Starts a throwaway Caddy with the clearinghouse on loopback and runs
# floodprobe against it (see `go doc ./internal/floodprobe` for what it
# measures and how to read the output). Builds no Caddy: give it one built
# by ./xcaddy.sh.
#
#   internal/floodprobe/run.sh [CADDY [PROBE FLAGS...]]
#   internal/floodprobe/run.sh ./caddy -d 20s -junk 100 -junk-d 10s
#
# CADDY defaults to ./caddy of the repository. Everything the Caddy writes
# (Caddyfile, storage, XDG config and data, log) lives in a temporary
# directory removed at the end; the Caddy is stopped by its PID.
# Environment:
#   PORT=18443            the site's port (bound on 127.0.0.1 only)
#   ADMIN=127.0.0.1:12019 the admin endpoint (loopback only)
#   KEEP_LOG=FILE         copy the Caddy's log there before cleaning up
#   FLOODPROBE=BIN        a built probe (default: go run ./internal/floodprobe)
set -euo pipefail
orig=$PWD
cd "$(dirname "$0")/../.."
repo=$PWD
caddy=${1:-./caddy}
shift || true
case $caddy in /*) ;; *) caddy=$orig/$caddy ;; esac
[ -x "$caddy" ] || { echo "run.sh: no executable Caddy at $caddy (build it with ./xcaddy.sh)" >&2; exit 2; }
port=${PORT:-18443}
admin=${ADMIN:-127.0.0.1:12019}
case $admin in 127.*:*) ;; *) echo "run.sh: ADMIN must be a 127.x.x.x address with a port, not $admin" >&2; exit 2 ;; esac

d=$(mktemp -d "${TMPDIR:-/tmp}/floodprobe.XXXXXX")
cpid=
cleanup() {
  if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
    kill "$cpid"
    wait "$cpid" || true
  fi
  if [ -n "${KEEP_LOG:-}" ] && [ -f "$d/caddy.log" ]; then
    cp "$d/caddy.log" "$KEEP_LOG"
  fi
  rm -rf "$d"
}
trap cleanup EXIT

cp "$repo/examples/clearinghouse.conf" "$d/"
# The accounts' passwords are demo-password, demo2-password and
# demo3-password (bcrypt, cost 14, as `caddy hash-password` makes them).
cat > "$d/Caddyfile" <<CF
{
	admin $admin
	local_certs
	skip_install_trust
	auto_https disable_redirects
	storage file_system $d/data
	log {
		output file $d/caddy.log
	}
	enroll {
		config_file $d/clearinghouse.conf
		approval auto
		max_issued_per_device 5 7d
		unknown_devices pending
		account demo \$2a\$14\$DEQCkuRweCXmh7FADLuice9EFTfE.7WnI618qfijP/Y4c4mE/Whve
		account demo2 \$2a\$14\$VSJIQcv2YQaGQ/m.WW0JUeFZmVGnlhPAKbEKiNZ1fILnzroiipiAq
		account demo3 \$2a\$14\$hXhisrHGJlNH.o/zM38okeZIgF49MBcRG/QT6eJU1mO/2mf.3mPau
		ca modern {
			algorithm p256
			validity 365d
		}
	}
}
https://localhost:$port {
	bind 127.0.0.1
	enroll
}
CF

XDG_CONFIG_HOME=$d/xdg-config XDG_DATA_HOME=$d/xdg-data \
  "$caddy" run --config "$d/Caddyfile" --adapter caddyfile >"$d/stdout" 2>&1 &
cpid=$!
echo "caddy pid $cpid, directory $d"

probe=(go run ./internal/floodprobe)
[ -n "${FLOODPROBE:-}" ] && probe=("$FLOODPROBE")
rc=0
"${probe[@]}" -dial "127.0.0.1:$port" -url "https://localhost:$port/" \
  -root "$d/data/pki/authorities/local/root.crt" -metrics "http://$admin/metrics" \
  -pid "$cpid" -log "$d/caddy.log" "$@" || rc=$?

if ! kill -0 "$cpid" 2>/dev/null; then
  echo "run.sh: the Caddy exited early; its output:" >&2
  tail -20 "$d/stdout" >&2
  rc=1
fi
echo
echo "log lines by msg (top 12):"
grep -o '"msg":"[^"]*"' "$d/caddy.log" | sort | uniq -c | sort -rn | head -12 || true
echo "total log bytes $(stat -c %s "$d/caddy.log")"
exit $rc
