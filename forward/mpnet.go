package forward

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
)

// mpnet is transformers' MPNetModel: RoBERTa-style embeddings (word and
// position, positions counted from the padding index 1 + 1 over the
// non-padding tokens, no token types) and BERT's post-LN layers, whose
// attention scores get one relative position bias, computed once per
// sequence and shared by all layers; with its pooler, MPNetForMaskedLM's
// head or MPNetForSequenceClassification's.
type mpnet struct {
	enc *encoder
	robertaHeads
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
	if m.robertaHeads, err = loadRobertaHeads(s, headSpec{kind: strings.TrimPrefix(class, "MPNet"), class: class, pooler: arch.MPNetPooler,
		hidden: H, vocab: c.VocabSize, labels: c.NumLabels, eps: c.LayerNormEps, tied: c.TieWordEmbeddings, word: enc.word}, &info); err != nil {
		return nil, Info{}, err
	}
	s.markUsed(arch.IsBuffer)
	return m, info, nil
}

func (m *mpnet) run(ctx context.Context, ids []int, rc runConfig) ([]Output, error) {
	x, out, err := m.enc.runWithHead(ctx, ids, rc)
	if err != nil {
		return nil, err
	}
	return m.outputs(out, x, len(ids), m.enc.hidden, rc), nil
}
