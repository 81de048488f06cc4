package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
)

// ErrGGUFUnsupported is wrapped by the errors about models that the GGUF
// output does not handle.
var ErrGGUFUnsupported = errors.New("quantize: unsupported for GGUF output")

// GGUFOptions configure GGUF.
type GGUFOptions struct {
	// Name is general.name; "" omits it.
	Name string
	// Type is the type of the matrices: "q8_0" (the default), "f16",
	// "bf16" or "f32", or one of llama-quantize's file types "q4_0",
	// "q4_k_m", "q5_k_m" or "q6_k", whose matrices get the types of
	// llama-quantize's mix (see ggufMix). Vectors (norms, biases) are F32
	// whatever the type.
	Type string
	// TokenizerDir is the directory of tokenizer.json (and
	// tokenizer_config.json), converted to the GGUF vocabulary.
	TokenizerDir string
	// NoVocab writes no vocabulary (tokenizer.ggml.model "no_vocab", for
	// executors that take token ids) instead of requiring TokenizerDir.
	NoVocab bool
	// Threads is the number of goroutines that encode one tensor; 0 means
	// runtime.GOMAXPROCS(0).
	Threads int
}

// ggufTypes are the GGUF output types: the type of the matrices and
// general.file_type (llama.cpp's LlamaFileType).
var ggufTypes = map[string]struct {
	typ      gguf.Type
	fileType uint32
	name     string
	// mix: the types per tensor are llama-quantize's (ggufMix).
	mix bool
}{
	"f32":    {gguf.TypeF32, 0, "ALL_F32", false},
	"f16":    {gguf.TypeF16, 1, "MOSTLY_F16", false},
	"q8_0":   {gguf.TypeQ8_0, 7, "MOSTLY_Q8_0", false},
	"bf16":   {gguf.TypeBF16, 32, "MOSTLY_BF16", false},
	"q4_0":   {gguf.TypeQ4_0, 2, "MOSTLY_Q4_0", true},
	"q4_k_m": {gguf.TypeQ4_K, 15, "MOSTLY_Q4_K_M", true},
	"q5_k_m": {gguf.TypeQ5_K, 17, "MOSTLY_Q5_K_M", true},
	"q6_k":   {gguf.TypeQ6_K, 18, "MOSTLY_Q6_K", true},
}

const ggufTypeNames = "q8_0, f16, bf16, f32, q4_0, q4_k_m, q5_k_m or q6_k"

// ParseGGUFType checks a GGUF output type (q8_0, f16, bf16, f32, q4_0,
// q4_k_m, q5_k_m, q6_k; int8 and fp16 are taken for q8_0 and f16, and
// upper case for lower) and returns its name in GGUFOptions.
func ParseGGUFType(s string) (string, error) {
	s = strings.ToLower(s)
	switch s {
	case "int8":
		s = "q8_0"
	case "fp16":
		s = "f16"
	}
	if _, ok := ggufTypes[s]; !ok {
		return "", fmt.Errorf("GGUF type %q: want %s", s, ggufTypeNames)
	}
	return s, nil
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
	// Shifted is what was added to a norm's weights (Gemma's 1).
	Shifted float32 `json:"shifted,omitempty"`
}

// GGUFReport says what GGUF writes.
type GGUFReport struct {
	Format string `json:"format"`
	// Architecture is llama.cpp's name of the model's architecture.
	Architecture string       `json:"architecture"`
	FileType     string       `json:"file_type"`
	Tensors      []GGUFTensor `json:"tensors"`
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

var layerName = regexp.MustCompile(`^(?:model\.)?layers\.(\d+)\.(.+)\.(weight|bias)$`)

// ggufName maps a Hugging Face decoder tensor name to llama.cpp's in the
// family's layout; ok is false for names it does not know.
func (f *ggufFamily) ggufName(name string) (gname string, ok bool) {
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
	n, ok := f.layer[m[2]]
	if !ok {
		return "", false
	}
	return "blk." + m[1] + "." + n + "." + m[3], true
}

// GGUF lays out a decoder model as llama.cpp's convert_hf_to_gguf.py does
// (see ggufFamilies for the families): the architecture's hyperparameters,
// tensors renamed (token_embd, blk.N.attn_q, ..., output_norm, output),
// per-family changes (the rows of the q and k projections reordered to
// ggml's interleaved rotary layout for the llama architecture, Gemma's norm
// weights plus one), norms and biases in F32, every matrix in opts.Type
// (Q8_0 falls back to F16 for rows that are not a multiple of 32 long, as
// llama.cpp's converter does), dimensions in ggml's order (reversed), and
// the vocabulary of the tokenizer in opts.TokenizerDir (see readGGUFVocab).
// What llama.cpp's graph for the family cannot compute as the model does
// (other RoPE scalings, binding sliding windows where llama.cpp has none,
// Gemma's fixed attention scales and window patterns) is refused
// (ErrGGUFUnsupported), as is a tokenizer it cannot reproduce
// (ErrGGUFVocab).
func GGUF(g *weights.Graph, cfg *arch.Config, opts GGUFOptions) (*GGUFModel, error) {
	fam, err := ggufFamilyOf(cfg)
	if err != nil {
		return nil, err
	}
	c := llamaView(cfg)
	tname := opts.Type
	if tname == "" {
		tname = "q8_0"
	}
	gt, ok := ggufTypes[tname]
	if !ok {
		return nil, fmt.Errorf("%w: type %q (%s)", ErrGGUFUnsupported, tname, ggufTypeNames)
	}
	rep := &GGUFReport{Format: "gguf", Architecture: fam.arch, FileType: gt.name, Tensors: []GGUFTensor{}}
	md := []gguf.KV{
		{Key: "general.architecture", Value: fam.arch},
		{Key: "general.type", Value: "model"},
	}
	if opts.Name != "" {
		md = append(md, gguf.KV{Key: "general.name", Value: opts.Name})
	}
	hp, err := ggufHyperparameters(fam, cfg)
	if err != nil {
		return nil, err
	}
	md = append(md, hp...)
	md = append(md,
		gguf.KV{Key: "general.file_type", Value: gt.fileType},
		gguf.KV{Key: "general.quantization_version", Value: uint32(2)}, // GGML_QNT_VERSION
	)
	switch {
	case opts.NoVocab:
		md = append(md, gguf.KV{Key: "tokenizer.ggml.model", Value: "no_vocab"})
		rep.Vocabulary = "none (tokenizer.ggml.model = no_vocab)"
	case opts.TokenizerDir == "":
		return nil, fmt.Errorf("%w: no tokenizer directory (llama.cpp needs the vocabulary; --no-vocab writes the file without one)", ErrGGUFVocab)
	default:
		v, err := readGGUFVocab(opts.TokenizerDir, c.VocabSize)
		if err != nil {
			return nil, err
		}
		md = append(md, v.metadata()...)
		rep.Vocabulary = v.describe()
	}

	embed, _ := g.Tensor("model.embed_tokens.weight")
	if embed == nil {
		embed, _ = g.Tensor("embed_tokens.weight")
	}
	var mix *ggufMix
	if gt.mix {
		mix = newGGUFMix(tname, gt.typ, ggufNames(g, fam, c.TieWordEmbeddings, embed), c.NumHiddenLayers, ggufExperts(cfg),
			fam.arch == "llama" && c.NumHiddenLayers == 80 && c.NumAttentionHeads != c.NumKeyValueHeads)
	}
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
		if t.Name == "lm_head.weight" && fam.noHead {
			return nil, fmt.Errorf("%w: %s has an untied lm_head, and llama.cpp's %s graph uses the token embeddings as the head", ErrGGUFUnsupported, cfg.Architecture(), fam.arch)
		}
		gname, ok := fam.ggufName(t.Name)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s has no place in llama.cpp's %s layout", ErrGGUFUnsupported, t.Name, fam.arch)
		}
		switch t.DType {
		case weights.F32, weights.F16, weights.BF16:
		default:
			return nil, fmt.Errorf("%w: tensor %s is %v", ErrGGUFUnsupported, t.Name, t.DType)
		}
		heads := 0
		if fam.permuteQK {
			heads = c.RotaryHeads(t.Name)
		}
		var shift float32
		if fam.normShift != 0 && len(t.Shape) == 1 && strings.HasSuffix(t.Name, "norm.weight") {
			shift = fam.normShift
		}
		typ := gt.typ
		if mix != nil {
			var ne0 int64
			if len(t.Shape) > 0 {
				ne0 = t.Shape[len(t.Shape)-1]
			}
			if typ, err = mix.typeOf(gname, len(t.Shape), ne0); err != nil {
				return nil, err
			}
		}
		out, err := ggufTensor(t, gname, typ, heads, shift, opts.Threads)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, out)
		rep.Tensors = append(rep.Tensors, GGUFTensor{Name: t.Name, GGUF: gname, From: t.DType, To: out.Type.String(), Shape: t.Shape, Permuted: heads > 0, Shifted: shift})
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
func ggufTensor(t *weights.Tensor, gname string, matType gguf.Type, heads int, shift float32, threads int) (*gguf.Tensor, error) {
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
		typ = matType
		if typ == gguf.TypeQ8_0 && cols%gguf.Q8_0BlockLen != 0 {
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
			for i := range v {
				v[i] += shift
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
				switch typ {
				case gguf.TypeQ8_0:
					err = gguf.EncodeQ8_0(row, x)
				case gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K:
					err = gguf.Encode(typ, row, x)
				case gguf.TypeF32:
					for i, f := range x {
						binary.LittleEndian.PutUint32(row[4*i:], math.Float32bits(f))
					}
				case gguf.TypeBF16:
					err = weights.EncodeFloat32(row, x, weights.BF16)
				default:
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
