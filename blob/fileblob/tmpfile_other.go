//go:build !linux

package fileblob

import (
	"os"
	"path/filepath"
)

// openUnnamed is Linux only; elsewhere puts write a named temporary file.
func (s *Store) openUnnamed(dir string) (*os.File, bool, error) { return nil, false, nil }

// linkUnnamed is Linux only.
func linkUnnamed(f *os.File, dst string) (bool, error) { return false, nil }

// unlinkAt removes the file name of the open directory d.
func unlinkAt(d *os.File, name string) error {
	return os.Remove(filepath.Join(d.Name(), name))
}
