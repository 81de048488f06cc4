package forward

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/hubmirror/hubmirror/weights"
)

// OutputSentenceEmbedding is the output of sentence-transformers models:
// the pooled, and normalized when the model says so, last hidden state
// [1, dim].
const OutputSentenceEmbedding = "sentence_embedding"

// ErrPooling: a sentence-transformers model's modules.json or pooling
// config cannot be read or asks for what the forward pass does not compute.
var ErrPooling = errors.New("forward: unusable sentence-transformers config")

// Pooling is how a sentence-transformers model (modules.json: a
// Transformer, a Pooling module, optionally Dense modules and a Normalize
// module) turns the last hidden state into its sentence embedding.
type Pooling struct {
	// Modes are the pooling modes in the order sentence-transformers
	// concatenates them: "cls", "max", "mean", "mean_sqrt_len",
	// "weightedmean", "lasttoken".
	Modes []string
	// Dim is the pooling config's word_embedding_dimension (the hidden
	// size the model must have).
	Dim int
	// Dense are the Dense modules after the pooling, in order.
	Dense []*Dense
	// Normalize: the embedding is L2-normalized (a Normalize module).
	Normalize bool
}

// stModule is one entry of modules.json.
type stModule struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

// poolingModes maps the pooling config's flags to the modes computed, in
// sentence-transformers' order of concatenation; the flags it names but
// the forward pass does not compute are refused.
var (
	poolingModes = []struct{ key, mode string }{
		{"pooling_mode_cls_token", "cls"},
		{"pooling_mode_max_tokens", "max"},
		{"pooling_mode_mean_tokens", "mean"},
		{"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"},
		{"pooling_mode_weightedmean_tokens", "weightedmean"},
		{"pooling_mode_lasttoken", "lasttoken"},
	}
	// poolingModeKeys lists the flags, for messages.
	poolingModeKeys = "pooling_mode_cls_token, pooling_mode_max_tokens, pooling_mode_mean_tokens, pooling_mode_mean_sqrt_len_tokens, pooling_mode_weightedmean_tokens or pooling_mode_lasttoken"
)

// ReadPooling reads the sentence-transformers configuration of the model
// directory dir: modules.json and its Pooling module's config.json. It
// returns nil and no error when dir has no modules.json.
func ReadPooling(dir string) (*Pooling, error) {
	modPath := filepath.Join(dir, "modules.json")
	raw, err := os.ReadFile(modPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var mods []stModule
	if err := json.Unmarshal(raw, &mods); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPooling, modPath, err)
	}
	var p *Pooling
	normalize := false
	for i, m := range mods {
		switch m.Type {
		case "sentence_transformers.models.Transformer":
			if i != 0 {
				return nil, fmt.Errorf("%w: %s: module %d is a Transformer; only the first may be", ErrPooling, modPath, i)
			}
		case "sentence_transformers.models.Pooling":
			if i == 0 || p != nil {
				return nil, fmt.Errorf("%w: %s: module %d: a Pooling module must follow the Transformer, once", ErrPooling, modPath, i)
			}
			if p, err = readPoolingConfig(dir, m.Path); err != nil {
				return nil, err
			}
		case "sentence_transformers.models.Dense":
			if p == nil {
				return nil, fmt.Errorf("%w: %s: module %d: a Dense module must follow the Pooling module", ErrPooling, modPath, i)
			}
			d, err := readDense(dir, m.Path)
			if err != nil {
				return nil, err
			}
			p.Dense = append(p.Dense, d)
		case "sentence_transformers.models.Normalize":
			if p == nil || i != len(mods)-1 {
				return nil, fmt.Errorf("%w: %s: module %d: Normalize must be the last module, after Pooling", ErrPooling, modPath, i)
			}
			normalize = true
		default:
			return nil, fmt.Errorf("%w: %s: module %d is %q; the forward pass computes Transformer, Pooling, Dense and Normalize", ErrPooling, modPath, i, m.Type)
		}
	}
	if len(mods) == 0 || mods[0].Type != "sentence_transformers.models.Transformer" {
		return nil, fmt.Errorf("%w: %s: the first module is not a sentence_transformers.models.Transformer", ErrPooling, modPath)
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %s: no sentence_transformers.models.Pooling module", ErrPooling, modPath)
	}
	p.Normalize = normalize
	in := len(p.Modes) * p.Dim // 0: unknown until SetPooling
	for i, d := range p.Dense {
		if in > 0 && d.In != in {
			return nil, fmt.Errorf("%w: %s: Dense module %d takes %d features, the embedding before it has %d", ErrPooling, modPath, i+1, d.In, in)
		}
		in = d.Out
	}
	return p, nil
}

// readPoolingConfig reads the config.json of the Pooling module at sub.
func readPoolingConfig(dir, sub string) (*Pooling, error) {
	if !filepath.IsLocal(filepath.FromSlash(sub)) {
		return nil, fmt.Errorf("%w: %s: Pooling path %q is not inside the model directory", ErrPooling, filepath.Join(dir, "modules.json"), sub)
	}
	path := filepath.Join(dir, filepath.FromSlash(sub), "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPooling, err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPooling, path, err)
	}
	flag := func(key string) (bool, error) {
		v, ok := cfg[key]
		if !ok || string(v) == "null" {
			return false, nil
		}
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return false, fmt.Errorf("%w: %s: %s is %s, not a boolean", ErrPooling, path, key, v)
		}
		return b, nil
	}
	p := &Pooling{}
	if v, ok := cfg["word_embedding_dimension"]; ok {
		if err := json.Unmarshal(v, &p.Dim); err != nil || p.Dim <= 0 {
			return nil, fmt.Errorf("%w: %s: word_embedding_dimension is %s, not a positive integer", ErrPooling, path, v)
		}
	}
	for _, m := range poolingModes {
		on, err := flag(m.key)
		if err != nil {
			return nil, err
		}
		if on {
			p.Modes = append(p.Modes, m.mode)
		}
	}
	if len(p.Modes) == 0 {
		return nil, fmt.Errorf("%w: %s: no pooling mode is set (%s)", ErrPooling, path, poolingModeKeys)
	}
	return p, nil
}

// PoolingOf reads the sentence-transformers configuration (ReadPooling) of
// the directory g was read from; nil when g came from no file or the
// directory has no modules.json.
func PoolingOf(g *weights.Graph) (*Pooling, error) {
	if len(g.Files) == 0 {
		return nil, nil
	}
	return ReadPooling(filepath.Dir(g.Files[0]))
}

// SetPooling makes Run and RunBatch also output sentence_embedding,
// computed by p from last_hidden_state; nil p removes it. Call it before
// the model runs.
func (m *Model) SetPooling(p *Pooling) error {
	outs := m.info.Outputs[:0:0]
	for _, o := range m.info.Outputs {
		if o != OutputSentenceEmbedding {
			outs = append(outs, o)
		}
	}
	if p != nil {
		if p.Dim != 0 && p.Dim != m.info.HiddenSize {
			return fmt.Errorf("%w: the pooling config's word_embedding_dimension is %d, the model's hidden size %d", ErrPooling, p.Dim, m.info.HiddenSize)
		}
		if len(p.Dense) > 0 && p.Dense[0].In != len(p.Modes)*m.info.HiddenSize {
			return fmt.Errorf("%w: the first Dense module takes %d features, the pooled embedding has %d", ErrPooling, p.Dense[0].In, len(p.Modes)*m.info.HiddenSize)
		}
		outs = append(outs, OutputSentenceEmbedding)
	}
	m.info.Outputs = outs
	m.pooling = p
	return nil
}

// Embed computes the sentence embedding of the hidden states x [n, hidden]
// (attention mask all ones): [len(Modes)*hidden], or the last Dense
// module's output size.
func (p *Pooling) Embed(x []float32, n, hidden int) []float32 {
	out := make([]float32, 0, len(p.Modes)*hidden)
	for _, mode := range p.Modes {
		v := make([]float32, hidden)
		switch mode {
		case "cls":
			copy(v, x[:hidden])
		case "max":
			copy(v, x[:hidden])
			for i := 1; i < n; i++ {
				for j, f := range x[i*hidden : (i+1)*hidden] {
					v[j] = max(v[j], f)
				}
			}
		case "mean", "mean_sqrt_len":
			for i := range n {
				for j, f := range x[i*hidden : (i+1)*hidden] {
					v[j] += f
				}
			}
			d := float32(n)
			if mode == "mean_sqrt_len" {
				d = float32(math.Sqrt(float64(n)))
			}
			for j := range v {
				v[j] /= d
			}
		case "weightedmean": // token i weighs i+1
			var sum float32
			for i := range n {
				w := float32(i + 1)
				for j, f := range x[i*hidden : (i+1)*hidden] {
					v[j] += w * f
				}
				sum += w
			}
			for j := range v {
				v[j] /= sum
			}
		case "lasttoken":
			copy(v, x[(n-1)*hidden:n*hidden])
		}
		out = append(out, v...)
	}
	for _, d := range p.Dense {
		out = d.apply(out)
	}
	if p.Normalize {
		var ss float64
		for _, f := range out {
			ss += float64(f) * float64(f)
		}
		norm := float32(max(math.Sqrt(ss), 1e-12))
		for j := range out {
			out[j] /= norm
		}
	}
	return out
}

// LoadPooling reads the sentence-transformers configuration of the
// directory g was read from (PoolingOf) and sets it (SetPooling): a
// sentence-transformers model then also outputs sentence_embedding.
func (m *Model) LoadPooling(g *weights.Graph) error {
	p, err := PoolingOf(g)
	if err != nil {
		return err
	}
	return m.SetPooling(p)
}

// addSentenceEmbedding appends sentence_embedding to out when the model
// has a Pooling.
func (m *Model) addSentenceEmbedding(out []Output) ([]Output, error) {
	if m.pooling == nil {
		return out, nil
	}
	for _, o := range out {
		if o.Name == OutputLastHiddenState && len(o.Shape) == 3 {
			n, h := o.Shape[1], o.Shape[2]
			e := m.pooling.Embed(o.Data, n, h)
			return append(out, Output{Name: OutputSentenceEmbedding, Shape: []int{1, len(e)}, Data: e}), nil
		}
	}
	return nil, fmt.Errorf("%w: no last_hidden_state to pool", ErrPooling)
}
