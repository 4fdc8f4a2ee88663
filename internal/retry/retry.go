// Package retry runs an operation on a blob store again after a transient
// failure, with a short back-off.
package retry

import (
	"context"
	"errors"
	"time"

	"github.com/wrenml/wren/blob"
)

// Tries is how many times Store tries an operation.
const Tries = 3

// Store runs op up to Tries times, waiting 50 ms, then 200 ms, between
// tries. It stops at the first success, at an error that trying again
// cannot fix (blob.ErrNotFound, blob.ErrExists, blob.ErrInvalidKey), or when
// ctx ends, and returns op's last error.
func Store(ctx context.Context, op func(ctx context.Context) error) error {
	return StoreN(ctx, Tries, op)
}

// StoreN is Store with n tries; the wait between tries grows as 50 ms x
// try², up to 1 s.
func StoreN(ctx context.Context, n int, op func(ctx context.Context) error) error {
	var err error
	for try := range max(n, 1) {
		if try > 0 {
			t := time.NewTimer(min(time.Duration(try*try)*50*time.Millisecond, time.Second))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return err
			}
		}
		err = op(ctx)
		if err == nil || Permanent(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Permanent reports whether err is a store answer that no retry changes.
func Permanent(err error) bool {
	return errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrExists) || errors.Is(err, blob.ErrInvalidKey) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
