//go:build !unix

package hubclient

import "context"

// fileLock is a no-op where flock is unavailable.
func fileLock(ctx context.Context, path string) (unlock func(), err error) { return func() {}, nil }
