package hubclient

import "time"

// Progress receives download events. The library never prints: a command
// line tool attaches progress bars through this interface. Methods may be
// called from many goroutines at once and must not block for long.
// Embed NopProgress to implement only some of them.
type Progress interface {
	// Start is called once per Download, before any file, with the number
	// of files and bytes the pull will fetch (files already complete in
	// the cache are not counted).
	Start(files int, bytes int64)
	// FileStart is called when a file's download begins: size is its full
	// size, have the bytes already on disk from an earlier, interrupted run.
	FileStart(path string, size, have int64)
	// FileAdvance reports n more bytes of path written to disk.
	FileAdvance(path string, n int64)
	// FileDone is called once per started file, with nil on success.
	FileDone(path string, err error)
	// Retry reports a failed attempt that will be retried after wait.
	Retry(path string, attempt int, wait time.Duration, err error)
}

// NopProgress ignores every event.
type NopProgress struct{}

func (NopProgress) Start(int, int64)                        {}
func (NopProgress) FileStart(string, int64, int64)          {}
func (NopProgress) FileAdvance(string, int64)               {}
func (NopProgress) FileDone(string, error)                  {}
func (NopProgress) Retry(string, int, time.Duration, error) {}
