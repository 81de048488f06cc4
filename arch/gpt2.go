package arch

import (
	"encoding/json"
	"fmt"
	"strings"
)

func init() {
	register(&Family{Name: "gpt2", ModelTypes: []string{"gpt2"}, ClassPrefixes: []string{"GPT2"},
		Buffers: []string{"attn.bias", "attn.masked_bias"}, Role: gpt2Role, Parse: parseGPT2})
}

// gpt2Role: GPT-2's embeddings are wte and wpe, its LayerNorms ln_1, ln_2,
// ln_f (and ln_cross_attn with cross-attention).
func gpt2Role(name string) (Role, bool) {
	switch {
	case hasPart(name, "ln_"):
		return RoleNorm, true
	case hasPart(name, GPT2TokenEmbeddings+".", GPT2PositionEmbeddings+"."):
		return RoleEmbedding, true
	}
	return "", false
}

// GPT2Config holds the fields of transformers' GPT2Config that hubmirror
// uses.
type GPT2Config struct {
	VocabSize                  int     `json:"vocab_size"`
	NPositions                 int     `json:"n_positions"`
	NEmbd                      int     `json:"n_embd"`
	NLayer                     int     `json:"n_layer"`
	NHead                      int     `json:"n_head"`
	NInner                     int     `json:"n_inner"` // 0 or null means 4*NEmbd
	ActivationFunction         string  `json:"activation_function"`
	LayerNormEpsilon           float64 `json:"layer_norm_epsilon"`
	ScaleAttnWeights           bool    `json:"scale_attn_weights"`
	ScaleAttnByInverseLayerIdx bool    `json:"scale_attn_by_inverse_layer_idx"`
	TieWordEmbeddings          bool    `json:"tie_word_embeddings"`
}

// GPT2 returns the GPT-2 view of the config, nil for another family.
func (c *Config) GPT2() *GPT2Config {
	g, _ := c.Params.(*GPT2Config)
	return g
}

func parseGPT2(c *Config, raw []byte) (Params, error) {
	g := &GPT2Config{ActivationFunction: "gelu_new", LayerNormEpsilon: 1e-5, ScaleAttnWeights: true, TieWordEmbeddings: true}
	if err := json.Unmarshal(raw, g); err != nil {
		return nil, fmt.Errorf("%w: gpt2: %v", ErrConfig, err)
	}
	k := checker{family: "gpt2"}
	k.nonNegative("n_inner", g.NInner)
	if g.NInner == 0 {
		g.NInner = 4 * g.NEmbd
	}
	k.size("vocab_size", g.VocabSize)
	k.size("n_embd", g.NEmbd)
	k.layers("n_layer", g.NLayer)
	k.size("n_head", g.NHead)
	k.size("n_positions", g.NPositions)
	k.size("n_inner", g.NInner)
	k.positiveFloat("layer_norm_epsilon", g.LayerNormEpsilon)
	k.divides("n_embd", g.NEmbd, "n_head", g.NHead)
	if k.err != nil {
		return nil, k.err
	}
	return g, nil
}

// Tensor names of GPT-2 checkpoints, relative to the base model
// (GPT2Model's tensors carry no prefix, GPT2LMHeadModel puts them under
// "transformer."). Module names have no .weight or .bias. The attention,
// projection and MLP layers are Conv1D, stored [in, out]; c_attn holds q,
// k and v side by side in its columns.
const (
	GPT2TokenEmbeddings    = "wte"
	GPT2PositionEmbeddings = "wpe"
	GPT2Norm1              = "ln_1"
	GPT2Norm2              = "ln_2"
	GPT2Attention          = "attn.c_attn"
	GPT2AttentionOutput    = "attn.c_proj"
	GPT2FC                 = "mlp.c_fc"
	GPT2MLPOutput          = "mlp.c_proj"
	GPT2FinalNorm          = "ln_f"
	// GPT2LMHead is GPT2LMHeadModel's head (absolute).
	GPT2LMHead = "lm_head"
)

// GPT2Layer is the prefix of layer i's tensors.
func GPT2Layer(i int) string { return fmt.Sprintf("h.%d.", i) }

// Sizes implements Params.
func (g *GPT2Config) Sizes() Sizes {
	return Sizes{VocabSize: g.VocabSize, HiddenSize: g.NEmbd, Layers: g.NLayer, Heads: g.NHead, KVHeads: g.NHead,
		HeadDim: g.NEmbd / g.NHead, Intermediate: g.NInner, MaxPositions: g.NPositions, TieWordEmbeddings: g.TieWordEmbeddings}
}

// Layout implements Params.
func (g *GPT2Config) Layout() Layout {
	return Layout{Prefixes: []string{"", "transformer."}, Embedding: GPT2TokenEmbeddings + ".weight",
		LMHead: GPT2LMHead + ".weight", Layer: GPT2Layer}
}

// Blocks implements Params.
func (g *GPT2Config) Blocks() Blocks {
	s := g.Sizes()
	w, b := GPT2Attention+".weight", GPT2Attention+".bias"
	return Blocks{Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Hidden: s.HiddenSize,
		Intermediate: s.Intermediate, PerLayerHeads: true, IntermediateField: "n_inner",
		Query: []Slice{{w, 1, 0}, {b, 0, 0}},
		KV:    []Slice{{w, 1, 1}, {b, 0, 1}, {w, 1, 2}, {b, 0, 2}},
		Out:   []Slice{{GPT2AttentionOutput + ".weight", 0, 0}},
		Up:    []Slice{{GPT2FC + ".weight", 1, 0}, {GPT2FC + ".bias", 0, 0}},
		Down:  []Slice{{GPT2MLPOutput + ".weight", 0, 0}},
	}
}

// Conv1D implements Params: the Linear layers of GPT-2's blocks.
func (g *GPT2Config) Conv1D(name string) bool {
	for _, m := range []string{GPT2Attention, GPT2AttentionOutput, GPT2FC, GPT2MLPOutput} {
		if strings.Contains(name, "."+m+".") {
			return true
		}
	}
	return false
}
