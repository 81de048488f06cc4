// Package convert holds the conversion passes: from pickled checkpoints to
// safetensors (shared storages kept once), dtype casts with range checks,
// and layout transforms (GPT-2 Conv1D and Linear, the Llama q/k rotary
// permutation, fused and separate Q, K, V). Each pass maps a Graph to a new
// Graph whose tensors compute their data lazily from the input, tensor by
// tensor, and returns a report of what it changed. Passes never write files.
package convert

import (
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/weights"
)

// CastChange records one tensor a cast changed.
type CastChange struct {
	Name string        `json:"name"`
	From weights.DType `json:"from"`
	To   weights.DType `json:"to"`
	// Overflows counts finite values beyond the target's range, which
	// became ±Inf (F16) or NaN (F8_E4M3).
	Overflows int64 `json:"overflows"`
	// Underflows counts non-zero values that became zero.
	Underflows int64 `json:"underflows"`
	// MaxAbs is the largest finite magnitude in the source tensor.
	MaxAbs float64 `json:"max_abs"`
}

// CastReport lists the tensors a cast changed; tensors not listed were kept
// as they were.
type CastReport struct {
	To      weights.DType `json:"to"`
	Changed []CastChange  `json:"changed"`
}

// Overflowed returns the changes with values out of the target's range.
func (r *CastReport) Overflowed() []CastChange {
	var out []CastChange
	for _, c := range r.Changed {
		if c.Overflows > 0 {
			out = append(out, c)
		}
	}
	return out
}

// CastTensor returns a tensor whose data is t's converted to dtype to when
// first asked for. The conversion rounds to nearest even.
func CastTensor(t *weights.Tensor, to weights.DType) *weights.Tensor {
	out := *t
	out.DType = to
	out.Storage, out.StorageOffset = "", 0
	from := t.DType
	out.Data = weights.SourceFunc(func() ([]byte, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		return weights.Convert(b, from, to)
	})
	return &out
}

// rangeCheck scans t's values against the range of dtype to.
func rangeCheck(t *weights.Tensor, to weights.DType) (CastChange, error) {
	c := CastChange{Name: t.Name, From: t.DType, To: to}
	maxv, _ := weights.MaxFinite(to)
	b, err := t.Bytes()
	if err != nil {
		return c, err
	}
	const chunk = 1 << 14
	es := t.DType.Size()
	n := len(b) / es
	buf := make([]float32, min(n, chunk))
	enc := make([]byte, min(n, chunk)*to.Size())
	back := make([]float32, min(n, chunk))
	for i := 0; i < n; i += chunk {
		k := min(chunk, n-i)
		if err := weights.DecodeFloat32(buf[:k], b[i*es:(i+k)*es], t.DType); err != nil {
			return c, err
		}
		if err := weights.EncodeFloat32(enc[:k*to.Size()], buf[:k], to); err != nil {
			return c, err
		}
		if err := weights.DecodeFloat32(back[:k], enc[:k*to.Size()], to); err != nil {
			return c, err
		}
		for j, v := range buf[:k] {
			a := math.Abs(float64(v))
			if math.IsInf(a, 0) || math.IsNaN(a) {
				continue
			}
			if a > c.MaxAbs {
				c.MaxAbs = a
			}
			w := back[j]
			switch {
			case a > maxv || math.IsInf(float64(w), 0) || w != w:
				c.Overflows++
			case v != 0 && w == 0:
				c.Underflows++
			}
		}
	}
	return c, nil
}

// Cast converts every floating-point tensor that keep does not exclude to
// dtype to (keep may be nil: every float tensor is cast). Tensors of other
// dtypes, and ones already in to, are passed through. Each converted tensor
// is scanned once for values beyond the target's range, which the report
// lists per tensor; the data itself is converted lazily.
func Cast(g *weights.Graph, to weights.DType, keep func(*weights.Tensor) bool) (*weights.Graph, *CastReport, error) {
	if !to.IsFloat() {
		return nil, nil, fmt.Errorf("convert: cast target %v is not a float type", to)
	}
	out := g.Derive()
	rep := &CastReport{To: to, Changed: []CastChange{}}
	for _, t := range g.Tensors() {
		if !t.DType.IsFloat() || t.DType == to || (keep != nil && keep(t)) {
			if err := out.Add(t); err != nil {
				return nil, nil, err
			}
			continue
		}
		c, err := rangeCheck(t, to)
		if err != nil {
			return nil, nil, err
		}
		rep.Changed = append(rep.Changed, c)
		if err := out.Add(CastTensor(t, to)); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}
