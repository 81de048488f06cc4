// Package atomicfile writes files so that a reader sees either the old file
// or the whole new one, never a part: the content goes to a temporary file
// in the same directory, which is synced and renamed over the path only
// when it is complete. A failure (or a crash) leaves nothing at the path.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write creates path (mode 0644) with the content fill writes to f, a
// temporary file in path's directory. On success the file is synced,
// renamed to path, and the directory synced; on any error the temporary
// file is removed and path is untouched.
func Write(path string, fill func(f *os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	SyncDir(dir)
	return nil
}

// WriteFile writes data to path atomically (see Write).
func WriteFile(path string, data []byte) error {
	return Write(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// SyncDir makes a rename in dir durable where the platform allows; failure
// to sync a directory (unsupported on some systems) is not an error.
func SyncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}
