//go:build amd64 && !purego

#include "textflag.h"

// The four-row kernels: rows r0..r3 (pointers DI, R8, R9, R10) against one
// x (SI), each row with dotAVX512's four accumulators, steps and final sum
// (row 0 in Z0-Z3, row 1 in Z4-Z7, row 2 in Z8-Z11, row 3 in Z12-Z15), so
// that each of the four results is dotAVX512's on that widened row, bit for
// bit; x is loaded once per step for the four rows.

// WBF16 widens the 16 bfloat16s at mem to f32 in z.
#define WBF16(mem, z) \
	VPMOVZXWD mem, z \
	VPSLLD $16, z, z

// WF16 widens the 16 halves at mem to f32 in z.
#define WF16(mem, z) \
	VCVTPH2PS mem, z

// HSUM sums the accumulators z0..z3 of a row (y0, x0 and y1, x1 name the
// lower halves of z0 and z1) and stores the sum at off(AX).
#define HSUM(z0, z1, z2, z3, y0, y1, x0, x1, off) \
	VADDPS z1, z0, z0 \
	VADDPS z3, z2, z2 \
	VADDPS z2, z0, z0 \
	VEXTRACTF64X4 $1, z0, y1 \
	VADDPS y1, y0, y0 \
	VEXTRACTF128 $1, y0, x1 \
	VADDPS x1, x0, x0 \
	VPERMILPS $0x4E, x0, x1 \
	VADDPS x1, x0, x0 \
	VPERMILPS $0xB1, x0, x1 \
	VADDSS x1, x0, x0 \
	VMOVSS x0, off(AX)

// ROW64 multiplies 64 values of the row at r (widened by W) by Z16-Z19
// into a0..a3.
#define ROW64(W, r, a0, a1, a2, a3) \
	W((r), Z20) \
	W(32(r), Z21) \
	W(64(r), Z22) \
	W(96(r), Z23) \
	VFMADD231PS Z16, Z20, a0 \
	VFMADD231PS Z17, Z21, a1 \
	VFMADD231PS Z18, Z22, a2 \
	VFMADD231PS Z19, Z23, a3

// ROW16 multiplies 16 values of the row at r by Z16 into a0.
#define ROW16(W, r, a0) \
	W((r), Z20) \
	VFMADD231PS Z16, Z20, a0

#define DOTS4(W) \
	MOVQ out+0(FP), AX \
	MOVQ x+8(FP), SI \
	MOVQ w+16(FP), DI \
	MOVQ ldw+24(FP), BX \
	MOVQ n+32(FP), CX \
	LEAQ (DI)(BX*1), R8 \
	LEAQ (R8)(BX*1), R9 \
	LEAQ (R9)(BX*1), R10 \
	VPXORD Z0, Z0, Z0 \
	VPXORD Z1, Z1, Z1 \
	VPXORD Z2, Z2, Z2 \
	VPXORD Z3, Z3, Z3 \
	VPXORD Z4, Z4, Z4 \
	VPXORD Z5, Z5, Z5 \
	VPXORD Z6, Z6, Z6 \
	VPXORD Z7, Z7, Z7 \
	VPXORD Z8, Z8, Z8 \
	VPXORD Z9, Z9, Z9 \
	VPXORD Z10, Z10, Z10 \
	VPXORD Z11, Z11, Z11 \
	VPXORD Z12, Z12, Z12 \
	VPXORD Z13, Z13, Z13 \
	VPXORD Z14, Z14, Z14 \
	VPXORD Z15, Z15, Z15 \
	MOVQ CX, DX \
	SHRQ $6, DX \
	JZ   dots4_16 \
dots4_64: \
	VMOVUPS (SI), Z16 \
	VMOVUPS 64(SI), Z17 \
	VMOVUPS 128(SI), Z18 \
	VMOVUPS 192(SI), Z19 \
	ROW64(W, DI, Z0, Z1, Z2, Z3) \
	ROW64(W, R8, Z4, Z5, Z6, Z7) \
	ROW64(W, R9, Z8, Z9, Z10, Z11) \
	ROW64(W, R10, Z12, Z13, Z14, Z15) \
	ADDQ $256, SI \
	ADDQ $128, DI \
	ADDQ $128, R8 \
	ADDQ $128, R9 \
	ADDQ $128, R10 \
	DECQ DX \
	JNZ  dots4_64 \
dots4_16: \
	ANDQ $63, CX \
	SHRQ $4, CX \
	JZ   dots4_sum \
dots4_16loop: \
	VMOVUPS (SI), Z16 \
	ROW16(W, DI, Z0) \
	ROW16(W, R8, Z4) \
	ROW16(W, R9, Z8) \
	ROW16(W, R10, Z12) \
	ADDQ $64, SI \
	ADDQ $32, DI \
	ADDQ $32, R8 \
	ADDQ $32, R9 \
	ADDQ $32, R10 \
	DECQ CX \
	JNZ  dots4_16loop \
dots4_sum: \
	HSUM(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1, 0) \
	HSUM(Z4, Z5, Z6, Z7, Y4, Y5, X4, X5, 4) \
	HSUM(Z8, Z9, Z10, Z11, Y8, Y9, X8, X9, 8) \
	HSUM(Z12, Z13, Z14, Z15, Y12, Y13, X12, X13, 12) \
	VZEROUPPER \
	RET

// func dotsBF16x4AVX512(out *float32, x *float32, w *byte, ldw int, n int)
//
// out[r] = Σ x[i]·w_r[i] for r < 4 and i < n, n a multiple of 16, w_r the
// n bfloat16s at w + r·ldw bytes.
TEXT ·dotsBF16x4AVX512(SB), NOSPLIT, $0-40
	DOTS4(WBF16)

// func dotsF16x4AVX512(out *float32, x *float32, w *byte, ldw int, n int)
//
// dotsBF16x4AVX512 for IEEE halves.
TEXT ·dotsF16x4AVX512(SB), NOSPLIT, $0-40
	DOTS4(WF16)
