//go:build amd64 && !purego

#include "textflag.h"
#include "hsum_amd64.h"
#include "transpose_amd64.h"

// The int8 kernels: the packers of B widen w = float32(q)·scale (one f32
// product, as the reference) while they pack, and dotsI8AVX512 is the fused
// widen-and-dot of the small-m path. They read the codes as bytes: 4 times
// fewer than an f32 weight.

// func transpose16I8(dst *float32, ldd int, src *byte, lds int, blocks int, scales *float32)
//
// The transposing packer of transpose16F32 (pack_amd64.s) for int8 codes,
// with one scale per row of W (an output, a column of the packed block):
//
//	for b := 0; b < blocks; b++ {
//		for q := 0; q < 16; q++ {
//			for r := 0; r < 16; r++ {
//				dst[(16*b+q)*ldd+r] = float32(int8(src[r*lds+16*b+q])) * scales[r]
//			}
//		}
//	}
//
// The codes are sign-extended and converted before the transpose; the
// scales multiply each transposed row (16 outputs, scales[0:16]) before it
// is stored. A block reads 16 bytes of each of 16 rows, a pattern the
// hardware prefetcher follows poorly: each row is prefetched 128 bytes (8
// blocks) ahead (measured on a weight streamed from memory: 0.17 → 0.10 ns
// per value; 128 to 512 bytes ahead do about as well, prefetching the next
// rows instead worse).
TEXT ·transpose16I8(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DX
	MOVQ ldd+8(FP), R9
	SHLQ $2, R9
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R10
	MOVQ blocks+32(FP), CX
	MOVQ scales+40(FP), R11
	TESTQ CX, CX
	JZ   tI8done
tI8loop:
	MOVQ SI, BX
	VPMOVSXBD (BX), Z0
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z0, Z0
	ADDQ R10, BX
	VPMOVSXBD (BX), Z1
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z1, Z1
	ADDQ R10, BX
	VPMOVSXBD (BX), Z2
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z2, Z2
	ADDQ R10, BX
	VPMOVSXBD (BX), Z3
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z3, Z3
	ADDQ R10, BX
	VPMOVSXBD (BX), Z4
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z4, Z4
	ADDQ R10, BX
	VPMOVSXBD (BX), Z5
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z5, Z5
	ADDQ R10, BX
	VPMOVSXBD (BX), Z6
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z6, Z6
	ADDQ R10, BX
	VPMOVSXBD (BX), Z7
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z7, Z7
	ADDQ R10, BX
	VPMOVSXBD (BX), Z8
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z8, Z8
	ADDQ R10, BX
	VPMOVSXBD (BX), Z9
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z9, Z9
	ADDQ R10, BX
	VPMOVSXBD (BX), Z10
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z10, Z10
	ADDQ R10, BX
	VPMOVSXBD (BX), Z11
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z11, Z11
	ADDQ R10, BX
	VPMOVSXBD (BX), Z12
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z12, Z12
	ADDQ R10, BX
	VPMOVSXBD (BX), Z13
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z13, Z13
	ADDQ R10, BX
	VPMOVSXBD (BX), Z14
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z14, Z14
	ADDQ R10, BX
	VPMOVSXBD (BX), Z15
	PREFETCHT0 128(BX)
	VCVTDQ2PS Z15, Z15
	TRANSPOSE16_STAGES
	VSHUFF32X4 $0x88, Z18, Z16, Z0
	VMULPS (R11), Z0, Z0
	VMOVUPS Z0, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z22, Z20, Z1
	VMULPS (R11), Z1, Z1
	VMOVUPS Z1, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z26, Z24, Z2
	VMULPS (R11), Z2, Z2
	VMOVUPS Z2, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z30, Z28, Z3
	VMULPS (R11), Z3, Z3
	VMOVUPS Z3, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z18, Z16, Z4
	VMULPS (R11), Z4, Z4
	VMOVUPS Z4, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z22, Z20, Z5
	VMULPS (R11), Z5, Z5
	VMOVUPS Z5, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z26, Z24, Z6
	VMULPS (R11), Z6, Z6
	VMOVUPS Z6, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z30, Z28, Z7
	VMULPS (R11), Z7, Z7
	VMOVUPS Z7, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z19, Z17, Z8
	VMULPS (R11), Z8, Z8
	VMOVUPS Z8, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z23, Z21, Z9
	VMULPS (R11), Z9, Z9
	VMOVUPS Z9, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z27, Z25, Z10
	VMULPS (R11), Z10, Z10
	VMOVUPS Z10, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z31, Z29, Z11
	VMULPS (R11), Z11, Z11
	VMOVUPS Z11, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z19, Z17, Z12
	VMULPS (R11), Z12, Z12
	VMOVUPS Z12, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z23, Z21, Z13
	VMULPS (R11), Z13, Z13
	VMOVUPS Z13, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z27, Z25, Z14
	VMULPS (R11), Z14, Z14
	VMOVUPS Z14, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z31, Z29, Z15
	VMULPS (R11), Z15, Z15
	VMOVUPS Z15, (DX)
	ADDQ R9, DX
	ADDQ $16, SI
	DECQ CX
	JNZ  tI8loop
tI8done:
	VZEROUPPER
	RET

// func stripsInMajorI8(dst *float32, ldd int, src *byte, lds int, kc int, vecs int, scales *float32)
//
// The strip packer of stripsInMajorF32 (pack_amd64.s) for int8 codes stored
// [In][Out], the scale of column j being scales[j] for every row:
//
//	for p := 0; p < kc; p++ {
//		for j := 0; j < 16*vecs; j++ {
//			dst[p*ldd+j] = float32(int8(src[p*lds+j])) * scales[j]
//		}
//	}
//
// vecs is 1, 2 or 3.
TEXT ·stripsInMajorI8(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DX
	MOVQ ldd+8(FP), R9
	SHLQ $2, R9
	MOVQ src+16(FP), BX
	MOVQ lds+24(FP), R10
	MOVQ kc+32(FP), CX
	MOVQ vecs+40(FP), AX
	MOVQ scales+48(FP), R11
	TESTQ CX, CX
	JZ   sI8done
	CMPQ AX, $2
	JB   sI81
	JE   sI82
	VMOVUPS 0(R11), Z3
	VMOVUPS 64(R11), Z4
	VMOVUPS 128(R11), Z5
sI83:
	VPMOVSXBD 0(BX), Z0
	VPMOVSXBD 16(BX), Z1
	VPMOVSXBD 32(BX), Z2
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z1, Z1
	VCVTDQ2PS Z2, Z2
	VMULPS Z3, Z0, Z0
	VMULPS Z4, Z1, Z1
	VMULPS Z5, Z2, Z2
	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	ADDQ R10, BX
	ADDQ R9, DX
	DECQ CX
	JNZ  sI83
	JMP  sI8done
sI82:
	VMOVUPS 0(R11), Z3
	VMOVUPS 64(R11), Z4
sI82loop:
	VPMOVSXBD 0(BX), Z0
	VPMOVSXBD 16(BX), Z1
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z1, Z1
	VMULPS Z3, Z0, Z0
	VMULPS Z4, Z1, Z1
	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	ADDQ R10, BX
	ADDQ R9, DX
	DECQ CX
	JNZ  sI82loop
	JMP  sI8done
sI81:
	VMOVUPS 0(R11), Z3
sI81loop:
	VPMOVSXBD 0(BX), Z0
	VCVTDQ2PS Z0, Z0
	VMULPS Z3, Z0, Z0
	VMOVUPS Z0, 0(DX)
	ADDQ R10, BX
	ADDQ R9, DX
	DECQ CX
	JNZ  sI81loop
sI8done:
	VZEROUPPER
	RET

// func blockInMajor48I8(dst *float32, panelStride int, src *byte, lds int, kc int, panels int, scales *float32)
//
// The block packer of blockInMajor48F32 (pack_amd64.s) for int8 codes
// stored [In][Out], the scale of column c of panel j being scales[j*48+c]
// for every row:
//
//	for p := 0; p < kc; p++ {
//		for j := 0; j < panels; j++ {
//			for c := 0; c < 48; c++ {
//				dst[j*panelStride+p*48+c] = float32(int8(src[p*lds+j*48+c])) * scales[j*48+c]
//			}
//		}
//	}
TEXT ·blockInMajor48I8(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DX
	MOVQ panelStride+8(FP), R9
	SHLQ $2, R9
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R10
	MOVQ kc+32(FP), CX
	MOVQ panels+40(FP), R11
	MOVQ scales+48(FP), R12
	TESTQ CX, CX
	JZ   bI8done
	TESTQ R11, R11
	JZ   bI8done
bI8row:
	MOVQ SI, BX
	MOVQ DX, DI
	MOVQ R12, R13
	MOVQ R11, AX
bI8panel:
	VPMOVSXBD 0(BX), Z0
	VPMOVSXBD 16(BX), Z1
	VPMOVSXBD 32(BX), Z2
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z1, Z1
	VCVTDQ2PS Z2, Z2
	VMULPS 0(R13), Z0, Z0
	VMULPS 64(R13), Z1, Z1
	VMULPS 128(R13), Z2, Z2
	VMOVUPS Z0, 0(DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	ADDQ $48, BX
	ADDQ $192, R13
	ADDQ R9, DI
	DECQ AX
	JNZ  bI8panel
	ADDQ R10, SI
	ADDQ $192, DX
	DECQ CX
	JNZ  bI8row
bI8done:
	VZEROUPPER
	RET

// func dotsI8AVX512(out *float32, x *float32, ldx int, m int, q *byte, n int, scales *float32, shift int)
//
// The fused widen-and-dot of the small-m path: for 1 ≤ m ≤ 4 rows of x
// (row stride ldx) and one row of int8 codes q with the scale of input i at
// scales[i>>shift] (shift 63 for one scale),
//
//	for t := 0; t < m; t++ {
//		var s float32
//		for i := 0; i < n; i++ {
//			s += x[t*ldx+i] * (float32(int8(q[i])) * scales[i>>shift])
//		}
//		out[t] = s
//	}
//
// with n a multiple of 16, summed in 16 lanes and 4 accumulators a row.
// Each weight is widened once and used by the m rows of x.

// DOTWIDEN widens the 16 codes at q[AX+off] into W, times their scale.
#define DOTWIDEN(off, W) \
	VPMOVSXBD off(SI)(AX*1), W; \
	VCVTDQ2PS W, W; \
	LEAQ off(AX), BX; \
	SHRQ CX, BX; \
	VMULPS.BCST (R12)(BX*4), W, W

// DOTWIDEN4 widens the 64 codes at q[AX:] into Z0..Z3.
#define DOTWIDEN4 \
	DOTWIDEN(0, Z0); \
	DOTWIDEN(16, Z1); \
	DOTWIDEN(32, Z2); \
	DOTWIDEN(48, Z3)

// DOTFMA4 accumulates Z0..Z3 times the 64 values of the row of x at XP[AX:].
#define DOTFMA4(XP, A0, A1, A2, A3) \
	VFMADD231PS 0(XP)(AX*4), Z0, A0; \
	VFMADD231PS 64(XP)(AX*4), Z1, A1; \
	VFMADD231PS 128(XP)(AX*4), Z2, A2; \
	VFMADD231PS 192(XP)(AX*4), Z3, A3

// DOTSUM stores the sum of the lanes of A0..A3 at out[off/4].
#define DOTSUM(A0, A1, A2, A3, off) \
	VADDPS A1, A0, Z0; \
	VADDPS A3, A2, Z1; \
	VADDPS Z1, Z0, Z0; \
	HSUMZ0; \
	VMOVSS X0, off(DI)

TEXT ·dotsI8AVX512(SB), NOSPLIT, $0-64
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), R8
	MOVQ ldx+16(FP), R13
	SHLQ $2, R13
	LEAQ (R8)(R13*1), R9
	LEAQ (R9)(R13*1), R10
	LEAQ (R10)(R13*1), R11
	MOVQ m+24(FP), R14
	MOVQ q+32(FP), SI
	MOVQ n+40(FP), DX
	MOVQ scales+48(FP), R12
	MOVQ shift+56(FP), CX
	MOVQ DX, R13
	ANDQ $-64, R13
	XORQ AX, AX
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	CMPQ R14, $2
	JB   dm1
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	JE   dm2
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	CMPQ R14, $3
	JE   dm3
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31
	JMP  dm4

dm1:
	CMPQ AX, R13
	JAE  dm1tail
dm1loop:
	DOTWIDEN4
	DOTFMA4(R8, Z16, Z17, Z18, Z19)
	ADDQ $64, AX
	CMPQ AX, R13
	JB   dm1loop
dm1tail:
	CMPQ AX, DX
	JAE  dm1done
	DOTWIDEN(0, Z0)
	VFMADD231PS 0(R8)(AX*4), Z0, Z16
	ADDQ $16, AX
	JMP  dm1tail
dm1done:
	DOTSUM(Z16, Z17, Z18, Z19, 0)
	VZEROUPPER
	RET

dm2:
	CMPQ AX, R13
	JAE  dm2tail
dm2loop:
	DOTWIDEN4
	DOTFMA4(R8, Z16, Z17, Z18, Z19)
	DOTFMA4(R9, Z20, Z21, Z22, Z23)
	ADDQ $64, AX
	CMPQ AX, R13
	JB   dm2loop
dm2tail:
	CMPQ AX, DX
	JAE  dm2done
	DOTWIDEN(0, Z0)
	VFMADD231PS 0(R8)(AX*4), Z0, Z16
	VFMADD231PS 0(R9)(AX*4), Z0, Z20
	ADDQ $16, AX
	JMP  dm2tail
dm2done:
	DOTSUM(Z16, Z17, Z18, Z19, 0)
	DOTSUM(Z20, Z21, Z22, Z23, 4)
	VZEROUPPER
	RET

dm3:
	CMPQ AX, R13
	JAE  dm3tail
dm3loop:
	DOTWIDEN4
	DOTFMA4(R8, Z16, Z17, Z18, Z19)
	DOTFMA4(R9, Z20, Z21, Z22, Z23)
	DOTFMA4(R10, Z24, Z25, Z26, Z27)
	ADDQ $64, AX
	CMPQ AX, R13
	JB   dm3loop
dm3tail:
	CMPQ AX, DX
	JAE  dm3done
	DOTWIDEN(0, Z0)
	VFMADD231PS 0(R8)(AX*4), Z0, Z16
	VFMADD231PS 0(R9)(AX*4), Z0, Z20
	VFMADD231PS 0(R10)(AX*4), Z0, Z24
	ADDQ $16, AX
	JMP  dm3tail
dm3done:
	DOTSUM(Z16, Z17, Z18, Z19, 0)
	DOTSUM(Z20, Z21, Z22, Z23, 4)
	DOTSUM(Z24, Z25, Z26, Z27, 8)
	VZEROUPPER
	RET

dm4:
	CMPQ AX, R13
	JAE  dm4tail
dm4loop:
	DOTWIDEN4
	DOTFMA4(R8, Z16, Z17, Z18, Z19)
	DOTFMA4(R9, Z20, Z21, Z22, Z23)
	DOTFMA4(R10, Z24, Z25, Z26, Z27)
	DOTFMA4(R11, Z28, Z29, Z30, Z31)
	ADDQ $64, AX
	CMPQ AX, R13
	JB   dm4loop
dm4tail:
	CMPQ AX, DX
	JAE  dm4done
	DOTWIDEN(0, Z0)
	VFMADD231PS 0(R8)(AX*4), Z0, Z16
	VFMADD231PS 0(R9)(AX*4), Z0, Z20
	VFMADD231PS 0(R10)(AX*4), Z0, Z24
	VFMADD231PS 0(R11)(AX*4), Z0, Z28
	ADDQ $16, AX
	JMP  dm4tail
dm4done:
	DOTSUM(Z16, Z17, Z18, Z19, 0)
	DOTSUM(Z20, Z21, Z22, Z23, 4)
	DOTSUM(Z24, Z25, Z26, Z27, 8)
	DOTSUM(Z28, Z29, Z30, Z31, 12)
	VZEROUPPER
	RET
