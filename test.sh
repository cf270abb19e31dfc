#!/usr/bin/env bash
# Runs the whole test suite with the race detector: unit tests, fuzz seed
# corpora, and end-to-end tests through a real Caddy over real TLS on
# loopback. Interop tests with the OSP Toolkit run when ../shared exists.
set -euo pipefail
cd "$(dirname "$0")"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-formatted:" $unformatted >&2
  exit 1
fi
go vet ./...
exec go test -race -count=1 -timeout 25m ./... "$@"
