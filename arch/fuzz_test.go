package arch

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig: no config.json makes ParseConfig panic, and a config it
// accepts describes a model that can exist: positive sizes, key/value heads
// that divide the heads.
func FuzzParseConfig(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/models/*/config.json")
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":0}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil || c.Params == nil {
			return
		}
		s := c.Params.Sizes()
		for name, v := range map[string]int{"vocab": s.VocabSize, "hidden": s.HiddenSize, "layers": s.Layers, "heads": s.Heads,
			"kv heads": s.KVHeads, "head dim": s.HeadDim, "intermediate": s.Intermediate, "positions": s.MaxPositions} {
			if v <= 0 {
				t.Fatalf("accepted %s with %s %d", raw, name, v)
			}
		}
		if s.Heads%s.KVHeads != 0 {
			t.Fatalf("accepted %s with %d heads and %d kv heads", raw, s.Heads, s.KVHeads)
		}
		b, l := c.Params.Blocks(), c.Params.Layout()
		if b.Layers != s.Layers || len(b.Query) == 0 || l.Layer(0) == "" || l.Embedding == "" {
			t.Fatalf("blocks %+v, layout %+v", b, l)
		}
	})
}
