//go:build amd64 && !purego

#include "textflag.h"

// The dot products of Q4_K and Q6_K weight blocks with q8K activations
// (ggml_q8.go): per block, the products of the unsigned weight codes and
// the signed 8-bit activation codes with VPMADDUBSW (pairs summed in int16:
// at most 2·63·127, no saturation), times the sub-blocks' scales with
// VPMADDWD (int32), summed across the lanes (exact integer sums), then the
// block's f32 scaling in the order of the plain loops.
//
// func dotQ4KQ8KAVX512(src *byte, xq *int8, d *float32, bsums *int16, blocks int) float32
// func dotQ6KQ8KAVX512(src *byte, xq *int8, d *float32, bsums *int16, blocks int) float32

// q8Q4KScaleIdx: for each pair p of Q4_K sub-blocks, the VPERMW index
// of 32 words: words 0-15 the scale 2p, 16-31 the scale 2p+1.
DATA q8Q4KScaleIdx<>+0(SB)/8, $0x0000000000000000
DATA q8Q4KScaleIdx<>+8(SB)/8, $0x0000000000000000
DATA q8Q4KScaleIdx<>+16(SB)/8, $0x0000000000000000
DATA q8Q4KScaleIdx<>+24(SB)/8, $0x0000000000000000
DATA q8Q4KScaleIdx<>+32(SB)/8, $0x0001000100010001
DATA q8Q4KScaleIdx<>+40(SB)/8, $0x0001000100010001
DATA q8Q4KScaleIdx<>+48(SB)/8, $0x0001000100010001
DATA q8Q4KScaleIdx<>+56(SB)/8, $0x0001000100010001
DATA q8Q4KScaleIdx<>+64(SB)/8, $0x0002000200020002
DATA q8Q4KScaleIdx<>+72(SB)/8, $0x0002000200020002
DATA q8Q4KScaleIdx<>+80(SB)/8, $0x0002000200020002
DATA q8Q4KScaleIdx<>+88(SB)/8, $0x0002000200020002
DATA q8Q4KScaleIdx<>+96(SB)/8, $0x0003000300030003
DATA q8Q4KScaleIdx<>+104(SB)/8, $0x0003000300030003
DATA q8Q4KScaleIdx<>+112(SB)/8, $0x0003000300030003
DATA q8Q4KScaleIdx<>+120(SB)/8, $0x0003000300030003
DATA q8Q4KScaleIdx<>+128(SB)/8, $0x0004000400040004
DATA q8Q4KScaleIdx<>+136(SB)/8, $0x0004000400040004
DATA q8Q4KScaleIdx<>+144(SB)/8, $0x0004000400040004
DATA q8Q4KScaleIdx<>+152(SB)/8, $0x0004000400040004
DATA q8Q4KScaleIdx<>+160(SB)/8, $0x0005000500050005
DATA q8Q4KScaleIdx<>+168(SB)/8, $0x0005000500050005
DATA q8Q4KScaleIdx<>+176(SB)/8, $0x0005000500050005
DATA q8Q4KScaleIdx<>+184(SB)/8, $0x0005000500050005
DATA q8Q4KScaleIdx<>+192(SB)/8, $0x0006000600060006
DATA q8Q4KScaleIdx<>+200(SB)/8, $0x0006000600060006
DATA q8Q4KScaleIdx<>+208(SB)/8, $0x0006000600060006
DATA q8Q4KScaleIdx<>+216(SB)/8, $0x0006000600060006
DATA q8Q4KScaleIdx<>+224(SB)/8, $0x0007000700070007
DATA q8Q4KScaleIdx<>+232(SB)/8, $0x0007000700070007
DATA q8Q4KScaleIdx<>+240(SB)/8, $0x0007000700070007
DATA q8Q4KScaleIdx<>+248(SB)/8, $0x0007000700070007
GLOBL q8Q4KScaleIdx<>(SB), RODATA|NOPTR, $256

// q8Q4KMinIdx: the VPERMW index of 16 words, word i the minimum i/2
// (words 8-15 of the scale/minimum vector).
DATA q8Q4KMinIdx<>+0(SB)/8, $0x0009000900080008
DATA q8Q4KMinIdx<>+8(SB)/8, $0x000b000b000a000a
DATA q8Q4KMinIdx<>+16(SB)/8, $0x000d000d000c000c
DATA q8Q4KMinIdx<>+24(SB)/8, $0x000f000f000e000e
GLOBL q8Q4KMinIdx<>(SB), RODATA|NOPTR, $32

// q8Q6KScaleIdx: for each 64 values c of a Q6_K block, the VPERMW
// index of 32 words: word k the scale 4c+k/8 (16 values: 8 words).
DATA q8Q6KScaleIdx<>+0(SB)/8, $0x0000000000000000
DATA q8Q6KScaleIdx<>+8(SB)/8, $0x0000000000000000
DATA q8Q6KScaleIdx<>+16(SB)/8, $0x0001000100010001
DATA q8Q6KScaleIdx<>+24(SB)/8, $0x0001000100010001
DATA q8Q6KScaleIdx<>+32(SB)/8, $0x0002000200020002
DATA q8Q6KScaleIdx<>+40(SB)/8, $0x0002000200020002
DATA q8Q6KScaleIdx<>+48(SB)/8, $0x0003000300030003
DATA q8Q6KScaleIdx<>+56(SB)/8, $0x0003000300030003
DATA q8Q6KScaleIdx<>+64(SB)/8, $0x0004000400040004
DATA q8Q6KScaleIdx<>+72(SB)/8, $0x0004000400040004
DATA q8Q6KScaleIdx<>+80(SB)/8, $0x0005000500050005
DATA q8Q6KScaleIdx<>+88(SB)/8, $0x0005000500050005
DATA q8Q6KScaleIdx<>+96(SB)/8, $0x0006000600060006
DATA q8Q6KScaleIdx<>+104(SB)/8, $0x0006000600060006
DATA q8Q6KScaleIdx<>+112(SB)/8, $0x0007000700070007
DATA q8Q6KScaleIdx<>+120(SB)/8, $0x0007000700070007
DATA q8Q6KScaleIdx<>+128(SB)/8, $0x0008000800080008
DATA q8Q6KScaleIdx<>+136(SB)/8, $0x0008000800080008
DATA q8Q6KScaleIdx<>+144(SB)/8, $0x0009000900090009
DATA q8Q6KScaleIdx<>+152(SB)/8, $0x0009000900090009
DATA q8Q6KScaleIdx<>+160(SB)/8, $0x000a000a000a000a
DATA q8Q6KScaleIdx<>+168(SB)/8, $0x000a000a000a000a
DATA q8Q6KScaleIdx<>+176(SB)/8, $0x000b000b000b000b
DATA q8Q6KScaleIdx<>+184(SB)/8, $0x000b000b000b000b
DATA q8Q6KScaleIdx<>+192(SB)/8, $0x000c000c000c000c
DATA q8Q6KScaleIdx<>+200(SB)/8, $0x000c000c000c000c
DATA q8Q6KScaleIdx<>+208(SB)/8, $0x000d000d000d000d
DATA q8Q6KScaleIdx<>+216(SB)/8, $0x000d000d000d000d
DATA q8Q6KScaleIdx<>+224(SB)/8, $0x000e000e000e000e
DATA q8Q6KScaleIdx<>+232(SB)/8, $0x000e000e000e000e
DATA q8Q6KScaleIdx<>+240(SB)/8, $0x000f000f000f000f
DATA q8Q6KScaleIdx<>+248(SB)/8, $0x000f000f000f000f
GLOBL q8Q6KScaleIdx<>(SB), RODATA|NOPTR, $256

// Q4_K: Z31 bytes 0x0f; Z20-Z23 the scale indices of the four pairs of
// sub-blocks, Y24 the minimum index; X0 the f32 sum.
TEXT ·dotQ4KQ8KAVX512(SB), NOSPLIT, $0-44
	MOVQ src+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ d+16(FP), R8
	MOVQ bsums+24(FP), R9
	MOVQ blocks+32(FP), CX
	MOVL $0x0f, AX
	VPBROADCASTB AX, Z31
	VMOVDQU64 q8Q4KScaleIdx<>+0(SB), Z20
	VMOVDQU64 q8Q4KScaleIdx<>+64(SB), Z21
	VMOVDQU64 q8Q4KScaleIdx<>+128(SB), Z22
	VMOVDQU64 q8Q4KScaleIdx<>+192(SB), Z23
	VMOVDQU64 q8Q4KMinIdx<>+0(SB), Y24
	VXORPS X0, X0, X0

q4kloop:
	TESTQ CX, CX
	JZ    q4kdone
	// The 6-bit scales (R10) and minimums (R12) as 8 bytes each
	// (scaleMinK4): words w0, w1, w2 of scales[12].
	MOVL 4(SI), AX
	MOVL 8(SI), BX
	MOVL 12(SI), DX
	MOVL AX, R10
	ANDL $0x3f3f3f3f, R10
	MOVL AX, R11
	SHRL $6, R11
	ANDL $0x03030303, R11
	SHLL $4, R11
	MOVL DX, R13
	ANDL $0x0f0f0f0f, R13
	ORL  R13, R11
	SHLQ $32, R11
	ORQ  R11, R10
	MOVL BX, R12
	ANDL $0x3f3f3f3f, R12
	MOVL BX, R11
	SHRL $6, R11
	ANDL $0x03030303, R11
	SHLL $4, R11
	MOVL DX, R13
	SHRL $4, R13
	ANDL $0x0f0f0f0f, R13
	ORL  R13, R11
	SHLQ $32, R11
	ORQ  R11, R12
	VMOVQ R10, X1
	VPINSRQ $1, R12, X1, X1
	VPMOVZXBW X1, Y1 // words 0-7 scales, 8-15 minimums

	VPXORD Z9, Z9, Z9
	// Values 0-127: qs[0:64], low nibbles sub-blocks 0 and 2, high 1 and 3.
	VMOVDQU64 16(SI), Z3
	VPSRLW    $4, Z3, Z4
	VPANDQ    Z31, Z3, Z3
	VPANDQ    Z31, Z4, Z4
	VSHUFI64X2 $0x44, Z4, Z3, Z5 // sub-blocks 0, 1: values 0-63
	VSHUFI64X2 $0xee, Z4, Z3, Z6 // sub-blocks 2, 3: values 64-127
	VPERMW     Z1, Z20, Z2
	VPMADDUBSW 0(DI), Z5, Z7
	VPMADDWD   Z2, Z7, Z7
	VPADDD     Z7, Z9, Z9
	VPERMW     Z1, Z21, Z2
	VPMADDUBSW 64(DI), Z6, Z7
	VPMADDWD   Z2, Z7, Z7
	VPADDD     Z7, Z9, Z9
	// Values 128-255: qs[64:128].
	VMOVDQU64 80(SI), Z3
	VPSRLW    $4, Z3, Z4
	VPANDQ    Z31, Z3, Z3
	VPANDQ    Z31, Z4, Z4
	VSHUFI64X2 $0x44, Z4, Z3, Z5
	VSHUFI64X2 $0xee, Z4, Z3, Z6
	VPERMW     Z1, Z22, Z2
	VPMADDUBSW 128(DI), Z5, Z7
	VPMADDWD   Z2, Z7, Z7
	VPADDD     Z7, Z9, Z9
	VPERMW     Z1, Z23, Z2
	VPMADDUBSW 192(DI), Z6, Z7
	VPMADDWD   Z2, Z7, Z7
	VPADDD     Z7, Z9, Z9
	// Minimums: word i of Y8 the minimum i/2, times the sums of 16 codes.
	VPERMW   Y1, Y24, Y8
	VPMADDWD 0(R9), Y8, Y8
	// isum (Z9) and imin (Y8) summed across their lanes together.
	VEXTRACTI64X4 $1, Z9, Y10
	VPADDD        Y10, Y9, Y9
	VPHADDD       Y8, Y9, Y9  // per 128 bits: isum pairs, imin pairs
	VPHADDD       Y9, Y9, Y9  // per 128 bits: isum, imin, isum, imin
	VEXTRACTI128  $1, Y9, X10
	VPADDD        X10, X9, X9 // isum, imin
	VCVTDQ2PS     X9, X9
	// a = dw·dx, c = dmin·dx; acc += a·isum − c·imin.
	VMOVD        0(SI), X12
	VCVTPH2PS    X12, X12
	VBROADCASTSS 0(R8), X11
	VMULPS       X11, X12, X12
	VMULPS       X9, X12, X12
	VMOVSHDUP    X12, X13
	VSUBSS       X13, X12, X12
	VADDSS       X12, X0, X0

	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JMP  q4kloop

q4kdone:
	VMOVSS X0, ret+40(FP)
	VZEROUPPER
	RET

// Q6_K: Z31 bytes 0x0f, Z30 bytes 0x03, Z20-Z23 the scale indices of the
// four stretches of 64 values; X0 the f32 sum.
TEXT ·dotQ6KQ8KAVX512(SB), NOSPLIT, $0-44
	MOVQ src+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ d+16(FP), R8
	MOVQ bsums+24(FP), R9
	MOVQ blocks+32(FP), CX
	MOVL $0x0f, AX
	VPBROADCASTB AX, Z31
	MOVL $0x03, AX
	VPBROADCASTB AX, Z30
	VMOVDQU64 q8Q6KScaleIdx<>+0(SB), Z20
	VMOVDQU64 q8Q6KScaleIdx<>+64(SB), Z21
	VMOVDQU64 q8Q6KScaleIdx<>+128(SB), Z22
	VMOVDQU64 q8Q6KScaleIdx<>+192(SB), Z23
	VXORPS X0, X0, X0

q6kloop:
	TESTQ CX, CX
	JZ    q6kdone
	VPMOVSXBW 192(SI), Y1 // the 16 scales as words
	VPXORD    Z9, Z9, Z9

#define Q6K_HALF(h, IDXLO, IDXHI) \
	VMOVDQU64  (64*h)(SI), Z3 \
	VMOVDQU    (128+32*h)(SI), Y4 \
	VPSRLW     $2, Y4, Y5 \
	VINSERTI64X4 $1, Y5, Z4, Z4 \
	VPANDQ     Z31, Z3, Z6 \
	VPANDQ     Z30, Z4, Z7 \
	VPSLLW     $4, Z7, Z7 \
	VPORQ      Z7, Z6, Z6 \
	VPSRLW     $4, Z3, Z8 \
	VPANDQ     Z31, Z8, Z8 \
	VPSRLW     $4, Z4, Z7 \
	VPANDQ     Z30, Z7, Z7 \
	VPSLLW     $4, Z7, Z7 \
	VPORQ      Z7, Z8, Z8 \
	VPERMW     Z1, IDXLO, Z2 \
	VPMADDUBSW (128*h)(DI), Z6, Z10 \
	VPMADDWD   Z2, Z10, Z10 \
	VPADDD     Z10, Z9, Z9 \
	VPERMW     Z1, IDXHI, Z2 \
	VPMADDUBSW (128*h+64)(DI), Z8, Z10 \
	VPMADDWD   Z2, Z10, Z10 \
	VPADDD     Z10, Z9, Z9

	Q6K_HALF(0, Z20, Z21)
	Q6K_HALF(1, Z22, Z23)
	// isum − 32·Σ_j sc_j·(sum of sub-block j's codes), across the lanes.
	VPMADDWD      0(R9), Y1, Y12
	VPSLLD        $5, Y12, Y12
	VEXTRACTI64X4 $1, Z9, Y10
	VPADDD        Y10, Y9, Y9
	VPSUBD        Y12, Y9, Y9
	VEXTRACTI128  $1, Y9, X10
	VPADDD        X10, X9, X9
	VPSHUFD       $0x4e, X9, X10
	VPADDD        X10, X9, X9
	VPSHUFD       $0xb1, X9, X10
	VPADDD        X10, X9, X9
	VCVTDQ2PS     X9, X9
	// acc += (dw·dx)·isum.
	MOVWLZX   208(SI), AX
	VMOVD     AX, X12
	VCVTPH2PS X12, X12
	VMULSS    0(R8), X12, X12
	VMULSS    X9, X12, X12
	VADDSS    X12, X0, X0

	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JMP  q6kloop

q6kdone:
	VMOVSS X0, ret+40(FP)
	VZEROUPPER
	RET
