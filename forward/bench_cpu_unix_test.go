//go:build unix

package forward

import (
	"syscall"
	"time"
)

// processCPU returns the user and system CPU time the process has used: on
// a machine shared with other work, the CPU time of a one-thread benchmark
// measures its work where the wall time measures the load too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
