package wren

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/job"
)

// Each driver of a job keeps a record in the store (job.DriverKey): the
// first driver's epoch is 0, and each driver that attaches takes the next.
// A running driver rewrites its record every HeartbeatEvery; its record
// also bounds the attempt numbers it may have launched, so that a driver
// that attaches after it died starts above them (statuses are first-wins
// by attempt).

// HeartbeatEvery is how often a running driver rewrites its record.
const HeartbeatEvery = 5 * time.Second

// heartbeatEvery is HeartbeatEvery, shorter in tests.
var heartbeatEvery = HeartbeatEvery

// ErrJobRunning is returned by Attach for a job whose driver is alive.
var ErrJobRunning = errors.New("wren: the job's driver is still running it")

// ErrTakenOver fails the calls of a job that another driver attached to
// (with WithForce) while this one ran it.
var ErrTakenOver = errors.New("wren: another driver took the job over")

// record returns this driver's record as of now; r.mu is not held.
func (r *run) record0(state string, done, failed int) job.Driver {
	host, _ := os.Hostname()
	r.ceilMu.Lock()
	ceiling := int(r.ceiling)
	r.ceilMu.Unlock()
	return job.Driver{Epoch: r.epoch, Host: host, PID: os.Getpid(), Started: r.began.UTC(), Beat: time.Now().UTC(),
		State: state, Ceiling: ceiling, Done: done, Failed: failed}
}

// claim creates this driver's record: it fails with blob.ErrExists when
// another driver took the epoch first.
func (r *run) claim(ctx context.Context) error {
	b, _ := json.Marshal(r.record0(job.StateRunning, 0, 0))
	err := putRetry(ctx, r.store, job.DriverKey(r.id, r.epoch), b, blob.PutOptions{IfNotExist: true, Ephemeral: true})
	if errors.Is(err, blob.ErrExists) {
		// Ours, if a first try was stored and its answer lost.
		var got []byte
		if rerr := retry.Store(ctx, func(ctx context.Context) (err error) {
			got, err = blob.ReadAll(ctx, r.store, job.DriverKey(r.id, r.epoch))
			return err
		}); rerr == nil {
			var d job.Driver
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
	return putRetry(ctx, r.store, job.DriverKey(r.id, r.epoch), b, blob.PutOptions{Ephemeral: true})
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
	if err := r.writeRecord(ctx, job.StateRunning, 0, 0); err != nil {
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
		if err := r.writeRecord(ctx, job.StateRunning, 0, 0); err != nil && r.ctx.Err() == nil {
			r.log.Warn("heartbeat", "err", err)
		}
		if ds, err := job.ReadDrivers(ctx, r.store, r.id); err == nil {
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
