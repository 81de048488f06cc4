//go:build amd64 && !purego

#include "textflag.h"
#include "hsum_amd64.h"
#include "transpose_amd64.h"

// The int4 (W4A16) kernels: a fused unpack-and-dot for the small-m path
// (dotsI4AVX512) and a widener of a row's codes to f32 for the packers
// (widenI4AVX512). Both look the weights up in a table of the 16 values of
// the current group, lut[u] = (float32(u-8-z))·scale for the stored code
// u = q+8 (z the zero point), so each weight is the f32 product the
// reference computes: VPERMPS with a 16-entry table reads only the low 4
// bits of each index, so a code needs no masking, only a shift to bring
// its nibble to the bottom of a dword.

// i4iota holds the bytes 0..15 (widened to the codes u as f32).
DATA i4iota<>+0(SB)/8, $0x0706050403020100
DATA i4iota<>+8(SB)/8, $0x0f0e0d0c0b0a0908
GLOBL i4iota<>(SB), RODATA|NOPTR, $16

// i4shift holds the bytes 0, 4, 0, 4, ... (the shifts of the low and high
// nibble of a byte repeated in two dwords).
DATA i4shift<>+0(SB)/8, $0x0400040004000400
DATA i4shift<>+8(SB)/8, $0x0400040004000400
GLOBL i4shift<>(SB), RODATA|NOPTR, $16

// func dotsI4AVX512(y *float32, ldy int, x *float32, ldx int, m int, q *byte, ldq int, blocks int, gblk int, scales *float32, lds int, offs *float32, ldo int, rows int)
//
// The fused unpack-and-dot of the small-m path: for 1 ≤ m ≤ 4 rows of x
// (row stride ldx) and rows ≥ 1 rows r of packed codes q + r·ldq bytes,
// blocks blocks of 32 inputs (16 bytes) in groups of gblk blocks, group g
// of row r with scale scales[r·lds+g] and offset offs[r·ldo+g] = 8 + zero
// point (ldo 0: the same offsets for every row),
//
//	for r := 0; r < rows; r++ {
//		for t := 0; t < m; t++ {
//			var s float32
//			for b := 0; b < blocks; b++ {
//				lut := (u - offs[r*ldo+b/gblk]) · scales[r*lds+b/gblk] for u = 0..15
//				for j := 0; j < 16; j++ {
//					s += x[t*ldx+32*b+j] * lut[q[r*ldq+16*b+j]&15]
//					s += x[t*ldx+32*b+16+j] * lut[q[r*ldq+16*b+j]>>4]
//				}
//			}
//			y[t*ldy+r] = s
//		}
//	}
//
// that is, x is given with each block of 32 inputs reordered, the even
// inputs first (the low nibbles of the block's 16 bytes), then the odd ones
// (the high nibbles): a byte widened to a dword is the index of its low
// nibble, shifted right by 4 that of its high one. The sums are in 16
// lanes and 4 accumulators per row of x; each code is looked up once for
// the m rows.

// I4LUT sets Z28 to the table of group R15 (Z29 holds 0..15 as f32) and
// moves to the next group.
#define I4LUT \
	VSUBPS.BCST (R13)(R15*4), Z29, Z28; \
	VMULPS.BCST (R12)(R15*4), Z28, Z28; \
	INCQ R15

// I4IDX looks up the 32 codes of the block at q[AX+off]: the even inputs
// into L, the odd ones into H.
#define I4IDX(off, L, H) \
	VPMOVZXBD off(SI)(AX*1), L; \
	VPSRLD $4, L, H; \
	VPERMPS Z28, L, L; \
	VPERMPS Z28, H, H

// I4IDX2 looks up two blocks into Z0..Z3, prefetching as I4C128.
#define I4IDX2 \
	PREFETCHT0 4096(SI)(AX*1); \
	I4IDX(0, Z0, Z1); \
	I4IDX(16, Z2, Z3)

// I4FMA2 accumulates Z0..Z3 times the 64 reordered values of x at XP[2·AX:].
#define I4FMA2(XP, A0, A1, A2, A3) \
	VFMADD231PS 0(XP)(AX*8), Z0, A0; \
	VFMADD231PS 64(XP)(AX*8), Z1, A1; \
	VFMADD231PS 128(XP)(AX*8), Z2, A2; \
	VFMADD231PS 192(XP)(AX*8), Z3, A3

// I4FMA1 accumulates Z0, Z1 times the 32 values of x at XP[2·AX:].
#define I4FMA1(XP, A0, A1) \
	VFMADD231PS 0(XP)(AX*8), Z0, A0; \
	VFMADD231PS 64(XP)(AX*8), Z1, A1

// I4SUM stores the sum of the lanes of A0..A3 at MEM.
#define I4SUM(A0, A1, A2, A3, MEM) \
	VADDPS A1, A0, Z0; \
	VADDPS A3, A2, Z1; \
	VADDPS Z1, Z0, Z0; \
	HSUMZ0; \
	VMOVSS X0, MEM

TEXT ·dotsI4AVX512(SB), NOSPLIT, $0-112
	MOVQ y+0(FP), DI
	MOVQ x+16(FP), R8
	MOVQ ldx+24(FP), R13
	SHLQ $2, R13
	LEAQ (R8)(R13*1), R9
	LEAQ (R9)(R13*1), R10
	LEAQ (R10)(R13*1), R11
	MOVQ m+32(FP), R14
	MOVQ q+40(FP), SI
	MOVQ scales+72(FP), R12
	MOVQ offs+88(FP), R13
	VPMOVZXBD i4iota<>(SB), Z29
	VCVTDQ2PS Z29, Z29
	CMPQ rows+104(FP), $0
	JLE  i4ret

// Each row of codes: SI, R12, R13 and DI point at its codes, scales,
// offsets and output.
i4row:
	MOVQ blocks+56(FP), DX
	MOVQ gblk+64(FP), CX
	XORQ AX, AX
	XORQ R15, R15
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	CMPQ R14, $2
	JB   i4m1
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	JE   i4m2
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	CMPQ R14, $3
	JE   i4m3
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	JMP  i4m4

i4m1:
	TESTQ DX, DX
	JZ   i4m1done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
	CMPQ BX, $2
	JB   i4m1one
i4m1pair:
	I4IDX2
	I4FMA2(R8, Z12, Z13, Z14, Z15)
	ADDQ $32, AX
	SUBQ $2, BX
	CMPQ BX, $2
	JAE  i4m1pair
i4m1one:
	TESTQ BX, BX
	JZ   i4m1
	I4IDX(0, Z0, Z1)
	I4FMA1(R8, Z12, Z13)
	ADDQ $16, AX
	JMP  i4m1
i4m1done:
	I4SUM(Z12, Z13, Z14, Z15, (DI))
	JMP  i4next

i4m2:
	TESTQ DX, DX
	JZ   i4m2done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
	CMPQ BX, $2
	JB   i4m2one
i4m2pair:
	I4IDX2
	I4FMA2(R8, Z12, Z13, Z14, Z15)
	I4FMA2(R9, Z16, Z17, Z18, Z19)
	ADDQ $32, AX
	SUBQ $2, BX
	CMPQ BX, $2
	JAE  i4m2pair
i4m2one:
	TESTQ BX, BX
	JZ   i4m2
	I4IDX(0, Z0, Z1)
	I4FMA1(R8, Z12, Z13)
	I4FMA1(R9, Z16, Z17)
	ADDQ $16, AX
	JMP  i4m2
i4m2done:
	MOVQ ldy+8(FP), BX
	SHLQ $2, BX
	I4SUM(Z12, Z13, Z14, Z15, (DI))
	I4SUM(Z16, Z17, Z18, Z19, (DI)(BX*1))
	JMP  i4next

i4m3:
	TESTQ DX, DX
	JZ   i4m3done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
	CMPQ BX, $2
	JB   i4m3one
i4m3pair:
	I4IDX2
	I4FMA2(R8, Z12, Z13, Z14, Z15)
	I4FMA2(R9, Z16, Z17, Z18, Z19)
	I4FMA2(R10, Z20, Z21, Z22, Z23)
	ADDQ $32, AX
	SUBQ $2, BX
	CMPQ BX, $2
	JAE  i4m3pair
i4m3one:
	TESTQ BX, BX
	JZ   i4m3
	I4IDX(0, Z0, Z1)
	I4FMA1(R8, Z12, Z13)
	I4FMA1(R9, Z16, Z17)
	I4FMA1(R10, Z20, Z21)
	ADDQ $16, AX
	JMP  i4m3
i4m3done:
	MOVQ ldy+8(FP), BX
	SHLQ $2, BX
	I4SUM(Z12, Z13, Z14, Z15, (DI))
	I4SUM(Z16, Z17, Z18, Z19, (DI)(BX*1))
	I4SUM(Z20, Z21, Z22, Z23, (DI)(BX*2))
	JMP  i4next

i4m4:
	TESTQ DX, DX
	JZ   i4m4done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
	CMPQ BX, $2
	JB   i4m4one
i4m4pair:
	I4IDX2
	I4FMA2(R8, Z12, Z13, Z14, Z15)
	I4FMA2(R9, Z16, Z17, Z18, Z19)
	I4FMA2(R10, Z20, Z21, Z22, Z23)
	I4FMA2(R11, Z24, Z25, Z26, Z27)
	ADDQ $32, AX
	SUBQ $2, BX
	CMPQ BX, $2
	JAE  i4m4pair
i4m4one:
	TESTQ BX, BX
	JZ   i4m4
	I4IDX(0, Z0, Z1)
	I4FMA1(R8, Z12, Z13)
	I4FMA1(R9, Z16, Z17)
	I4FMA1(R10, Z20, Z21)
	I4FMA1(R11, Z24, Z25)
	ADDQ $16, AX
	JMP  i4m4
i4m4done:
	MOVQ ldy+8(FP), BX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), DX
	I4SUM(Z12, Z13, Z14, Z15, (DI))
	I4SUM(Z16, Z17, Z18, Z19, (DI)(BX*1))
	I4SUM(Z20, Z21, Z22, Z23, (DI)(BX*2))
	I4SUM(Z24, Z25, Z26, Z27, (DI)(DX*1))

// The next row of codes (the count of rows left is kept in its argument).
i4next:
	ADDQ $4, DI
	ADDQ ldq+48(FP), SI
	MOVQ lds+80(FP), BX
	LEAQ (R12)(BX*4), R12
	MOVQ ldo+96(FP), BX
	LEAQ (R13)(BX*4), R13
	DECQ rows+104(FP)
	JNZ  i4row
i4ret:
	VZEROUPPER
	RET
// func widenI4AVX512(dst *float32, q *byte, n int, scale float32, off float32)
//
// Widens 16·n codes of one group to f32 in their order:
//
//	for i := 0; i < 16*n; i++ {
//		dst[i] = (float32(q[i/2]>>(4*(i%2))&15) - off) * scale
//	}
//
// (off = 8 + zero point): 8 bytes are doubled (VPUNPCKLBW), widened to 16
// dwords, shifted by 0 or 4 and looked up in the group's table.
TEXT ·widenI4AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ n+16(FP), CX
	VPMOVZXBD i4iota<>(SB), Z29
	VCVTDQ2PS Z29, Z29
	VBROADCASTSS off+28(FP), Z0
	VSUBPS Z0, Z29, Z28
	VBROADCASTSS scale+24(FP), Z0
	VMULPS Z0, Z28, Z28
	VPMOVZXBD i4shift<>(SB), Z27
	TESTQ CX, CX
	JZ   wI4done
wI4loop:
	VMOVQ (SI), X0
	VPUNPCKLBW X0, X0, X0
	VPMOVZXBD X0, Z0
	VPSRLVD Z27, Z0, Z0
	VPERMPS Z28, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $8, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  wI4loop
wI4done:
	VZEROUPPER
	RET
// func dotsI4x128AVX512(y *float32, ldy int, x *float32, ldx int, m int, q *byte, ldq int, chunks int, gchunks int, scales *float32, lds int, offs *float32, ldo int, rows int)
//
// dotsI4AVX512 for chunks of 128 inputs (64 bytes) in groups of gchunks
// chunks, over rows outputs (row r's codes at q[r*ldq:], its scales at
// scales[r*lds/4:] and offsets at offs[r*ldo/4:], strides in bytes; ldo 0
// when the rows share their offsets), writing y[t*ldy+r]; x is reordered
// the other way: dword j of a chunk holds inputs 8j..8j+7, so shifting the
// 16 dwords right by 4k brings the nibbles of inputs 8j+k (j = 0..15) to
// the bottom, with no byte shuffle; x is given with each chunk of 128
// inputs as x[8j+k] at position 16k+j:
//
//	for r := 0; r < rows; r++ {
//		for t := 0; t < m; t++ {
//			var s float32
//			for c := 0; c < chunks; c++ {
//				g := c / gchunks
//				lut := (u - offs[r*ldo/4+g]) · scales[r*lds/4+g] for u = 0..15
//				for k := 0; k < 8; k++ {
//					for j := 0; j < 16; j++ {
//						s += x[t*ldx+128*c+16*k+j] * lut[le32(q[r*ldq+64*c+4*j:])>>(4*k)&15]
//					}
//				}
//			}
//			y[t*ldy+r] = s
//		}
//	}
//
// The sums are in 8 accumulators of 16 lanes for one row of x, 4 per row
// for more. The loop over the rows is here rather than in Go: a row of
// TinyLlama's 2048 inputs is only 16 chunks.


// I4C128 looks up the 128 codes at q[AX:] into Z0..Z7 (Z28 the table).
// The codes 4 KiB ahead are prefetched: the hardware prefetcher alone
// leaves the kernel short of data when the weight streams from memory
// (measured on the 4-layer TinyLlama-width stack of
// BenchmarkDecodeStackInt4: CPU time 6.7–7.4 → 5.2–6.1 ms; 1 and 2 KiB
// ahead gain less).
#define I4C128 \
	PREFETCHT0 4096(SI)(AX*1); \
	VMOVDQU32 (SI)(AX*1), Z0; \
	VPSRLD $4, Z0, Z1; \
	VPSRLD $8, Z0, Z2; \
	VPSRLD $12, Z0, Z3; \
	VPSRLD $16, Z0, Z4; \
	VPSRLD $20, Z0, Z5; \
	VPSRLD $24, Z0, Z6; \
	VPSRLD $28, Z0, Z7; \
	VPERMPS Z28, Z0, Z0; \
	VPERMPS Z28, Z1, Z1; \
	VPERMPS Z28, Z2, Z2; \
	VPERMPS Z28, Z3, Z3; \
	VPERMPS Z28, Z4, Z4; \
	VPERMPS Z28, Z5, Z5; \
	VPERMPS Z28, Z6, Z6; \
	VPERMPS Z28, Z7, Z7

// I4F8 accumulates Z0..Z7 times the 128 reordered values of x at XP[2·AX:]
// into A0..A7 (or A0..A3 twice).
#define I4F8(XP, A0, A1, A2, A3, A4, A5, A6, A7) \
	VFMADD231PS 0(XP)(AX*8), Z0, A0; \
	VFMADD231PS 64(XP)(AX*8), Z1, A1; \
	VFMADD231PS 128(XP)(AX*8), Z2, A2; \
	VFMADD231PS 192(XP)(AX*8), Z3, A3; \
	VFMADD231PS 256(XP)(AX*8), Z4, A4; \
	VFMADD231PS 320(XP)(AX*8), Z5, A5; \
	VFMADD231PS 384(XP)(AX*8), Z6, A6; \
	VFMADD231PS 448(XP)(AX*8), Z7, A7


// I4SUMTO stores the sum of the lanes of A0..A3 at MEM.
#define I4SUMTO(A0, A1, A2, A3, MEM) \
	VADDPS A1, A0, Z0; \
	VADDPS A3, A2, Z1; \
	VADDPS Z1, Z0, Z0; \
	HSUMZ0; \
	VMOVSS X0, MEM

TEXT ·dotsI4x128AVX512(SB), NOSPLIT, $0-112
	MOVQ y+0(FP), DI
	MOVQ ldy+8(FP), CX
	SHLQ $2, CX
	MOVQ x+16(FP), R8
	MOVQ ldx+24(FP), R13
	SHLQ $2, R13
	LEAQ (R8)(R13*1), R9
	LEAQ (R9)(R13*1), R10
	LEAQ (R10)(R13*1), R11
	MOVQ m+32(FP), AX
	MOVQ q+40(FP), SI
	MOVQ scales+72(FP), R12
	MOVQ offs+88(FP), R13
	MOVQ rows+104(FP), R14
	VPMOVZXBD i4iota<>(SB), Z29
	VCVTDQ2PS Z29, Z29
	TESTQ R14, R14
	JZ   c4end
	CMPQ AX, $2
	JB   c4m1
	JE   c4m2
	CMPQ AX, $3
	JE   c4m3
	JMP  c4m4

c4m1:
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	XORQ AX, AX
	XORQ R15, R15
	MOVQ chunks+56(FP), DX
c4m1grp:
	TESTQ DX, DX
	JZ   c4m1sum
	MOVQ gchunks+64(FP), BX
	CMPQ DX, BX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
c4m1loop:
	I4C128
	I4F8(R8, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ $64, AX
	DECQ BX
	JNZ  c4m1loop
	JMP  c4m1grp
c4m1sum:
	VADDPS Z12, Z8, Z8
	VADDPS Z13, Z9, Z9
	VADDPS Z14, Z10, Z10
	VADDPS Z15, Z11, Z11
	I4SUMTO(Z8, Z9, Z10, Z11, (DI))
	ADDQ $4, DI
	ADDQ ldq+48(FP), SI
	ADDQ lds+80(FP), R12
	ADDQ ldo+96(FP), R13
	DECQ R14
	JNZ  c4m1
	JMP  c4end

c4m2:
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	XORQ AX, AX
	XORQ R15, R15
	MOVQ chunks+56(FP), DX
c4m2grp:
	TESTQ DX, DX
	JZ   c4m2sum
	MOVQ gchunks+64(FP), BX
	CMPQ DX, BX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
c4m2loop:
	I4C128
	I4F8(R8, Z8, Z9, Z10, Z11, Z8, Z9, Z10, Z11)
	I4F8(R9, Z12, Z13, Z14, Z15, Z12, Z13, Z14, Z15)
	ADDQ $64, AX
	DECQ BX
	JNZ  c4m2loop
	JMP  c4m2grp
c4m2sum:
	I4SUMTO(Z8, Z9, Z10, Z11, (DI))
	I4SUMTO(Z12, Z13, Z14, Z15, (DI)(CX*1))
	ADDQ $4, DI
	ADDQ ldq+48(FP), SI
	ADDQ lds+80(FP), R12
	ADDQ ldo+96(FP), R13
	DECQ R14
	JNZ  c4m2
	JMP  c4end

c4m3:
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	XORQ AX, AX
	XORQ R15, R15
	MOVQ chunks+56(FP), DX
c4m3grp:
	TESTQ DX, DX
	JZ   c4m3sum
	MOVQ gchunks+64(FP), BX
	CMPQ DX, BX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
c4m3loop:
	I4C128
	I4F8(R8, Z8, Z9, Z10, Z11, Z8, Z9, Z10, Z11)
	I4F8(R9, Z12, Z13, Z14, Z15, Z12, Z13, Z14, Z15)
	I4F8(R10, Z16, Z17, Z18, Z19, Z16, Z17, Z18, Z19)
	ADDQ $64, AX
	DECQ BX
	JNZ  c4m3loop
	JMP  c4m3grp
c4m3sum:
	I4SUMTO(Z8, Z9, Z10, Z11, (DI))
	I4SUMTO(Z12, Z13, Z14, Z15, (DI)(CX*1))
	I4SUMTO(Z16, Z17, Z18, Z19, (DI)(CX*2))
	ADDQ $4, DI
	ADDQ ldq+48(FP), SI
	ADDQ lds+80(FP), R12
	ADDQ ldo+96(FP), R13
	DECQ R14
	JNZ  c4m3
	JMP  c4end

c4m4:
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	XORQ AX, AX
	XORQ R15, R15
	MOVQ chunks+56(FP), DX
c4m4grp:
	TESTQ DX, DX
	JZ   c4m4sum
	MOVQ gchunks+64(FP), BX
	CMPQ DX, BX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT
c4m4loop:
	I4C128
	I4F8(R8, Z8, Z9, Z10, Z11, Z8, Z9, Z10, Z11)
	I4F8(R9, Z12, Z13, Z14, Z15, Z12, Z13, Z14, Z15)
	I4F8(R10, Z16, Z17, Z18, Z19, Z16, Z17, Z18, Z19)
	I4F8(R11, Z20, Z21, Z22, Z23, Z20, Z21, Z22, Z23)
	ADDQ $64, AX
	DECQ BX
	JNZ  c4m4loop
	JMP  c4m4grp
c4m4sum:
	LEAQ (CX)(CX*2), BX
	I4SUMTO(Z8, Z9, Z10, Z11, (DI))
	I4SUMTO(Z12, Z13, Z14, Z15, (DI)(CX*1))
	I4SUMTO(Z16, Z17, Z18, Z19, (DI)(CX*2))
	I4SUMTO(Z20, Z21, Z22, Z23, (DI)(BX*1))
	ADDQ $4, DI
	ADDQ ldq+48(FP), SI
	ADDQ lds+80(FP), R12
	ADDQ ldo+96(FP), R13
	DECQ R14
	JNZ  c4m4
	JMP  c4end

c4end:
	VZEROUPPER
	RET

// func dotsI4AVX2(out *float32, x *float32, ldx int, m int, q *byte, blocks int, gblk int, scales *float32, offs *float32)
//
// dotsI4AVX512 with AVX2 (same arguments, same order of x): VPERMPS on 8
// lanes reads 3 bits of an index, so a code is looked up in both halves
// of the table (Y6: codes 0..7, Y7: 8..15) and the two are blended on its
// bit 3. The sums are in 8 lanes and 4 accumulators for one row of x, 2
// per row for more.

// I4LUT2 sets Y6, Y7 to the table of group R15 and moves to the next.
#define I4LUT2 \
	VBROADCASTSS (R13)(R15*4), Y4; \
	VBROADCASTSS (R12)(R15*4), Y5; \
	VPMOVZXBD i4iota<>+0(SB), Y6; \
	VPMOVZXBD i4iota<>+8(SB), Y7; \
	VCVTDQ2PS Y6, Y6; \
	VCVTDQ2PS Y7, Y7; \
	VSUBPS Y4, Y6, Y6; \
	VSUBPS Y4, Y7, Y7; \
	VMULPS Y5, Y6, Y6; \
	VMULPS Y5, Y7, Y7; \
	INCQ R15

// I4LOOK2 replaces the codes in the low 4 bits of the lanes of Y by their
// values.
#define I4LOOK2(Y) \
	VPERMPS Y6, Y, Y4; \
	VPERMPS Y7, Y, Y5; \
	VPSLLD $28, Y, Y; \
	VBLENDVPS Y, Y5, Y4, Y

// I4BLK2 looks up the 32 codes of the block at q[AX:] into Y0..Y3 (x order:
// even inputs 0..15 in Y0, Y1, odd ones in Y2, Y3).
#define I4BLK2 \
	VPMOVZXBD 0(SI)(AX*1), Y0; \
	VPMOVZXBD 8(SI)(AX*1), Y1; \
	VPSRLD $4, Y0, Y2; \
	VPSRLD $4, Y1, Y3; \
	I4LOOK2(Y0); \
	I4LOOK2(Y1); \
	I4LOOK2(Y2); \
	I4LOOK2(Y3)

// I4FMA4Y accumulates Y0..Y3 times the 32 values of x at XP[2·AX:].
#define I4FMA4Y(XP, A0, A1, A2, A3) \
	VFMADD231PS 0(XP)(AX*8), Y0, A0; \
	VFMADD231PS 32(XP)(AX*8), Y1, A1; \
	VFMADD231PS 64(XP)(AX*8), Y2, A2; \
	VFMADD231PS 96(XP)(AX*8), Y3, A3

// I4SUMY stores the sum of the lanes of A0 and A1 at out[off/4].
#define I4SUMY(A0, A1, off) \
	VADDPS A1, A0, Y0; \
	HSUMY0; \
	VMOVSS X0, off(DI)

TEXT ·dotsI4AVX2(SB), NOSPLIT, $0-72
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), R8
	MOVQ ldx+16(FP), R13
	SHLQ $2, R13
	LEAQ (R8)(R13*1), R9
	LEAQ (R9)(R13*1), R10
	LEAQ (R10)(R13*1), R11
	MOVQ m+24(FP), R14
	MOVQ q+32(FP), SI
	MOVQ blocks+40(FP), DX
	MOVQ gblk+48(FP), CX
	MOVQ scales+56(FP), R12
	MOVQ offs+64(FP), R13
	XORQ AX, AX
	XORQ R15, R15
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	CMPQ R14, $2
	JB   y4m1
	JE   y4m2
	CMPQ R14, $3
	JE   y4m3
	JMP  y4m4

y4m1:
	TESTQ DX, DX
	JZ   y4m1done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT2
y4m1loop:
	I4BLK2
	I4FMA4Y(R8, Y8, Y9, Y10, Y11)
	ADDQ $16, AX
	DECQ BX
	JNZ  y4m1loop
	JMP  y4m1
y4m1done:
	VADDPS Y10, Y8, Y8
	VADDPS Y11, Y9, Y9
	I4SUMY(Y8, Y9, 0)
	VZEROUPPER
	RET

y4m2:
	TESTQ DX, DX
	JZ   y4m2done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT2
y4m2loop:
	I4BLK2
	I4FMA4Y(R8, Y8, Y9, Y8, Y9)
	I4FMA4Y(R9, Y10, Y11, Y10, Y11)
	ADDQ $16, AX
	DECQ BX
	JNZ  y4m2loop
	JMP  y4m2
y4m2done:
	I4SUMY(Y8, Y9, 0)
	I4SUMY(Y10, Y11, 4)
	VZEROUPPER
	RET

y4m3:
	TESTQ DX, DX
	JZ   y4m3done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT2
y4m3loop:
	I4BLK2
	I4FMA4Y(R8, Y8, Y9, Y8, Y9)
	I4FMA4Y(R9, Y10, Y11, Y10, Y11)
	I4FMA4Y(R10, Y12, Y13, Y12, Y13)
	ADDQ $16, AX
	DECQ BX
	JNZ  y4m3loop
	JMP  y4m3
y4m3done:
	I4SUMY(Y8, Y9, 0)
	I4SUMY(Y10, Y11, 4)
	I4SUMY(Y12, Y13, 8)
	VZEROUPPER
	RET

y4m4:
	TESTQ DX, DX
	JZ   y4m4done
	MOVQ CX, BX
	CMPQ DX, CX
	CMOVQLT DX, BX
	SUBQ BX, DX
	I4LUT2
y4m4loop:
	I4BLK2
	I4FMA4Y(R8, Y8, Y9, Y8, Y9)
	I4FMA4Y(R9, Y10, Y11, Y10, Y11)
	I4FMA4Y(R10, Y12, Y13, Y12, Y13)
	I4FMA4Y(R11, Y14, Y15, Y14, Y15)
	ADDQ $16, AX
	DECQ BX
	JNZ  y4m4loop
	JMP  y4m4
y4m4done:
	I4SUMY(Y8, Y9, 0)
	I4SUMY(Y10, Y11, 4)
	I4SUMY(Y12, Y13, 8)
	I4SUMY(Y14, Y15, 12)
	VZEROUPPER
	RET

// func widenI4AVX2(dst *float32, q *byte, n int, scale float32, off float32)
//
// widenI4AVX512 with AVX2: the table lookup of dotsI4AVX2, 8 codes a
// vector.
TEXT ·widenI4AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ n+16(FP), CX
	LEAQ off+28(FP), R13
	LEAQ scale+24(FP), R12
	XORQ R15, R15
	I4LUT2
	VPMOVZXBD i4shift<>(SB), Y3
	TESTQ CX, CX
	JZ   wY4done
wY4loop:
	VMOVQ (SI), X0
	VPUNPCKLBW X0, X0, X0
	VPSRLDQ $8, X0, X1
	VPMOVZXBD X0, Y0
	VPMOVZXBD X1, Y1
	VPSRLVD Y3, Y0, Y0
	VPSRLVD Y3, Y1, Y1
	I4LOOK2(Y0)
	I4LOOK2(Y1)
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $8, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  wY4loop
wY4done:
	VZEROUPPER
	RET

// i4mask is the dword 15.
DATA i4mask<>+0(SB)/4, $15
GLOBL i4mask<>(SB), RODATA|NOPTR, $4

// func transpose16I4(dst *float32, ldd int, src *byte, lds int, blocks int, offs *float32, scales *float32)
//
// The transposing packer of transpose16I8 (int8_amd64.s) for int4 codes of
// 16 rows (outputs) that share a group over the blocks packed, offs[r] = 8
// + the zero point and scales[r] the scale of row r there:
//
//	for b := 0; b < blocks; b++ {
//		for q := 0; q < 16; q++ {
//			for r := 0; r < 16; r++ {
//				u := src[r*lds+8*b+q/2] >> (4*(q%2)) & 15
//				dst[(16*b+q)*ldd+r] = (float32(u) - offs[r]) * scales[r]
//			}
//		}
//	}
//
// The codes are widened (8 bytes of each row doubled, shifted by 0 or 4,
// masked) and converted before the transpose; the offsets and scales apply
// to each transposed row (16 outputs) before it is stored. u - offs[r] is
// an exact small integer, so each value is the one f32 product of the
// reference.
TEXT ·transpose16I4(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DX
	MOVQ ldd+8(FP), R9
	SHLQ $2, R9
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R10
	MOVQ blocks+32(FP), CX
	MOVQ offs+40(FP), R12
	MOVQ scales+48(FP), R11
	TESTQ CX, CX
	JZ   tI4done
tI4loop:
	VPMOVZXBD i4shift<>(SB), Z30
	VPBROADCASTD i4mask<>(SB), Z31
	MOVQ SI, BX
	VMOVQ (BX), X0
	PREFETCHT0 64(BX)
	VPUNPCKLBW X0, X0, X0
	VPMOVZXBD X0, Z0
	VPSRLVD Z30, Z0, Z0
	VPANDD Z31, Z0, Z0
	VCVTDQ2PS Z0, Z0
	ADDQ R10, BX
	VMOVQ (BX), X1
	PREFETCHT0 64(BX)
	VPUNPCKLBW X1, X1, X1
	VPMOVZXBD X1, Z1
	VPSRLVD Z30, Z1, Z1
	VPANDD Z31, Z1, Z1
	VCVTDQ2PS Z1, Z1
	ADDQ R10, BX
	VMOVQ (BX), X2
	PREFETCHT0 64(BX)
	VPUNPCKLBW X2, X2, X2
	VPMOVZXBD X2, Z2
	VPSRLVD Z30, Z2, Z2
	VPANDD Z31, Z2, Z2
	VCVTDQ2PS Z2, Z2
	ADDQ R10, BX
	VMOVQ (BX), X3
	PREFETCHT0 64(BX)
	VPUNPCKLBW X3, X3, X3
	VPMOVZXBD X3, Z3
	VPSRLVD Z30, Z3, Z3
	VPANDD Z31, Z3, Z3
	VCVTDQ2PS Z3, Z3
	ADDQ R10, BX
	VMOVQ (BX), X4
	PREFETCHT0 64(BX)
	VPUNPCKLBW X4, X4, X4
	VPMOVZXBD X4, Z4
	VPSRLVD Z30, Z4, Z4
	VPANDD Z31, Z4, Z4
	VCVTDQ2PS Z4, Z4
	ADDQ R10, BX
	VMOVQ (BX), X5
	PREFETCHT0 64(BX)
	VPUNPCKLBW X5, X5, X5
	VPMOVZXBD X5, Z5
	VPSRLVD Z30, Z5, Z5
	VPANDD Z31, Z5, Z5
	VCVTDQ2PS Z5, Z5
	ADDQ R10, BX
	VMOVQ (BX), X6
	PREFETCHT0 64(BX)
	VPUNPCKLBW X6, X6, X6
	VPMOVZXBD X6, Z6
	VPSRLVD Z30, Z6, Z6
	VPANDD Z31, Z6, Z6
	VCVTDQ2PS Z6, Z6
	ADDQ R10, BX
	VMOVQ (BX), X7
	PREFETCHT0 64(BX)
	VPUNPCKLBW X7, X7, X7
	VPMOVZXBD X7, Z7
	VPSRLVD Z30, Z7, Z7
	VPANDD Z31, Z7, Z7
	VCVTDQ2PS Z7, Z7
	ADDQ R10, BX
	VMOVQ (BX), X8
	PREFETCHT0 64(BX)
	VPUNPCKLBW X8, X8, X8
	VPMOVZXBD X8, Z8
	VPSRLVD Z30, Z8, Z8
	VPANDD Z31, Z8, Z8
	VCVTDQ2PS Z8, Z8
	ADDQ R10, BX
	VMOVQ (BX), X9
	PREFETCHT0 64(BX)
	VPUNPCKLBW X9, X9, X9
	VPMOVZXBD X9, Z9
	VPSRLVD Z30, Z9, Z9
	VPANDD Z31, Z9, Z9
	VCVTDQ2PS Z9, Z9
	ADDQ R10, BX
	VMOVQ (BX), X10
	PREFETCHT0 64(BX)
	VPUNPCKLBW X10, X10, X10
	VPMOVZXBD X10, Z10
	VPSRLVD Z30, Z10, Z10
	VPANDD Z31, Z10, Z10
	VCVTDQ2PS Z10, Z10
	ADDQ R10, BX
	VMOVQ (BX), X11
	PREFETCHT0 64(BX)
	VPUNPCKLBW X11, X11, X11
	VPMOVZXBD X11, Z11
	VPSRLVD Z30, Z11, Z11
	VPANDD Z31, Z11, Z11
	VCVTDQ2PS Z11, Z11
	ADDQ R10, BX
	VMOVQ (BX), X12
	PREFETCHT0 64(BX)
	VPUNPCKLBW X12, X12, X12
	VPMOVZXBD X12, Z12
	VPSRLVD Z30, Z12, Z12
	VPANDD Z31, Z12, Z12
	VCVTDQ2PS Z12, Z12
	ADDQ R10, BX
	VMOVQ (BX), X13
	PREFETCHT0 64(BX)
	VPUNPCKLBW X13, X13, X13
	VPMOVZXBD X13, Z13
	VPSRLVD Z30, Z13, Z13
	VPANDD Z31, Z13, Z13
	VCVTDQ2PS Z13, Z13
	ADDQ R10, BX
	VMOVQ (BX), X14
	PREFETCHT0 64(BX)
	VPUNPCKLBW X14, X14, X14
	VPMOVZXBD X14, Z14
	VPSRLVD Z30, Z14, Z14
	VPANDD Z31, Z14, Z14
	VCVTDQ2PS Z14, Z14
	ADDQ R10, BX
	VMOVQ (BX), X15
	PREFETCHT0 64(BX)
	VPUNPCKLBW X15, X15, X15
	VPMOVZXBD X15, Z15
	VPSRLVD Z30, Z15, Z15
	VPANDD Z31, Z15, Z15
	VCVTDQ2PS Z15, Z15
	TRANSPOSE16_STAGES
	VSHUFF32X4 $0x88, Z18, Z16, Z0
	VSUBPS (R12), Z0, Z0
	VMULPS (R11), Z0, Z0
	VMOVUPS Z0, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z22, Z20, Z1
	VSUBPS (R12), Z1, Z1
	VMULPS (R11), Z1, Z1
	VMOVUPS Z1, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z26, Z24, Z2
	VSUBPS (R12), Z2, Z2
	VMULPS (R11), Z2, Z2
	VMOVUPS Z2, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z30, Z28, Z3
	VSUBPS (R12), Z3, Z3
	VMULPS (R11), Z3, Z3
	VMOVUPS Z3, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z18, Z16, Z4
	VSUBPS (R12), Z4, Z4
	VMULPS (R11), Z4, Z4
	VMOVUPS Z4, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z22, Z20, Z5
	VSUBPS (R12), Z5, Z5
	VMULPS (R11), Z5, Z5
	VMOVUPS Z5, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z26, Z24, Z6
	VSUBPS (R12), Z6, Z6
	VMULPS (R11), Z6, Z6
	VMOVUPS Z6, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z30, Z28, Z7
	VSUBPS (R12), Z7, Z7
	VMULPS (R11), Z7, Z7
	VMOVUPS Z7, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z19, Z17, Z8
	VSUBPS (R12), Z8, Z8
	VMULPS (R11), Z8, Z8
	VMOVUPS Z8, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z23, Z21, Z9
	VSUBPS (R12), Z9, Z9
	VMULPS (R11), Z9, Z9
	VMOVUPS Z9, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z27, Z25, Z10
	VSUBPS (R12), Z10, Z10
	VMULPS (R11), Z10, Z10
	VMOVUPS Z10, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0x88, Z31, Z29, Z11
	VSUBPS (R12), Z11, Z11
	VMULPS (R11), Z11, Z11
	VMOVUPS Z11, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z19, Z17, Z12
	VSUBPS (R12), Z12, Z12
	VMULPS (R11), Z12, Z12
	VMOVUPS Z12, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z23, Z21, Z13
	VSUBPS (R12), Z13, Z13
	VMULPS (R11), Z13, Z13
	VMOVUPS Z13, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z27, Z25, Z14
	VSUBPS (R12), Z14, Z14
	VMULPS (R11), Z14, Z14
	VMOVUPS Z14, (DX)
	ADDQ R9, DX
	VSHUFF32X4 $0xDD, Z31, Z29, Z15
	VSUBPS (R12), Z15, Z15
	VMULPS (R11), Z15, Z15
	VMOVUPS Z15, (DX)
	ADDQ R9, DX
	ADDQ $8, SI
	DECQ CX
	JNZ  tI4loop
tI4done:
	VZEROUPPER
	RET
