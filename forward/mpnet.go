package forward

import (
	"context"
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// mpnet is transformers' MPNetModel: RoBERTa-style embeddings (word and
// position, positions counted from the padding index 1 + 1 over the
// non-padding tokens, no token types) and BERT's post-LN layers, whose
// attention scores get one relative position bias, computed once per
// sequence and shared by all layers; with its pooler, MPNetForMaskedLM's
// head or MPNetForSequenceClassification's.
type mpnet struct {
	enc    *encoder
	pooler *linear  // MPNetModel with a pooler
	mlm    *mlmHead // MPNetForMaskedLM
	// classDense and classOut are MPNetForSequenceClassification's head.
	classDense, classOut *linear
}

func init() { loaders["mpnet"] = loadMPNet }

var mpnetNames = encoderNames{word: arch.MPNetWordEmbeddings, pos: arch.MPNetPositionEmbeddings,
	embNorm: arch.MPNetEmbeddingsNorm, q: arch.MPNetQuery, k: arch.MPNetKey, v: arch.MPNetValue,
	o: arch.MPNetAttentionOutput, attnNorm: arch.MPNetAttentionNorm, up: arch.MPNetIntermediate,
	down: arch.MPNetOutput, outNorm: arch.MPNetOutputNorm}

// mpnetBucket is transformers' MPNetEncoder.relative_position_bucket for
// one relative position rel = key - query: MPNetBuckets buckets, the upper
// half for keys after the query; distances below a quarter of them exact,
// the others logarithmic up to MPNetMaxDistance, computed in float32 as
// PyTorch computes them (log of the distance over the exact range, over
// log(max_distance/exact), times the logarithmic buckets, truncated).
func mpnetBucket(rel int) int {
	const half = arch.MPNetBuckets / 2
	const exact = half / 2
	ret, n := 0, -rel
	if n < 0 {
		ret, n = half, -n
	}
	if n < exact {
		return ret + n
	}
	l := float32(math.Log(float64(float32(n) / exact)))
	r := float32(l / float32(math.Log(float64(arch.MPNetMaxDistance)/exact)))
	v := exact + int(float32(r*(half-exact)))
	return ret + min(v, half-1)
}

// mpnetBias returns the position bias of a sequence of n tokens,
// [heads×n×n]: head h's score of query i for key j gets row
// bucket(j-i), column h, of the table [buckets×heads].
func mpnetBias(table []float32, heads int) func(n int) []float32 {
	return func(n int) []float32 {
		out := make([]float32, heads*n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				row := table[mpnetBucket(j-i)*heads:]
				for h := 0; h < heads; h++ {
					out[(h*n+i)*n+j] = row[h]
				}
			}
		}
		return out
	}
}

func loadMPNet(s *tensorSet, cfg *arch.Config) (network, Info, error) {
	c := cfg.MPNet()
	class := cfg.Architecture()
	if len(cfg.Architectures) == 0 {
		class = "MPNetModel"
	}
	switch class {
	case "MPNetModel", "MPNetForMaskedLM", "MPNetForSequenceClassification":
	default:
		return nil, Info{}, fmt.Errorf("%w: architecture %s (the forward pass runs MPNetModel, MPNetForMaskedLM and MPNetForSequenceClassification)", ErrUnsupported, class)
	}
	if pruned, err := cfg.PrunedHeads(); err != nil || len(pruned) > 0 {
		return nil, Info{}, fmt.Errorf("%w: %s with pruned_heads: MPNet's position bias gives every layer all its heads", ErrUnsupported, class)
	}
	if err := s.detectPrefix(c.Layout()); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", class, err)
	}
	// sentence-transformers saves the bare MPNetModel (no prefix, no head)
	// under a config that keeps the architectures of the model it was
	// trained from (MPNetForMaskedLM): transformers' AutoModel runs it as
	// MPNetModel, and so does the forward pass.
	if class != "MPNetModel" && s.prefix == "" && !s.has(arch.MPNetLMDense+".weight", true) && !s.has(arch.MPNetClassDense+".weight", true) {
		class = "MPNetModel"
	}
	H := c.HiddenSize
	z := encoderSizes{vocab: c.VocabSize, positions: c.MaxPositionEmbeddings, hidden: H, heads: c.NumAttentionHeads,
		inter: c.IntermediateSize, layers: c.NumHiddenLayers, eps: c.LayerNormEps, act: c.HiddenAct}
	enc, err := loadEncoder(s, cfg, class, z, mpnetNames, arch.BertLayer)
	if err != nil {
		return nil, Info{}, err
	}
	enc.positions = robertaPositions(arch.MPNetPaddingIdx)
	// The table's rows beyond the buckets looked up are unused, as in
	// transformers; it is read whole.
	rb, ok := s.lookup(arch.MPNetRelativeAttentionBias+".weight", false)
	if !ok {
		return nil, Info{}, fmt.Errorf("%w: %s: missing tensor %s", ErrWeights, class, quote(s.fullName(arch.MPNetRelativeAttentionBias+".weight", false)))
	}
	if len(rb.Shape) != 2 || rb.Shape[0] != int64(c.RelativeAttentionNumBuckets) || rb.Shape[1] != int64(c.NumAttentionHeads) || !rb.DType.IsFloat() {
		return nil, Info{}, fmt.Errorf("%w: tensor %s is %v %v, want a float [%d, %d] (relative_attention_num_buckets, num_attention_heads)",
			ErrWeights, quote(rb.Name), rb.DType, rb.Shape, c.RelativeAttentionNumBuckets, c.NumAttentionHeads)
	}
	table, err := rb.Float32s()
	if err != nil {
		return nil, Info{}, fmt.Errorf("%w: %v", ErrWeights, err)
	}
	s.used[rb.Name] = true
	enc.posBias = mpnetBias(table, c.NumAttentionHeads)
	m := &mpnet{enc: enc}
	info := Info{Family: "mpnet", Architecture: class, VocabSize: c.VocabSize, HiddenSize: H,
		Layers: c.NumHiddenLayers, MaxPositions: c.Sizes().MaxPositions, Outputs: []string{OutputLastHiddenState}}
	switch class {
	case "MPNetModel":
		if s.has(arch.MPNetPooler+".weight", false) {
			pl, err := loadLinear(s, arch.MPNetPooler, H, H, false, true)
			if err != nil {
				return nil, Info{}, err
			}
			m.pooler = &pl
			info.Outputs = append(info.Outputs, OutputPooler)
		}
	case "MPNetForMaskedLM":
		h := &mlmHead{act: kernels.GELU}
		if h.dense, err = loadAbsLinear(s, arch.MPNetLMDense, H, H); err != nil {
			return nil, Info{}, err
		}
		if h.norm, err = loadAbsNorm(s, arch.MPNetLMNorm, H, c.LayerNormEps); err != nil {
			return nil, Info{}, err
		}
		if h.decoder.w, err = lmHead(s, arch.MPNetLMDecoder+".weight", c.TieWordEmbeddings, enc.word, c.VocabSize, H, class); err != nil {
			return nil, Info{}, err
		}
		// lm_head.bias and lm_head.decoder.bias are one parameter; files
		// carry either or both.
		bias := arch.MPNetLMBias
		if !s.has(bias, true) {
			bias = arch.MPNetLMDecoder + ".bias"
		}
		if h.decoder.b, err = s.vector(bias, c.VocabSize, true); err != nil {
			return nil, Info{}, fmt.Errorf("%s: %w", class, err)
		}
		s.markUsed(func(n string) bool { return n == arch.MPNetLMBias || n == arch.MPNetLMDecoder+".bias" })
		m.mlm = h
		info.Outputs = append(info.Outputs, OutputLogits)
	case "MPNetForSequenceClassification":
		d, err := loadAbsLinear(s, arch.MPNetClassDense, H, H)
		if err != nil {
			return nil, Info{}, err
		}
		m.classDense = &d
		if m.classOut, info.NumLabels, err = classifierHead(s, class, arch.MPNetClassOutProj, H, c.NumLabels); err != nil {
			return nil, Info{}, err
		}
		info.Outputs = append(info.Outputs, OutputLogits)
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

func (m *mpnet) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	x, out, err := m.enc.runWithHead(ctx, ids, rc)
	if err != nil {
		return nil, err
	}
	n, H := len(ids), m.enc.hidden
	switch {
	case m.pooler != nil:
		pooled := make([]float32, H)
		m.pooler.apply(pooled, x[:H], 1, rc)
		tanh(pooled)
		out = append(out, Output{Name: OutputPooler, Shape: []int{1, H}, Data: pooled})
	case m.mlm != nil:
		logits := m.mlm.logits(x, n, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, n, m.mlm.decoder.w.Out}, Data: logits})
	case m.classOut != nil:
		t := make([]float32, H)
		m.classDense.apply(t, x[:H], 1, rc)
		tanh(t)
		logits := make([]float32, m.classOut.w.Out)
		m.classOut.apply(logits, t, 1, rc)
		out = append(out, Output{Name: OutputLogits, Shape: []int{1, len(logits)}, Data: logits})
	}
	return out, nil
}
