//go:build !linux

package hubclient

import "os"

// reserveSpace is a no-op where the platform has no fallocate: a download
// then finds a full disk as it writes.
func reserveSpace(f *os.File, size int64) error { return nil }

// releaseSpace has nothing to give back where reserveSpace reserves nothing.
func releaseSpace(f *os.File, have rangeSet, size int64) error { return nil }
