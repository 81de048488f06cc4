package forward

import (
	"encoding/binary"

	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/weights"
)

// WriteOutputs writes input_ids (I64 [1, n]) and the outputs (F32) of a
// run to path as safetensors, atomically; info names the architecture in
// the metadata.
func WriteOutputs(path string, out *Outputs, info Info) error {
	ids := make([]byte, 8*len(out.InputIDs))
	for i, id := range out.InputIDs {
		binary.LittleEndian.PutUint64(ids[8*i:], uint64(id))
	}
	t, err := weights.NewTensor("input_ids", weights.I64, []int64{1, int64(len(out.InputIDs))}, ids)
	if err != nil {
		return err
	}
	tensors := []*weights.Tensor{t}
	for _, o := range out.Tensors {
		shape := make([]int64, len(o.Shape))
		for i, d := range o.Shape {
			shape[i] = int64(d)
		}
		t, err := weights.FromFloat32(o.Name, weights.F32, shape, o.Data)
		if err != nil {
			return err
		}
		tensors = append(tensors, t)
	}
	meta := map[string]string{"format": "pt", "producer": "hubmirror forward", "architecture": info.Architecture}
	return safetensors.WriteFile(path, tensors, meta)
}
