//go:build !linux

package fileblob

import (
	"context"
	"io"
)

// putLinked is Linux only; elsewhere puts use a temporary file.
func (s *Store) putLinked(ctx context.Context, dir, dst string, r io.Reader, sync bool) (bool, error) {
	return false, nil
}
