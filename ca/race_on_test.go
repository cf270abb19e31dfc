//go:build race

package ca

const raceEnabled = true
