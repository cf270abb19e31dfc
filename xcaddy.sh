#!/usr/bin/env bash
# Builds ./caddy with this plugin. Works on a fresh machine that has only Go:
# installs xcaddy v0.4.5 with `go install` when it is missing.
#   ./xcaddy.sh                 build ./caddy
#   ./xcaddy.sh run [ARGS...]   build, then ./caddy run ARGS (default: --config Caddyfile.example)
# XCADDY_WITH="MODULE[@VERSION] ..." adds other plugins (e.g. an events handler).
set -euo pipefail
orig=$PWD # relative paths in ARGS are the caller's
cd "$(dirname "$0")"
repo=$PWD
XCADDY_VERSION=v0.4.5
CADDY_VERSION=v2.11.9
MODULE=$(go list -m)
gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
xcaddy="$gobin/xcaddy"
if ! "$xcaddy" version 2>/dev/null | grep -q "$XCADDY_VERSION"; then
  echo "xcaddy.sh: installing xcaddy $XCADDY_VERSION" >&2
  # offline, from the module cache when it holds that version
  go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION" ||
    GOPROXY="file://$(go env GOMODCACHE)/cache/download" GOSUMDB=off \
      go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
fi
# The plugin is this checkout. The replacement carries a placeholder version
# so that `go get` inside xcaddy never asks a module proxy for a module that
# is not published there (a proxy may answer 403 instead of 404).
with=()
for m in ${XCADDY_WITH:-}; do with+=(--with "$m"); done
"$xcaddy" build "$CADDY_VERSION" --output ./caddy \
  --with "$MODULE@v0.0.0-00010101000000-000000000000=." "${with[@]}" >&2
if [ "${1:-}" = run ]; then
  shift
  if [ $# -eq 0 ]; then
    exec ./caddy run --config Caddyfile.example
  fi
  cd "$orig"
  exec "$repo/caddy" run "$@"
fi
