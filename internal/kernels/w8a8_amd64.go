//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

//go:noescape
func w8a8Tile64VNNI512(a, w *byte, k4 int, corr *int32, sw, bias, sx, y *float32, ldy int)

//go:noescape
func w8a8Tile16AVXVNNI(a, w *byte, k4 int, corr *int32, sw, bias, sx, y *float32, ldy int)

//go:noescape
func w8a8Tile8AVX2(a, w *byte, k4 int, corr *int32, sw, bias, sx, y *float32, ldy int)

// The W8A8 tiles this machine can run: AVX-512 VNNI (EVEX vpdpbusd on 64
// outputs), AVX-VNNI (VEX vpdpbusd, four calls of 16 outputs), AVX2
// (vpmaddubsw, eight calls of 8 outputs), else Go. Tests turn them off
// with setW8A8Features.
var (
	hasW8A8VNNI512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI
	hasW8A8AVXVNNI = cpu.X86.HasAVXVNNI && cpu.X86.HasAVX2
	hasW8A8AVX2    = cpu.X86.HasAVX2
)

var (
	w8a8VNNI512Impl = w8a8Impl{name: "avx512vnni_6x64", tile: w8a8TileVNNI512}
	w8a8AVXVNNIImpl = w8a8Impl{name: "avxvnni_6x16", tile: w8a8TileAVXVNNI}
	w8a8AVX2Impl    = w8a8Impl{name: "avx2_6x8", tile: w8a8TileAVX2}
)

// w8a8Active returns the fastest tile the CPU runs.
func w8a8Active() w8a8Impl {
	switch {
	case hasW8A8VNNI512:
		return w8a8VNNI512Impl
	case hasW8A8AVXVNNI:
		return w8a8AVXVNNIImpl
	case hasW8A8AVX2:
		return w8a8AVX2Impl
	}
	return w8a8GoImpl
}

// w8a8Impls lists the tiles this machine can run, for tests.
func w8a8Impls() []w8a8Impl {
	out := []w8a8Impl{w8a8GoImpl}
	if cpu.X86.HasAVX2 {
		out = append(out, w8a8AVX2Impl)
	}
	if cpu.X86.HasAVXVNNI && cpu.X86.HasAVX2 {
		out = append(out, w8a8AVXVNNIImpl)
	}
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI {
		out = append(out, w8a8VNNI512Impl)
	}
	return out
}

// setW8A8Features turns the W8A8 instruction sets on or off (each only
// when the CPU has it), so that tests reach every path through Linear. Not
// safe while kernels run.
func setW8A8Features(vnni512, avxvnni, avx2 bool) {
	hasW8A8VNNI512 = vnni512 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI
	hasW8A8AVXVNNI = avxvnni && cpu.X86.HasAVXVNNI && cpu.X86.HasAVX2
	hasW8A8AVX2 = avx2 && cpu.X86.HasAVX2
}

func w8a8TileVNNI512(a, w []byte, k4 int, corr []int32, sw, bias, sx, y []float32, ldy int) {
	_, _ = a[k4*w8a8Rows*4-1], w[k4*w8a8Cols*4-1]
	_, _, _, _ = corr[w8a8Cols-1], sw[w8a8Cols-1], bias[w8a8Cols-1], sx[w8a8Rows-1]
	_ = y[(w8a8Rows-1)*ldy+w8a8Cols-1]
	w8a8Tile64VNNI512(&a[0], &w[0], k4, &corr[0], &sw[0], &bias[0], &sx[0], &y[0], ldy)
}

func w8a8TileAVXVNNI(a, w []byte, k4 int, corr []int32, sw, bias, sx, y []float32, ldy int) {
	_, _ = a[k4*w8a8Rows*4-1], w[k4*w8a8Cols*4-1]
	_, _, _, _ = corr[w8a8Cols-1], sw[w8a8Cols-1], bias[w8a8Cols-1], sx[w8a8Rows-1]
	_ = y[(w8a8Rows-1)*ldy+w8a8Cols-1]
	for c := 0; c < w8a8Cols; c += 16 {
		w8a8Tile16AVXVNNI(&a[0], &w[4*c], k4, &corr[c], &sw[c], &bias[c], &sx[0], &y[c], ldy)
	}
}

func w8a8TileAVX2(a, w []byte, k4 int, corr []int32, sw, bias, sx, y []float32, ldy int) {
	_, _ = a[k4*w8a8Rows*4-1], w[k4*w8a8Cols*4-1]
	_, _, _ = sw[w8a8Cols-1], bias[w8a8Cols-1], sx[w8a8Rows-1]
	_ = y[(w8a8Rows-1)*ldy+w8a8Cols-1]
	for c := 0; c < w8a8Cols; c += 8 {
		w8a8Tile8AVX2(&a[0], &w[4*c], k4, nil, &sw[c], &bias[c], &sx[0], &y[c], ldy)
	}
}
