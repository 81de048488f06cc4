//go:build amd64 && !purego

package quantize

import "testing"

// kernelVariants runs f once per implementation this CPU can run
// (AVX-512, AVX2, Go), with the dispatch switched to it.
func kernelVariants(t *testing.T, f func(t *testing.T)) {
	a512, a2, f16c := hasAVX512, hasAVX2, hasF16C
	defer func() { hasAVX512, hasAVX2, hasF16C = a512, a2, f16c }()
	type variant struct {
		name         string
		ok           bool
		a512, a2, fc bool
	}
	for _, v := range []variant{
		{"avx512", a512, true, a2, f16c},
		{"avx2", a2, false, true, f16c},
		{"go", true, false, false, false},
	} {
		if !v.ok {
			t.Logf("%s: not supported by this CPU, not tested", v.name)
			continue
		}
		hasAVX512, hasAVX2, hasF16C = v.a512, v.a2, v.fc
		t.Run(v.name, f)
	}
}
