//go:build !race

package service_test

// raceEnabled: see race_hostile_test.go.
const raceEnabled = false
