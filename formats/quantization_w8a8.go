package formats

import (
	"encoding/json"
	"sort"

	"github.com/hubmirror/hubmirror/weights"
)

// ActivationArgs are the input_activations of a compressed-tensors config
// group.
type ActivationArgs struct {
	NumBits   int    `json:"num_bits"`
	Type      string `json:"type"`
	Symmetric bool   `json:"symmetric"`
	Dynamic   any    `json:"dynamic"` // true, false or "local"
	Strategy  string `json:"strategy"`
}

// DynamicInt8 reports dynamic per-token symmetric int8 activations
// (llm-compressor's W8A8 preset).
func (a *ActivationArgs) DynamicInt8() bool {
	return a.NumBits == 8 && a.Type == "int" && a.Symmetric && a.Dynamic == true && a.Strategy == "token"
}

// Int8Activations returns the input_activations of the config group of
// config's quantization_config whose weights are 8-bit integers (the first
// such group, by name), nil when it has none or config does not parse.
func Int8Activations(config []byte) *ActivationArgs {
	var c struct {
		Q struct {
			Groups map[string]struct {
				Weights *struct {
					NumBits int    `json:"num_bits"`
					Type    string `json:"type"`
				} `json:"weights"`
				Inputs *ActivationArgs `json:"input_activations"`
			} `json:"config_groups"`
		} `json:"quantization_config"`
	}
	if config == nil || json.Unmarshal(config, &c) != nil {
		return nil
	}
	keys := make([]string, 0, len(c.Q.Groups))
	for k := range c.Q.Groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if w := c.Q.Groups[k].Weights; w != nil && w.NumBits == 8 && w.Type == "int" {
			return c.Q.Groups[k].Inputs
		}
	}
	return nil
}

// int8Scheme names the scheme of g's int8 matrices: "w8a8" when their
// config group quantizes the input activations to int8 per token at run
// time (Int8Activations, DynamicInt8), else "int8" (weight-only).
func int8Scheme(g *weights.Graph) string {
	if a := Int8Activations(g.Config); a != nil && a.DynamicInt8() {
		return "w8a8"
	}
	return "int8"
}
