package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
)

// ErrGGUFUnsupported is wrapped by the errors about models that the GGUF
// output does not handle.
var ErrGGUFUnsupported = errors.New("quantize: unsupported for GGUF output")

// GGUFOptions configure LlamaGGUF.
type GGUFOptions struct {
	// Name is general.name; "" omits it.
	Name string
	// TokenizerDir, when it holds a tokenizer.json, has it embedded whole as
	// tokenizer.huggingface.json (see LlamaGGUF about the vocabulary).
	TokenizerDir string
	// Threads is the number of goroutines that encode one tensor; 0 means
	// runtime.GOMAXPROCS(0).
	Threads int
}

// GGUFTensor records how one checkpoint tensor was written.
type GGUFTensor struct {
	Name  string        `json:"name"`
	GGUF  string        `json:"gguf_name"`
	From  weights.DType `json:"from"`
	To    string        `json:"to"`
	Shape []int64       `json:"shape"`
	// Permuted is set for q and k projections, whose rows were reordered
	// from Hugging Face's rotary layout to ggml's.
	Permuted bool `json:"permuted,omitempty"`
}

// GGUFReport says what LlamaGGUF writes.
type GGUFReport struct {
	Format   string       `json:"format"`
	FileType string       `json:"file_type"`
	Tensors  []GGUFTensor `json:"tensors"`
	// Skipped lists checkpoint tensors not written (buffers, a tied head).
	Skipped []string `json:"skipped,omitempty"`
	// Vocabulary says what the file holds of the tokenizer.
	Vocabulary string `json:"vocabulary"`
}

// GGUFModel is a model ready for gguf.Write: its metadata and its tensors,
// whose data are computed when written.
type GGUFModel struct {
	Metadata []gguf.KV
	Tensors  []*gguf.Tensor
	Report   *GGUFReport
}

// ggufLayerNames maps the tensor names inside a Llama decoder layer to
// llama.cpp's (gguf-py's tensor_mapping for the llama architecture).
var ggufLayerNames = map[string]string{
	arch.LlamaInputNorm:         "attn_norm",
	arch.LlamaQuery:             "attn_q",
	arch.LlamaKey:               "attn_k",
	arch.LlamaValue:             "attn_v",
	arch.LlamaAttentionOutput:   "attn_output",
	arch.LlamaPostAttentionNorm: "ffn_norm",
	arch.LlamaGate:              "ffn_gate",
	arch.LlamaUp:                "ffn_up",
	arch.LlamaDown:              "ffn_down",
}

var layerName = regexp.MustCompile(`^(?:model\.)?layers\.(\d+)\.(.+)\.(weight|bias)$`)

// ggufName maps a Hugging Face Llama tensor name to llama.cpp's; ok is
// false for names it does not know.
func ggufName(name string) (gname string, ok bool) {
	switch name {
	case "model.embed_tokens.weight", "embed_tokens.weight":
		return "token_embd.weight", true
	case "model.norm.weight", "norm.weight":
		return "output_norm.weight", true
	case "lm_head.weight":
		return "output.weight", true
	}
	m := layerName.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	n, ok := ggufLayerNames[m[2]]
	if !ok {
		return "", false
	}
	return "blk." + m[1] + "." + n + "." + m[3], true
}

// LlamaGGUF lays out a Llama-family model (LlamaForCausalLM, Mistral) as
// llama.cpp's convert_hf_to_gguf.py does with --outtype q8_0: architecture
// "llama" with its hyperparameters, tensors renamed (token_embd, blk.N.attn_q,
// ..., output_norm, output), the rows of the q and k projections reordered
// from Hugging Face's rotary layout back to the interleaved one ggml's RoPE
// expects, norms and biases in F32, every matrix in Q8_0 (F16 when its rows
// are not a multiple of 32 long), dimensions in ggml's order (reversed).
//
// The vocabulary is not converted: tokenizer.ggml.model is "no_vocab", which
// llama.cpp loads as a model without a tokenizer (it runs on token ids);
// when opts.TokenizerDir holds a tokenizer.json it is embedded as
// tokenizer.huggingface.json for executors that use Hugging Face
// tokenizers. RoPE scaling, Qwen2 and tensors outside the Llama layout are
// refused (ErrGGUFUnsupported).
func LlamaGGUF(g *weights.Graph, cfg *arch.Config, opts GGUFOptions) (*GGUFModel, error) {
	if cfg == nil || cfg.Llama() == nil || (cfg.ModelType != "" && cfg.ModelType != "llama" && cfg.ModelType != "mistral") {
		name := "(no config.json)"
		if cfg != nil {
			name = cfg.Architecture()
		}
		return nil, fmt.Errorf("%w: GGUF output is for the Llama family (llama, mistral), not %s", ErrGGUFUnsupported, name)
	}
	c := cfg.Llama()
	if raw, ok := cfg.Raw["rope_scaling"]; ok && string(raw) != "null" {
		return nil, fmt.Errorf("%w: rope_scaling %s", ErrGGUFUnsupported, raw)
	}
	rep := &GGUFReport{Format: "gguf", FileType: "MOSTLY_Q8_0", Tensors: []GGUFTensor{}, Vocabulary: "none (tokenizer.ggml.model = no_vocab)"}
	md := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.type", Value: "model"},
	}
	if opts.Name != "" {
		md = append(md, gguf.KV{Key: "general.name", Value: opts.Name})
	}
	ctxLen := c.MaxPositionEmbeddings
	if ctxLen <= 0 {
		ctxLen = 2048
	}
	ropeTheta, eps := c.RopeTheta, c.RMSNormEps
	if ropeTheta == 0 {
		ropeTheta = 10000
	}
	if eps == 0 {
		eps = 1e-6 // transformers' LlamaConfig default
	}
	md = append(md,
		gguf.KV{Key: "llama.block_count", Value: uint32(c.NumHiddenLayers)},
		gguf.KV{Key: "llama.context_length", Value: uint32(ctxLen)},
		gguf.KV{Key: "llama.embedding_length", Value: uint32(c.HiddenSize)},
		gguf.KV{Key: "llama.feed_forward_length", Value: uint32(c.IntermediateSize)},
		gguf.KV{Key: "llama.attention.head_count", Value: uint32(c.NumAttentionHeads)},
		gguf.KV{Key: "llama.attention.head_count_kv", Value: uint32(c.NumKeyValueHeads)},
		gguf.KV{Key: "llama.rope.freq_base", Value: float32(ropeTheta)},
		gguf.KV{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(eps)},
		gguf.KV{Key: "general.file_type", Value: uint32(7)}, // LlamaFileType.MOSTLY_Q8_0
		gguf.KV{Key: "llama.vocab_size", Value: uint32(c.VocabSize)},
		gguf.KV{Key: "llama.rope.dimension_count", Value: uint32(c.HeadDim)},
	)
	if c.HeadDim*c.NumAttentionHeads != c.HiddenSize {
		md = append(md,
			gguf.KV{Key: "llama.attention.key_length", Value: uint32(c.HeadDim)},
			gguf.KV{Key: "llama.attention.value_length", Value: uint32(c.HeadDim)})
	}
	md = append(md,
		gguf.KV{Key: "general.quantization_version", Value: uint32(2)}, // GGML_QNT_VERSION
		gguf.KV{Key: "tokenizer.ggml.model", Value: "no_vocab"},
	)
	if opts.TokenizerDir != "" {
		tj, err := os.ReadFile(filepath.Join(opts.TokenizerDir, "tokenizer.json"))
		switch {
		case err == nil:
			md = append(md, gguf.KV{Key: "tokenizer.huggingface.json", Value: string(tj)})
			rep.Vocabulary += "; tokenizer.json embedded as tokenizer.huggingface.json"
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}

	embed, _ := g.Tensor("model.embed_tokens.weight")
	var tensors []*gguf.Tensor
	for _, t := range g.Tensors() {
		if arch.IsBuffer(t.Name) {
			rep.Skipped = append(rep.Skipped, t.Name)
			continue
		}
		if t.Name == "lm_head.weight" && embed != nil && (c.TieWordEmbeddings || (t.Storage != "" && t.Storage == embed.Storage)) {
			rep.Skipped = append(rep.Skipped, t.Name) // tied: llama.cpp uses token_embd
			continue
		}
		gname, ok := ggufName(t.Name)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s has no place in llama.cpp's Llama layout", ErrGGUFUnsupported, t.Name)
		}
		switch t.DType {
		case weights.F32, weights.F16, weights.BF16:
		default:
			return nil, fmt.Errorf("%w: tensor %s is %v", ErrGGUFUnsupported, t.Name, t.DType)
		}
		heads := c.RotaryHeads(t.Name)
		gt, err := ggufTensor(t, gname, heads, opts.Threads)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, gt)
		rep.Tensors = append(rep.Tensors, GGUFTensor{Name: t.Name, GGUF: gname, From: t.DType, To: gt.Type.String(), Shape: t.Shape, Permuted: heads > 0})
	}
	return &GGUFModel{Metadata: md, Tensors: tensors, Report: rep}, nil
}

// rotaryToGGML returns the source row of output row r of a q or k
// projection with rows split into heads of hd rows: llama.cpp's
// LlamaModel.permute (reshape to [heads, 2, hd/2, ...], swap the two middle
// axes) puts source row h*hd + s*hd/2 + i at h*hd + 2i + s. This is
// convert.RotaryToMeta's reordering.
func rotaryToGGML(r, hd int) int {
	h, k := r/hd, r%hd
	i, s := k/2, k%2
	return h*hd + s*(hd/2) + i
}

// ggufTensor returns the lazily encoded GGUF tensor of t.
func ggufTensor(t *weights.Tensor, gname string, heads, threads int) (*gguf.Tensor, error) {
	if len(t.Shape) != 1 && len(t.Shape) != 2 {
		return nil, fmt.Errorf("%w: tensor %s has shape %v", ErrGGUFUnsupported, t.Name, t.Shape)
	}
	rows, cols := int64(1), t.Shape[len(t.Shape)-1]
	if len(t.Shape) == 2 {
		rows = t.Shape[0]
	}
	if rows*cols != t.NumElements() || int64(int(rows*cols)) != rows*cols {
		return nil, fmt.Errorf("%w: tensor %s has shape %v", ErrGGUFUnsupported, t.Name, t.Shape)
	}
	var hd int
	if heads > 0 {
		// A bias is one column of rows here: permute its elements.
		n := rows
		if len(t.Shape) == 1 {
			n = cols
		}
		if n%int64(heads) != 0 || (n/int64(heads))%2 != 0 {
			return nil, fmt.Errorf("quantize: %s: %d rows do not split into %d heads of an even size", t.Name, n, heads)
		}
		hd = int(n) / heads
	}
	dims := make([]uint64, len(t.Shape))
	for i, d := range t.Shape {
		dims[len(t.Shape)-1-i] = uint64(d) // ggml order: ne[0] is the contiguous dimension
	}
	typ := gguf.TypeF32
	if len(t.Shape) == 2 {
		typ = gguf.TypeQ8_0
		if cols%gguf.Q8_0BlockLen != 0 {
			typ = gguf.TypeF16 // as llama.cpp falls back when rows do not split into blocks
		}
	}
	out := &gguf.Tensor{Name: gname, Dims: dims, Type: typ}
	out.Data = weights.SourceFunc(func() ([]byte, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		if len(t.Shape) == 1 {
			v := make([]float32, cols)
			if err := weights.DecodeFloat32(v, b, t.DType); err != nil {
				return nil, err
			}
			if hd > 0 {
				p := make([]float32, len(v))
				for r := range p {
					p[r] = v[rotaryToGGML(r, hd)]
				}
				v = p
			}
			return encodeFloats(v, typ)
		}
		m := newMatrix(int(rows), int(cols), false, t.DType, b)
		size, err := gguf.ByteSize(typ, dims)
		if err != nil {
			return nil, err
		}
		dst := make([]byte, size)
		rowBytes := int(size / rows)
		err = m.eachRowRange(threads, func(_, r0, r1 int, buf []float32) error {
			for r := r0; r < r1; r++ {
				src := r
				if hd > 0 {
					src = rotaryToGGML(r, hd)
				}
				x, err := m.row(buf, src)
				if err != nil {
					return err
				}
				row := dst[r*rowBytes : (r+1)*rowBytes]
				if typ == gguf.TypeQ8_0 {
					err = gguf.EncodeQ8_0(row, x)
				} else {
					err = weights.EncodeFloat32(row, x, weights.F16)
				}
				if err != nil {
					return fmt.Errorf("row %d: %w", src, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("quantize %s to %v: %w", t.Name, typ, err)
		}
		return dst, nil
	})
	return out, nil
}

// encodeFloats encodes a vector as F32 or F16.
func encodeFloats(v []float32, typ gguf.Type) ([]byte, error) {
	if typ == gguf.TypeF32 {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b, nil
	}
	b := make([]byte, 2*len(v))
	return b, weights.EncodeFloat32(b, v, weights.F16)
}
