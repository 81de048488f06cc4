package quantize

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// TestReadGGUFRobertaPadPositions: a pad token takes RoBERTa's position
// padding_idx, a row GGUF leaves out and the read-back restores as zeros,
// which is what a trained checkpoint holds (nn.Embedding's padding_idx row
// starts at zero and gets no gradient). With that row zero in the source,
// the F32 file read back gives the source's hidden states on ids with pads
// in them.
func TestReadGGUFRobertaPadPositions(t *testing.T) {
	g, cfg := openFixture(t, "roberta-mlm-st")
	pad := cfg.Roberta().PadTokenID
	src := weights.NewGraph()
	for _, x := range g.Tensors() {
		if strings.HasSuffix(x.Name, "embeddings.position_embeddings.weight") {
			v, err := x.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			cols := int(x.Shape[1])
			clear(v[pad*cols : (pad+1)*cols])
			y := &weights.Tensor{Name: x.Name, DType: weights.F32, Shape: x.Shape}
			y.Data = weights.SourceFunc(func() ([]byte, error) { return float32Bytes(v), nil })
			x = y
		}
		if err := src.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	src.Config = g.Config
	cg, err := formats.Open(writeGGUFDir(t, src, cfg, "f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	ids := []int{0, 5, pad, 7, pad, 9, 2, pad}
	want, err := loadModel(t, src).Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadModel(t, cg).Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := want.Get(forward.OutputLastHiddenState)
	b, _ := got.Get(forward.OutputLastHiddenState)
	if a == nil || b == nil || len(a.Data) != len(b.Data) {
		t.Fatal("last_hidden_state missing or of different sizes")
	}
	for i := range a.Data {
		if math.Abs(float64(a.Data[i]-b.Data[i])) > 1e-5 {
			t.Fatalf("last_hidden_state[%d] = %g, source %g", i, b.Data[i], a.Data[i])
		}
	}
}
