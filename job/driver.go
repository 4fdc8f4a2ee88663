package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
)

// Each driver of a job keeps a record (DriverKey): the first driver's
// epoch is 0, and each driver that attaches takes the next. A running
// driver rewrites its record every few seconds; its record also bounds the
// attempt numbers it may have launched, so that a driver that attaches
// after it died starts above them (statuses are first-wins by attempt).

// StaleAfter is how long after its last heartbeat a running driver's
// record means the driver is gone (Attach takes the job over without
// WithForce).
const StaleAfter = 30 * time.Second

// Driver states in a record.
const (
	StateRunning   = "running"
	StateDone      = "done"
	StateCancelled = "cancelled"  // ended (cancelled, interrupted) before every call ran
	StateTakenOver = "taken-over" // another driver attached with force
	StateDetached  = "detached"   // an Attach that failed
)

// Driver is a driver's record of a job, at jobs/<job>/drivers/<epoch>.
type Driver struct {
	Epoch   int       `json:"epoch"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Beat    time.Time `json:"beat"` // the last heartbeat
	State   string    `json:"state"`
	// Ceiling bounds the attempt numbers the driver launched: every
	// attempt was below it.
	Ceiling int `json:"attempt_ceiling"`
	// Done and Failed count the calls when the driver finished.
	Done   int `json:"done,omitempty"`
	Failed int `json:"failed,omitempty"`
}

// Live reports whether the record is of a driver still running the job:
// not finished, a heartbeat within StaleAfter of now, and, for a driver of
// this machine, its process still there.
func (d Driver) Live(now time.Time) bool {
	if d.State != StateRunning || now.Sub(d.Beat) >= StaleAfter {
		return false
	}
	if host, err := os.Hostname(); err == nil && host == d.Host && processGone(d.PID) {
		return false
	}
	return true
}

// ReadDrivers returns a job's driver records, by epoch.
func ReadDrivers(ctx context.Context, st blob.Store, id string) ([]Driver, error) {
	var keys []string
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		keys, err = blob.Keys(ctx, st, DriverPrefix(id))
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []Driver
	for _, k := range keys {
		if _, ok := ParseCallName(strings.TrimPrefix(k, DriverPrefix(id))); !ok {
			continue
		}
		var b []byte
		err := retry.Store(ctx, func(ctx context.Context) (err error) {
			b, err = blob.ReadAll(ctx, st, k)
			return err
		})
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var d Driver
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("job %s: driver record %s: %w", id, k, err)
		}
		out = append(out, d)
	}
	return out, nil
}
