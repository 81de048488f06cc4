//go:build !unix

package forward

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
