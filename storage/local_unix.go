//go:build unix

package storage

import (
	"io/fs"
	"syscall"
)

// fileID returns the inode number of the file st describes, so that a file
// replaced by another of the same size and time gets a new Version.
func fileID(st fs.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Ino)
	}
	return 0
}
