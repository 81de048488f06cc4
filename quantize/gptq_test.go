package quantize

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/tokenizer"
	"github.com/hubmirror/hubmirror/weights"
)

// correlatedInputs returns rows×in inputs with correlated features (a
// random mixing of in/4 latent features plus noise), features 3 and in/2
// ten times larger, and the features in dead zero.
func correlatedInputs(r *rand.Rand, rows, in int, dead ...int) []float32 {
	latent := max(in/4, 1)
	a := make([]float64, latent*in)
	for i := range a {
		a[i] = r.NormFloat64() / math.Sqrt(float64(latent))
	}
	x := make([]float32, rows*in)
	z := make([]float64, latent)
	for t := 0; t < rows; t++ {
		for k := range z {
			z[k] = r.NormFloat64()
		}
		for c := 0; c < in; c++ {
			v := 0.1 * r.NormFloat64()
			for k, zk := range z {
				v += zk * a[k*in+c]
			}
			if c == 3 || c == in/2 {
				v *= 10
			}
			if slices.Contains(dead, c) {
				v = 0
			}
			x[t*in+c] = float32(v)
		}
	}
	return x
}

// outputError is Σ over the rows of x of ‖(W − Q)·x‖², Q the dequantized
// res.
func outputError(w []float32, res *int4Result, x []float32, out, in, gs int) float64 {
	dq := dequantizeInt4(res, out, in, gs)
	rows := len(x) / in
	var e float64
	for t := 0; t < rows; t++ {
		for o := 0; o < out; o++ {
			var d float64
			for c := 0; c < in; c++ {
				d += float64(w[o*in+c]-dq[o*in+c]) * float64(x[t*in+c])
			}
			e += d * d
		}
	}
	return e
}

func rtnResult(t *testing.T, w []float32, out, in, gs int, asym bool) *int4Result {
	t.Helper()
	s, z, err := int4Params(w, out, in, gs, asym, weights.F32)
	if err != nil {
		t.Fatal(err)
	}
	return &int4Result{codes: int4Codes(w, out, in, gs, s, z), scales: s, zeros: z}
}

// GPTQ's output error on its calibration inputs is below round to
// nearest's, for groups inside blocks, across blocks and not aligned with
// them, asymmetric, a short last group, a dead input feature.
func TestGPTQBeatsRTNOnCorrelatedInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 1))
	for _, c := range []struct {
		out, in, gs, block int
		asym               bool
		dead               []int
	}{
		{24, 128, 128, 128, false, nil},
		{24, 200, 64, 128, true, nil},   // last group of 8
		{16, 300, 300, 128, false, nil}, // per channel, three blocks
		{16, 256, 100, 128, false, nil}, // groups across block boundaries
		{16, 96, 32, 32, true, []int{5}},
	} {
		w := make([]float32, c.out*c.in)
		for i := range w {
			w[i] = float32(r.NormFloat64() / math.Sqrt(float64(c.in)))
		}
		x := correlatedInputs(r, 400, c.in, c.dead...)
		h := hessian(x, 400, c.in, 2)
		res, stable, err := gptqWeight(w, factorHessian(h, c.in, DefaultGPTQDamp, 2), c.out, c.in, c.gs, c.asym, weights.F32, c.block, 2)
		if err != nil || !stable {
			t.Fatalf("%+v: stable %v, %v", c, stable, err)
		}
		rtn := rtnResult(t, w, c.out, c.in, c.gs, c.asym)
		eg, er := outputError(w, res, x, c.out, c.in, c.gs), outputError(w, rtn, x, c.out, c.in, c.gs)
		t.Logf("%+v: ‖WX−QX‖² gptq %.4g, rtn %.4g", c, eg, er)
		if !(eg < 0.8*er) {
			t.Errorf("%+v: gptq error %.4g, rtn %.4g: want gptq clearly lower", c, eg, er)
		}
		for _, d := range c.dead { // a dead column's weights are dropped
			for o := 0; o < c.out; o++ {
				z := int8(0)
				if c.asym {
					z = res.zeros[o*((c.in+c.gs-1)/c.gs)+d/c.gs]
				}
				if res.codes[o*c.in+d] != z {
					t.Errorf("dead column %d, row %d: code %d, want the zero point %d", d, o, res.codes[o*c.in+d], z)
				}
			}
		}
	}
}

// A Hessian that is not positive definite after dampening gives round to
// nearest.
func TestGPTQUnstableIsRTN(t *testing.T) {
	const out, in = 6, 20
	r := rand.New(rand.NewPCG(2, 3))
	w := make([]float32, out*in)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	h := make([]float64, in*in)
	for i := 0; i < in; i++ {
		h[i*in+i] = -1
	}
	res, stable, err := gptqWeight(w, factorHessian(h, in, DefaultGPTQDamp, 1), out, in, 8, true, weights.F32, 128, 1)
	if err != nil || stable {
		t.Fatalf("stable %v, %v", stable, err)
	}
	rtn := rtnResult(t, w, out, in, 8, true)
	if !slices.Equal(res.codes, rtn.codes) || !slices.Equal(res.scales, rtn.scales) || !slices.Equal(res.zeros, rtn.zeros) {
		t.Error("not round to nearest")
	}
}

// Our GPTQ (blocked, lazy updates, f32 products for the Hessian's chunks
// and the updates beyond a block) against gen_gptq.py's PyTorch one
// (written from the paper, unblocked, float64): the same codes but for
// near-ties the rounding differences can flip (at most 0.2%; none
// measured), scales within 1e-5 relative (their groups' values differ in
// the last f32 bits).
func TestGPTQMatchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/gptq.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Out, In, Rows, Group, Block int
			Asym                        bool
			Weight, X, Codes, Scales    string
		}
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("no cases")
	}
	f32s := func(s string) []float32 {
		b := unb64(t, s)
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v
	}
	for _, c := range ref.Cases {
		w, x := f32s(c.Weight), f32s(c.X)
		h := hessian(x, c.Rows, c.In, 2)
		res, stable, err := gptqWeight(w, factorHessian(h, c.In, DefaultGPTQDamp, 2), c.Out, c.In, c.Group, c.Asym, weights.F32, c.Block, 2)
		if err != nil || !stable {
			t.Fatalf("stable %v, %v", stable, err)
		}
		want := unb64(t, c.Codes)
		diff := 0
		for i, q := range res.codes {
			if int8(want[i]) != q {
				diff++
			}
		}
		scales := f32s(c.Scales)
		var worst float64
		for i, s := range res.scales {
			worst = max(worst, math.Abs(float64(s-scales[i]))/math.Abs(float64(scales[i])))
		}
		t.Logf("out %d in %d group %d block %d asym %v: %d of %d codes differ, scales within %.2g", c.Out, c.In, c.Group, c.Block, c.Asym,
			diff, len(want), worst)
		if diff > len(want)/500 || worst > 1e-5 {
			t.Errorf("out %d in %d group %d: %d codes differ, scales within %.2g of PyTorch's", c.Out, c.In, c.Group, diff, worst)
		}
	}
}

// testCalibrator runs the text set (its first budget tokens) through the
// model with forward's RunCapture, and hands each Linear's inputs to seen
// too.
func testCalibrator(dir string, budget int, seen func(name string, x []float32, rows int)) Calibrator {
	return func(g *weights.Graph, cfg *arch.Config, hook LinearHook) error {
		m, err := forward.Load(g, cfg, forward.Options{Threads: 2})
		if err != nil {
			return err
		}
		tok, err := tokenizer.LoadDir(dir)
		if err != nil {
			return err
		}
		inputs, err := m.TextInputs(tok, forward.BuiltinTexts(), budget)
		if err != nil {
			return err
		}
		_, err = m.RunCapture(context.Background(), inputs, func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight {
			if seen != nil {
				seen(name, x, rows)
			}
			return hook(name, first, w, x, rows)
		})
		return err
	}
}

// On llama-gptq-st calibrated on the text set, every Linear's output
// error on its calibration inputs (those of the quantized earlier layers)
// is below round to nearest's, the layout is round to nearest's, and the
// report counts one Hessian per distinct input.
func TestGPTQFixtureLayers(t *testing.T) {
	const dir = "../testdata/models/llama-gptq-st"
	g, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]float32{}
	cal := testCalibrator(dir, 2048, func(name string, x []float32, rows int) {
		if strings.HasPrefix(name, "model.layers.") {
			inputs[name] = slices.Clone(x)
		}
	})
	q, rep, err := Quantize(g, cfg, Options{Scheme: W4A16, GroupSize: 128, Method: GPTQ, GPTQ: GPTQOptions{Calibrate: cal}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != GPTQ || rep.GPTQ == nil || rep.GPTQ.Calibrated != 14 || rep.GPTQ.Hessians != 8 || len(rep.GPTQ.RTN) != 0 || rep.GPTQ.Rows < 2048 {
		t.Fatalf("report %+v %+v", rep, rep.GPTQ)
	}
	r, rrep, err := Quantize(g, cfg, Options{Scheme: W4A16, GroupSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	if rrep.Method != RTN || rrep.GPTQ != nil {
		t.Errorf("rtn report %+v", rrep)
	}
	if len(q.Tensors()) != len(r.Tensors()) {
		t.Fatalf("%d tensors, rtn %d", len(q.Tensors()), len(r.Tensors()))
	}
	for i, qt := range q.Tensors() {
		rt := r.Tensors()[i]
		if qt.Name != rt.Name || qt.DType != rt.DType || !slices.Equal(qt.Shape, rt.Shape) {
			t.Errorf("tensor %s %v %v, rtn %s %v %v", qt.Name, qt.DType, qt.Shape, rt.Name, rt.DType, rt.Shape)
		}
	}
	decode := func(gr *weights.Graph, name string) []float32 {
		base := strings.TrimSuffix(name, ".weight")
		p, _ := gr.Tensor(base + ".weight_packed")
		s, _ := gr.Tensor(base + ".weight_scale")
		pb, err := p.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		sv, err := s.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		w := &kernels.Int4{Out: int(p.Shape[0]), In: int(p.Shape[1]) * 8, Packed: pb, Scales: sv}
		if s.Shape[1] > 1 {
			w.GroupSize = 128
		}
		return w.Dequantize()
	}
	if len(inputs) != 14 {
		t.Fatalf("inputs of %d Linears", len(inputs))
	}
	for name, x := range inputs {
		src, _ := g.Tensor(name)
		w, err := src.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out, in := int(src.Shape[0]), int(src.Shape[1])
		errOf := func(dq []float32) float64 { // over every 8th row: enough, and fast
			var e float64
			for tk := 0; tk < len(x)/in; tk += 8 {
				for o := 0; o < out; o++ {
					var d float64
					for c := 0; c < in; c++ {
						d += float64(w[o*in+c]-dq[o*in+c]) * float64(x[tk*in+c])
					}
					e += d * d
				}
			}
			return e
		}
		eg, er := errOf(decode(q, name)), errOf(decode(r, name))
		t.Logf("%s: gptq %.4g rtn %.4g", name, eg, er)
		if !(eg < er) {
			t.Errorf("%s: gptq error %.4g not below rtn's %.4g", name, eg, er)
		}
	}
}

// The method's errors: gptq with another scheme, without a calibration,
// an unknown method.
func TestGPTQOptionErrors(t *testing.T) {
	g, err := formats.Open("../testdata/models/llama-tiny-st")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	cal := func(*weights.Graph, *arch.Config, LinearHook) error { return nil }
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{Scheme: Int8, Method: GPTQ, GPTQ: GPTQOptions{Calibrate: cal}}, "w4a16 scheme only"},
		{Options{Scheme: W4A16, Method: GPTQ}, "needs a calibration"},
		{Options{Scheme: W4A16, Method: "awq"}, `unknown method "awq"`},
		{Options{Scheme: W4A16, Method: GPTQ, GPTQ: GPTQOptions{Calibrate: cal, Damp: -1}}, "dampening"},
	} {
		if _, _, err := Quantize(g, cfg, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
	}
	// A calibration that reaches no Linear leaves every weight to round to
	// nearest, and the report says so.
	_, rep, err := Quantize(g, cfg, Options{Scheme: W4A16, Method: GPTQ, GPTQ: GPTQOptions{Calibrate: cal}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.GPTQ.Calibrated != 0 || len(rep.GPTQ.RTN) != 14 {
		t.Errorf("report %+v", rep.GPTQ)
	}
}

// BenchmarkGPTQLayer: the Hessian of 2048 input rows and GPTQ of a
// 1024×1024 weight (groups of 128), on 2 threads.
func BenchmarkGPTQLayer(b *testing.B) {
	const out, in, rows = 1024, 1024, 2048
	r := rand.New(rand.NewPCG(1, 1))
	w := make([]float32, out*in)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	x := correlatedInputs(r, rows, in)
	b.Run("hessian", func(b *testing.B) {
		for b.Loop() {
			hessian(x, rows, in, 2)
		}
	})
	h := hessian(x, rows, in, 2)
	b.Run("factor", func(b *testing.B) {
		for b.Loop() {
			factorHessian(slices.Clone(h), in, DefaultGPTQDamp, 2)
		}
	})
	f := factorHessian(h, in, DefaultGPTQDamp, 2)
	b.Run("gptq", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := gptqWeight(w, f, out, in, 128, false, weights.F32, 128, 2); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// materialize returns q with every tensor's bytes computed, as forward
// reads a written artifact.
func materialize(t *testing.T, q *weights.Graph) *weights.Graph {
	t.Helper()
	g := q.Derive()
	for _, x := range q.Tensors() {
		b, err := x.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m, err := weights.NewTensor(x.Name, x.DType, x.Shape, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// GPTQ on other layouts, calibrated on random ids: GPT-2's Conv1D weights
// (stored [in][out]), Phi-3's fused qkv_proj and gate_up_proj (split by
// the network), Mixtral's experts, BERT's encoder. Every weight is
// calibrated, each result loads, and its last hidden state on the
// calibration inputs is closer to the source's than round to nearest's.
func TestGPTQFamilies(t *testing.T) {
	for _, c := range []struct{ name string }{
		{"gpt2-lm-bin"},
		{"phi3-st"}, // fused qkv_proj and gate_up_proj, quantized slice by slice
		{"mixtral-st"},
		{"bert-cls-st"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := formats.Open("../testdata/models/" + c.name)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			cfg, err := arch.ParseConfig(g.Config)
			if err != nil {
				t.Fatal(err)
			}
			src, err := forward.Load(g, cfg, forward.Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			lengths := slices.Repeat([]int{16}, 24)
			inputs := forward.ValidationInputs(7, lengths, src.Info().VocabSize)
			cal := func(g *weights.Graph, cfg *arch.Config, hook LinearHook) error {
				m, err := forward.Load(g, cfg, forward.Options{Threads: 2})
				if err != nil {
					return err
				}
				_, err = m.RunCapture(context.Background(), inputs, hook)
				return err
			}
			gq, rep, err := Quantize(g, cfg, Options{Scheme: W4A16, GroupSize: 16, Method: GPTQ, GPTQ: GPTQOptions{Calibrate: cal}})
			if err != nil {
				t.Fatal(err)
			}
			if rep.GPTQ.Calibrated+len(rep.GPTQ.RTN) != len(rep.Changed) || rep.GPTQ.Calibrated == 0 {
				t.Errorf("%d calibrated, rtn %v, of %d", rep.GPTQ.Calibrated, rep.GPTQ.RTN, len(rep.Changed))
			}
			if len(rep.GPTQ.RTN) > 0 { // every expert of mixtral-st gets tokens
				t.Errorf("rounded to nearest: %v", rep.GPTQ.RTN)
			}
			gr, _, err := Quantize(g, cfg, Options{Scheme: W4A16, GroupSize: 16})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := src.RunBatch(context.Background(), inputs)
			if err != nil {
				t.Fatal(err)
			}
			errOf := func(q *weights.Graph) float64 {
				m, err := forward.Load(materialize(t, q), nil, forward.Options{Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				if m.Info().Quantization != "int4" {
					t.Fatalf("loads as %q", m.Info().Quantization)
				}
				outs, err := m.RunBatch(context.Background(), inputs)
				if err != nil {
					t.Fatal(err)
				}
				var e float64
				for i, o := range outs {
					a, _ := ref[i].Get(forward.OutputLastHiddenState)
					b, _ := o.Get(forward.OutputLastHiddenState)
					for k, v := range a.Data {
						d := float64(v - b.Data[k])
						e += d * d
					}
				}
				return e
			}
			eg, er := errOf(gq), errOf(gr)
			t.Logf("%s: ‖Δ last_hidden_state‖² gptq %.4g, rtn %.4g; rtn %v", c.name, eg, er, rep.GPTQ.RTN)
			if !(eg < er) {
				t.Errorf("gptq %.4g, rtn %.4g", eg, er)
			}
		})
	}
}
