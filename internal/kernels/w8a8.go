package kernels

import (
	"encoding/binary"
	"math"
	"sync"
)

// W8A8: an int8 weight with one scale per output channel, run as vLLM runs
// compressed-tensors' W8A8 scheme on CPUs. Each row of x is quantized to
// int8 at run time with its own scale (dynamic per-token activations),
// the int8×int8 products are accumulated exactly in int32, and each sum is
// rescaled to f32:
//
//	sx[r]   = max_k |x[r,k]| / 127
//	q[r,k]  = clamp(round_half_even(x[r,k] / sx[r]), -127, 127)  (QuantizeValue)
//	y[r,o]  = f32(f32(f32(Σ_k q[r,k]·w[o,k]) · sx[r]) · sw[o]) + bias[o]
//
// (w8a8Ref is that loop). q divides by the scale, as compressed-tensors'
// quantize and torch.round(x / s) do; vLLM's CPU kernel multiplies by an
// inverse scale instead, which can move a code by one where x/s falls on
// a rounding boundary. The fast versions compute the same int32 sums and
// the same three f32 roundings in the same order, so they agree with the
// reference bit for bit.
//
// The weight is repacked once, on first use, into panels of 64 output
// channels by groups of four inputs ([k/4][64 outputs][4 bytes], zero
// padded), the layout the dot-product instructions read: AVX-512 VNNI's and
// AVX-VNNI's vpdpbusd multiply unsigned bytes by signed ones, so the
// activations are stored offset by 128 (q+128, an unsigned byte) and
// 128·Σ_k w[o,k], precomputed per output, is taken off each sum. The
// AVX2 fallback (vpmaddubsw, whose 16-bit pair sums saturate for unsigned
// operands above 127) multiplies |w| (at most 128) by q·sign(w) (at most
// 127 in magnitude, since activation codes are clamped to ±127): no pair
// sum exceeds 2·128·127 = 32512. Activations are packed in blocks of
// w8a8Rows rows, [k/4][row][4 bytes].
//
// The int32 sums wrap (vpdpbusd does not saturate): with the offset they
// may exceed int32 for long rows, but Σ q·w itself fits whenever In ≤
// w8a8MaxIn (127·128·In < 2³¹), and the wrapped difference is then exact.

// W8A8 marks a per-channel int8 Weight (DType I8, GroupSize 0) to be run
// with dynamic per-token int8 activations, and holds its packed form, made
// on first use. The zero value is ready to use; it belongs to one Weight.
type W8A8 struct {
	// Transient packs the weight for each product instead of keeping the
	// packed copy (as large as the int8 weight), for callers that bound
	// memory to the weights in use (the forward pass when it releases
	// each layer's pages as it goes).
	Transient bool

	once sync.Once
	p    *w8a8Packed
}

const (
	// w8a8Cols is the number of output channels of a packed panel.
	w8a8Cols = 64
	// w8a8Rows is the number of activation rows of a packed block.
	w8a8Rows = 6
	// w8a8MaxIn is the longest row whose int32 sums cannot overflow.
	w8a8MaxIn = 1 << 17
)

// w8a8Packed is a weight in the micro-kernels' layout.
type w8a8Packed struct {
	out, in int
	k4      int     // input groups of four: ceil(in/4)
	panels  int     // ceil(out/64)
	codes   []byte  // panels × k4 × 64 × 4
	corr    []int32 // per padded output: 128·Σ_k w[o,k]
	sw      []float32
	zeros   []float32 // a zero bias of the padded width
}

// w8a8Pack returns w's packed form, made on first use (every time when
// Transient).
func (w *Weight) w8a8Pack() *w8a8Packed {
	if w.W8A8.Transient {
		return packW8A8(w)
	}
	w.W8A8.once.Do(func() { w.W8A8.p = packW8A8(w) })
	return w.W8A8.p
}

func packW8A8(w *Weight) *w8a8Packed {
	p := &w8a8Packed{out: w.Out, in: w.In, k4: (w.In + 3) / 4, panels: (w.Out + w8a8Cols - 1) / w8a8Cols}
	width := p.panels * w8a8Cols
	p.codes = make([]byte, p.panels*p.k4*w8a8Cols*4)
	p.corr = make([]int32, width)
	p.sw = make([]float32, width)
	p.zeros = make([]float32, width)
	copy(p.sw, w.Scales[:w.Out])
	var col []byte // an input-major weight's output channel
	if w.InMajor {
		col = make([]byte, w.In)
	}
	const step = w8a8Cols * 4 // bytes between groups of four inputs
	for o := 0; o < w.Out; o++ {
		row := col
		if w.InMajor {
			for i := range col {
				col[i] = w.Data[i*w.Out+o]
			}
		} else {
			row = w.Data[o*w.In : (o+1)*w.In]
		}
		var sum int32
		for _, c := range row {
			sum += int32(int8(c))
		}
		p.corr[o] = 128 * sum
		dst := p.codes[(o/w8a8Cols)*p.k4*step+(o%w8a8Cols)*4:]
		g := 0
		for ; 4*g+4 <= w.In; g++ {
			binary.LittleEndian.PutUint32(dst[g*step:], binary.LittleEndian.Uint32(row[4*g:]))
		}
		for i := 4 * g; i < w.In; i++ {
			dst[g*step+i%4] = row[i]
		}
	}
	return p
}

// w8a8Acts are activations quantized per row and packed in blocks.
type w8a8Acts struct {
	codes []byte    // blocks × k4 × w8a8Rows × 4, each code q+128
	sx    []float32 // per padded row
	row   []byte    // scratch: one row's codes
}

var w8a8ActPool = sync.Pool{New: func() any { return new(w8a8Acts) }}

// quantize quantizes the m rows of x (in columns) into a, for weights
// of k4 groups of four inputs, the blocks of rows split among up to
// threads goroutines.
func (a *w8a8Acts) quantize(x []float32, m, in, k4, threads int) {
	blocks := (m + w8a8Rows - 1) / w8a8Rows
	n := blocks * k4 * w8a8Rows * 4
	if cap(a.codes) < n {
		a.codes = make([]byte, n)
	}
	a.codes = a.codes[:n]
	if cap(a.sx) < blocks*w8a8Rows {
		a.sx = make([]float32, blocks*w8a8Rows)
	}
	a.sx = a.sx[:blocks*w8a8Rows]
	if cap(a.row) < in {
		a.row = make([]byte, in)
	}
	// Below about 64K elements per goroutine, starting one costs more
	// than it saves.
	threads = max(1, min(threads, blocks, m*in>>16))
	if threads == 1 {
		a.quantizeRows(x, m, in, k4, 0, blocks*w8a8Rows, a.row[:in])
		return
	}
	var wg sync.WaitGroup
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			row := a.row[:in]
			if t > 0 {
				row = make([]byte, in)
			}
			a.quantizeRows(x, m, in, k4, blocks*t/threads*w8a8Rows, blocks*(t+1)/threads*w8a8Rows, row)
		}()
	}
	wg.Wait()
}

// quantizeRows quantizes rows [r0, r1) (rows from m on are padding),
// using row as scratch.
func (a *w8a8Acts) quantizeRows(x []float32, m, in, k4, r0, r1 int, row []byte) {
	for r := r0; r < r1; r++ {
		blk := a.codes[(r/w8a8Rows)*k4*w8a8Rows*4+(r%w8a8Rows)*4:]
		if r >= m {
			a.sx[r] = 0
			for g := 0; g < k4; g++ {
				copy(blk[g*w8a8Rows*4:g*w8a8Rows*4+4], []byte{128, 128, 128, 128})
			}
			continue
		}
		xr := x[r*in : (r+1)*in]
		s, ok := w8a8RowScale(xr)
		a.sx[r] = s
		if !ok || s == 0 {
			clear(row)
		} else {
			QuantizeRun(row, xr, s)
		}
		g := 0
		for ; 4*g+4 <= in; g++ {
			d := blk[g*w8a8Rows*4 : g*w8a8Rows*4+4 : g*w8a8Rows*4+4]
			d[0], d[1], d[2], d[3] = row[4*g]^0x80, row[4*g+1]^0x80, row[4*g+2]^0x80, row[4*g+3]^0x80
		}
		if g < k4 {
			d := blk[g*w8a8Rows*4 : g*w8a8Rows*4+4]
			for j := range d {
				d[j] = 128
				if 4*g+j < in {
					d[j] = row[4*g+j] ^ 0x80
				}
			}
		}
	}
}

// w8a8RowScale is a row's activation scale, max|x|/127; ok is false when
// the row holds an infinity or a NaN (the scale is then NaN, so that the
// row's outputs are NaN as a float product's would be).
func w8a8RowScale(x []float32) (float32, bool) {
	b := AbsMaxBits(x)
	if b >= FiniteLimit {
		return float32(math.NaN()), false
	}
	return math.Float32frombits(b) / 127, true
}

// w8a8Tile computes a block of w8a8Rows rows by one panel of w8a8Cols
// outputs: a is the block's activations, w the panel's codes, corr, sw and
// bias the panel's, sx the block's scales; y gets row r at y[r*ldy:].
type w8a8Tile func(a, w []byte, k4 int, corr []int32, sw, bias, sx, y []float32, ldy int)

// w8a8Impl is one implementation of the tile, for tests.
type w8a8Impl struct {
	name string
	tile w8a8Tile
}

var w8a8GoImpl = w8a8Impl{name: "go", tile: w8a8TileGo}

// w8a8TileGo is the tile in Go.
func w8a8TileGo(a, w []byte, k4 int, corr []int32, sw, bias, sx, y []float32, ldy int) {
	var acc [w8a8Rows][w8a8Cols]int32
	for g := 0; g < k4; g++ {
		ag := a[g*w8a8Rows*4 : (g+1)*w8a8Rows*4]
		wg := w[g*w8a8Cols*4 : (g+1)*w8a8Cols*4]
		for r := 0; r < w8a8Rows; r++ {
			a0, a1, a2, a3 := int32(ag[4*r]), int32(ag[4*r+1]), int32(ag[4*r+2]), int32(ag[4*r+3])
			ar := &acc[r]
			for o := 0; o < w8a8Cols; o++ {
				q := wg[4*o : 4*o+4 : 4*o+4]
				ar[o] += a0*int32(int8(q[0])) + a1*int32(int8(q[1])) + a2*int32(int8(q[2])) + a3*int32(int8(q[3]))
			}
		}
	}
	for r := 0; r < w8a8Rows; r++ {
		yr := y[r*ldy : r*ldy+w8a8Cols]
		for o := range yr {
			yr[o] = float32(float32(float32(acc[r][o]-corr[o])*sx[r])*sw[o]) + bias[o]
		}
	}
}

// linearW8A8 is Linear for a W8A8 weight.
func linearW8A8(y, x []float32, m int, w *Weight, bias []float32, threads int) {
	linearW8A8With(w8a8Active(), y, x, m, w, bias, threads)
}

func linearW8A8With(impl w8a8Impl, y, x []float32, m int, w *Weight, bias []float32, threads int) {
	p := w.w8a8Pack()
	acts := w8a8ActPool.Get().(*w8a8Acts)
	defer w8a8ActPool.Put(acts)
	acts.quantize(x, m, p.in, p.k4, threads)
	width := p.panels * w8a8Cols
	b := p.zeros
	if bias != nil {
		if len(bias) >= width {
			b = bias
		} else {
			b = make([]float32, width)
			copy(b, bias[:p.out])
		}
	}
	threads = max(1, min(threads, p.panels))
	if threads == 1 {
		w8a8Panels(impl, y, m, p, acts, b, 0, p.panels)
		return
	}
	var wg sync.WaitGroup
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w8a8Panels(impl, y, m, p, acts, b, p.panels*t/threads, p.panels*(t+1)/threads)
		}()
	}
	wg.Wait()
}

// w8a8Panels computes the outputs of panels [p0, p1) for every row.
func w8a8Panels(impl w8a8Impl, y []float32, m int, p *w8a8Packed, acts *w8a8Acts, bias []float32, p0, p1 int) {
	var tile [w8a8Rows * w8a8Cols]float32
	blockBytes := p.k4 * w8a8Rows * 4
	panelBytes := p.k4 * w8a8Cols * 4
	for pn := p0; pn < p1; pn++ {
		o0 := pn * w8a8Cols
		cols := min(w8a8Cols, p.out-o0)
		wp := p.codes[pn*panelBytes : (pn+1)*panelBytes]
		corr, sw, b := p.corr[o0:o0+w8a8Cols], p.sw[o0:o0+w8a8Cols], bias[o0:o0+w8a8Cols]
		for r0 := 0; r0 < m; r0 += w8a8Rows {
			a := acts.codes[(r0/w8a8Rows)*blockBytes : (r0/w8a8Rows+1)*blockBytes]
			sx := acts.sx[r0 : r0+w8a8Rows]
			rows := min(w8a8Rows, m-r0)
			if rows == w8a8Rows && cols == w8a8Cols {
				impl.tile(a, wp, p.k4, corr, sw, b, sx, y[r0*p.out+o0:], p.out)
				continue
			}
			impl.tile(a, wp, p.k4, corr, sw, b, sx, tile[:], w8a8Cols)
			for r := 0; r < rows; r++ {
				copy(y[(r0+r)*p.out+o0:(r0+r)*p.out+o0+cols], tile[r*w8a8Cols:])
			}
		}
	}
}

// w8a8Ref is the plain loop of the W8A8 product (see the comment at the
// top of this file).
func w8a8Ref(y, x []float32, m int, w *Weight, bias []float32) {
	q := make([]int8, w.In)
	for r := 0; r < m; r++ {
		xr := x[r*w.In : (r+1)*w.In]
		var amax float32
		finite := true
		for _, v := range xr {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				finite = false
			}
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		sx := amax / 127
		if !finite {
			sx = float32(math.NaN())
		}
		for k, v := range xr {
			q[k] = 0
			if finite && sx != 0 {
				q[k] = QuantizeValue(v, sx)
			}
		}
		for o := 0; o < w.Out; o++ {
			var acc int32
			for k := 0; k < w.In; k++ {
				c := w.Data[o*w.In+k]
				if w.InMajor {
					c = w.Data[k*w.Out+o]
				}
				acc += int32(q[k]) * int32(int8(c))
			}
			v := float32(float32(float32(acc)*sx) * w.Scales[o])
			if bias != nil {
				v += bias[o]
			}
			y[r*w.Out+o] = v
		}
	}
}
