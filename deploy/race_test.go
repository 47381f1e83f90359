//go:build race

package deploy

// The binary whose flags are checked is built with -race too, so it reuses
// the packages `go test -race` compiled instead of compiling them again.
func init() { raceEnabled = true }
