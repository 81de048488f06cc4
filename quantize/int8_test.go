package quantize

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// referenceInt8 computes the scheme with the plain definitions only: float
// comparisons for the maxima, kernels.QuantizeValue for every element.
func referenceInt8(t *testing.T, m *matrix, groupSize int, scaleType weights.DType) ([]byte, []float32) {
	t.Helper()
	groups := groupsOf(m.in, groupSize)
	gs := m.in / groups
	rows, cols := m.rows()
	w := make([]float32, rows*cols)
	if err := weights.DecodeFloat32(w, m.data, m.dtype); err != nil {
		t.Fatal(err)
	}
	at := func(o, i int) float32 {
		if m.inMajor {
			return w[i*cols+o]
		}
		return w[o*cols+i]
	}
	scales := make([]float32, m.out*groups)
	for o := 0; o < m.out; o++ {
		for g := 0; g < groups; g++ {
			var a float32
			for i := g * gs; i < (g+1)*gs; i++ {
				a = max(a, float32(math.Abs(float64(at(o, i)))))
			}
			scales[o*groups+g] = storedScale(a/127, scaleType)
		}
	}
	q := make([]byte, rows*cols)
	for o := 0; o < m.out; o++ {
		for i := 0; i < m.in; i++ {
			k := o*cols + i
			if m.inMajor {
				k = i*cols + o
			}
			q[k] = byte(kernels.QuantizeValue(at(o, i), scales[o*groups+i/gs]))
		}
	}
	return q, scales
}

// TestInt8MatchesReference checks the vectorized, parallel pass against the
// plain definition on matrices large enough to be split among goroutines,
// for each dtype, layout, group size, thread count, and both orders in
// which a writer may ask for the two tensors.
func TestInt8MatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, d := range []weights.DType{weights.F32, weights.F16, weights.BF16} {
		for _, shape := range [][2]int{{96, 1024}, {300, 640}, {7, 33}} {
			for _, group := range []int{0, 32} {
				if group > 0 && shape[1]%group != 0 {
					continue
				}
				for _, conv1d := range []bool{false, true} {
					out, in := shape[0], shape[1]
					v := make([]float32, out*in)
					for i := range v {
						v[i] = float32(r.NormFloat64()) * 0.02
					}
					v[5] = 0.9 // an outlier
					if out > 3 {
						for i := 0; i < in; i++ { // an all-zero output channel
							k := 2*in + i
							if conv1d {
								k = i*out + 2
							}
							v[k] = 0
						}
					}
					stored := []int64{int64(out), int64(in)}
					if conv1d {
						stored = []int64{int64(in), int64(out)}
					}
					data := make([]byte, len(v)*d.Size())
					if err := weights.EncodeFloat32(data, v, d); err != nil {
						t.Fatal(err)
					}
					wantQ, wantS := referenceInt8(t, &matrix{out: out, in: in, inMajor: conv1d, dtype: d, data: data}, group, d)
					for _, threads := range []int{1, 2, 3} {
						for _, qFirst := range []bool{false, true} {
							name := fmt.Sprintf("%v/%dx%d/g%d/conv1d=%v/threads=%d/qfirst=%v", d, out, in, group, conv1d, threads, qFirst)
							job := &int8Job{out: out, in: in, inMajor: conv1d, groupSize: group, scaleType: d, threads: threads}
							job.src, _ = weights.NewTensor("w.weight", d, stored, data)
							var q []byte
							var s []float32
							var err error
							if qFirst {
								if q, err = job.quantized(); err == nil {
									s, err = job.scaleValues()
								}
							} else {
								if s, err = job.scaleValues(); err == nil {
									q, err = job.quantized()
								}
							}
							if err != nil {
								t.Fatalf("%s: %v", name, err)
							}
							if !bytes.Equal(q, wantQ) {
								t.Fatalf("%s: int8 values differ from the reference", name)
							}
							for k := range s {
								if math.Float32bits(s[k]) != math.Float32bits(wantS[k]) {
									t.Fatalf("%s: scale %d is %g, want %g", name, k, s[k], wantS[k])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestInt8NonFinite checks that a NaN or infinite weight is an error that
// names the tensor, whichever tensor is asked for first.
func TestInt8NonFinite(t *testing.T) {
	cfg := mustConfig(t, llamaConfig)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		for _, qFirst := range []bool{false, true} {
			v := make([]float32, 16*8)
			v[77] = bad
			w, _ := weights.FromFloat32("model.layers.0.mlp.up_proj.weight", weights.F32, []int64{16, 8}, v)
			out, _, err := Quantize(graphOf(t, w), cfg, Options{Scheme: Int8})
			if err != nil {
				t.Fatal(err)
			}
			first, second := "model.layers.0.mlp.up_proj.weight_scale", "model.layers.0.mlp.up_proj.weight"
			if qFirst {
				first, second = second, first
			}
			for _, name := range []string{first, second} {
				x, _ := out.Tensor(name)
				if _, err := x.Bytes(); err == nil || !strings.Contains(err.Error(), "non-finite weight in output channel 9") ||
					!strings.Contains(err.Error(), "up_proj.weight") {
					t.Errorf("%v, %s: error %v", bad, name, err)
				}
			}
		}
	}
}

// TestInt8SourceNotRetained checks that the pass asks its source for the
// data on each computation instead of keeping it, and that a failing
// source's error comes through.
func TestInt8SourceNotRetained(t *testing.T) {
	cfg := mustConfig(t, llamaConfig)
	calls := 0
	fail := errors.New("source failed")
	v := make([]byte, 16*8*4)
	src := &weights.Tensor{Name: "model.layers.0.mlp.up_proj.weight", DType: weights.F32, Shape: []int64{16, 8},
		Data: weights.SourceFunc(func() ([]byte, error) {
			calls++
			if calls == 3 {
				return nil, fail
			}
			return v, nil
		})}
	out, _, err := Quantize(graphOf(t, src), cfg, Options{Scheme: Int8})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := out.Tensor("model.layers.0.mlp.up_proj.weight_scale")
	q, _ := out.Tensor("model.layers.0.mlp.up_proj.weight")
	// Scales (one read), scales again (kept: no read), int8 data (a read),
	// int8 data again (a read, which fails).
	for i, x := range []*weights.Tensor{s, s, q, q} {
		_, err := x.Bytes()
		if i == 3 && !errors.Is(err, fail) || i < 3 && err != nil {
			t.Errorf("read %d: %v", i, err)
		}
	}
	if calls != 3 {
		t.Errorf("source read %d times, want 3", calls)
	}
}
