package forward

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// What the MPNet and ModernBERT fixtures load as: class, dtype, outputs,
// the longest sequence (MPNet: max_position_embeddings - 2; ModernBERT's
// rotary positions have no table) and labels.
func TestEncoderInfo(t *testing.T) {
	for _, c := range []struct {
		dir          string
		family, arch string
		dtype        weights.DType
		outputs      []string
		maxPositions int
		labels       int
	}{
		{"mpnet-mlm-st", "mpnet", "MPNetForMaskedLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 78, 0},
		{"mpnet-model-f16-st", "mpnet", "MPNetModel", weights.F16, []string{OutputLastHiddenState, OutputPooler}, 78, 0},
		{"mpnet-cls-bin", "mpnet", "MPNetForSequenceClassification", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 78, 3},
		{"modernbert-mlm-st", "modernbert", "ModernBertForMaskedLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, 0},
		{"modernbert-mlm-bf16-st", "modernbert", "ModernBertForMaskedLM", weights.BF16, []string{OutputLastHiddenState, OutputLogits}, 0, 0},
		{"modernbert-bias-st", "modernbert", "ModernBertForMaskedLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, 0},
		{"modernbert-model-st", "modernbert", "ModernBertModel", weights.F32, []string{OutputLastHiddenState}, 0, 0},
		{"modernbert-cls-st", "modernbert", "ModernBertForSequenceClassification", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, 3},
	} {
		info := loadModel(t, filepath.Join(fixtures, c.dir), 1).Info()
		if info.Family != c.family || info.Architecture != c.arch || info.WeightDType != c.dtype || !slices.Equal(info.Outputs, c.outputs) ||
			info.MaxPositions != c.maxPositions || info.NumLabels != c.labels || len(info.Unused) != 0 || info.Quantized {
			t.Errorf("%s: Info = %+v", c.dir, info)
		}
	}
}

// A bare MPNetModel checkpoint (no prefix, no head) whose config names
// MPNetForMaskedLM, as sentence-transformers saves them, runs as
// MPNetModel; with the mpnet. prefix the missing head is an error.
func TestMPNetBareModelUnderHeadClass(t *testing.T) {
	g := openGraph(t, filepath.Join(fixtures, "mpnet-model-f16-st"))
	cfg, err := arch.UpdateConfig(g.Config, map[string]any{"architectures": []string{"MPNetForMaskedLM"}})
	if err != nil {
		t.Fatal(err)
	}
	g.Config = cfg
	m, err := Load(g, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Info(); info.Architecture != "MPNetModel" || !slices.Equal(info.Outputs, []string{OutputLastHiddenState, OutputPooler}) {
		t.Errorf("Info = %+v", info)
	}
	prefixed := weights.NewGraph()
	prefixed.Config = cfg
	for _, x := range g.Tensors() {
		v, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		y, _ := weights.FromFloat32("mpnet."+x.Name, x.DType, x.Shape, v)
		prefixed.Add(y)
	}
	if _, err := Load(prefixed, nil, Options{Threads: 1}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), arch.MPNetLMDense) {
		t.Errorf("prefixed without head: %v", err)
	}
}

// mpnetBucket follows transformers' relative_position_bucket: keys after
// the query in the upper 16 buckets, distances below 8 exact, the rest
// logarithmic and non-decreasing up to bucket 15 from max_distance 128 on.
// The boundaries at 16, 32 and 64, where float32 rounding decides, are
// checked against PyTorch by the mpnet-mlm-st fixture (70 tokens).
func TestMPNetBucket(t *testing.T) {
	prev := 0
	for d := 0; d < 1000; d++ {
		before := mpnetBucket(-d) // key d positions before the query
		if d > 0 && mpnetBucket(d) != arch.MPNetBuckets/2+before {
			t.Fatalf("distance %d: after %d, before %d", d, mpnetBucket(d), before)
		}
		switch {
		case d < 8 && before != d, d >= arch.MPNetMaxDistance && before != 15, before < prev, before > 15:
			t.Fatalf("distance %d: bucket %d (previous %d)", d, before, prev)
		}
		prev = before
	}
	if mpnetBucket(0) != 0 || mpnetBucket(-8) != 8 || mpnetBucket(-127) != 15 {
		t.Errorf("buckets %d %d %d", mpnetBucket(0), mpnetBucket(-8), mpnetBucket(-127))
	}
}

// The new encoders refuse what they do not run, naming it.
func TestEncoderUnsupported(t *testing.T) {
	const (
		mp = `"model_type":"mpnet","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"max_position_embeddings":8`
		mb = `"model_type":"modernbert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8`
	)
	for _, c := range []struct{ config, want string }{
		{`{"architectures":["MPNetForQuestionAnswering"],` + mp + `}`, "MPNetForQuestionAnswering (the forward pass runs MPNetModel"},
		{`{"architectures":["MPNetModel"],` + mp + `,"hidden_act":"mish"}`, "mish"},
		{`{"architectures":["MPNetModel"],` + mp + `,"pruned_heads":{"0":[1]}}`, "pruned_heads"},
		{`{"architectures":["ModernBertForTokenClassification"],` + mb + `}`, "ModernBertForTokenClassification (the forward pass runs ModernBertModel"},
		{`{"architectures":["ModernBertModel"],` + mb + `,"hidden_activation":"mish"}`, "mish"},
		{`{"architectures":["ModernBertModel"],` + mb + `,"rope_scaling":{"rope_type":"linear","factor":2}}`, "rope_scaling"},
		{`{"architectures":["ModernBertModel"],` + mb + `,"rope_parameters":{"full_attention":{"rope_type":"yarn","factor":2}}}`, "yarn"},
	} {
		g := weights.NewGraph()
		g.Config = []byte(c.config)
		for _, n := range []string{"embeddings.word_embeddings.weight", "embeddings.tok_embeddings.weight"} {
			tn, _ := weights.FromFloat32(n, weights.F32, []int64{10, 8}, make([]float32, 80))
			g.Add(tn)
		}
		_, err := Load(g, nil, Options{})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: error %v, want ErrUnsupported naming %q", c.config, err, c.want)
		}
	}
}
