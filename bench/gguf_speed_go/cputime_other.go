//go:build !unix

package main

import "time"

// processCPU is not measured here (0): the bench runs on Linux.
func processCPU() time.Duration { return 0 }
