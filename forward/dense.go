package forward

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/hubmirror/hubmirror/formats"
)

// Dense is a sentence-transformers Dense module
// (sentence_transformers.models.Dense): activation(W·x + b) on the sentence
// embedding, W [Out, In] and b (when the module has a bias) stored as
// linear.weight and linear.bias in the module's directory.
type Dense struct {
	In, Out int
	W, B    []float32 // B nil without bias
	// Activation is the activation_function of the module's config, a
	// torch.nn class name.
	Activation string
	act        func(float64) float64
}

// denseActivations are the activation_function classes computed.
var denseActivations = map[string]func(float64) float64{
	"torch.nn.modules.activation.Tanh":    math.Tanh,
	"torch.nn.modules.linear.Identity":    func(x float64) float64 { return x },
	"torch.nn.modules.activation.ReLU":    func(x float64) float64 { return math.Max(x, 0) },
	"torch.nn.modules.activation.Sigmoid": func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
	"torch.nn.modules.activation.GELU":    func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) },
	"torch.nn.modules.activation.SiLU":    func(x float64) float64 { return x / (1 + math.Exp(-x)) },
}

// readDense reads the Dense module at sub: its config.json and its weights
// (model.safetensors or pytorch_model.bin).
func readDense(dir, sub string) (*Dense, error) {
	modPath := filepath.Join(dir, "modules.json")
	if !filepath.IsLocal(filepath.FromSlash(sub)) {
		return nil, fmt.Errorf("%w: %s: Dense path %q is not inside the model directory", ErrPooling, modPath, sub)
	}
	mdir := filepath.Join(dir, filepath.FromSlash(sub))
	path := filepath.Join(mdir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPooling, err)
	}
	cfg := struct {
		In         *int    `json:"in_features"`
		Out        *int    `json:"out_features"`
		Bias       *bool   `json:"bias"`
		Activation *string `json:"activation_function"`
	}{}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPooling, path, err)
	}
	if cfg.In == nil || cfg.Out == nil || *cfg.In <= 0 || *cfg.Out <= 0 {
		return nil, fmt.Errorf("%w: %s: in_features and out_features must be positive integers", ErrPooling, path)
	}
	d := &Dense{In: *cfg.In, Out: *cfg.Out, Activation: "torch.nn.modules.activation.Tanh"} // Dense's default
	if cfg.Activation != nil {
		d.Activation = *cfg.Activation
	}
	var ok bool
	if d.act, ok = denseActivations[d.Activation]; !ok {
		return nil, fmt.Errorf("%w: %s: activation_function %q is not computed (Tanh, Identity, ReLU, Sigmoid, GELU, SiLU of torch.nn)", ErrPooling, path, d.Activation)
	}
	bias := cfg.Bias == nil || *cfg.Bias // Dense's default
	g, err := formats.Open(mdir)
	if err != nil {
		return nil, fmt.Errorf("%w: Dense module %s: %v", ErrPooling, mdir, err)
	}
	defer g.Close()
	read := func(name string, shape ...int64) ([]float32, error) {
		t, ok := g.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("%w: Dense module %s: no tensor %s", ErrPooling, mdir, name)
		}
		if !t.DType.IsFloat() || len(t.Shape) != len(shape) || t.Shape[0] != shape[0] || (len(shape) == 2 && t.Shape[1] != shape[1]) {
			return nil, fmt.Errorf("%w: Dense module %s: tensor %s is %v %v, want a float tensor of shape %v", ErrPooling, mdir, name, t.DType, t.Shape, shape)
		}
		v, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%w: Dense module %s: %s: %v", ErrPooling, mdir, name, err)
		}
		return v, nil
	}
	if d.W, err = read("linear.weight", int64(d.Out), int64(d.In)); err != nil {
		return nil, err
	}
	if bias {
		if d.B, err = read("linear.bias", int64(d.Out)); err != nil {
			return nil, err
		}
	} else if _, ok := g.Tensor("linear.bias"); ok {
		return nil, fmt.Errorf("%w: Dense module %s: config.json says bias false, the weights have linear.bias", ErrPooling, mdir)
	}
	return d, nil
}

// apply computes activation(W·x + b), accumulating in float64.
func (d *Dense) apply(x []float32) []float32 {
	out := make([]float32, d.Out)
	for o := range out {
		var s float64
		for i, w := range d.W[o*d.In : (o+1)*d.In] {
			s += float64(w) * float64(x[i])
		}
		if d.B != nil {
			s += float64(d.B[o])
		}
		out[o] = float32(d.act(s))
	}
	return out
}
