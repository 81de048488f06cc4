package arch

import (
	"encoding/json"
	"fmt"
	"math"
)

func init() {
	// Not Phi3SmallForCausalLM (phi3small), Phi3VForCausalLM (phi3_v) nor
	// PhiMoEForCausalLM: other model types, other layers.
	register(&Family{Name: "phi3", ModelTypes: []string{"phi3"}, ClassPrefixes: []string{"Phi3For", "Phi3Model"},
		Buffers: []string{"rotary_emb.inv_freq"}, Parse: parsePhi3})
}

// Phi3Config is transformers' Phi3Config (Phi-3, Phi-3.5-mini, Phi-4-mini):
// the Llama family's fields with Phi-3's defaults (rms_norm_eps 1e-5,
// max_position_embeddings 4096, head_dim hidden_size / num_attention_heads)
// and what Phi-3 adds. Its layers are Llama's with q, k and v fused into one
// projection (Phi3QKV: the q rows, then k's, then v's) and the MLP's gate
// and up fused into another (Phi3GateUp: gate rows, then up rows); the
// rotary embedding turns the first RotaryDim dimensions of each head only,
// and with LongRoPE its frequencies depend on the sequence length.
type Phi3Config struct {
	LlamaConfig
	// PartialRotaryFactor is the fraction of each head the rotary
	// embedding turns (Phi-4-mini: 0.75); RotaryDim = int(head_dim ×
	// factor), as transformers computes it, even.
	PartialRotaryFactor float64
	RotaryDim           int
	// OriginalMaxPositionEmbeddings is the context Phi-3 was pretrained
	// with (original_max_position_embeddings, default 4096).
	OriginalMaxPositionEmbeddings int
	// LongRoPE is the "longrope" (formerly "su") rope_scaling, nil without
	// one.
	LongRoPE *LongRoPE
	// Windows is each layer's attention window: sliding_window on every
	// layer when set, 0 (full attention) otherwise.
	Windows []int
}

// LongRoPE is Phi-3's rope_scaling, as transformers'
// _compute_longrope_parameters reads it: the inverse frequencies
// 1/(factor_i · theta^(2i/RotaryDim)), with ShortFactor for sequences up to
// Original positions and LongFactor, for every position, for longer ones;
// cos and sin are multiplied by AttentionFactor.
type LongRoPE struct {
	ShortFactor, LongFactor []float64
	// Original is original_max_position_embeddings.
	Original int
	// AttentionFactor is rope_scaling's attention_factor, or
	// sqrt(1 + ln(s)/ln(Original)) for s = max_position_embeddings /
	// Original (1 when s ≤ 1).
	AttentionFactor float64
}

// Tensor names of Phi-3 layers that differ from the Llama family's,
// relative to the layer's prefix.
const (
	Phi3QKV    = "self_attn.qkv_proj"
	Phi3GateUp = "mlp.gate_up_proj"
)

// Phi3 returns the Phi-3 view of the config, nil for another family.
func (c *Config) Phi3() *Phi3Config {
	p, _ := c.Params.(*Phi3Config)
	return p
}

func parsePhi3(c *Config, raw []byte) (Params, error) {
	p := &Phi3Config{LlamaConfig: LlamaConfig{HiddenAct: "silu", RMSNormEps: 1e-5, RopeTheta: 10000,
		MaxPositionEmbeddings: 4096}, PartialRotaryFactor: 1, OriginalMaxPositionEmbeddings: 4096}
	if err := p.parse(c, raw, "phi3", 0); err != nil {
		return nil, err
	}
	var f struct {
		PartialRotaryFactor           *float64        `json:"partial_rotary_factor"`
		OriginalMaxPositionEmbeddings *int            `json:"original_max_position_embeddings"`
		RopeScaling                   json.RawMessage `json:"rope_scaling"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: phi3: %v", ErrConfig, err)
	}
	// transformers 5 writes rope_scaling, partial_rotary_factor and
	// original_max_position_embeddings into rope_parameters.
	scaling := f.RopeScaling
	rp, err := RopeParameters(c)
	if err != nil {
		return nil, err
	}
	if len(scaling) == 0 || string(scaling) == "null" {
		scaling = c.Raw["rope_parameters"]
	}
	var inner struct {
		PartialRotaryFactor           *float64 `json:"partial_rotary_factor"`
		OriginalMaxPositionEmbeddings *int     `json:"original_max_position_embeddings"`
	}
	if v, ok := rp["partial_rotary_factor"]; ok {
		_ = json.Unmarshal(v, &inner.PartialRotaryFactor)
	}
	if v, ok := rp["original_max_position_embeddings"]; ok {
		_ = json.Unmarshal(v, &inner.OriginalMaxPositionEmbeddings)
	}
	switch {
	case f.PartialRotaryFactor != nil:
		p.PartialRotaryFactor = *f.PartialRotaryFactor
	case inner.PartialRotaryFactor != nil:
		p.PartialRotaryFactor = *inner.PartialRotaryFactor
	}
	switch {
	case f.OriginalMaxPositionEmbeddings != nil:
		p.OriginalMaxPositionEmbeddings = *f.OriginalMaxPositionEmbeddings
	case inner.OriginalMaxPositionEmbeddings != nil:
		p.OriginalMaxPositionEmbeddings = *inner.OriginalMaxPositionEmbeddings
	}
	k := checker{family: "phi3"}
	if !(p.PartialRotaryFactor > 0 && p.PartialRotaryFactor <= 1) {
		k.fail("partial_rotary_factor must be in (0, 1], got %v", p.PartialRotaryFactor)
	}
	p.RotaryDim = int(float64(p.HeadDim) * p.PartialRotaryFactor)
	if k.err == nil && (p.RotaryDim < 2 || p.RotaryDim%2 != 0) {
		k.fail("head_dim %d × partial_rotary_factor %v = %d rotary dimensions; rotary embeddings need an even number of at least 2",
			p.HeadDim, p.PartialRotaryFactor, p.RotaryDim)
	}
	k.size("original_max_position_embeddings", p.OriginalMaxPositionEmbeddings)
	if k.err != nil {
		return nil, k.err
	}
	if p.LongRoPE, err = p.parseLongRoPE(scaling); err != nil {
		return nil, err
	}
	p.Windows = make([]int, p.NumHiddenLayers)
	for i := range p.Windows {
		p.Windows[i] = p.SlidingWindow
	}
	return p, nil
}

// parseLongRoPE reads rope_scaling (or transformers 5's rope_parameters):
// none, "default", or "longrope" ("su" and "yarn", which Phi3Config renames
// to "longrope"). Other types are refused, as Phi3Config refuses them.
func (p *Phi3Config) parseLongRoPE(raw json.RawMessage) (*LongRoPE, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var rs struct {
		RopeType        string    `json:"rope_type"`
		Type            string    `json:"type"`
		ShortFactor     []float64 `json:"short_factor"`
		LongFactor      []float64 `json:"long_factor"`
		Factor          *float64  `json:"factor"`
		AttentionFactor *float64  `json:"attention_factor"`
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("%w: phi3: rope_scaling: %v", ErrConfig, err)
	}
	kind := rs.RopeType
	if kind == "" {
		kind = rs.Type
	}
	switch kind {
	case "", "default":
		return nil, nil
	case "longrope", "su", "yarn":
	default:
		return nil, fmt.Errorf("%w: phi3: rope_scaling type %q (Phi3Config takes longrope, su or yarn)", ErrConfig, kind)
	}
	half := p.RotaryDim / 2
	for _, x := range []struct {
		field string
		v     []float64
	}{{"short_factor", rs.ShortFactor}, {"long_factor", rs.LongFactor}} {
		if len(x.v) != half {
			return nil, fmt.Errorf("%w: phi3: rope_scaling %s has %d entries, want %d (rotary dimensions / 2)", ErrConfig, x.field, len(x.v), half)
		}
		for i, f := range x.v {
			if !(f > 0) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%w: phi3: rope_scaling %s[%d] must be a positive finite number, got %v", ErrConfig, x.field, i, f)
			}
		}
	}
	l := &LongRoPE{ShortFactor: rs.ShortFactor, LongFactor: rs.LongFactor, Original: p.OriginalMaxPositionEmbeddings}
	// transformers 4 takes the factor from max_position_embeddings /
	// original_max_position_embeddings whatever rope_scaling says;
	// transformers 5 takes rope_scaling's factor when there is one. The
	// published configs have none; one that disagrees would compute
	// differently in the two.
	factor := float64(p.MaxPositionEmbeddings) / float64(l.Original)
	if rs.Factor != nil && math.Abs(*rs.Factor-factor) > 1e-9*factor {
		return nil, fmt.Errorf("%w: phi3: rope_scaling factor %v is not max_position_embeddings / original_max_position_embeddings = %v (transformers 4 and 5 would scale attention differently)",
			ErrConfig, *rs.Factor, factor)
	}
	switch {
	case rs.AttentionFactor != nil:
		l.AttentionFactor = *rs.AttentionFactor
		if !(l.AttentionFactor > 0) || math.IsInf(l.AttentionFactor, 0) {
			return nil, fmt.Errorf("%w: phi3: rope_scaling attention_factor must be a positive finite number, got %v", ErrConfig, l.AttentionFactor)
		}
	case factor <= 1:
		l.AttentionFactor = 1
	case l.Original < 2:
		return nil, fmt.Errorf("%w: phi3: original_max_position_embeddings %d leaves LongRoPE's attention factor undefined", ErrConfig, l.Original)
	default:
		l.AttentionFactor = math.Sqrt(1 + math.Log(factor)/math.Log(float64(l.Original)))
	}
	return l, nil
}

// Blocks implements Params: heads are cut in the fused qkv_proj (q's rows
// are part 0; k's and v's rows follow all of q's, as parts group and
// group+1 in units of the key/value heads), FFN neurons in gate_up_proj
// (gate part 0, up part 1) and down_proj. Head pruning is refused
// (NoHeadPruning).
func (p *Phi3Config) Blocks() Blocks {
	s := p.Sizes()
	group := s.Heads / s.KVHeads
	qkv := Phi3QKV + ".weight"
	return Blocks{Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Hidden: s.HiddenSize,
		Intermediate: s.Intermediate, HeadsField: "num_attention_heads", KVHeadsField: "num_key_value_heads",
		HeadDimField: "head_dim", IntermediateField: "intermediate_size",
		NoHeadPruning: "Phi3Config derives the rotary dimensions and checks short_factor and long_factor " +
			"from hidden_size / num_attention_heads (and transformers before 4.48 derives head_dim so), " +
			"so a config with fewer heads does not describe the pruned model; prune FFN neurons instead",
		Query: []Slice{{qkv, 0, 0}},
		KV:    []Slice{{qkv, 0, group}, {qkv, 0, group + 1}},
		Out:   []Slice{{LlamaAttentionOutput + ".weight", 1, 0}},
		Up:    []Slice{{Phi3GateUp + ".weight", 0, 0}, {Phi3GateUp + ".weight", 0, 1}},
		Down:  []Slice{{LlamaDown + ".weight", 1, 0}},
	}
}
