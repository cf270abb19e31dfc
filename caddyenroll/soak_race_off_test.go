//go:build !race

package caddyenroll_test

const raceEnabled = false
