//go:build amd64 && !purego

package kernels

import (
	"github.com/hubmirror/hubmirror/weights"
	"golang.org/x/sys/cpu"
)

//go:noescape
func kernel8x48AVX512(kc int, a, b, c *float32, ldc int)

//go:noescape
func kernel6x16AVX2(kc int, a, b, c *float32, ldc int)

//go:noescape
func widenF16F16C(dst *float32, src *byte, n int)

//go:noescape
func widenBF16AVX2(dst *float32, src *byte, n int)

//go:noescape
func widenF16AVX512(dst *float32, src *byte, n int)

//go:noescape
func widenBF16AVX512(dst *float32, src *byte, n int)

//go:noescape
func widenI8AVX2(dst *float32, q *byte, n int, scale float32)

var (
	avx512Kernel = microKernel{name: "avx512_8x48", mr: 8, nr: 48, run: kernel8x48AVX512}
	avx2Kernel   = microKernel{name: "avx2_6x16", mr: 6, nr: 16, run: kernel6x16AVX2}

	// The AVX-512 code uses AVX512F and, for bf16 (VPMOVZXWD on zmm),
	// AVX512BW: every AVX-512 CPU but Xeon Phi has both.
	hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasF16C   = cpu.X86.HasF16C && cpu.X86.HasAVX
)

var activeKernel = selectKernel()

// selectKernel returns the fastest micro-kernel the CPU runs.
func selectKernel() *microKernel {
	switch {
	case hasAVX512:
		return &avx512Kernel
	case hasAVX2:
		return &avx2Kernel
	}
	return &goKernel
}

// availableKernels lists the micro-kernels this machine can run, for tests.
func availableKernels() []*microKernel {
	ks := []*microKernel{&goKernel}
	if hasAVX2 {
		ks = append(ks, &avx2Kernel)
	}
	if hasAVX512 {
		ks = append(ks, &avx512Kernel)
	}
	return ks
}

// widenF16 widens len(dst) halves, 16 at a time with AVX-512, then 8 at a
// time with F16C, the rest in Go.
func widenF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	n := 0
	if hasAVX512 {
		if n = len(dst) &^ 15; n > 0 {
			widenF16AVX512(&dst[0], &src[0], n)
		}
	}
	if hasF16C {
		if m := (len(dst) - n) &^ 7; m > 0 {
			widenF16F16C(&dst[n], &src[2*n], m)
			n += m
		}
	}
	widenF16Go(dst[n:], src[2*n:])
}

// widenBF16 widens len(dst) bfloat16s, 16 at a time with AVX-512, then 8 at
// a time with AVX2, the rest in Go.
func widenBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	n := 0
	if hasAVX512 {
		if n = len(dst) &^ 15; n > 0 {
			widenBF16AVX512(&dst[0], &src[0], n)
		}
	}
	if hasAVX2 {
		if m := (len(dst) - n) &^ 7; m > 0 {
			widenBF16AVX2(&dst[n], &src[2*n], m)
			n += m
		}
	}
	widenBF16Go(dst[n:], src[2*n:])
}

func widenI8(dst []float32, q []byte, scale float32) {
	q = q[:len(dst)]
	n := 0
	if hasAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			widenI8AVX2(&dst[0], &q[0], n, scale)
		}
	}
	widenI8Go(dst[n:], q[n:], scale)
}

//go:noescape
func transpose16F32(dst *float32, ldd int, src *byte, lds int, blocks int)

//go:noescape
func transpose16F16(dst *float32, ldd int, src *byte, lds int, blocks int)

//go:noescape
func transpose16BF16(dst *float32, ldd int, src *byte, lds int, blocks int)

// transpose16 packs columns o0..o0+15 of B[pc:pc+kc] (rows o0.. of W stored
// [Out][In]) into dst at stride ldd, dst[p*ldd+r] = W[o0+r][pc+p], for the
// first kc&^15 values of p, with the AVX-512 transposers; it returns how
// many it packed (0 without AVX-512).
func (s bSource) transpose16(dst []float32, ldd, o0, pc, kc int) int {
	blocks := kc / 16
	if !hasAVX512 || blocks == 0 {
		return 0
	}
	if s.w.DType == weights.I32 {
		return s.transpose16I4(dst, ldd, o0, pc, blocks)
	}
	w := s.w
	_ = dst[(16*blocks-1)*ldd+15] // bounds of what the assembly writes
	base := o0*w.In + pc
	size := w.DType.Size()
	_ = w.Data[(base+15*w.In+16*blocks)*size-1] // and reads
	src := &w.Data[base*size]
	switch w.DType {
	case weights.F32:
		transpose16F32(&dst[0], ldd, src, w.In, blocks)
	case weights.F16:
		transpose16F16(&dst[0], ldd, src, w.In, blocks)
	case weights.BF16:
		transpose16BF16(&dst[0], ldd, src, w.In, blocks)
	case weights.I8:
		s.transpose16I8(dst, ldd, o0, pc, blocks)
	default:
		return 0
	}
	return 16 * blocks
}

//go:noescape
func dotAVX512(x, y *float32, n int) float32

//go:noescape
func axpyAVX512(a float32, x, y *float32, n int)

// dot returns Σ x[i]·y[i] (len(y) ≥ len(x)).
func dot(x, y []float32) float32 {
	n := 0
	var s float32
	if hasAVX512 {
		n = len(x) &^ 15
		if n > 0 {
			_ = y[n-1]
			s = dotAVX512(&x[0], &y[0], n)
		}
	}
	return s + dotGo(x[n:], y[n:])
}

// axpy computes y[i] += a·x[i] for i < len(x) (len(y) ≥ len(x)).
func axpy(a float32, x, y []float32) {
	n := 0
	if hasAVX512 {
		n = len(x) &^ 15
		if n > 0 {
			_ = y[n-1]
			axpyAVX512(a, &x[0], &y[0], n)
		}
	}
	axpyGo(a, x[n:], y[n:])
}

//go:noescape
func stripsInMajorF32(dst *float32, ldd int, src *byte, lds int, kc int, vecs int)

//go:noescape
func stripsInMajorF16(dst *float32, ldd int, src *byte, lds int, kc int, vecs int)

//go:noescape
func stripsInMajorBF16(dst *float32, ldd int, src *byte, lds int, kc int, vecs int)

//go:noescape
func widenI8ScalesAVX2(dst *float32, q *byte, scales *float32, n int)

// stripsInMajor packs the first no&^15 columns (at most 48) of B[pc:pc+kc]
// starting at column o0, from a weight stored [In][Out], into dst at stride
// ldd, with the AVX-512 packers; it returns how many columns it packed.
func (s bSource) stripsInMajor(dst []float32, ldd, pc, kc, o0, no int) int {
	vecs := min(no/16, 3)
	w := s.w
	if !hasAVX512 || vecs == 0 || kc == 0 {
		return 0
	}
	_ = dst[(kc-1)*ldd+16*vecs-1] // bounds of what the assembly writes
	size := w.DType.Size()
	base := pc*w.Out + o0
	_ = w.Data[(base+(kc-1)*w.Out+16*vecs)*size-1] // and reads
	src := &w.Data[base*size]
	switch w.DType {
	case weights.F32:
		stripsInMajorF32(&dst[0], ldd, src, w.Out, kc, vecs)
	case weights.F16:
		stripsInMajorF16(&dst[0], ldd, src, w.Out, kc, vecs)
	case weights.BF16:
		stripsInMajorBF16(&dst[0], ldd, src, w.Out, kc, vecs)
	case weights.I8:
		s.stripsInMajorI8(dst, ldd, pc, kc, o0, vecs)
	default:
		return 0
	}
	return 16 * vecs
}

func widenI8Scales(dst []float32, q []byte, scales []float32) {
	q = q[:len(dst)]
	scales = scales[:len(dst)]
	n := 0
	if hasAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			widenI8ScalesAVX2(&dst[0], &q[0], &scales[0], n)
		}
	}
	widenI8ScalesGo(dst[n:], q[n:], scales[n:])
}

//go:noescape
func blockInMajor48F32(dst *float32, panelStride int, src *byte, lds int, kc int, panels int)

//go:noescape
func blockInMajor48F16(dst *float32, panelStride int, src *byte, lds int, kc int, panels int)

//go:noescape
func blockInMajor48BF16(dst *float32, panelStride int, src *byte, lds int, kc int, panels int)

// blockInMajor packs the leading full panels of columns [c0, c1) of
// B[pc:pc+kc] from a weight stored [In][Out], reading the stored rows
// contiguously, when the panels are 48 wide and AVX-512 is there; it returns
// how many panels it packed (the caller packs the rest).
func (s bSource) blockInMajor(bp []float32, pc, kc, c0, c1, nr int) int {
	panels := (c1 - c0) / nr
	w := s.w
	if !hasAVX512 || nr != 48 || panels == 0 || kc == 0 {
		return 0
	}
	size := w.DType.Size()
	_ = bp[panels*kc*nr-1]
	base := pc*w.Out + c0
	_ = w.Data[(base+(kc-1)*w.Out+panels*nr)*size-1]
	src := &w.Data[base*size]
	switch w.DType {
	case weights.F32:
		blockInMajor48F32(&bp[0], kc*nr, src, w.Out, kc, panels)
	case weights.F16:
		blockInMajor48F16(&bp[0], kc*nr, src, w.Out, kc, panels)
	case weights.BF16:
		blockInMajor48BF16(&bp[0], kc*nr, src, w.Out, kc, panels)
	case weights.I8:
		s.blockInMajorI8(bp, pc, kc, c0, panels)
	default:
		return 0
	}
	return panels
}

// setAssembly turns the assembly paths off (false) or back to what the CPU
// supports (true), so that tests can run the portable code on this machine.
// It returns the previous setting. Not safe while kernels run.
func setAssembly(on bool) (was bool) {
	was = hasAVX2 || hasAVX512 || hasF16C
	hasAVX512, hasAVX2, hasF16C = false, false, false
	activeKernel = &goKernel
	if on {
		hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
		hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
		hasF16C = cpu.X86.HasF16C && cpu.X86.HasAVX
		activeKernel = selectKernel()
	}
	return was
}

// setAVX512 turns the AVX-512 paths off (false) or back on when the CPU
// has them (true), leaving AVX2 as it is, so that tests can run the AVX2
// code on an AVX-512 machine. It returns whether AVX-512 was on. Not safe
// while kernels run.
func setAVX512(on bool) (was bool) {
	was = hasAVX512
	hasAVX512 = on && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
	activeKernel = selectKernel()
	return was
}

//go:noescape
func packA16x8(dst0, dst1 *float32, src *float32, lds int, blocks int)

// packA16 packs the first kc&^15 columns of 16 rows of x (row stride k,
// starting at x[0]) into two consecutive slivers of 8 rows and kc columns in
// dst; it returns how many columns it packed (0 without AVX-512).
func packA16(dst, x []float32, k, kc int) int {
	blocks := kc / 16
	if !hasAVX512 || blocks == 0 {
		return 0
	}
	_ = dst[2*kc*8-1]
	_ = x[15*k+16*blocks-1]
	packA16x8(&dst[0], &dst[kc*8], &x[0], k, blocks)
	return 16 * blocks
}
