package testenv

import (
	"testing"

	"github.com/wrenml/wren/internal/emulator"
)

// StartEmulators starts n AWS Lambda Runtime Interface Emulators running
// bootstrap, with env added to this process's environment, on free
// loopback ports, and stops them when the test ends. A missing emulator
// fails the test: CI installs it (make deps), and a skip would hide that.
func StartEmulators(t testing.TB, n int, bootstrap string, env ...string) []*emulator.Emulator {
	t.Helper()
	es, err := emulator.Start(n, bootstrap, env...)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		t.Cleanup(e.Stop)
	}
	return es
}
