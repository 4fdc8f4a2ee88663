package wren

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
	"github.com/wrenml/wren/worker"
)

// Each driver of a job keeps a record in the store (worker.DriverKey): the
// first driver's epoch is 0, and each driver that attaches takes the next.
// A running driver rewrites its record every HeartbeatEvery; its record
// also bounds the attempt numbers it may have launched, so that a driver
// that attaches after it died starts above them (statuses are first-wins
// by attempt).

// HeartbeatEvery is how often a running driver rewrites its record.
const HeartbeatEvery = 5 * time.Second

// heartbeatEvery is HeartbeatEvery, shorter in tests.
var heartbeatEvery = HeartbeatEvery

// StaleAfter is how long after its last heartbeat a running driver's
// record means the driver is gone (Attach takes the job over without
// WithForce).
const StaleAfter = 30 * time.Second

// Driver states in a record.
const (
	stateRunning   = "running"
	stateDone      = "done"
	stateTakenOver = "taken-over"
	stateDetached  = "detached" // an Attach that failed
)

// DriverRecord is a driver's record of a job, at jobs/<job>/drivers/<epoch>.
type DriverRecord struct {
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
func (d DriverRecord) Live(now time.Time) bool {
	if d.State != stateRunning || now.Sub(d.Beat) >= StaleAfter {
		return false
	}
	if host, err := os.Hostname(); err == nil && host == d.Host && processGone(d.PID) {
		return false
	}
	return true
}

// ErrJobRunning is returned by Attach for a job whose driver is alive.
var ErrJobRunning = errors.New("wren: the job's driver is still running it")

// ErrTakenOver fails the calls of a job that another driver attached to
// (with WithForce) while this one ran it.
var ErrTakenOver = errors.New("wren: another driver took the job over")

// ReadDrivers returns a job's driver records, by epoch.
func ReadDrivers(ctx context.Context, st blob.Store, job string) ([]DriverRecord, error) {
	var keys []string
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		keys, err = blob.Keys(ctx, st, worker.DriverPrefix(job))
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []DriverRecord
	for _, k := range keys {
		if _, ok := worker.ParseCallName(strings.TrimPrefix(k, worker.DriverPrefix(job))); !ok {
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
		var d DriverRecord
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("wren: job %s: driver record %s: %w", job, k, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// record returns this driver's record as of now; r.mu is not held.
func (r *run) record0(state string, done, failed int) DriverRecord {
	host, _ := os.Hostname()
	r.ceilMu.Lock()
	ceiling := int(r.ceiling)
	r.ceilMu.Unlock()
	return DriverRecord{Epoch: r.epoch, Host: host, PID: os.Getpid(), Started: r.began.UTC(), Beat: time.Now().UTC(),
		State: state, Ceiling: ceiling, Done: done, Failed: failed}
}

// claim creates this driver's record: it fails with blob.ErrExists when
// another driver took the epoch first.
func (r *run) claim(ctx context.Context) error {
	b, _ := json.Marshal(r.record0(stateRunning, 0, 0))
	err := putRetry(ctx, r.store, worker.DriverKey(r.id, r.epoch), b, blob.PutOptions{IfNotExist: true, Ephemeral: true})
	if errors.Is(err, blob.ErrExists) {
		// Ours, if a first try was stored and its answer lost.
		var got []byte
		if rerr := retry.Store(ctx, func(ctx context.Context) (err error) {
			got, err = blob.ReadAll(ctx, r.store, worker.DriverKey(r.id, r.epoch))
			return err
		}); rerr == nil {
			var d DriverRecord
			if json.Unmarshal(got, &d) == nil && d.PID == os.Getpid() && d.Started.Equal(r.began.UTC()) {
				return nil
			}
		}
	}
	return err
}

// writeRecord rewrites this driver's record.
func (r *run) writeRecord(ctx context.Context, state string, done, failed int) error {
	b, _ := json.Marshal(r.record0(state, done, failed))
	return putRetry(ctx, r.store, worker.DriverKey(r.id, r.epoch), b, blob.PutOptions{Ephemeral: true})
}

// raiseCeiling records, before an attempt numbered top is launched, that
// attempts up to it may exist (with room for a few more, so that the
// record is rarely rewritten).
func (r *run) raiseCeiling(top int) {
	r.ceilMu.Lock()
	if int32(top) < r.ceiling {
		r.ceilMu.Unlock()
		return
	}
	r.ceiling = int32(top) + 4
	r.ceilMu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
	defer cancel()
	if err := r.writeRecord(ctx, stateRunning, 0, 0); err != nil {
		r.log.Warn("record the attempt ceiling", "err", err)
	}
}

// heartbeat rewrites the driver's record every HeartbeatEvery until the
// job ends, and stops the job when another driver took it over.
func (r *run) heartbeat() {
	defer close(r.beatDone)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-r.beat:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, HeartbeatEvery)
		if err := r.writeRecord(ctx, stateRunning, 0, 0); err != nil && r.ctx.Err() == nil {
			r.log.Warn("heartbeat", "err", err)
		}
		if ds, err := ReadDrivers(ctx, r.store, r.id); err == nil {
			for _, d := range ds {
				if d.Epoch > r.epoch {
					cancel()
					r.log.Error("another driver took the job over", "epoch", d.Epoch, "host", d.Host, "pid", d.PID)
					go r.abort(fmt.Errorf("%w (epoch %d, pid %d on %s)", ErrTakenOver, d.Epoch, d.PID, d.Host))
					<-r.beat
					return
				}
			}
		}
		cancel()
	}
}

// stopHeartbeat stops the heartbeat and waits for it.
func (r *run) stopHeartbeat() {
	select {
	case <-r.beat:
	default:
		close(r.beat)
	}
	<-r.beatDone
}
