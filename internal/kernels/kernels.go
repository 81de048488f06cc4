// Package kernels holds the compute kernels of the module, shared by the
// native forward pass and the quantization passes: the
// weight-times-activation product (Linear) for weights stored as F32, F16,
// BF16 or int8 with scales, the f32 matrix product used by attention
// (MatMul), the row-wise operations of BERT, GPT-2 and Llama (Softmax,
// LayerNorm, RMSNorm, GELU, SiLU, RoPE, Embedding), the widening of stored
// rows to f32 (Widen), and the int8 quantizer's maxima and rounding
// (AbsMaxBits, QuantizeRun, QuantizeGroups, ..., in quant.go).
//
// Every kernel has a plain-loop reference (linearRef, softmaxRef, ...), kept
// in ref.go (quant.go for the int8 quantizer) and documented as the loop it
// computes; the fast versions are tested against it, with each instruction
// set this machine has turned on in turn (TestAVX2Paths, TestPortablePaths)
// and, under the purego build tag, without assembly at all. Numerics follow PyTorch on CPU: half-precision and int8
// weights are widened to f32 exactly (an int8 code times its f32 scale is one
// f32 product) and every accumulation is in f32.
//
// Linear and MatMul are blocked, packed matrix products (gemm.go) whose inner
// loop is a SIMD micro-kernel in Go assembly on amd64: 8×48 with AVX-512 or
// 6×16 with AVX2+FMA, chosen at run time with golang.org/x/sys/cpu; a 4×4
// Go loop elsewhere and with the purego build tag. The weight is packed (and
// widened) one cache-sized block at a time, by AVX-512 transposers where the
// CPU has them, never into a full f32 copy; for int8 the packers widen the
// codes and apply the scales themselves (int8_amd64.s), so an int8 weight
// reads a quarter of the bytes of an f32 one for the same packing work. Row
// counts up to 4 take dot products instead (gemv.go), for int8 with a fused
// widen-and-dot kernel. A GGUF file's weights stay in their ggml blocks
// (GGML, ggml.go: Q4_0 to Q6_K, Q8_0, F16, BF16, F32 rows): the packer
// decodes the stretch of each row it packs, gemv a row at a time, through
// one decoding function per block type. GELU, GELUTanh, SiLU and Softmax's exp have AVX-512
// versions too (ops_amd64.s); elsewhere their references run. The int8
// quantizer's kernels are AVX-512 and AVX2 assembly (quant_amd64.s).
//
// Arguments whose lengths do not match the stated shapes are programmer
// errors and panic with a message starting "kernels:".
package kernels

import (
	"errors"
	"fmt"

	"github.com/hubmirror/hubmirror/weights"
)

// ErrInvalidWeight is wrapped by the errors Weight.Validate returns.
var ErrInvalidWeight = errors.New("kernels: invalid weight")

// Weight is a weight matrix as stored in the checkpoint, used in place (it
// may be an mmap'd region): Linear reads it and never writes it.
type Weight struct {
	// Out, In is the logical shape of the Linear: y = x·Wᵀ, W is Out×In.
	Out, In int
	// InMajor false: Data is stored [Out][In] (nn.Linear); true: stored
	// [In][Out] (GPT-2 Conv1D).
	InMajor bool
	// DType is F32, F16, BF16 or I8; I32 marks a pack-quantized int4
	// weight (W4A16), held in Int4 (Data is then Int4.Packed, and the
	// layout is always [Out][In]); U8 marks ggml blocks (a GGUF file's
	// tensor), held in GGML.
	DType weights.DType
	// Data holds Out*In little-endian elements of DType.
	Data []byte
	// Scales (I8 only) are the symmetric dequantization scales, w = q*scale:
	// one per output channel (len Out) when GroupSize is 0, else one per
	// group of GroupSize consecutive inputs of an output channel, stored
	// [Out][In/GroupSize].
	Scales []float32
	// GroupSize (I8 only) is 0 for per-channel scales, else the group length
	// along In; In must be a multiple of it.
	GroupSize int
	// Int4 (I32 only) is the int4 weight; its Out and In are the Weight's.
	Int4 *Int4
	// GGML (U8 only) is a weight in ggml blocks (ggml.go); its Out and In
	// are the Weight's, Data is GGML.Data, the layout [Out][In].
	GGML *GGML
}

// Validate checks that the dtype is supported and that the lengths of Data
// and Scales and the group size agree with the shape. Errors wrap
// ErrInvalidWeight.
func (w *Weight) Validate() error {
	if w.Out <= 0 || w.In <= 0 {
		return fmt.Errorf("%w: shape %d×%d", ErrInvalidWeight, w.Out, w.In)
	}
	if w.GGML != nil && w.DType != weights.U8 {
		return fmt.Errorf("%w: ggml data given for %v", ErrInvalidWeight, w.DType)
	}
	switch w.DType {
	case weights.F32, weights.F16, weights.BF16, weights.I8:
		if w.Int4 != nil {
			return fmt.Errorf("%w: int4 data given for %v", ErrInvalidWeight, w.DType)
		}
	case weights.U8:
		switch {
		case w.GGML == nil:
			return fmt.Errorf("%w: U8 weight without ggml data", ErrInvalidWeight)
		case w.GGML.Out != w.Out || w.GGML.In != w.In:
			return fmt.Errorf("%w: ggml data %d×%d for a %d×%d weight", ErrInvalidWeight, w.GGML.Out, w.GGML.In, w.Out, w.In)
		case w.InMajor || w.Scales != nil || w.GroupSize != 0 || w.Int4 != nil:
			return fmt.Errorf("%w: a ggml weight is [Out][In] with its scales in its blocks", ErrInvalidWeight)
		}
		return w.GGML.Validate()
	case weights.I32:
		switch {
		case w.Int4 == nil:
			return fmt.Errorf("%w: I32 weight without int4 data", ErrInvalidWeight)
		case w.Int4.Out != w.Out || w.Int4.In != w.In:
			return fmt.Errorf("%w: int4 data %d×%d for a %d×%d weight", ErrInvalidWeight, w.Int4.Out, w.Int4.In, w.Out, w.In)
		case w.InMajor || w.Scales != nil || w.GroupSize != 0:
			return fmt.Errorf("%w: an int4 weight is [Out][In] with its scales in Int4", ErrInvalidWeight)
		}
		return w.Int4.Validate()
	default:
		return fmt.Errorf("%w: unsupported dtype %v", ErrInvalidWeight, w.DType)
	}
	const maxInt = int(^uint(0) >> 1)
	if w.Out > maxInt/w.In || w.Out*w.In > maxInt/w.DType.Size() {
		return fmt.Errorf("%w: shape %d×%d overflows", ErrInvalidWeight, w.Out, w.In)
	}
	if want := w.Out * w.In * w.DType.Size(); len(w.Data) != want {
		return fmt.Errorf("%w: %v %d×%d needs %d bytes, have %d", ErrInvalidWeight, w.DType, w.Out, w.In, want, len(w.Data))
	}
	if w.DType != weights.I8 {
		if w.Scales != nil || w.GroupSize != 0 {
			return fmt.Errorf("%w: scales or group size given for %v", ErrInvalidWeight, w.DType)
		}
		return nil
	}
	switch {
	case w.GroupSize < 0:
		return fmt.Errorf("%w: negative group size %d", ErrInvalidWeight, w.GroupSize)
	case w.GroupSize == 0:
		if len(w.Scales) != w.Out {
			return fmt.Errorf("%w: per-channel int8 needs %d scales, have %d", ErrInvalidWeight, w.Out, len(w.Scales))
		}
	default:
		if w.In%w.GroupSize != 0 {
			return fmt.Errorf("%w: group size %d does not divide In %d", ErrInvalidWeight, w.GroupSize, w.In)
		}
		if want := w.Out * (w.In / w.GroupSize); len(w.Scales) != want {
			return fmt.Errorf("%w: int8 with groups of %d needs %d scales, have %d", ErrInvalidWeight, w.GroupSize, want, len(w.Scales))
		}
	}
	return nil
}

// mustValidate panics when w is invalid: a kernel called with a bad weight is
// a programmer error (the model validates its weights when it loads them).
func (w *Weight) mustValidate() {
	if err := w.Validate(); err != nil {
		panic(err.Error())
	}
}

// scale returns the int8 scale of output o at input i.
func (w *Weight) scale(o, i int) float32 {
	if w.GroupSize == 0 {
		return w.Scales[o]
	}
	return w.Scales[o*(w.In/w.GroupSize)+i/w.GroupSize]
}

func checkLen(name string, have, want int) {
	if have < want {
		panic(fmt.Sprintf("kernels: %s has length %d, need %d", name, have, want))
	}
}
