package pipeline

import (
	"testing"

	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
)

// mirror --quantize w8a8 builds a variant named w8a8, validated with the
// int8 kind.
func TestW8A8Variant(t *testing.T) {
	v, err := QuantizeVariant(quantize.Options{Scheme: quantize.W8A8})
	if err != nil || v.Name != "w8a8" || v.Kind != forward.KindInt8 || v.Label != "quantize w8a8" || v.Pass == nil {
		t.Errorf("%+v %v", v, err)
	}
}
