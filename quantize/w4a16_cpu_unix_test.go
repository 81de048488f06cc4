//go:build unix

package quantize

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used,
// 0 where it cannot be read: the benchmarks report it per op beside the
// wall time, which a shared machine stretches while the CPU time stays.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
