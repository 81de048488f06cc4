package formats

import (
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// An int8 matrix is reported as w8a8 when the int8 config group quantizes
// the activations per token at run time, as int8 otherwise (no config,
// weight-only config, static activations).
func TestInt8SchemeW8A8(t *testing.T) {
	const w8a8 = `{"quantization_config":{"config_groups":{"group_0":{"weights":{"num_bits":8,"type":"int"},
		"input_activations":{"num_bits":8,"type":"int","symmetric":true,"dynamic":true,"strategy":"token"}}}}}`
	const static = `{"quantization_config":{"config_groups":{"group_0":{"weights":{"num_bits":8,"type":"int"},
		"input_activations":{"num_bits":8,"type":"int","symmetric":true,"dynamic":false,"strategy":"tensor"}}}}}`
	const weightOnly = `{"quantization_config":{"config_groups":{"group_0":{"weights":{"num_bits":8,"type":"int"},"input_activations":null}}}}`
	for _, c := range []struct{ config, want string }{{w8a8, "w8a8 channel"}, {static, "int8 channel"}, {weightOnly, "int8 channel"}, {"", "int8 channel"}} {
		g := weights.NewGraph()
		if c.config != "" {
			g.Config = []byte(c.config)
		}
		w, err := weights.NewTensor("m.weight", weights.I8, []int64{2, 4}, make([]byte, 8))
		if err != nil {
			t.Fatal(err)
		}
		s, err := weights.FromFloat32("m.weight_scale", weights.F32, []int64{2, 1}, []float32{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(w); err != nil {
			t.Fatal(err)
		}
		if err := g.Add(s); err != nil {
			t.Fatal(err)
		}
		q := Quantization(g)
		if len(q) != 1 || q[0].String() != c.want || q[0].Modules != 1 {
			t.Errorf("config %q: %v, want %s", c.config, q, c.want)
		}
	}
}
