#!/usr/bin/env bash
# Runs the whole test suite with the race detector: unit tests, fuzz seed
# corpora, and end-to-end tests through a real Caddy over real TLS on
# loopback. Interop tests with the OSP Toolkit run when ../shared exists.
#
# The race detector needs cgo and a C compiler (gcc). Run as root with
# apt-get, the script installs gcc when go env CC (gcc or cc) is missing.
# Without a compiler the suite runs without -race and says so, except
# under CI (CI set), where that is an error.
set -euo pipefail
cd "$(dirname "$0")"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-formatted:" $unformatted >&2
  exit 1
fi
race=-race
why=
if [ "$(go env CGO_ENABLED)" != 1 ]; then
  why="cgo is disabled (go env CGO_ENABLED is not 1)"
else
  cc=$(go env CC)
  cc=${cc%% *} # the compiler, without its flags
  if { [ "$cc" = gcc ] || [ "$cc" = cc ]; } && ! command -v "$cc" >/dev/null 2>&1 &&
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # a fresh Debian/Ubuntu machine or CI image, as root: install the
    # default compiler, as internal/osptk/build.sh installs what the
    # interop tests need, rather than run without the race detector
    echo "test.sh: installing gcc with apt-get (the race detector needs a C compiler)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev; } >&2 || true
  fi
  if [ -z "$cc" ] || ! command -v "$cc" >/dev/null 2>&1; then
    why="the C compiler ${cc:-(go env CC is empty)} is not installed (apt-get install gcc)"
  fi
fi
if [ -n "$why" ]; then
  if [ -n "${CI:-}" ]; then
    echo "test.sh: the race detector is unavailable: $why; CI requires it" >&2
    exit 1
  fi
  echo "test.sh: WARNING: running without the race detector: $why" >&2
  race=
fi
go vet ./...
exec go test $race -count=1 -timeout 25m ./... "$@"
