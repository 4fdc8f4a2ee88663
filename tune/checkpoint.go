package tune

import (
	"context"
	"errors"
	"fmt"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
)

// LoadCheckpoint returns the state this run starts from and the budget it
// holds: this run's own checkpoint when an earlier attempt of the run
// completed it (held == Budget(): nothing is left to train), else the
// checkpoint of the rung it was promoted from (held == Resumed()), else nil
// and 0 (a first run, or a trial that never saved one).
func (p Params) LoadCheckpoint(ctx context.Context) (state []byte, held int, err error) {
	if p.store == "" || p.ckpt == "" {
		return nil, 0, errors.New("tune: these parameters have no checkpoint place (not from a sweep)")
	}
	st, err := blob.Shared(ctx, p.store)
	if err != nil {
		return nil, 0, fmt.Errorf("tune: checkpoint store: %w", err)
	}
	for _, c := range []struct {
		key    string
		budget int
	}{{p.CheckpointKey(), p.budget}, {p.ResumeKey(), p.prev}} {
		if c.key == "" {
			continue
		}
		var b []byte
		err := retry.Store(ctx, func(ctx context.Context) (err error) {
			b, err = blob.ReadAll(ctx, st, c.key)
			return err
		})
		switch {
		case err == nil:
			return b, c.budget, nil
		case !errors.Is(err, blob.ErrNotFound):
			return nil, 0, fmt.Errorf("tune: read checkpoint %s: %w", c.key, err)
		}
	}
	if p.prev > 0 {
		return nil, 0, fmt.Errorf("tune: trial %d was promoted from budget %d but its checkpoint %s is missing", p.ID, p.prev, p.ResumeKey())
	}
	return nil, 0, nil
}

// SaveCheckpoint writes this run's state at CheckpointKey, once: when
// another attempt of the run (a retry, a speculative duplicate) saved it
// first, the stored one stays and SaveCheckpoint returns nil. Objects are
// written atomically, so a stored checkpoint is always complete.
func (p Params) SaveCheckpoint(ctx context.Context, state []byte) error {
	if p.store == "" || p.ckpt == "" {
		return errors.New("tune: these parameters have no checkpoint place (not from a sweep)")
	}
	st, err := blob.Shared(ctx, p.store)
	if err != nil {
		return fmt.Errorf("tune: checkpoint store: %w", err)
	}
	err = retry.Store(ctx, func(ctx context.Context) error {
		return blob.PutBytes(ctx, st, p.CheckpointKey(), state, blob.PutOptions{IfNotExist: true})
	})
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("tune: save checkpoint %s: %w", p.CheckpointKey(), err)
	}
	return nil
}
