package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// matrix is a stored 2-D weight seen as Out output channels by In inputs.
// With inMajor the rows of the stored data are inputs (GPT-2's Conv1D).
type matrix struct {
	out, in int
	inMajor bool
	dtype   weights.DType
	data    []byte
	// f32 views data as float32 when dtype is F32 and data is aligned
	// (set by newMatrix); nil otherwise.
	f32 []float32
}

// littleEndian reports whether float32s can be read in place from
// little-endian stored bytes.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func newMatrix(out, in int, inMajor bool, d weights.DType, data []byte) *matrix {
	m := &matrix{out: out, in: in, inMajor: inMajor, dtype: d, data: data}
	if d == weights.F32 && littleEndian && len(data) >= 4 && uintptr(unsafe.Pointer(&data[0]))%4 == 0 {
		m.f32 = unsafe.Slice((*float32)(unsafe.Pointer(&data[0])), len(data)/4)
	}
	return m
}

func (m *matrix) rows() (rows, cols int) {
	if m.inMajor {
		return m.in, m.out
	}
	return m.out, m.in
}

// row returns stored row r as float32: a view of the data when it is
// aligned F32, else decoded into buf (len ≥ the row length).
func (m *matrix) row(buf []float32, r int) ([]float32, error) {
	_, cols := m.rows()
	if m.f32 != nil {
		return m.f32[r*cols : (r+1)*cols], nil
	}
	es := m.dtype.Size()
	src := m.data[r*cols*es : (r+1)*cols*es]
	switch m.dtype {
	case weights.F16, weights.BF16:
		kernels.Widen(buf[:cols], src, m.dtype)
	default:
		if err := weights.DecodeFloat32(buf[:cols], src, m.dtype); err != nil {
			return nil, err
		}
	}
	return buf[:cols], nil
}

// minElemsPerWorker keeps small matrices on one goroutine: below about
// 64K elements per worker, starting goroutines costs more than it saves.
const minElemsPerWorker = 1 << 16

// eachRowRange calls fn on contiguous ranges of the stored rows from up to
// threads goroutines (0 means GOMAXPROCS) and returns the first error.
// Each call gets a buffer for one decoded row and its worker number.
func (m *matrix) eachRowRange(threads int, fn func(worker, r0, r1 int, buf []float32) error) error {
	rows, cols := m.rows()
	threads = m.workers(threads)
	newBuf := func() []float32 {
		if m.f32 != nil {
			return nil
		}
		return make([]float32, cols)
	}
	if threads == 1 {
		return fn(0, 0, rows, newBuf())
	}
	errs := make([]error, threads)
	var wg sync.WaitGroup
	for w := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = fn(w, rows*w/threads, rows*(w+1)/threads, newBuf())
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// workers is the number of goroutines eachRowRange starts for m.
func (m *matrix) workers(threads int) int {
	rows, cols := m.rows()
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return max(1, min(threads, rows, rows*cols/minElemsPerWorker))
}

// groupsOf returns the number of scale groups along the input dimension.
func groupsOf(in, groupSize int) int {
	if groupSize <= 0 {
		return 1
	}
	return in / groupSize
}

// int8Scales computes symmetric scales, one per output channel and input
// group: scale[o*G+g] = max|w[o, i in g]| / 127, rounded to the dtype the
// scales are stored in (so that quantizing with the stored scale is exact to
// what a loader will multiply by). An all-zero group gets scale 1. A NaN or
// infinite weight is an error. Rows are split among threads goroutines.
func int8Scales(m *matrix, groupSize int, scaleType weights.DType, threads int) ([]float32, error) {
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	bits := make([]uint32, m.out*groups) // absolute-value bits of the maxima
	var err error
	if !m.inMajor { // a stored row is an output channel: its groups are runs
		err = m.eachRowRange(threads, func(_, r0, r1 int, buf []float32) error {
			for r := r0; r < r1; r++ {
				x, err := m.row(buf, r)
				if err != nil {
					return err
				}
				kernels.AbsMaxBitsGroups(bits[r*groups:(r+1)*groups], x, gs)
			}
			return nil
		})
	} else { // a stored row is an input: it updates every output's maximum
		// Each worker keeps its own maxima, [group][output], merged below.
		parts := make([][]uint32, m.workers(threads))
		err = m.eachRowRange(threads, func(w, r0, r1 int, buf []float32) error {
			acc := make([]uint32, groups*m.out)
			parts[w] = acc
			for r := r0; r < r1; r++ {
				x, err := m.row(buf, r)
				if err != nil {
					return err
				}
				g := r / gs
				kernels.MaxAbsBitsInto(acc[g*m.out:(g+1)*m.out], x)
			}
			return nil
		})
		for _, acc := range parts {
			for g := range groups {
				for o, b := range acc[g*m.out : (g+1)*m.out] {
					bits[o*groups+g] = max(bits[o*groups+g], b)
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	scales := make([]float32, len(bits))
	for k, b := range bits {
		if b >= kernels.FiniteLimit {
			return nil, fmt.Errorf("quantize: non-finite weight in output channel %d", k/groups)
		}
		scales[k] = storedScale(math.Float32frombits(b)/127, scaleType)
	}
	return scales, nil
}

// storedScale rounds a scale to the dtype it is stored in, keeping it
// positive and finite.
func storedScale(s float32, d weights.DType) float32 {
	if s == 0 {
		return 1
	}
	var r float32
	switch d {
	case weights.F16:
		r = weights.F16ToFloat32(weights.Float32ToF16(s))
		if r == 0 {
			r = weights.F16ToFloat32(1) / 16384 / 1024 // smallest normal-ish half; never zero
		}
	case weights.BF16:
		r = weights.BF16ToFloat32(weights.Float32ToBF16(s))
	default:
		r = s
	}
	if r == 0 || math.IsInf(float64(r), 0) {
		return s
	}
	return r
}

// quantizeInt8 returns the stored data of m quantized to int8 with scales
// (layout of m unchanged): q = clamp(round_half_even(w / scale), -127, 127),
// rows split among threads goroutines.
func quantizeInt8(m *matrix, scales []float32, groupSize int, threads int) ([]byte, error) {
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	rows, cols := m.rows()
	out := make([]byte, rows*cols)
	err := m.eachRowRange(threads, func(_, r0, r1 int, buf []float32) error {
		var sv []float32 // inMajor: the scales of this row's group, by output
		svGroup := -1
		if m.inMajor && groups == 1 {
			sv, svGroup = scales, 0
		} else if m.inMajor {
			sv = make([]float32, m.out)
		}
		for r := r0; r < r1; r++ {
			x, err := m.row(buf, r)
			if err != nil {
				return err
			}
			dst := out[r*cols : (r+1)*cols]
			if !m.inMajor {
				kernels.QuantizeGroups(dst, x, scales[r*groups:(r+1)*groups], gs)
				continue
			}
			if g := r / gs; g != svGroup {
				for o := range sv {
					sv[o] = scales[o*groups+g]
				}
				svGroup = g
			}
			kernels.QuantizeEach(dst, x, sv)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// quantizeInt8Fused computes the scales and the int8 data of a matrix
// stored by output channel (not inMajor) in one pass over it: each row's
// maxima are taken and the row quantized while it is in cache. Its results
// equal int8Scales' and quantizeInt8's.
func quantizeInt8Fused(m *matrix, groupSize int, scaleType weights.DType, threads int) ([]byte, []float32, error) {
	if m.inMajor {
		panic("quantize: quantizeInt8Fused on an input-major matrix")
	}
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	rows, cols := m.rows()
	out := make([]byte, rows*cols)
	scales := make([]float32, m.out*groups)
	err := m.eachRowRange(threads, func(_, r0, r1 int, buf []float32) error {
		bits := make([]uint32, groups)
		for r := r0; r < r1; r++ {
			x, err := m.row(buf, r)
			if err != nil {
				return err
			}
			kernels.AbsMaxBitsGroups(bits, x, gs)
			rs := scales[r*groups : (r+1)*groups]
			for g, b := range bits {
				if b >= kernels.FiniteLimit {
					return fmt.Errorf("quantize: non-finite weight in output channel %d", r)
				}
				rs[g] = storedScale(math.Float32frombits(b)/127, scaleType)
			}
			kernels.QuantizeGroups(out[r*cols:(r+1)*cols], x, rs, gs)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, scales, nil
}

// encodeScales stores scales as dtype d, little-endian.
func encodeScales(scales []float32, d weights.DType) ([]byte, error) {
	b := make([]byte, len(scales)*d.Size())
	if err := weights.EncodeFloat32(b, scales, d); err != nil {
		return nil, err
	}
	return b, nil
}

// dequantizeInt8 is the inverse used by tests and by callers that need the
// float values: w = q * scale.
func dequantizeInt8(q []byte, m *matrix, scales []float32, groupSize int) []float32 {
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	rows, cols := m.rows()
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			o, i := r, c
			if m.inMajor {
				o, i = c, r
			}
			out[r*cols+c] = float32(int8(q[r*cols+c])) * scales[o*groups+i/gs]
		}
	}
	return out
}

// int8Job computes one weight's int8 data and scales for the two lazy
// tensors of the compressed-tensors layout. The scales, once computed, are
// kept (they are small) and shared; the source data is read afresh on each
// computation, not kept, so that a graph of lazy sources is not held in
// memory between the two.
type int8Job struct {
	src       *weights.Tensor
	out, in   int
	inMajor   bool
	groupSize int
	scaleType weights.DType
	threads   int

	mu     sync.Mutex
	scales []float32 // nil until computed
}

func (j *int8Job) matrix() (*matrix, error) {
	b, err := j.src.Bytes()
	if err != nil {
		return nil, err
	}
	return newMatrix(j.out, j.in, j.inMajor, j.src.DType, b), nil
}

// scaleValues returns the scales, computing them on first use.
func (j *int8Job) scaleValues() ([]float32, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.scales != nil {
		return j.scales, nil
	}
	m, err := j.matrix()
	if err != nil {
		return nil, err
	}
	if j.scales, err = int8Scales(m, j.groupSize, j.scaleType, j.threads); err != nil {
		return nil, err
	}
	return j.scales, nil
}

// quantized returns the int8 data: with the scales when they are known,
// else computing the scales on the way (in the same pass where the layout
// allows).
func (j *int8Job) quantized() ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	m, err := j.matrix()
	if err != nil {
		return nil, err
	}
	if j.scales == nil && !m.inMajor {
		q, s, err := quantizeInt8Fused(m, j.groupSize, j.scaleType, j.threads)
		if err != nil {
			return nil, err
		}
		j.scales = s
		return q, nil
	}
	if j.scales == nil {
		if j.scales, err = int8Scales(m, j.groupSize, j.scaleType, j.threads); err != nil {
			return nil, err
		}
	}
	return quantizeInt8(m, j.scales, j.groupSize, j.threads)
}
