package fileblob

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// putLinked writes r into an unnamed inode of dir (O_TMPFILE) and links it
// to dst, failing with fs.ErrExist when dst exists: an atomic conditional
// create without a temporary name. done is false when the filesystem
// cannot do it (no O_TMPFILE, no /proc); the caller then uses a temporary
// file.
func (s *Store) putLinked(ctx context.Context, dir, dst string, r io.Reader, sync bool) (done bool, err error) {
	var fd int
	for try := 0; ; try++ {
		if err := s.mkdir(dir); err != nil {
			return true, err
		}
		fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, unix.ENOENT) && try < 3:
			s.forget(dir) // removed by a Delete meanwhile
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
			return false, nil
		}
		return true, err
	}
	f := os.NewFile(uintptr(fd), dst)
	defer f.Close()
	if err := copyTo(ctx, f, r, sync); err != nil {
		return true, err
	}
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return true, fs.ErrExist
	case errors.Is(err, unix.ENOENT):
		if _, perr := os.Stat("/proc/self/fd"); perr != nil {
			return false, nil // no /proc: the temporary-file way
		}
		s.forget(dir)
	}
	return true, err
}
