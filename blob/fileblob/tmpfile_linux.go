package fileblob

import (
	"errors"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openUnnamed opens an unnamed inode in dir (O_TMPFILE) for writing: a
// writer killed before it links the inode into place leaves nothing
// behind. ok is false when the filesystem cannot do it (no O_TMPFILE); the
// caller then writes a named temporary file.
func (s *Store) openUnnamed(dir string) (f *os.File, ok bool, err error) {
	for try := 0; ; try++ {
		if err := s.mkdir(dir); err != nil {
			return nil, true, err
		}
		fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err == nil {
			return os.NewFile(uintptr(fd), dir+"/(unnamed)"), true, nil
		}
		switch {
		case (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM)) && try < 8:
			// Removed by a Delete meanwhile (a directory being removed
			// answers EPERM): make it again.
			s.forget(dir)
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
			return nil, false, nil
		}
		return nil, true, err
	}
}

// linkUnnamed gives the unnamed inode f the name dst, failing with
// fs.ErrExist when dst exists. ok is false when it cannot be done here (no
// /proc to name the inode by).
func linkUnnamed(f *os.File, dst string) (ok bool, err error) {
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return true, fs.ErrExist
	case errors.Is(err, unix.ENOENT):
		if _, perr := os.Stat("/proc/self/fd"); perr != nil {
			return false, nil
		}
	}
	return true, err
}

// unlinkAt removes the file name of the open directory d.
func unlinkAt(d *os.File, name string) error {
	return unix.Unlinkat(int(d.Fd()), name, 0)
}
