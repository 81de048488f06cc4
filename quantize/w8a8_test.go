package quantize

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// The w8a8 scheme writes the int8 scheme's per-channel tensors byte for
// byte, with the quantization_config of llm-compressor's W8A8 preset
// (compressed-tensors' INT8_W8A8: weights int8 per channel, static;
// input activations int8 per token, symmetric, dynamic, no observer); a
// group size is refused.
func TestW8A8Scheme(t *testing.T) {
	cfg := mustConfig(t, llamaConfig)
	g := graphOf(t,
		randTensor(t, "model.embed_tokens.weight", weights.F32, 10, 8),
		randTensor(t, "model.layers.0.self_attn.q_proj.weight", weights.F32, 8, 8),
		randTensor(t, "model.layers.0.mlp.down_proj.weight", weights.BF16, 8, 16),
		randTensor(t, "lm_head.weight", weights.F32, 10, 8),
	)
	g.Config = []byte(llamaConfig)
	w8, rep, err := Quantize(g, cfg, Options{Scheme: W8A8})
	if err != nil {
		t.Fatal(err)
	}
	i8, _, err := Quantize(g, cfg, Options{Scheme: Int8})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scheme != W8A8 || len(rep.Changed) != 2 || w8.Len() != i8.Len() {
		t.Fatalf("report %+v, %d tensors (int8: %d)", rep, w8.Len(), i8.Len())
	}
	for _, x := range i8.Tensors() {
		y, ok := w8.Tensor(x.Name)
		if !ok {
			t.Fatalf("no %s", x.Name)
		}
		a, err := x.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		b, err := y.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if x.DType != y.DType || !reflect.DeepEqual(x.Shape, y.Shape) || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the int8 scheme's", x.Name)
		}
	}
	var doc struct {
		Q map[string]any `json:"quantization_config"`
	}
	if err := json.Unmarshal(w8.Config, &doc); err != nil {
		t.Fatal(err)
	}
	want := `{"config_groups":{"group_0":{"input_activations":{"actorder":null,"block_structure":null,"dynamic":true,` +
		`"group_size":null,"num_bits":8,"observer":null,"strategy":"token","symmetric":true,"type":"int"},` +
		`"output_activations":null,"targets":["Linear"],"weights":{"actorder":null,"block_structure":null,` +
		`"dynamic":false,"group_size":null,"num_bits":8,"observer":"minmax","strategy":"channel","symmetric":true,` +
		`"type":"int"}}},"format":"int-quantized","global_compression_ratio":null,"ignore":["lm_head"],` +
		`"kv_cache_scheme":null,"quant_method":"compressed-tensors","quantization_status":"compressed"}`
	got, _ := json.Marshal(doc.Q)
	if string(got) != want {
		t.Errorf("quantization_config\n%s\nwant\n%s", got, want)
	}
	if _, _, err := Quantize(g, cfg, Options{Scheme: W8A8, GroupSize: 4}); err == nil {
		t.Error("w8a8 with a group size accepted")
	}
	if s, err := ParseScheme("w8a8"); err != nil || s != W8A8 {
		t.Errorf("ParseScheme: %v %v", s, err)
	}
}
