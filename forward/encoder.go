package forward

import (
	"context"
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
)

// encoder is the post-LN transformer encoder that BERT, RoBERTa,
// DistilBERT and MPNet share: token, position and optional token-type
// embeddings summed and normalized, then layers of self-attention (with
// MPNet's relative position bias) and a feed-forward network, each added
// to its input and normalized.
type encoder struct {
	hidden, heads, inter int
	word, pos, typ       *kernels.Weight // typ nil without token types
	embNorm              norm
	layers               []encoderLayer
	act                  func([]float32)
	// positions returns the position ids of a sequence; nil numbers the
	// tokens 0, 1, ...
	positions func(ids []int) []int
	// posBias, when set, returns the bias [heads×n×n] added to the
	// attention scores of every layer for a sequence of n tokens (MPNet's
	// relative position bias).
	posBias func(n int) []float32
}

type encoderLayer struct {
	q, k, v, o, up, down linear
	attnNorm, outNorm    norm
	// heads is the layer's head count: fewer than the config's when
	// config.json's pruned_heads removed some.
	heads int
}

// encoderNames are the tensor names of an encoder, relative to the base
// model (embeddings) and to a layer's prefix (the rest). Module names have
// no .weight or .bias; typ is "" for a family without token types.
type encoderNames struct {
	word, pos, typ, embNorm                 string
	q, k, v, o, attnNorm, up, down, outNorm string
}

var bertNames = encoderNames{word: arch.BertWordEmbeddings, pos: arch.BertPositionEmbeddings,
	typ: arch.BertTokenTypeEmbeddings, embNorm: arch.BertEmbeddingsNorm,
	q: arch.BertQuery, k: arch.BertKey, v: arch.BertValue, o: arch.BertAttentionOutput,
	attnNorm: arch.BertAttentionNorm, up: arch.BertIntermediate, down: arch.BertOutput, outNorm: arch.BertOutputNorm}

// encoderSizes are the dimensions an encoder is loaded with.
type encoderSizes struct {
	vocab, positions, types, hidden, heads, inter, layers int
	eps                                                   float64
	act                                                   string
}

// loadEncoder reads an encoder's tensors (the prefix detected already).
// types 0 means no token-type embedding.
func loadEncoder(s *tensorSet, cfg *arch.Config, class string, z encoderSizes, names encoderNames, layer func(int) string) (*encoder, error) {
	act, err := activation(z.act)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", class, err)
	}
	H, I := z.hidden, z.inter
	e := &encoder{hidden: H, heads: z.heads, inter: I, act: act}
	if e.word, err = s.embedding(names.word, z.vocab, H); err != nil {
		return nil, err
	}
	if e.pos, err = s.embedding(names.pos, z.positions, H); err != nil {
		return nil, err
	}
	if z.types > 0 && names.typ != "" {
		if e.typ, err = s.embedding(names.typ, z.types, H); err != nil {
			return nil, err
		}
	}
	if e.embNorm, err = loadNorm(s, names.embNorm, H, true, z.eps); err != nil {
		return nil, err
	}
	heads, err := layerHeads(cfg, z.heads, z.layers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", class, err)
	}
	dh := H / z.heads
	for i := 0; i < z.layers; i++ {
		p := layer(i)
		l := encoderLayer{heads: heads[i]}
		A := heads[i] * dh
		for _, x := range []struct {
			dst     *linear
			name    string
			out, in int
		}{
			{&l.q, names.q, A, H}, {&l.k, names.k, A, H},
			{&l.v, names.v, A, H}, {&l.o, names.o, H, A},
			{&l.up, names.up, I, H}, {&l.down, names.down, H, I},
		} {
			if *x.dst, err = loadLinear(s, p+x.name, x.out, x.in, false, true); err != nil {
				return nil, err
			}
		}
		if l.attnNorm, err = loadNorm(s, p+names.attnNorm, H, true, z.eps); err != nil {
			return nil, err
		}
		if l.outNorm, err = loadNorm(s, p+names.outNorm, H, true, z.eps); err != nil {
			return nil, err
		}
		e.layers = append(e.layers, l)
	}
	return e, nil
}

// run returns the last hidden state [n×hidden] of the sequence ids (token
// type 0 everywhere, full attention mask).
// runWithHead runs the encoder for a model with a head (pooler, masked-LM
// or classifier), which counts as a layer of its own for cancellation and
// progress, and returns the hidden states with the last_hidden_state output
// the heads' outputs follow.
func (e *encoder) runWithHead(ctx context.Context, ids []int, rc runConfig) ([]float32, []Output, error) {
	x, err := e.run(ctx, ids, rc)
	if err != nil {
		return nil, nil, err
	}
	if err := rc.layer(ctx); err != nil {
		return nil, nil, err
	}
	return x, []Output{{Name: OutputLastHiddenState, Shape: []int{1, len(ids), e.hidden}, Data: x}}, nil
}

func (e *encoder) run(ctx context.Context, ids []int, rc runConfig) ([]float32, error) {
	threads := rc.threads
	n, H := len(ids), e.hidden
	x := make([]float32, n*H)
	tmp := make([]float32, n*H)
	embed(x, e.word, ids)
	if e.positions != nil {
		addPositions(x, e.pos, e.positions(ids))
	} else {
		addRows(x, e.pos, n, -1)
	}
	if e.typ != nil {
		addRows(x, e.typ, n, 0)
	}
	e.embNorm.layerNorm(x, x, n)

	q := make([]float32, n*H)
	k := make([]float32, n*H)
	v := make([]float32, n*H)
	ctxBuf := make([]float32, n*H)
	up := make([]float32, n*e.inter)
	dh := H / e.heads
	var bias []float32
	if e.posBias != nil {
		bias = e.posBias(n)
	}
	for _, l := range e.layers {
		if err := rc.layer(ctx); err != nil {
			return nil, err
		}
		A := l.heads * dh
		att := attention{heads: l.heads, kvHeads: l.heads, headDim: dh, scale: float32(1 / math.Sqrt(float64(dh))), posBias: bias}
		l.q.apply(q, x, n, rc)
		l.k.apply(k, x, n, rc)
		l.v.apply(v, x, n, rc)
		att.run(ctxBuf, rowMajor(q, A), rowMajor(k, A), rowMajor(v, A), n, 0, threads)
		l.o.apply(tmp, ctxBuf, n, rc)
		add(tmp, x)
		l.attnNorm.layerNorm(x, tmp, n)
		l.up.apply(up, x, n, rc)
		e.act(up)
		l.down.apply(tmp, up, n, rc)
		add(tmp, x)
		l.outNorm.layerNorm(x, tmp, n)
	}
	return x, nil
}

// addPositions adds to row t of x row pos[t] of table.
func addPositions(x []float32, table *kernels.Weight, pos []int) {
	d := table.In
	buf := make([]float32, d)
	for t, p := range pos {
		kernels.Embedding(buf, table, p)
		add(x[t*d:(t+1)*d], buf)
	}
}

// classifierHead reads a sequence-classification Linear layer (absolute
// name, without .weight) whose rows are the labels, checking them against
// the config's count (0: any).
func classifierHead(s *tensorSet, class, name string, in, numLabels int) (*linear, int, error) {
	cw := name + ".weight"
	t, ok := s.lookup(cw, true)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s: missing tensor %q", ErrWeights, class, cw)
	}
	if len(t.Shape) != 2 || t.Shape[0] <= 0 {
		return nil, 0, fmt.Errorf("%w: tensor %q has shape %v, want [num_labels, %d]", ErrWeights, cw, t.Shape, in)
	}
	labels := int(t.Shape[0])
	if numLabels > 0 && numLabels != labels {
		return nil, 0, fmt.Errorf("%w: tensor %q has %d rows, config.json names %d labels", ErrWeights, cw, labels, numLabels)
	}
	l, err := loadAbsLinear(s, name, labels, in)
	if err != nil {
		return nil, 0, err
	}
	return &l, labels, nil
}

// loadAbsLinear reads a head's Linear layer (absolute name) with its bias.
func loadAbsLinear(s *tensorSet, name string, out, in int) (linear, error) {
	w, err := s.matrix(name, out, in, false, true)
	if err != nil {
		return linear{}, err
	}
	b, err := s.vector(name+".bias", out, true)
	if err != nil {
		return linear{}, err
	}
	return linear{w: w, b: b}, nil
}

// loadAbsNorm is loadNorm for a head's LayerNorm (absolute name).
func loadAbsNorm(s *tensorSet, name string, n int, eps float64) (norm, error) {
	w, err := s.vector(name+".weight", n, true)
	if err != nil {
		return norm{}, err
	}
	b, err := s.vector(name+".bias", n, true)
	if err != nil {
		return norm{}, err
	}
	return norm{w: w, b: b, eps: float32(eps)}, nil
}

// mlmHead is a masked-LM head: dense, activation, LayerNorm, then the
// decoder (usually the token embedding) with its bias, on every token.
type mlmHead struct {
	dense   linear
	act     func([]float32)
	norm    norm
	decoder linear
}

// logits returns [n×vocab] for the hidden states x [n×hidden].
func (h *mlmHead) logits(x []float32, n int, rc runConfig) []float32 {
	H := h.dense.w.Out
	t := make([]float32, n*H)
	h.dense.apply(t, x, n, rc)
	h.act(t)
	h.norm.layerNorm(t, t, n)
	out := make([]float32, n*h.decoder.w.Out)
	h.decoder.apply(out, t, n, rc)
	return out
}
