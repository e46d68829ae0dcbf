package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// MountTmpfs mounts a tmpfs of size bytes at dir (created if missing): a
// small disk that fills. It needs root or CAP_SYS_ADMIN; the error says so.
// unmount undoes it.
func MountTmpfs(dir string, size int) (unmount func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("testenv: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %v: %s", err, out)
	}
	return func() error {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("testenv: umount %s: %v: %s", dir, err, out)
		}
		return nil
	}, nil
}

// FillDisk writes a ballast file into dir until the disk holding it is full,
// to the last bytes, and returns its path (remove it to give the room back).
func FillDisk(dir string) (string, error) {
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		return path, err
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				return path, err
			}
			break
		}
	}
	for { // the last bytes, a few at a time
		if _, err := f.Write(chunk[:512]); err != nil {
			return path, nil
		}
	}
}
