package forward

import (
	"fmt"
	"math"
	"slices"
)

// Metrics measure how far a candidate output is from the reference output.
// Rows are the vectors along the last dimension (one position's hidden
// state or logits; the pooled vector). Elements that are NaN or ±Inf in
// either output are counted in NonFinite and left out of the other metrics.
type Metrics struct {
	// Elements is the number of values compared.
	Elements int `json:"elements"`
	// MaxAbsError and MeanAbsError are the largest and mean |ref-cand|.
	MaxAbsError  float64 `json:"max_abs_error"`
	MeanAbsError float64 `json:"mean_abs_error"`
	// Cosine is the lowest cosine similarity of a row; MeanCosine the mean
	// over rows.
	Cosine     float64 `json:"cosine_similarity"`
	MeanCosine float64 `json:"mean_cosine_similarity"`
	// Logits reports that the output is logits, for which the following
	// are computed.
	Logits bool `json:"logits,omitempty"`
	// Top1Agreement is the fraction of rows whose largest logit is at the
	// same index.
	Top1Agreement float64 `json:"top1_agreement,omitempty"`
	// KLDivergence is the mean over rows of KL(softmax(ref) ‖
	// softmax(cand)) in nats; MaxKLDivergence the largest.
	KLDivergence    float64 `json:"kl_divergence,omitempty"`
	MaxKLDivergence float64 `json:"max_kl_divergence,omitempty"`
	// NonFinite counts values that are NaN or infinite in either output.
	NonFinite int `json:"non_finite,omitempty"`
}

// Compare measures cand against ref, which must have the same name and
// shape. Logit metrics are computed for outputs named "logits".
func Compare(ref, cand *Output) (Metrics, error) {
	var c comparison
	if err := c.add(ref, cand); err != nil {
		return Metrics{}, err
	}
	return c.metrics(), nil
}

// comparison accumulates Metrics over several pairs of outputs (one per
// validation sequence).
type comparison struct {
	logits    bool
	elems     int
	rows      int
	sumAbs    float64
	maxAbs    float64
	minCos    float64
	sumCos    float64
	top1      int
	sumKL     float64
	maxKL     float64
	nonFinite int
}

func (c *comparison) add(ref, cand *Output) error {
	if ref.Name != cand.Name {
		return fmt.Errorf("forward: comparing output %q with %q", ref.Name, cand.Name)
	}
	if !slices.Equal(ref.Shape, cand.Shape) || len(ref.Data) != len(cand.Data) {
		return fmt.Errorf("%w: output %q has shape %v in the reference and %v in the candidate", ErrIncompatible, ref.Name, ref.Shape, cand.Shape)
	}
	if len(ref.Shape) == 0 || ref.Shape[len(ref.Shape)-1] <= 0 || len(ref.Data)%ref.Shape[len(ref.Shape)-1] != 0 {
		return fmt.Errorf("forward: output %q has shape %v", ref.Name, ref.Shape)
	}
	if c.rows == 0 {
		c.logits = ref.Name == OutputLogits
		c.minCos = math.Inf(1)
	}
	rowLen := ref.Shape[len(ref.Shape)-1]
	for r := 0; r < len(ref.Data); r += rowLen {
		c.addRow(ref.Data[r:r+rowLen], cand.Data[r:r+rowLen])
	}
	return nil
}

func (c *comparison) addRow(a, b []float32) {
	var dot, na, nb float64
	finite := true
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		if isNonFinite(x) || isNonFinite(y) {
			c.nonFinite++
			finite = false
			continue
		}
		d := math.Abs(x - y)
		c.sumAbs += d
		if d > c.maxAbs {
			c.maxAbs = d
		}
		c.elems++
		dot += x * y
		na += x * x
		nb += y * y
	}
	c.rows++
	var cos float64
	switch {
	case na == 0 && nb == 0:
		cos = 1
	case na == 0 || nb == 0:
		cos = 0
	default:
		cos = dot / (math.Sqrt(na) * math.Sqrt(nb))
	}
	c.sumCos += cos
	c.minCos = math.Min(c.minCos, cos)
	if !c.logits || !finite {
		return
	}
	if argmax(a) == argmax(b) {
		c.top1++
	}
	kl := klDivergence(a, b)
	c.sumKL += kl
	c.maxKL = math.Max(c.maxKL, kl)
}

func (c *comparison) metrics() Metrics {
	m := Metrics{Elements: c.elems, MaxAbsError: c.maxAbs, Logits: c.logits, NonFinite: c.nonFinite}
	if c.elems > 0 {
		m.MeanAbsError = c.sumAbs / float64(c.elems)
	}
	if c.rows > 0 {
		m.Cosine = c.minCos
		m.MeanCosine = c.sumCos / float64(c.rows)
		if c.logits {
			m.Top1Agreement = float64(c.top1) / float64(c.rows)
			m.KLDivergence = c.sumKL / float64(c.rows)
			m.MaxKLDivergence = c.maxKL
		}
	}
	return m
}

func isNonFinite(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

// argmax returns the index of the largest value (the first of equals).
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// klDivergence returns KL(softmax(p) ‖ softmax(q)) = Σ softmax(p)ᵢ·(log
// softmax(p)ᵢ − log softmax(q)ᵢ), in float64 through log-softmax.
func klDivergence(p, q []float32) float64 {
	lp, lq := logSumExp(p), logSumExp(q)
	var kl float64
	for i := range p {
		a := float64(p[i]) - lp
		b := float64(q[i]) - lq
		kl += math.Exp(a) * (a - b)
	}
	if kl < 0 { // rounding when the distributions are equal
		kl = 0
	}
	return kl
}

func logSumExp(x []float32) float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(s)
}
