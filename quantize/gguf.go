package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
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
	// Expert is the place of an expert's matrix in the stacked tensor
	// GGUF (ffn_*_exps), nil for the other tensors.
	Expert *int `json:"expert,omitempty"`
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

// GGUF lays out a model as llama.cpp's convert_hf_to_gguf.py does: an
// encoder (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, DistilBERT, ModernBERT) as
// ggufEncoderGGUF says, a decoder (see ggufFamilies for the families) with
// the architecture's hyperparameters,
// tensors renamed (token_embd, blk.N.attn_q, ..., output_norm, output),
// per-family changes (the rows of the q and k projections reordered to
// ggml's interleaved rotary layout for the llama architecture, Gemma's norm
// weights plus one, Phi-3's fused matrices kept fused and its LongRoPE
// factors as tensors, the experts of an MoE layer stacked into one 3-D
// tensor per projection), norms, biases and routers in F32, every matrix
// in opts.Type
// (Q8_0 falls back to F16 for rows that are not a multiple of 32 long, as
// llama.cpp's converter does), dimensions in ggml's order (reversed), and
// the vocabulary of the tokenizer in opts.TokenizerDir (see readGGUFVocab).
// What llama.cpp's graph for the family cannot compute as the model does
// (other RoPE scalings, binding sliding windows where llama.cpp has none,
// Gemma's fixed attention scales and window patterns, dense layers in an
// MoE model, routing weights normalised otherwise than llama.cpp fixes
// them) is refused
// (ErrGGUFUnsupported), as is a tokenizer it cannot reproduce
// (ErrGGUFVocab).
func GGUF(g *weights.Graph, cfg *arch.Config, opts GGUFOptions) (*GGUFModel, error) {
	// The encoder families: see ggufEncoderGGUF.
	if e, err := ggufEncoderOf(cfg); err != nil || e != nil {
		if err != nil {
			return nil, err
		}
		return ggufEncoderGGUF(g, cfg, e, opts)
	}
	fam, err := ggufFamilyOf(cfg)
	if err != nil {
		return nil, err
	}
	if g, _, err = convert.PerExpert(g, cfg); err != nil { // transformers 5's fused experts, as the Hub stores them
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
	md := ggufGeneral(fam.arch, opts.Name)
	hp, err := ggufHyperparameters(fam, cfg)
	if err != nil {
		return nil, err
	}
	md = append(md, hp...)
	md = append(md, ggufFileType(gt.fileType)...)
	vocab, desc, err := ggufVocabulary(opts, func(dir string) ([]gguf.KV, string, error) {
		v, err := readGGUFVocab(dir, c.VocabSize)
		if err != nil {
			return nil, "", err
		}
		if err := ggufPhi3Name(opts.Name, v.tokens); err != nil {
			return nil, "", err
		}
		return v.metadata(), v.describe(), nil
	})
	if err != nil {
		return nil, err
	}
	md, rep.Vocabulary = append(md, vocab...), desc

	embed, _ := g.Tensor("model.embed_tokens.weight")
	if embed == nil {
		embed, _ = g.Tensor("embed_tokens.weight")
	}
	experts, err := fam.expertStacks(g, cfg)
	if err != nil {
		return nil, err
	}
	var mix *ggufMix
	if gt.mix {
		names := ggufNames(g, fam, c.TieWordEmbeddings, embed)
		for _, t := range g.Tensors() {
			if st, ok := experts.of[t.Name]; ok && st.first == t.Name {
				names = append(names, st.name)
			}
		}
		mix = newGGUFMix(tname, gt.typ, names, c.NumHiddenLayers, ggufExperts(cfg),
			fam.arch == "llama" && c.NumHiddenLayers == 80 && c.NumAttentionHeads != c.NumKeyValueHeads)
	}
	var tensors []*gguf.Tensor
	head := false
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
		if st, ok := experts.of[t.Name]; ok {
			if st.first != t.Name {
				continue // written with the stack's first expert
			}
			typ, err := mixType(mix, gt.typ, st.name, append([]int64{int64(len(st.experts))}, st.experts[0].Shape...))
			if err != nil {
				return nil, err
			}
			out, err := ggufStack(st, typ, opts.Threads)
			if err != nil {
				return nil, err
			}
			tensors = append(tensors, out)
			for e, x := range st.experts {
				e := e
				rep.Tensors = append(rep.Tensors, GGUFTensor{Name: x.Name, GGUF: st.name, From: x.DType, To: out.Type.String(), Shape: x.Shape, Expert: &e})
			}
			continue
		}
		gname, ok := fam.ggufName(t.Name)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s has no place in llama.cpp's %s layout", ErrGGUFUnsupported, t.Name, fam.arch)
		}
		typ, err := mixType(mix, gt.typ, gname, t.Shape)
		if err != nil {
			return nil, err
		}
		out, err := fam.tensor(t, gname, c, typ, opts.Threads)
		if err != nil {
			return nil, err
		}
		if gname == "output.weight" {
			head = true
		}
		tensors = append(tensors, out)
		rep.Tensors = append(rep.Tensors, GGUFTensor{Name: t.Name, GGUF: gname, From: t.DType, To: out.Type.String(), Shape: t.Shape,
			Permuted: fam.permuteQK && c.RotaryHeads(t.Name) > 0, Shifted: fam.shift(t)})
	}
	if fam.needsHead && !head {
		if embed == nil {
			return nil, fmt.Errorf("%w: %s has neither lm_head nor token embeddings, and llama.cpp's %s graph needs output.weight", ErrGGUFUnsupported, cfg.Architecture(), fam.arch)
		}
		// Tied: llama.cpp's graph requires output.weight, so the
		// embeddings are written twice.
		typ, err := mixType(mix, gt.typ, "output.weight", embed.Shape)
		if err != nil {
			return nil, err
		}
		out, err := fam.tensor(embed, "output.weight", c, typ, opts.Threads)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, out)
		rep.Tensors = append(rep.Tensors, GGUFTensor{Name: embed.Name, GGUF: "output.weight", From: embed.DType, To: out.Type.String(), Shape: embed.Shape})
	}
	if fam.extra != nil {
		ts, r, err := fam.extra(cfg)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, ts...)
		rep.Tensors = append(rep.Tensors, r...)
	}
	return &GGUFModel{Metadata: md, Tensors: tensors, Report: rep}, nil
}

// mixType is the type of GGUF tensor gname of the given shape: the file
// type's matrix type, or for llama-quantize's mixes (mix set) the type the
// mix gives it.
func mixType(mix *ggufMix, def gguf.Type, gname string, shape []int64) (gguf.Type, error) {
	if mix == nil {
		return def, nil
	}
	var ne0 int64
	if len(shape) > 0 {
		ne0 = shape[len(shape)-1]
	}
	return mix.typeOf(gname, len(shape), ne0)
}

// ggufPhi3Tokens are the tokens whose attributes llama.cpp's vocabulary
// loader sets when general.name contains "phi-3" or "phi3" (whatever the
// architecture), looking each up with std::map::at: a vocabulary without
// one of them makes llama.cpp abort loading (std::out_of_range).
var ggufPhi3Tokens = []string{"</s>", "<unk>", "<s>", "<|endoftext|>"}

// ggufPhi3Name refuses a name that llama.cpp takes for Phi-3's with a
// vocabulary that lacks Phi-3's special tokens.
func ggufPhi3Name(name string, tokens []string) error {
	lower := strings.ToLower(name)
	if !strings.Contains(lower, "phi-3") && !strings.Contains(lower, "phi3") {
		return nil
	}
	for _, want := range ggufPhi3Tokens {
		if !slices.Contains(tokens, want) {
			return fmt.Errorf("%w: general.name %q: llama.cpp takes a model named phi-3 or phi3 for Phi-3 and fails to load it unless its vocabulary has the token %q (give the model another name)",
				ErrGGUFVocab, name, want)
		}
	}
	return nil
}

// shift is what is added to t's values in the file: Gemma's norms get 1.
func (f *ggufFamily) shift(t *weights.Tensor) float32 {
	if f.normShift != 0 && len(t.Shape) == 1 && strings.HasSuffix(t.Name, "norm.weight") {
		return f.normShift
	}
	return 0
}

// tensor returns the GGUF tensor gname of the checkpoint tensor t:
// checked, q/k rows reordered where the family does it, norms shifted,
// matrices in matType unless the family keeps them F32.
func (f *ggufFamily) tensor(t *weights.Tensor, gname string, c *arch.LlamaConfig, matType gguf.Type, threads int) (*gguf.Tensor, error) {
	switch t.DType {
	case weights.F32, weights.F16, weights.BF16:
	default:
		return nil, fmt.Errorf("%w: tensor %s is %v", ErrGGUFUnsupported, t.Name, t.DType)
	}
	heads := 0
	if f.permuteQK {
		heads = c.RotaryHeads(t.Name)
	}
	if f.float32[ggufBase(gname)] {
		matType = gguf.TypeF32
	}
	return ggufTensor(t, gname, matType, heads, f.shift(t), threads)
}

// ggufBase is a GGUF tensor name without blk.N. and .weight/.bias.
func ggufBase(gname string) string {
	if strings.HasPrefix(gname, "blk.") {
		if i := strings.IndexByte(gname[4:], '.'); i >= 0 {
			gname = gname[4+i+1:]
		}
	}
	return strings.TrimSuffix(strings.TrimSuffix(gname, ".weight"), ".bias")
}

// An expertStack is the experts' matrices of one projection of one MoE
// layer, written as one 3-D tensor [experts, rows, cols] (ggml's {cols,
// rows, experts}) as convert_hf_to_gguf.py stacks them.
type expertStack struct {
	name    string // blk.N.ffn_{gate,up,down}_exps.weight
	first   string // the checkpoint name of expert 0's matrix
	experts []*weights.Tensor
}

type expertStacks struct {
	of map[string]*expertStack // checkpoint name -> its stack
}

var expertName = regexp.MustCompile(`^(?:model\.)?layers\.(\d+)\.(.+)\.experts\.(\d+)\.([^.]+)\.weight$`)

// expertStacks groups the experts' matrices of g by layer and projection,
// checking that each stack has every expert (cfg's count) and one shape.
func (f *ggufFamily) expertStacks(g *weights.Graph, cfg *arch.Config) (expertStacks, error) {
	out := expertStacks{of: map[string]*expertStack{}}
	if f.experts == "" {
		return out, nil
	}
	var n int
	switch {
	case cfg.Mixtral() != nil:
		n = cfg.Mixtral().Experts
	case cfg.Qwen2MoE() != nil:
		n = cfg.Qwen2MoE().Experts
	case cfg.Qwen3MoE() != nil:
		n = cfg.Qwen3MoE().Experts
	}
	stacks := map[string]*expertStack{}
	var order []*expertStack
	for _, t := range g.Tensors() {
		m := expertName.FindStringSubmatch(t.Name)
		if m == nil || m[2] != f.experts {
			continue
		}
		proj, ok := f.expertNames[m[4]]
		if !ok {
			return out, fmt.Errorf("%w: tensor %s has no place in llama.cpp's %s layout", ErrGGUFUnsupported, t.Name, f.arch)
		}
		e, _ := strconv.Atoi(m[3])
		if e >= n {
			return out, fmt.Errorf("%w: tensor %s: expert %d of %d", ErrGGUFUnsupported, t.Name, e, n)
		}
		gname := "blk." + m[1] + "." + proj + ".weight"
		st := stacks[gname]
		if st == nil {
			st = &expertStack{name: gname, experts: make([]*weights.Tensor, n)}
			stacks[gname] = st
			order = append(order, st)
		}
		if st.experts[e] != nil {
			return out, fmt.Errorf("%w: tensor %s: expert %d twice", ErrGGUFUnsupported, t.Name, e)
		}
		st.experts[e] = t
		out.of[t.Name] = st
	}
	for _, st := range order {
		for e, x := range st.experts {
			if x == nil {
				return out, fmt.Errorf("%w: %s: expert %d of %d is missing", ErrGGUFUnsupported, st.name, e, n)
			}
			if len(x.Shape) != 2 || !slices.Equal(x.Shape, st.experts[0].Shape) || x.DType != st.experts[0].DType {
				return out, fmt.Errorf("%w: %s: expert %d is %v %v, expert 0 %v %v", ErrGGUFUnsupported, x.Name, e, x.DType, x.Shape, st.experts[0].DType, st.experts[0].Shape)
			}
			switch x.DType {
			case weights.F32, weights.F16, weights.BF16:
			default:
				return out, fmt.Errorf("%w: tensor %s is %v", ErrGGUFUnsupported, x.Name, x.DType)
			}
		}
		// The first of the stack in the checkpoint's order writes it.
		for _, t := range g.Tensors() {
			if out.of[t.Name] == st {
				st.first = t.Name
				break
			}
		}
	}
	return out, nil
}

// ggufStack returns the lazily encoded 3-D tensor of a stack: each
// expert's matrix encoded as a 2-D tensor is, one after the other.
func ggufStack(st *expertStack, matType gguf.Type, threads int) (*gguf.Tensor, error) {
	parts := make([]*gguf.Tensor, len(st.experts))
	for e, x := range st.experts {
		p, err := ggufTensor(x, st.name, matType, 0, 0, threads)
		if err != nil {
			return nil, err
		}
		parts[e] = p
	}
	dims := append(slices.Clone(parts[0].Dims), uint64(len(parts)))
	out := &gguf.Tensor{Name: st.name, Dims: dims, Type: parts[0].Type}
	out.Data = weights.SourceFunc(func() ([]byte, error) {
		var b []byte
		for _, p := range parts {
			d, err := p.Data.Bytes()
			if err != nil {
				return nil, err
			}
			if b == nil {
				b = make([]byte, 0, len(d)*len(parts))
			}
			b = append(b, d...)
		}
		return b, nil
	})
	return out, nil
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

// ggufGeneral is the metadata that opens a file of the llama.cpp
// architecture arch (named name when not "").
func ggufGeneral(arch, name string) []gguf.KV {
	md := []gguf.KV{
		{Key: "general.architecture", Value: arch},
		{Key: "general.type", Value: "model"},
	}
	if name != "" {
		md = append(md, gguf.KV{Key: "general.name", Value: name})
	}
	return md
}

// ggufFileType is the metadata of the file's llama.cpp file type.
func ggufFileType(fileType uint32) []gguf.KV {
	return []gguf.KV{
		{Key: "general.file_type", Value: fileType},
		{Key: "general.quantization_version", Value: uint32(2)}, // GGML_QNT_VERSION
	}
}

// ggufVocabulary is the vocabulary metadata of a file and its description
// for the report: none with --no-vocab, else what read makes of the
// tokenizer directory.
func ggufVocabulary(opts GGUFOptions, read func(dir string) ([]gguf.KV, string, error)) ([]gguf.KV, string, error) {
	switch {
	case opts.NoVocab:
		return []gguf.KV{{Key: "tokenizer.ggml.model", Value: "no_vocab"}}, "none (tokenizer.ggml.model = no_vocab)", nil
	case opts.TokenizerDir == "":
		return nil, "", fmt.Errorf("%w: no tokenizer directory (llama.cpp needs the vocabulary; --no-vocab writes the file without one)", ErrGGUFVocab)
	}
	return read(opts.TokenizerDir)
}
