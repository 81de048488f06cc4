//go:build !amd64 || purego

package kernels

// Without assembly the portable micro-kernel and widening loops are used.
var activeKernel = &goKernel

// availableKernels lists the micro-kernels this machine can run, for tests.
func availableKernels() []*microKernel { return []*microKernel{&goKernel} }

func widenF16(dst []float32, src []byte) { widenF16Go(dst, src) }

func widenBF16(dst []float32, src []byte) { widenBF16Go(dst, src) }

func widenI8(dst []float32, q []byte, scale float32) { widenI8Go(dst, q, scale) }

// transpose16 would pack 16 columns of B with an assembly transposer; there
// is none, so it packs nothing and the caller's loop does all.
func (s bSource) transpose16(dst []float32, ldd, o0, pc, kc int) int { return 0 }

func dot(x, y []float32) float32 { return dotGo(x, y) }

func axpy(a float32, x, y []float32) { axpyGo(a, x, y) }

// stripsInMajor would pack columns of B from a weight stored [In][Out] with
// assembly; there is none, so it packs nothing and the caller's loop does all.
func (s bSource) stripsInMajor(dst []float32, ldd, pc, kc, o0, no int) int { return 0 }

func widenI8Scales(dst []float32, q []byte, scales []float32) { widenI8ScalesGo(dst, q, scales) }

// blockInMajor would pack full panels of B from a weight stored [In][Out]
// with assembly; there is none, so it packs none.
func (s bSource) blockInMajor(bp []float32, pc, kc, c0, c1, nr int) int { return 0 }

// setAssembly does nothing without assembly; it returns false.
func setAssembly(on bool) (was bool) { return false }

// setAVX512 does nothing without assembly; it returns false.
func setAVX512(on bool) (was bool) { return false }

// packA16 would pack two slivers of A with assembly; there is none.
func packA16(dst, x []float32, k, kc int) int { return 0 }

// hasRowI8 reports false: there is no fused int8 dot kernel without
// assembly, and gemv widens int8 rows like the other dtypes.
func (s bSource) hasRowI8() bool { return false }

// rowsI8 is never called without assembly (hasRowI8 is false).
func (s bSource) rowsI8(y, x []float32, m, o0, o1 int, bias []float32) {
	panic("kernels: rowsI8 without assembly")
}
