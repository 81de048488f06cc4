package forward

import (
	"fmt"

	"github.com/hubmirror/hubmirror/formats"
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

// int8Activations is formats.Int8Activations of the model's config, read
// once.
func (s *tensorSet) int8Activations() *formats.ActivationArgs {
	if s.acts == nil {
		a := formats.Int8Activations(s.g.Config)
		s.acts = &a
	}
	return *s.acts
}

// w8a8 makes the I8 weight w (tensor wname, its scales attached) a W8A8
// one when the config quantizes its activations.
func (s *tensorSet) w8a8(w *kernels.Weight, wname string) error {
	a := s.int8Activations()
	if a == nil {
		return nil
	}
	if !a.DynamicInt8() {
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
