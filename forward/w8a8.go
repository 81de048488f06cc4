package forward

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hubmirror/hubmirror/internal/kernels"
)

// W8A8: compressed-tensors' int-quantized checkpoints whose config group
// quantizes the Linears' input activations too, as llm-compressor's W8A8
// preset writes (input_activations: 8-bit int, symmetric, dynamic, one
// scale per token). Their int8 weights (per-channel scales) run as vLLM
// runs them on CPUs: each row of the input quantized to int8 with its own
// scale, int8×int8 products summed in int32, rescaled (kernels.W8A8).
// Activation arguments the forward pass does not implement (static scales,
// per-tensor or grouped, other widths) are refused rather than run as
// weight-only int8. The kernels keep a packed copy of each weight once used
// (the size of the int8 weights), except when Options.BeforeLayer is set:
// that caller releases each layer's pages as it goes to bound memory, so
// the weights are packed for each product instead (kernels.W8A8.Transient).

// actArgs are the input_activations of a config group.
type actArgs struct {
	NumBits   int    `json:"num_bits"`
	Type      string `json:"type"`
	Symmetric bool   `json:"symmetric"`
	Dynamic   any    `json:"dynamic"` // true, false or "local"
	Strategy  string `json:"strategy"`
}

// dynamicInt8 reports whether a are dynamic per-token symmetric int8
// activations.
func (a *actArgs) dynamicInt8() bool {
	return a.NumBits == 8 && a.Type == "int" && a.Symmetric && a.Dynamic == true && a.Strategy == "token"
}

// int8Activations returns the input_activations of the config group of
// config.json's quantization_config whose weights are 8-bit integers (the
// first such group, by name), nil when it has none.
func (s *tensorSet) int8Activations() *actArgs {
	if s.acts != nil {
		return *s.acts
	}
	var c struct {
		Q struct {
			Groups map[string]struct {
				Weights *struct {
					NumBits int    `json:"num_bits"`
					Type    string `json:"type"`
				} `json:"weights"`
				Inputs *actArgs `json:"input_activations"`
			} `json:"config_groups"`
		} `json:"quantization_config"`
	}
	var found *actArgs
	if s.g.Config != nil && json.Unmarshal(s.g.Config, &c) == nil {
		keys := make([]string, 0, len(c.Q.Groups))
		for k := range c.Q.Groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			g := c.Q.Groups[k]
			if g.Weights != nil && g.Weights.NumBits == 8 && g.Weights.Type == "int" {
				found = g.Inputs
				break
			}
		}
	}
	s.acts = &found
	return found
}

// w8a8 makes the I8 weight w (tensor wname, its scales attached) a W8A8
// one when the config quantizes its activations.
func (s *tensorSet) w8a8(w *kernels.Weight, wname string) error {
	a := s.int8Activations()
	if a == nil {
		return nil
	}
	if !a.dynamicInt8() {
		return fmt.Errorf("%w: tensor %s: quantization_config quantizes the activations as %d-bit %s, dynamic %v, strategy %q; "+
			"the forward pass runs dynamic per-token symmetric int8 activations (W8A8) only",
			ErrUnsupported, quote(wname), a.NumBits, a.Type, a.Dynamic, a.Strategy)
	}
	if w.GroupSize != 0 {
		return fmt.Errorf("%w: tensor %s: W8A8 with grouped weight scales (groups of %d); the forward pass runs per-channel scales only",
			ErrUnsupported, quote(wname), w.GroupSize)
	}
	w.W8A8 = &kernels.W8A8{Transient: s.transientW8A8}
	s.quantElems["w8a8"] += int64(w.Out) * int64(w.In)
	return nil
}
