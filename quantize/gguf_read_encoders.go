package quantize

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/weights"
)

// readGraph reads an encoder's GGUF file f (as ggufEncoderGGUF writes it)
// back into the Hugging Face layout of the model of config raw (cfg): the
// body under the names of its family, RoBERTa's position embeddings with
// the padding_idx + 1 rows the file leaves out restored as zeros (their
// positions are never used: RoBERTa's positions start after them), and the
// sequence classification head when the file holds one (cls, cls.output).
// The heads the file does not hold (masked-LM heads, DistilBERT's
// classifier, a ModernBERT classifier llama.cpp does not compute) are not
// in the graph, so its config.json names the family's base class
// (RobertaForMaskedLM is read as RobertaModel): the forward pass then
// computes what the file holds, and validating it against its source
// compares those outputs only (forward.ValidateOptions.PartialCandidate).
func (e *ggufEncoder) readGraph(f *gguf.File, cfg *arch.Config, raw []byte, file string) (*weights.Graph, error) {
	if a, _ := f.Get("general.architecture"); a != e.arch {
		return nil, fmt.Errorf("%w: %s: general.architecture %v, and its config.json (%s) is llama.cpp's %s", ErrGGUFRead, file, a, cfg.Architecture(), e.arch)
	}
	// The file's names back to Hugging Face's: outside the layers, and
	// whether a name lies in the body (under the task classes' prefix) or
	// in the head (at the top level).
	type hfName struct {
		name string
		body bool
	}
	back := map[string]hfName{}
	for hf, gn := range e.embeddings {
		back[gn] = hfName{hf, true}
	}
	for hf, gn := range e.classifier {
		back[gn] = hfName{hf, hf == arch.BertPooler} // BERT's pooler is part of BertModel
	}
	backLayer := map[string]string{}
	for hf, gn := range e.layerNames {
		backLayer[gn] = hf
	}
	hasHead := false
	for i := range f.Tensors {
		if strings.HasPrefix(f.Tensors[i].Name, "cls.") {
			hasHead = true
		}
	}
	class := cfg.Architecture()
	base, _, isTask := strings.Cut(class, "For")
	switch {
	case hasHead && len(cfg.Architectures) > 0 && !strings.HasSuffix(class, "ForSequenceClassification"):
		return nil, fmt.Errorf("%w: %s holds a sequence classification head (cls), its config.json's class %s has none", ErrGGUFRead, file, class)
	case !hasHead && isTask && len(cfg.Architectures) > 0:
		// The file holds the body only: the base class computes it.
		// (Without architectures, the forward pass tells the class from
		// the tensors.)
		var err error
		if raw, err = withArchitecture(raw, base+"Model"); err != nil {
			return nil, fmt.Errorf("%s: config.json: %w", file, err)
		}
	}
	prefix := ""
	if hasHead {
		prefix = e.prefixes[0]
	}
	positions := 0 // the rows of RoBERTa's position embeddings
	if r := cfg.Roberta(); r != nil {
		positions = r.MaxPositionEmbeddings
	}

	g := weights.NewGraph()
	for i := range f.Tensors {
		rt := &f.Tensors[i]
		gbase, suffix, ok := cutParam(rt.Name)
		var name string
		if m := ggufLayerName.FindStringSubmatch(rt.Name); m != nil {
			hf, known := backLayer[m[2]]
			layer, err := strconv.Atoi(m[1])
			if !known || err != nil {
				return nil, fmt.Errorf("%w: %s: tensor %s has no place in the Hugging Face layout of llama.cpp's %s", ErrGGUFRead, file, rt.Name, e.arch)
			}
			name = prefix + e.layerPrefix(layer) + hf + "." + m[3]
		} else if hf, known := back[gbase]; ok && known {
			name = hf.name + suffix
			if hf.body {
				name = prefix + name
			}
		} else {
			return nil, fmt.Errorf("%w: %s: tensor %s has no place in the Hugging Face layout of llama.cpp's %s", ErrGGUFRead, file, rt.Name, e.arch)
		}
		t, err := ggufReadTensor(rt, name, file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if rt.Name == "position_embd.weight" && e.positionOffset > 0 {
			if t, err = padRows(t, e.positionOffset, positions); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		}
		if err := g.Add(t); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	g.Config = raw
	g.Files = []string{file}
	return g, nil
}

// ggufReadTensor is the tensor rt of a GGUF file as an F32 tensor of
// Hugging Face's shape named name, decoded when its data are asked for
// (matrices also in their ggml blocks, ggufData.GGML).
func ggufReadTensor(rt *gguf.ReadTensor, name, file string) (*weights.Tensor, error) {
	if len(rt.Dims) != 1 && len(rt.Dims) != 2 {
		return nil, fmt.Errorf("%w: tensor %s has dimensions %v", gguf.ErrRead, rt.Name, rt.Dims)
	}
	shape := make([]int64, len(rt.Dims))
	for i, d := range rt.Dims {
		shape[len(rt.Dims)-1-i] = int64(d)
	}
	t := &weights.Tensor{Name: name, DType: weights.F32, Shape: shape, File: file}
	t.Data = &ggufData{rt: rt, shape: shape}
	return t, nil
}

// padRows returns the matrix t with n rows of zeros before its own, which
// makes want rows: RoBERTa's position embeddings, whose first padding_idx
// + 1 rows GGUF leaves out. The result is decoded to F32 (no ggml view).
func padRows(t *weights.Tensor, n, want int) (*weights.Tensor, error) {
	if len(t.Shape) != 2 || t.Shape[0]+int64(n) != int64(want) {
		return nil, fmt.Errorf("%w: tensor %s has shape %v: with the %d rows before padding_idx + 1 that GGUF leaves out, want %d rows (max_position_embeddings)",
			ErrGGUFRead, t.Name, t.Shape, n, want)
	}
	out := &weights.Tensor{Name: t.Name, DType: weights.F32, Shape: []int64{int64(want), t.Shape[1]}, File: t.File}
	pad := int64(n) * t.Shape[1] * 4
	out.Data = weights.SourceFunc(func() ([]byte, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != t.NumElements()*4 {
			return nil, fmt.Errorf("%w: tensor %s: %d bytes for shape %v", ErrGGUFRead, t.Name, len(b), t.Shape)
		}
		v := make([]byte, pad+int64(len(b)))
		copy(v[pad:], b)
		return v, nil
	})
	return out, nil
}

// withArchitecture returns the config.json raw with architectures [class].
func withArchitecture(raw []byte, class string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	a, err := json.Marshal([]string{class})
	if err != nil {
		return nil, err
	}
	m["architectures"] = a
	return json.Marshal(m)
}
