package sink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SpoolLockFile is the file in a spool directory whose lock marks the
// directory as taken. It holds the pid of the process that holds the lock.
const SpoolLockFile = ".hitship-spool.lock"

// SpoolLockedError says that another process holds a spool directory.
// Two spools on one directory would delete each other's files (NewSpool
// removes the files it finds), so the second one is refused.
type SpoolLockedError struct {
	Dir string
	PID int // the holder's pid as it wrote it in the lock file; 0 if unknown
}

func (e *SpoolLockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "another process (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("spool directory %s is in use by %s, which holds its lock file %s", e.Dir, holder, SpoolLockFile)
}

// IsSpoolLocked reports whether err says the spool directory is taken by
// another process.
func IsSpoolLocked(err error) bool {
	var e *SpoolLockedError
	return errors.As(err, &e)
}

// dirLock is an exclusive lock on a spool directory, held until release or
// the end of the process (the kernel drops it with the file descriptor, so a
// killed process leaves no stale lock, only the file).
type dirLock struct {
	path string
	f    *os.File
}

// lockDir takes the lock of dir without waiting.
//
// The lock file is removed on release, so a process can lock a file that its
// holder unlinked just before: after locking, the file must still be the
// one at path, or the lock is taken again on the new file.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, SpoolLockFile)
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sink: spool: lock file: %w", err)
		}
		locked, err := tryLock(f)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("sink: spool: locking %s: %w", path, err)
		}
		if !locked {
			pid := readPID(f)
			_ = f.Close()
			return nil, &SpoolLockedError{Dir: dir, PID: pid}
		}
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(fi, pi) {
			_ = f.Close() // unlinked by the holder we raced with: lock the new file
			continue
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
		return &dirLock{path: path, f: f}, nil
	}
	return nil, fmt.Errorf("sink: spool: %s keeps being replaced; is another process starting and stopping on %s?", path, dir)
}

func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release removes the lock file and drops the lock. The file is removed
// first, while the lock is held, so no process can lock it and then see it
// vanish (lockDir checks for that case anyway).
func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	errRm := os.Remove(l.path)
	if errors.Is(errRm, os.ErrNotExist) {
		errRm = nil
	}
	errClose := l.f.Close() // closing the descriptor drops the lock
	l.f = nil
	return errors.Join(errRm, errClose)
}
