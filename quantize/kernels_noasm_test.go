//go:build !amd64 || purego

package quantize

import "testing"

// kernelVariants runs f with the only implementation there is (Go).
func kernelVariants(t *testing.T, f func(t *testing.T)) { t.Run("go", f) }
