//go:build race

package tlsmem_test

const raceEnabled = true
