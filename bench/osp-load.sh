#!/usr/bin/env bash
# Load test of OSP call authorization through a real Caddy over TLS with
# keep-alive, with wrk (a light C load generator, so that the server gets
# the cores), against bare token signing measured right after on the same
# machine. Loopback only.
#
#   bench/osp-load.sh [DURATION] [CONNECTIONS]      (default 10s, 50)
#
# Needs wrk (apt-get install wrk) and python3. Prints both rates and the ratio the
# issue asks for: authorizations/s ÷ (bare tokens/s ÷ 3).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}; conns=${2:-50}
command -v wrk >/dev/null || { echo "osp-load: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "osp-load: python3 is not installed (apt-get install python3)" >&2; exit 2; }
# stop_caddy ends the Caddy this script started and waits until it has exited
stop_caddy() {
  [ -f "$work/pid" ] || return 0
  kill "$(cat "$work/pid")" 2>/dev/null || true
  wait "$(cat "$work/pid")" 2>/dev/null || true
  rm -f "$work/pid"
}
work=$(mktemp -d); trap 'stop_caddy; rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
admin=$(port); tlsport=$(port)
cat > "$work/bench.conf" <<'CONF'
crypto 'imported'
routing enabled
cdrs enabled
group ""
device src.bench.example "" enabled enrolled
device d1.bench.example "" enabled enrolled
device d2.bench.example "" enabled enrolled
device d3.bench.example "" enabled enrolled
route "" "" d1.bench.example 50 d2.bench.example 30 d3.bench.example 20
CONF
cat > "$work/Caddyfile" <<CF
{
	admin 127.0.0.1:$admin
	local_certs
	skip_install_trust
	auto_https disable_redirects
	servers {
		protocols h1
		strict_sni_host insecure_off
	}
	log {
		level ERROR
	}
	storage file_system $work/data
	enroll {
		config_file $work/bench.conf
	}
}
https://127.0.0.1:$tlsport {
	bind 127.0.0.1
	tls internal
	osp {
		source_address 127.0.0.1 src.bench.example
	}
}
CF
# exec: the pid recorded is Caddy's own, not that of a subshell that would
# leave Caddy running when killed
( cd "$work" && HOME="$work" exec "$work/caddy" run --config Caddyfile > caddy.log 2>&1 ) &
echo $! > "$work/pid"
for _ in $(seq 200); do
  curl -sk --max-time 1 -o /dev/null "https://127.0.0.1:$tlsport/" && break; sleep 0.1
done
OSP_BODY=osp/testdata/authorization-request.xml wrk -t2 -c"$conns" -d2s -s bench/osp.lua "https://127.0.0.1:$tlsport/osp" >/dev/null
out=$(cd bench && OSP_BODY=../osp/testdata/authorization-request.xml wrk -t2 -c"$conns" -d"$dur" -s osp.lua "https://127.0.0.1:$tlsport/osp")
echo "$out"
auth=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
bad=$(echo "$out" | awk '/^bad_answers/ {print $2}')
stop_caddy # before the in-process benchmark, which should have the cores to itself
tokens=$(go test -run '^$' -bench 'TokenSignInProcess' -benchtime 3s ./caddyenroll/ | awk '/tokens\/s/ {for(i=1;i<=NF;i++) if($(i+1)=="tokens/s") print $i}')
python3 - "$auth" "$tokens" "$bad" <<'PY'
import sys
auth, tokens, bad = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"authorizations/s {auth:.0f}  bare tokens/s {tokens:.0f}  ratio {auth/(tokens/3)*100:.1f}% of bare/3  bad answers {bad}")
PY
