package ps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoNote reports a note that was never written (or has expired).
var ErrNoNote = errors.New("ps: no such note")

// NoteTTL is how long a note is kept after it was last written.
const NoteTTL = 7 * 24 * time.Hour

// PushOption adjusts a push.
type PushOption func(*pushConfig)

type pushConfig struct {
	notes []note
}

type note struct {
	name  string
	value []byte
}

// WithNote writes value under name (Model.Note reads it) in the push's own
// request, after the push's updates on the model's first shard: a worker
// that notes its position with every push knows, after a crash, which of
// its updates the server holds. Notes are small (at most 64 KiB), kept for
// NoteTTL, and deleted by DeleteNotes. A worker's credentials (Grant) allow
// it to write and read its models' notes.
func WithNote(name string, value []byte) PushOption {
	return func(c *pushConfig) { c.notes = append(c.notes, note{name, value}) }
}

func noteKey(model, name string) string { return "wps:{" + model + "}:n:" + name }

func checkNote(name string, value []byte) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("%w: note name %q", ErrBadInput, name)
	}
	if len(value) > 64<<10 {
		return fmt.Errorf("%w: note %q of %d bytes (at most 64 KiB)", ErrBadInput, name, len(value))
	}
	return nil
}

// noteOps are the SETs of a push's notes, to be run after its updates.
func (m *Model) noteOps(opts []PushOption) ([]op, error) {
	var c pushConfig
	for _, o := range opts {
		o(&c)
	}
	ops := make([]op, 0, len(c.notes))
	ttl := NoteTTL
	for _, n := range c.notes {
		if err := checkNote(n.name, n.value); err != nil {
			return nil, err
		}
		v := n.value
		ops = append(ops, single(-1, noteKey(m.name, n.name), func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder {
			return p.Set(ctx, key, v, ttl)
		}))
	}
	return ops, nil
}

// SetNote writes a note without a push: what a driver records about a
// model (what it holds, for whom).
func (m *Model) SetNote(ctx context.Context, name string, value []byte) error {
	ops, err := m.noteOps([]PushOption{WithNote(name, value)})
	if err != nil {
		return err
	}
	return m.s.exec(ctx, "write note "+name+" of "+m.name, ops)
}

// Note reads the note written under name with a push (WithNote).
func (m *Model) Note(ctx context.Context, name string) ([]byte, error) {
	if err := checkNote(name, nil); err != nil {
		return nil, err
	}
	ops := []op{single(-1, noteKey(m.name, name), func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder {
		return p.Get(ctx, key)
	})}
	if err := m.s.exec(ctx, "read note "+name+" of "+m.name, ops); err != nil {
		return nil, err
	}
	b, err := ops[0].cmd.(*redis.StringCmd).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %q of model %q", ErrNoNote, name, m.name)
	}
	return b, err
}

// DeleteNotes deletes notes of the model (a driver's, when its run ends;
// workers may not delete).
func (m *Model) DeleteNotes(ctx context.Context, names ...string) error {
	var ops []op
	for _, name := range names {
		if err := checkNote(name, nil); err != nil {
			return err
		}
		ops = append(ops, single(-1, noteKey(m.name, name), func(ctx context.Context, p redis.Pipeliner, key string) redis.Cmder {
			return p.Del(ctx, key)
		}))
	}
	if len(ops) == 0 {
		return nil
	}
	return m.s.exec(ctx, "delete notes of "+m.name, ops)
}
