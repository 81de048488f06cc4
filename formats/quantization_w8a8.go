package formats

import (
	"encoding/json"

	"github.com/hubmirror/hubmirror/weights"
)

// int8Scheme names the scheme of g's int8 matrices: "w8a8" when the config
// group of config.json's quantization_config whose weights are 8-bit
// integers quantizes the input activations to int8 per token at run time
// (llm-compressor's W8A8 preset), else "int8" (weight-only).
func int8Scheme(g *weights.Graph) string {
	var c struct {
		Q struct {
			Groups map[string]struct {
				Weights *struct {
					NumBits int    `json:"num_bits"`
					Type    string `json:"type"`
				} `json:"weights"`
				Inputs *struct {
					NumBits  int    `json:"num_bits"`
					Type     string `json:"type"`
					Dynamic  any    `json:"dynamic"`
					Strategy string `json:"strategy"`
				} `json:"input_activations"`
			} `json:"config_groups"`
		} `json:"quantization_config"`
	}
	if g.Config == nil || json.Unmarshal(g.Config, &c) != nil {
		return "int8"
	}
	for _, grp := range c.Q.Groups {
		w, a := grp.Weights, grp.Inputs
		if w != nil && w.NumBits == 8 && w.Type == "int" && a != nil &&
			a.NumBits == 8 && a.Type == "int" && a.Dynamic == true && a.Strategy == "token" {
			return "w8a8"
		}
	}
	return "int8"
}
