//go:build race

package caddyenroll_test

// raceEnabled: this test binary runs with the race detector, so the soak
// runs Caddy with it too (the packages are compiled for it already).
const raceEnabled = true
