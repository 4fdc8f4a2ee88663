package wren

import "time"

// SetHeartbeat shortens the drivers' heartbeat for a test and returns what
// restores it.
func SetHeartbeat(d time.Duration) func() {
	old := heartbeatEvery
	heartbeatEvery = d
	return func() { heartbeatEvery = old }
}
