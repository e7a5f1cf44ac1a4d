//go:build race

package webhook

// raceEnabled: the race detector makes sync.Pool drop items on purpose, so
// pooled code allocates under -race.
const raceEnabled = true
