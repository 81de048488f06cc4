//go:build amd64 && !purego

#include "textflag.h"
#include "hsum_amd64.h"

// AVX-512 (F, BW) decoders and dot products of ggml's block types, the
// fast versions of the plain loops in ggml.go. The decoders compute every
// value with the reference's operations in the reference's order (one
// float32 product for a scale times a code, a separate subtraction of a
// minimum, never a fused multiply-add), so their output is bit-identical to
// formats/gguf's Decode. The dot products form each weight the same way and
// accumulate x·w in f32 with fused multiply-adds in 16 lanes and several
// accumulators, summed at the end: only the order of the sum differs from
// the plain loop.
//
// Layouts (ggml-common.h):
//
//	Q4_K  144 bytes: d, dmin (f16), scales[12] (eight 6-bit scales and
//	      mins), qs[128]; value 64g+i is the low nibble of qs[32g+i] and
//	      64g+32+i its high nibble, with scale and min 2g and 2g+1.
//	Q5_K  176 bytes: d, dmin, scales[12], qh[32], qs[128]; as Q4_K, plus
//	      16 for bit 2g (low nibbles) or 2g+1 (high) of qh[i].
//	Q6_K  210 bytes: ql[128], qh[64], scales[16] (int8), d (f16); values
//	      128h+l, +32, +64, +96 (l < 32) take the low nibble of ql[64h+l],
//	      the low of ql[64h+32+l], the high of ql[64h+l], the high of
//	      ql[64h+32+l], and bits 0-1, 2-3, 4-5, 6-7 of qh[32h+l] as their
//	      bits 4-5, minus 32; scale 8h+v/16 for value 128h+v.
//	Q8_0  34 bytes: d (f16), qs[32] (int8).
//	Q4_0  18 bytes: d (f16), qs[16]: value i the low nibble of qs[i], value
//	      16+i the high one, minus 8.

// ggmlIota is 0, 1, ..., 15 as float32.
DATA ggmlIota<>+0(SB)/4, $0.0
DATA ggmlIota<>+4(SB)/4, $1.0
DATA ggmlIota<>+8(SB)/4, $2.0
DATA ggmlIota<>+12(SB)/4, $3.0
DATA ggmlIota<>+16(SB)/4, $4.0
DATA ggmlIota<>+20(SB)/4, $5.0
DATA ggmlIota<>+24(SB)/4, $6.0
DATA ggmlIota<>+28(SB)/4, $7.0
DATA ggmlIota<>+32(SB)/4, $8.0
DATA ggmlIota<>+36(SB)/4, $9.0
DATA ggmlIota<>+40(SB)/4, $10.0
DATA ggmlIota<>+44(SB)/4, $11.0
DATA ggmlIota<>+48(SB)/4, $12.0
DATA ggmlIota<>+52(SB)/4, $13.0
DATA ggmlIota<>+56(SB)/4, $14.0
DATA ggmlIota<>+60(SB)/4, $15.0
GLOBL ggmlIota<>(SB), RODATA|NOPTR, $64

// ggmlScaleIdx are the VPSHUFB indexes with which Q4K_SCALES gathers the
// Q4_K scales and mins (0x80: a zero byte): the low 6 bits of block bytes
// 4-7 (scales 0-3) and 8-11 (mins 0-3); the low nibbles of bytes 12-15
// (scales 4-7) and their high nibbles (mins 4-7); the top 2 bits of bytes
// 4-7 and 8-11, the high bits of scales 4-7 and mins 4-7.
DATA ggmlScaleIdx<>+0(SB)/8, $0x8080808007060504
DATA ggmlScaleIdx<>+8(SB)/8, $0x808080800b0a0908
DATA ggmlScaleIdx<>+16(SB)/8, $0x0f0e0d0c80808080
DATA ggmlScaleIdx<>+24(SB)/8, $0x8080808080808080
DATA ggmlScaleIdx<>+32(SB)/8, $0x8080808080808080
DATA ggmlScaleIdx<>+40(SB)/8, $0x0f0e0d0c80808080
DATA ggmlScaleIdx<>+48(SB)/8, $0x0706050480808080
DATA ggmlScaleIdx<>+56(SB)/8, $0x0b0a090880808080
GLOBL ggmlScaleIdx<>(SB), RODATA|NOPTR, $64

// ggmlDMin is the VPERMPS index of d (lane 0) in 8 lanes, then dmin (lane
// 1) in 8.
DATA ggmlDMin<>+0(SB)/8, $0
DATA ggmlDMin<>+8(SB)/8, $0
DATA ggmlDMin<>+16(SB)/8, $0
DATA ggmlDMin<>+24(SB)/8, $0
DATA ggmlDMin<>+32(SB)/8, $0x0000000100000001
DATA ggmlDMin<>+40(SB)/8, $0x0000000100000001
DATA ggmlDMin<>+48(SB)/8, $0x0000000100000001
DATA ggmlDMin<>+56(SB)/8, $0x0000000100000001
GLOBL ggmlDMin<>(SB), RODATA|NOPTR, $64

// Q4K_SCALES unpacks the eight 6-bit scales and mins of the Q4_K block at
// SI and stores d·scale[j] at 4j(SP) and dmin·min[j] at 32+4j(SP), each one
// float32 product of the block's f16 scale and the integer (X16-X22, Z23
// from Q4K_SETUP). Shifting words moves bits across the bytes of a word;
// the masks keep only each byte's own bits.
#define Q4K_SCALES \
	VMOVDQU (SI), X1; \
	VPSRLW $4, X1, X2; \
	VPSRLW $2, X1, X3; \
	VPANDD X17, X2, X2; \
	VPANDD X18, X3, X3; \
	VPANDD X16, X1, X4; \
	VPANDD X17, X1, X5; \
	VPSHUFB X19, X4, X4; \
	VPSHUFB X20, X5, X5; \
	VPSHUFB X21, X2, X2; \
	VPSHUFB X22, X3, X3; \
	VPORD X5, X4, X4; \
	VPORD X3, X2, X2; \
	VPORD X2, X4, X4; \
	VPMOVZXBD X4, Z4; \
	VCVTDQ2PS Z4, Z4; \
	VCVTPH2PS X1, X2; \
	VPERMPS Z2, Z23, Z2; \
	VMULPS Z2, Z4, Z4; \
	VMOVUPS Z4, (SP)

// Q4K_TABLES computes the 16 values a Q4_K code can take in sub-blocks 2g
// (into Z6) and 2g+1 (Z7): d·scale·q - dmin·min for q = 0..15 (Z13), the
// reference's two roundings, so that a lookup gives the decoded value.
#define Q4K_TABLES(g) \
	VMULPS.BCST (8*g)(SP), Z13, Z6; \
	VSUBPS.BCST (32+8*g)(SP), Z6, Z6; \
	VMULPS.BCST (8*g+4)(SP), Z13, Z7; \
	VSUBPS.BCST (36+8*g)(SP), Z7, Z7

// Q4K_VALS leaves in Z4 the 16 values 64g+16h..+15 and in Z5 the 16 values
// 64g+32+16h..+15 of the Q4_K block at SI, looked up in Q4K_TABLES(g)'s
// tables (VPERMPS reads the low 4 bits of each index: the low nibble, or
// the high one once shifted down).
#define Q4K_VALS(g, h) \
	VPMOVZXBD (16+32*g+16*h)(SI), Z4; \
	VPSRLD $4, Z4, Z5; \
	VPERMPS Z6, Z4, Z4; \
	VPERMPS Z7, Z5, Z5

#define Q4K_DECODE(g, h) \
	Q4K_VALS(g, h); \
	VMOVUPS Z4, (4*(64*g+16*h))(DI); \
	VMOVUPS Z5, (4*(64*g+32+16*h))(DI)

#define Q4K_DOT(g, h, acc0, acc1) \
	Q4K_VALS(g, h); \
	VFMADD231PS (4*(64*g+16*h))(DI), Z4, acc0; \
	VFMADD231PS (4*(64*g+32+16*h))(DI), Z5, acc1

#define Q4K_SETUP \
	VMOVUPS ggmlIota<>(SB), Z13; \
	MOVL $15, AX; \
	VPBROADCASTD AX, Z15; \
	MOVL $0x3f, AX; \
	VPBROADCASTB AX, X16; \
	MOVL $0x0f, AX; \
	VPBROADCASTB AX, X17; \
	MOVL $0x30, AX; \
	VPBROADCASTB AX, X18; \
	VMOVDQU64 ggmlScaleIdx<>+0(SB), X19; \
	VMOVDQU64 ggmlScaleIdx<>+16(SB), X20; \
	VMOVDQU64 ggmlScaleIdx<>+32(SB), X21; \
	VMOVDQU64 ggmlScaleIdx<>+48(SB), X22; \
	VMOVDQU64 ggmlDMin<>(SB), Z23

// DOT_SUM adds the accumulators Z0, Z10, Z11, Z12 into X0[0].
#define DOT_SUM \
	VADDPS Z10, Z0, Z0; \
	VADDPS Z12, Z11, Z11; \
	VADDPS Z11, Z0, Z0; \
	HSUMZ0

#define DOT_ZERO \
	VPXORD Z0, Z0, Z0; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12

// Q6K_SCALES stores the block's 16 scales d·scales[j] at 4j(SP).
#define Q6K_SCALES \
	VPMOVSXBD 192(SI), Z1; \
	VCVTDQ2PS Z1, Z1; \
	MOVWLZX 208(SI), AX; \
	VMOVD AX, X2; \
	VCVTPH2PS X2, X2; \
	VBROADCASTSS X2, Z2; \
	VMULPS Z2, Z1, Z1; \
	VMOVUPS Z1, (SP)

// Q6K_CODES leaves the 128 codes (minus 32, as int8) of half h of the Q6_K
// block at SI in Z6 (values 0-63 of the half) and Z7 (64-127), in value
// order (Z13 = 0x0f, Z14 = 0x30, Z9 = 32 in every byte). Shifting words moves bits across the bytes of a word; the
// masks keep only each byte's own bits.
#define Q6K_CODES(h) \
	VMOVDQU64 (64*h)(SI), Z3; \
	VMOVDQU (128+32*h)(SI), Y4; \
	VPSRLW $2, Y4, Y5; \
	VINSERTI64X4 $1, Y5, Z4, Z4; \
	VPSRLW $4, Z3, Z7; \
	VPANDQ Z13, Z3, Z6; \
	VPANDQ Z13, Z7, Z7; \
	VPSLLW $4, Z4, Z8; \
	VPANDQ Z14, Z8, Z8; \
	VPANDQ Z14, Z4, Z4; \
	VPORQ Z8, Z6, Z6; \
	VPORQ Z4, Z7, Z7; \
	VPSUBB Z9, Z6, Z6; \
	VPSUBB Z9, Z7, Z7

// Q6K_VAL leaves in Z5 the 16 values 128h+16k..+15 from their codes in
// lane l of zmm (Q6K_CODES's Z6 for k < 4, Z7 for the others).
#define Q6K_VAL(h, k, l, zmm) \
	VEXTRACTI32X4 $l, zmm, X5; \
	VPMOVSXBD X5, Z5; \
	VCVTDQ2PS Z5, Z5; \
	VMULPS.BCST (4*(8*h+k))(SP), Z5, Z5

#define Q6K_DECODE(h, k, l, zmm) \
	Q6K_VAL(h, k, l, zmm); \
	VMOVUPS Z5, (4*(128*h+16*k))(DI)

#define Q6K_DOT(h, k, l, zmm, acc) \
	Q6K_VAL(h, k, l, zmm); \
	VFMADD231PS (4*(128*h+16*k))(DI), Z5, acc

#define Q6K_HALF_DECODE(h) \
	Q6K_CODES(h); \
	Q6K_DECODE(h, 0, 0, Z6); \
	Q6K_DECODE(h, 1, 1, Z6); \
	Q6K_DECODE(h, 2, 2, Z6); \
	Q6K_DECODE(h, 3, 3, Z6); \
	Q6K_DECODE(h, 4, 0, Z7); \
	Q6K_DECODE(h, 5, 1, Z7); \
	Q6K_DECODE(h, 6, 2, Z7); \
	Q6K_DECODE(h, 7, 3, Z7)

#define Q6K_HALF_DOT(h) \
	Q6K_CODES(h); \
	Q6K_DOT(h, 0, 0, Z6, Z0); \
	Q6K_DOT(h, 1, 1, Z6, Z10); \
	Q6K_DOT(h, 2, 2, Z6, Z11); \
	Q6K_DOT(h, 3, 3, Z6, Z12); \
	Q6K_DOT(h, 4, 0, Z7, Z0); \
	Q6K_DOT(h, 5, 1, Z7, Z10); \
	Q6K_DOT(h, 6, 2, Z7, Z11); \
	Q6K_DOT(h, 7, 3, Z7, Z12)

#define Q6K_SETUP \
	MOVL $0x0f, AX; \
	VPBROADCASTB AX, Z13; \
	MOVL $0x30, AX; \
	VPBROADCASTB AX, Z14; \
	MOVL $32, AX; \
	VPBROADCASTB AX, Z9

// BLOCK_D broadcasts the f16 scale at off(SI) into Z2.
#define BLOCK_D(off) \
	MOVWLZX off(SI), AX; \
	VMOVD AX, X2; \
	VCVTPH2PS X2, X2; \
	VBROADCASTSS X2, Z2

// Q8_0_VALS leaves the block's 32 values in Z4 and Z5.
#define Q8_0_VALS \
	BLOCK_D(0); \
	VPMOVSXBD 2(SI), Z4; \
	VPMOVSXBD 18(SI), Z5; \
	VCVTDQ2PS Z4, Z4; \
	VCVTDQ2PS Z5, Z5; \
	VMULPS Z2, Z4, Z4; \
	VMULPS Z2, Z5, Z5

// Q4_0_VALS leaves the block's 32 values in Z4 and Z5 (Z15 = 15, Z14 = 8
// in every dword).
#define Q4_0_VALS \
	BLOCK_D(0); \
	VPMOVZXBD 2(SI), Z4; \
	VPSRLD $4, Z4, Z5; \
	VPANDD Z15, Z4, Z4; \
	VPSUBD Z14, Z4, Z4; \
	VPSUBD Z14, Z5, Z5; \
	VCVTDQ2PS Z4, Z4; \
	VCVTDQ2PS Z5, Z5; \
	VMULPS Z2, Z4, Z4; \
	VMULPS Z2, Z5, Z5

#define Q4_0_SETUP \
	MOVL $15, AX; \
	VPBROADCASTD AX, Z15; \
	MOVL $8, AX; \
	VPBROADCASTD AX, Z14

// Q5K_HIGH loads the fifth bits of the 16 values of half h (qh[16h..]) of
// the Q5_K block at SI, moved up by 4, into Z8 (bit j of qh[l] at bit
// j+4).
#define Q5K_HIGH(h) \
	VPMOVZXBD (16+16*h)(SI), Z8; \
	VPSLLD $4, Z8, Z8

// Q5K_VALS leaves in Z4 the 16 values 64g+16h..+15 and in Z5 the 16
// values 64g+32+16h..+15 of the Q5_K block at SI (Z15 = 15, Z14 = 16 in
// every dword; Z8 from Q5K_HIGH(h)): the low nibble (high for Z5) of
// qs[32g+16h+i] plus 16 times bit 2g (2g+1) of qh[16h+i], then as Q4_K.
#define Q5K_VALS(g, h) \
	VPMOVZXBD (48+32*g+16*h)(SI), Z4; \
	VPSRLD $4, Z4, Z5; \
	VPANDD Z15, Z4, Z4; \
	VPSRLD $(2*g), Z8, Z6; \
	VPSRLD $(2*g+1), Z8, Z7; \
	VPTERNLOGD $0xF8, Z14, Z6, Z4; \
	VPTERNLOGD $0xF8, Z14, Z7, Z5; \
	VCVTDQ2PS Z4, Z4; \
	VCVTDQ2PS Z5, Z5; \
	VMULPS.BCST (8*g)(SP), Z4, Z4; \
	VSUBPS.BCST (32+8*g)(SP), Z4, Z4; \
	VMULPS.BCST (8*g+4)(SP), Z5, Z5; \
	VSUBPS.BCST (36+8*g)(SP), Z5, Z5

#define Q5K_DECODE(g, h) \
	Q5K_VALS(g, h); \
	VMOVUPS Z4, (4*(64*g+16*h))(DI); \
	VMOVUPS Z5, (4*(64*g+32+16*h))(DI)

#define Q5K_DOT(g, h, acc0, acc1) \
	Q5K_VALS(g, h); \
	VFMADD231PS (4*(64*g+16*h))(DI), Z4, acc0; \
	VFMADD231PS (4*(64*g+32+16*h))(DI), Z5, acc1

#define Q5K_SETUP \
	Q4K_SETUP; \
	MOVL $16, AX; \
	VPBROADCASTD AX, Z14

// func decodeQ4KAVX512(dst *float32, src *byte, blocks int)
TEXT ·decodeQ4KAVX512(SB), NOSPLIT, $64-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q4K_SETUP
q4kdec:
	TESTQ CX, CX
	JZ    q4kdecdone
	Q4K_SCALES
	Q4K_TABLES(0)
	Q4K_DECODE(0, 0)
	Q4K_DECODE(0, 1)
	Q4K_TABLES(1)
	Q4K_DECODE(1, 0)
	Q4K_DECODE(1, 1)
	Q4K_TABLES(2)
	Q4K_DECODE(2, 0)
	Q4K_DECODE(2, 1)
	Q4K_TABLES(3)
	Q4K_DECODE(3, 0)
	Q4K_DECODE(3, 1)
	ADDQ $144, SI
	ADDQ $1024, DI
	DECQ CX
	JMP  q4kdec
q4kdecdone:
	VZEROUPPER
	RET

// func dotQ4KAVX512(x *float32, src *byte, blocks int) float32
TEXT ·dotQ4KAVX512(SB), NOSPLIT, $64-28
	MOVQ x+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q4K_SETUP
	DOT_ZERO
q4kdot:
	TESTQ CX, CX
	JZ    q4kdotdone
	PREFETCHT0 (4*144)(SI)
	PREFETCHT0 (4*144+64)(SI)
	PREFETCHT0 (4*144+128)(SI)
	Q4K_SCALES
	Q4K_TABLES(0)
	Q4K_DOT(0, 0, Z0, Z10)
	Q4K_DOT(0, 1, Z11, Z12)
	Q4K_TABLES(1)
	Q4K_DOT(1, 0, Z0, Z10)
	Q4K_DOT(1, 1, Z11, Z12)
	Q4K_TABLES(2)
	Q4K_DOT(2, 0, Z0, Z10)
	Q4K_DOT(2, 1, Z11, Z12)
	Q4K_TABLES(3)
	Q4K_DOT(3, 0, Z0, Z10)
	Q4K_DOT(3, 1, Z11, Z12)
	ADDQ $144, SI
	ADDQ $1024, DI
	DECQ CX
	JMP  q4kdot
q4kdotdone:
	DOT_SUM
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func decodeQ6KAVX512(dst *float32, src *byte, blocks int)
TEXT ·decodeQ6KAVX512(SB), NOSPLIT, $64-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q6K_SETUP
q6kdec:
	TESTQ CX, CX
	JZ    q6kdecdone
	Q6K_SCALES
	Q6K_HALF_DECODE(0)
	Q6K_HALF_DECODE(1)
	ADDQ $210, SI
	ADDQ $1024, DI
	DECQ CX
	JMP  q6kdec
q6kdecdone:
	VZEROUPPER
	RET

// func dotQ6KAVX512(x *float32, src *byte, blocks int) float32
TEXT ·dotQ6KAVX512(SB), NOSPLIT, $64-28
	MOVQ x+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q6K_SETUP
	DOT_ZERO
q6kdot:
	TESTQ CX, CX
	JZ    q6kdotdone
	PREFETCHT0 (4*210)(SI)
	PREFETCHT0 (4*210+64)(SI)
	PREFETCHT0 (4*210+128)(SI)
	PREFETCHT0 (4*210+192)(SI)
	Q6K_SCALES
	Q6K_HALF_DOT(0)
	Q6K_HALF_DOT(1)
	ADDQ $210, SI
	ADDQ $1024, DI
	DECQ CX
	JMP  q6kdot
q6kdotdone:
	DOT_SUM
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func decodeQ8_0AVX512(dst *float32, src *byte, blocks int)
TEXT ·decodeQ8_0AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
q80dec:
	TESTQ CX, CX
	JZ    q80decdone
	Q8_0_VALS
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, 64(DI)
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JMP  q80dec
q80decdone:
	VZEROUPPER
	RET

// func dotQ8_0AVX512(x *float32, src *byte, blocks int) float32
TEXT ·dotQ8_0AVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	DOT_ZERO
q80dot:
	TESTQ CX, CX
	JZ    q80dotdone
	Q8_0_VALS
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z10
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JZ    q80dotdone
	Q8_0_VALS
	VFMADD231PS (DI), Z4, Z11
	VFMADD231PS 64(DI), Z5, Z12
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JMP  q80dot
q80dotdone:
	DOT_SUM
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func decodeQ4_0AVX512(dst *float32, src *byte, blocks int)
TEXT ·decodeQ4_0AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q4_0_SETUP
q40dec:
	TESTQ CX, CX
	JZ    q40decdone
	Q4_0_VALS
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, 64(DI)
	ADDQ $18, SI
	ADDQ $128, DI
	DECQ CX
	JMP  q40dec
q40decdone:
	VZEROUPPER
	RET

// func dotQ4_0AVX512(x *float32, src *byte, blocks int) float32
TEXT ·dotQ4_0AVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q4_0_SETUP
	DOT_ZERO
q40dot:
	TESTQ CX, CX
	JZ    q40dotdone
	Q4_0_VALS
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z10
	ADDQ $18, SI
	ADDQ $128, DI
	DECQ CX
	JZ    q40dotdone
	Q4_0_VALS
	VFMADD231PS (DI), Z4, Z11
	VFMADD231PS 64(DI), Z5, Z12
	ADDQ $18, SI
	ADDQ $128, DI
	DECQ CX
	JMP  q40dot
q40dotdone:
	DOT_SUM
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func decodeQ5KAVX512(dst *float32, src *byte, blocks int)
TEXT ·decodeQ5KAVX512(SB), NOSPLIT, $64-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q5K_SETUP
q5kdec:
	TESTQ CX, CX
	JZ    q5kdecdone
	Q4K_SCALES
	Q5K_HIGH(0)
	Q5K_DECODE(0, 0)
	Q5K_DECODE(1, 0)
	Q5K_DECODE(2, 0)
	Q5K_DECODE(3, 0)
	Q5K_HIGH(1)
	Q5K_DECODE(0, 1)
	Q5K_DECODE(1, 1)
	Q5K_DECODE(2, 1)
	Q5K_DECODE(3, 1)
	ADDQ $176, SI
	ADDQ $1024, DI
	DECQ CX
	JMP  q5kdec
q5kdecdone:
	VZEROUPPER
	RET

// func dotQ5KAVX512(x *float32, src *byte, blocks int) float32
TEXT ·dotQ5KAVX512(SB), NOSPLIT, $64-28
	MOVQ x+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	Q5K_SETUP
	DOT_ZERO
q5kdot:
	TESTQ CX, CX
	JZ    q5kdotdone
	Q4K_SCALES
	Q5K_HIGH(0)
	Q5K_DOT(0, 0, Z0, Z10)
	Q5K_DOT(1, 0, Z11, Z12)
	Q5K_DOT(2, 0, Z0, Z10)
	Q5K_DOT(3, 0, Z11, Z12)
	Q5K_HIGH(1)
	Q5K_DOT(0, 1, Z0, Z10)
	Q5K_DOT(1, 1, Z11, Z12)
	Q5K_DOT(2, 1, Z0, Z10)
	Q5K_DOT(3, 1, Z11, Z12)
	ADDQ $176, SI
	ADDQ $1024, DI
	DECQ CX
	JMP  q5kdot
q5kdotdone:
	DOT_SUM
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET
