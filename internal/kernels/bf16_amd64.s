//go:build amd64 && !purego

#include "textflag.h"
#include "hsum_amd64.h"

// func dotBF16AVX512(x *float32, w *byte, n int) float32
//
// Returns Σ x[i]·w[i] for i < n, n a multiple of 16, w n little-endian
// bfloat16s, each widened in the register (VPMOVZXWD then a shift of 16:
// exact) as it is multiplied. The accumulators, steps and final sum are
// dotAVX512's, so the result is dotAVX512's on the widened row, bit for bit.
TEXT ·dotBF16AVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ CX, DX
	SHRQ $6, DX
	JZ   bf16_16
bf16_64:
	VPMOVZXWD (DI), Z4
	VPMOVZXWD 32(DI), Z5
	VPMOVZXWD 64(DI), Z6
	VPMOVZXWD 96(DI), Z7
	VPSLLD $16, Z4, Z4
	VPSLLD $16, Z5, Z5
	VPSLLD $16, Z6, Z6
	VPSLLD $16, Z7, Z7
	VFMADD231PS (SI), Z4, Z0
	VFMADD231PS 64(SI), Z5, Z1
	VFMADD231PS 128(SI), Z6, Z2
	VFMADD231PS 192(SI), Z7, Z3
	ADDQ $256, SI
	ADDQ $128, DI
	DECQ DX
	JNZ  bf16_64
bf16_16:
	ANDQ $63, CX
	SHRQ $4, CX
	JZ   bf16_sum
bf16_16loop:
	VPMOVZXWD (DI), Z4
	VPSLLD $16, Z4, Z4
	VFMADD231PS (SI), Z4, Z0
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  bf16_16loop
bf16_sum:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUMZ0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF16AVX512(x *float32, w *byte, n int) float32
//
// dotBF16AVX512 for IEEE halves (VCVTPH2PS: exact).
TEXT ·dotF16AVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ CX, DX
	SHRQ $6, DX
	JZ   f16_16
f16_64:
	VCVTPH2PS (DI), Z4
	VCVTPH2PS 32(DI), Z5
	VCVTPH2PS 64(DI), Z6
	VCVTPH2PS 96(DI), Z7
	VFMADD231PS (SI), Z4, Z0
	VFMADD231PS 64(SI), Z5, Z1
	VFMADD231PS 128(SI), Z6, Z2
	VFMADD231PS 192(SI), Z7, Z3
	ADDQ $256, SI
	ADDQ $128, DI
	DECQ DX
	JNZ  f16_64
f16_16:
	ANDQ $63, CX
	SHRQ $4, CX
	JZ   f16_sum
f16_16loop:
	VCVTPH2PS (DI), Z4
	VFMADD231PS (SI), Z4, Z0
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  f16_16loop
f16_sum:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUMZ0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET
