//go:build !unix

package storage

import "io/fs"

// fileID returns 0: outside Unix a file's FileInfo carries no identity, and
// Version rests on its size and modification time.
func fileID(st fs.FileInfo) uint64 { return 0 }
