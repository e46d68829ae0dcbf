//go:build race

package service_test

// raceEnabled: the race detector slows the in-process broker (kfake) so much
// that a 100 MB fetch outlasts the consumer's fetch deadline and the group's
// session timeout; tests that move huge records use a smaller one under it.
const raceEnabled = true
