package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/internal/mmap"
	"github.com/hubmirror/hubmirror/weights"
)

func init() { formats.RegisterGGUF(OpenGGUF) }

// ErrGGUFRead is wrapped by the errors about a GGUF file that OpenGGUF
// cannot read as a model.
var ErrGGUFRead = errors.New("quantize: cannot read GGUF as a model")

var ggufLayerName = regexp.MustCompile(`^blk\.(\d+)\.(.+)\.(weight|bias)$`)

// OpenGGUF reads a GGUF file laid out as GGUF writes it (and as llama.cpp's
// convert_hf_to_gguf.py does for the same families) back into a Graph with
// Hugging Face's names and layout, for the model config (config.json)
// raw: names from the family's table, the q and k rows put back in Hugging
// Face's rotary order for the llama architecture, Gemma's norms minus one,
// the stacked experts split into one matrix per expert, Phi-3's fused
// matrices kept fused and its rope factors dropped (the config holds them),
// a head that is a copy of tied embeddings dropped. Every tensor is F32,
// dequantized when its data are asked for, so that memory holds about one
// tensor at a time; the file is mapped. The forward pass takes the
// matrices in their ggml blocks instead (ggufData.GGML), viewing the
// mapping, whose pages the graph's Release hands back. Without a config (config nil),
// one is synthesized from the GGUF metadata (ggufConfig). The encoders'
// files (bert, modern-bert) are read as readGraph of ggufEncoder says.
func OpenGGUF(path string, config []byte) (*weights.Graph, error) {
	return mmap.OpenGraph(path, "gguf", func(data []byte, name string) (*weights.Graph, error) {
		f, err := gguf.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		raw := config
		if raw == nil {
			if raw, err = ggufConfig(f); err != nil {
				return nil, fmt.Errorf("%s (no config.json beside it): %w", name, err)
			}
		}
		cfg, err := arch.ParseConfig(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: config: %w", name, err)
		}
		if e, err := ggufEncoderOf(cfg); err != nil || e != nil {
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			return e.readGraph(f, cfg, raw, name) // gguf_read_encoders.go
		}
		fam, err := ggufFamilyOf(cfg)
		if err != nil {
			return nil, err
		}
		if a, _ := f.Get("general.architecture"); a != fam.arch {
			return nil, fmt.Errorf("%w: %s: general.architecture %v, and its config.json (%s) is llama.cpp's %s", ErrGGUFRead, name, a, cfg.Architecture(), fam.arch)
		}
		g, err := fam.readGraph(f, llamaView(cfg), name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		g.Config = raw
		g.Files = []string{name}
		return g, nil
	})
}

// readGraph inverts GGUF's layout of f's tensors.
func (fam *ggufFamily) readGraph(f *gguf.File, c *arch.LlamaConfig, file string) (*weights.Graph, error) {
	back := map[string]string{}
	for hf, g := range fam.layer {
		back[g] = hf
	}
	backExp := map[string]string{}
	for hf, g := range fam.expertNames {
		backExp[g] = hf
	}
	g := weights.NewGraph()
	add := func(name string, rt *gguf.ReadTensor, heads int, shift float32) error {
		shape := make([]int64, len(rt.Dims))
		for i, d := range rt.Dims {
			shape[len(rt.Dims)-1-i] = int64(d)
		}
		if len(shape) != 1 && len(shape) != 2 {
			return fmt.Errorf("%w: tensor %s has dimensions %v", gguf.ErrRead, rt.Name, rt.Dims)
		}
		n := shape[0] // rows, or the elements of a vector
		hd := 0
		if heads > 0 {
			if n%int64(heads) != 0 || (n/int64(heads))%2 != 0 {
				return fmt.Errorf("%w: tensor %s: %d rows do not split into %d heads of an even size", gguf.ErrRead, rt.Name, n, heads)
			}
			hd = int(n) / heads
		}
		if len(shape) != 1 || !strings.HasSuffix(name, "norm.weight") {
			shift = 0 // Gemma's norms only
		}
		t := &weights.Tensor{Name: name, DType: weights.F32, Shape: shape, File: file}
		t.Data = &ggufData{rt: rt, shape: shape, hd: hd, shift: shift}
		return g.Add(t)
	}
	for i := range f.Tensors {
		rt := &f.Tensors[i]
		switch rt.Name {
		case "token_embd.weight":
			if err := add("model.embed_tokens.weight", rt, 0, 0); err != nil {
				return nil, err
			}
			continue
		case "output_norm.weight":
			if err := add("model.norm.weight", rt, 0, fam.normShift); err != nil {
				return nil, err
			}
			continue
		case "output.weight":
			if c.TieWordEmbeddings {
				continue // a copy of token_embd (qwen2moe)
			}
			if err := add("lm_head.weight", rt, 0, 0); err != nil {
				return nil, err
			}
			continue
		case "rope_factors_long.weight", "rope_factors_short.weight":
			continue // the config's LongRoPE factors
		}
		m := ggufLayerName.FindStringSubmatch(rt.Name)
		if m == nil {
			return nil, fmt.Errorf("%w: tensor %s has no place in the Hugging Face layout of llama.cpp's %s", ErrGGUFRead, rt.Name, fam.arch)
		}
		if proj, ok := backExp[m[2]]; ok && m[3] == "weight" {
			if len(rt.Dims) != 3 {
				return nil, fmt.Errorf("%w: tensor %s has dimensions %v, want 3", gguf.ErrRead, rt.Name, rt.Dims)
			}
			ne := int(rt.Dims[2])
			per := len(rt.Data) / ne
			for e := 0; e < ne; e++ {
				part := &gguf.ReadTensor{Name: fmt.Sprintf("%s[%d]", rt.Name, e), Dims: rt.Dims[:2], Type: rt.Type, Data: rt.Data[e*per : (e+1)*per]}
				name := fmt.Sprintf("model.layers.%s.%s.experts.%d.%s.weight", m[1], fam.experts, e, proj)
				if err := add(name, part, 0, 0); err != nil {
					return nil, err
				}
			}
			continue
		}
		hf, ok := back[m[2]]
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s has no place in the Hugging Face layout of llama.cpp's %s", ErrGGUFRead, rt.Name, fam.arch)
		}
		name := "model.layers." + m[1] + "." + hf + "." + m[3]
		heads := 0
		if fam.permuteQK {
			heads = c.RotaryHeads(name)
		}
		if err := add(name, rt, heads, fam.normShift); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// ggufData is the data of a GGUF tensor in Hugging Face's layout. Bytes
// decodes it to F32 (the q and k rows put back in Hugging Face's rotary
// order when hd > 0, Gemma's norms minus shift); GGML gives a matrix in
// its ggml blocks, viewing the file, with the q and k order as a row map,
// for the forward pass, whose kernels decode the blocks panel by panel
// (so that validating a GGUF file holds no f32 copy of its weights, and
// the mapped pages are released as the other readers' are).
type ggufData struct {
	rt    *gguf.ReadTensor
	shape []int64 // Hugging Face's: [rows, cols] or [n]
	hd    int     // head size of the rotary permutation, 0 for none
	shift float32 // subtracted from every value (Gemma's norms)
}

// Bytes returns the values as F32, decoded from the file.
func (d *ggufData) Bytes() ([]byte, error) {
	rt, shape := d.rt, d.shape
	if len(shape) == 2 {
		v, err := decodeRows(rt, int(shape[0]), int(shape[1]), d.hd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt.Name, err)
		}
		return float32Bytes(v), nil
	}
	v, err := rt.Dequantize()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rt.Name, err)
	}
	if n := int(shape[0]); d.hd > 0 {
		cols := len(v) / n
		u := make([]float32, len(v))
		for r := 0; r < n; r++ {
			src := rotaryToGGML(r, d.hd)
			copy(u[src*cols:(src+1)*cols], v[r*cols:(r+1)*cols])
		}
		v = u
	}
	if d.shift != 0 {
		for i := range v {
			v[i] -= d.shift
		}
	}
	return float32Bytes(v), nil
}

// GGML returns a matrix's blocks as a kernel weight of its Hugging Face
// shape, viewing the file's bytes; row o of the weight is the file's row
// RowMap[o] for the q and k rows of the llama architecture.
func (d *ggufData) GGML() (*kernels.GGML, error) {
	if len(d.shape) != 2 || d.shift != 0 {
		return nil, fmt.Errorf("%w: tensor %s is not a matrix", gguf.ErrRead, d.rt.Name)
	}
	w := &kernels.GGML{Type: kernels.GGMLType(d.rt.Type), Out: int(d.shape[0]), In: int(d.shape[1]), Data: d.rt.Data}
	if int64(w.Out) != d.shape[0] || int64(w.In) != d.shape[1] {
		return nil, fmt.Errorf("%w: tensor %s has shape %v", gguf.ErrRead, d.rt.Name, d.shape)
	}
	if d.hd > 0 {
		w.RowMap = make([]int32, w.Out)
		for r := range w.Out {
			w.RowMap[rotaryToGGML(r, d.hd)] = int32(r)
		}
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("%w: tensor %s: %v", gguf.ErrRead, d.rt.Name, err)
	}
	return w, nil
}

// GGUFValidationKind is the kind of comparison (forward.Kind's name) that
// judges a GGUF file of type typ (GGUFOptions.Type) against its source:
// exact for f32, f16 and bf16 for those, int8 for q8_0 and q6_k, kquant
// for the 4- and 5-bit types (q4_0, q4_k_m, q5_k_m).
func GGUFValidationKind(typ string) string {
	switch typ {
	case "f32":
		return "exact"
	case "f16", "bf16":
		return typ
	case "", "q8_0", "q6_k":
		return "int8"
	}
	return "kquant"
}

// float32Bytes returns v as little-endian bytes: a view of v on a
// little-endian machine (no second copy of a dequantized tensor), else a
// copy.
func float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// decodeRows dequantizes the matrix rt of rows x cols values on
// GOMAXPROCS goroutines, each ggml row r into Hugging Face's row r, or
// rotaryToGGML(r, hd) when hd > 0 (q and k of the llama architecture).
func decodeRows(rt *gguf.ReadTensor, rows, cols, hd int) ([]float32, error) {
	if rows == 0 || len(rt.Data)%rows != 0 {
		return nil, fmt.Errorf("%w: %d bytes do not split into %d rows", gguf.ErrRead, len(rt.Data), rows)
	}
	rowBytes := len(rt.Data) / rows
	v := make([]float32, rows*cols)
	decode := func(dst []float32, src []byte) error {
		switch rt.Type {
		case gguf.TypeF32:
			return weights.DecodeFloat32(dst, src, weights.F32)
		case gguf.TypeF16:
			return weights.DecodeFloat32(dst, src, weights.F16)
		case gguf.TypeBF16:
			return weights.DecodeFloat32(dst, src, weights.BF16)
		}
		return gguf.Decode(rt.Type, dst, src)
	}
	workers := min(runtime.GOMAXPROCS(0), rows)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r0, r1 := rows*w/workers, rows*(w+1)/workers
			if hd == 0 {
				errs[w] = decode(v[r0*cols:r1*cols], rt.Data[r0*rowBytes:r1*rowBytes])
				return
			}
			for r := r0; r < r1 && errs[w] == nil; r++ {
				d := rotaryToGGML(r, hd)
				errs[w] = decode(v[d*cols:(d+1)*cols], rt.Data[r*rowBytes:(r+1)*rowBytes])
			}
		}(w)
	}
	wg.Wait()
	return v, errors.Join(errs...)
}
