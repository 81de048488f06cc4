//go:build amd64 && !purego

#include "textflag.h"

// The int8 kernels of quant.go in AVX-512 (n a multiple of 16) and AVX2
// (n a multiple of 8); the Go callers handle the remainder. Quotients are
// x / s (VDIVPS, as torch divides), clamped to [-127, 127] in float, then
// converted to int32 rounding half to even and narrowed to int8.

// func absmaxAVX512(x *float32, n int) uint32
TEXT ·absmaxAVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z4
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
amax512_64:
	CMPQ CX, $64
	JB   amax512_16
	VPANDD (SI), Z4, Z5
	VPANDD 64(SI), Z4, Z6
	VPANDD 128(SI), Z4, Z7
	VPANDD 192(SI), Z4, Z8
	VPMAXUD Z5, Z0, Z0
	VPMAXUD Z6, Z1, Z1
	VPMAXUD Z7, Z2, Z2
	VPMAXUD Z8, Z3, Z3
	ADDQ $256, SI
	SUBQ $64, CX
	JMP  amax512_64
amax512_16:
	CMPQ CX, $16
	JB   amax512_reduce
	VPANDD (SI), Z4, Z5
	VPMAXUD Z5, Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  amax512_16
amax512_reduce:
	VPMAXUD Z1, Z0, Z0
	VPMAXUD Z3, Z2, Z2
	VPMAXUD Z2, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPMAXUD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPMAXUD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// func maxAbsIntoAVX512(acc *uint32, x *float32, n int)
TEXT ·maxAbsIntoAVX512(SB), NOSPLIT, $0-24
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z4
	SHRQ $4, CX
	JZ   mai512_done
mai512_loop:
	VPANDD (SI), Z4, Z0
	VPMAXUD (DI), Z0, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  mai512_loop
mai512_done:
	VZEROUPPER
	RET

// func quantizeRunAVX512(dst *byte, x *float32, n int, s float32)
TEXT ·quantizeRunAVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Z7
	MOVL $0x42fe0000, AX // 127.0
	VPBROADCASTD AX, Z8
	MOVL $0xc2fe0000, AX // -127.0
	VPBROADCASTD AX, Z9
qr512_64:
	CMPQ CX, $64
	JB   qr512_16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS 128(SI), Z2
	VMOVUPS 192(SI), Z3
	VDIVPS Z7, Z0, Z0
	VDIVPS Z7, Z1, Z1
	VDIVPS Z7, Z2, Z2
	VDIVPS Z7, Z3, Z3
	VMINPS Z8, Z0, Z0
	VMINPS Z8, Z1, Z1
	VMINPS Z8, Z2, Z2
	VMINPS Z8, Z3, Z3
	VMAXPS Z9, Z0, Z0
	VMAXPS Z9, Z1, Z1
	VMAXPS Z9, Z2, Z2
	VMAXPS Z9, Z3, Z3
	VCVTPS2DQ.RN_SAE Z0, Z0
	VCVTPS2DQ.RN_SAE Z1, Z1
	VCVTPS2DQ.RN_SAE Z2, Z2
	VCVTPS2DQ.RN_SAE Z3, Z3
	VPMOVSDB Z0, (DI)
	VPMOVSDB Z1, 16(DI)
	VPMOVSDB Z2, 32(DI)
	VPMOVSDB Z3, 48(DI)
	ADDQ $256, SI
	ADDQ $64, DI
	SUBQ $64, CX
	JMP  qr512_64
qr512_16:
	CMPQ CX, $16
	JB   qr512_done
	VMOVUPS (SI), Z0
	VDIVPS Z7, Z0, Z0
	VMINPS Z8, Z0, Z0
	VMAXPS Z9, Z0, Z0
	VCVTPS2DQ.RN_SAE Z0, Z0
	VPMOVSDB Z0, (DI)
	ADDQ $64, SI
	ADDQ $16, DI
	SUBQ $16, CX
	JMP  qr512_16
qr512_done:
	VZEROUPPER
	RET

// func quantizeEachAVX512(dst *byte, x, s *float32, n int)
TEXT ·quantizeEachAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ s+16(FP), DX
	MOVQ n+24(FP), CX
	MOVL $0x42fe0000, AX
	VPBROADCASTD AX, Z8
	MOVL $0xc2fe0000, AX
	VPBROADCASTD AX, Z9
	SHRQ $4, CX
	JZ   qe512_done
qe512_loop:
	VMOVUPS (SI), Z0
	VDIVPS (DX), Z0, Z0
	VMINPS Z8, Z0, Z0
	VMAXPS Z9, Z0, Z0
	VCVTPS2DQ.RN_SAE Z0, Z0
	VPMOVSDB Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $16, DI
	DECQ CX
	JNZ  qe512_loop
qe512_done:
	VZEROUPPER
	RET

// func absmaxAVX2(x *float32, n int) uint32
TEXT ·absmaxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7fffffff, AX
	MOVD AX, X4
	VPBROADCASTD X4, Y4
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
amax2_32:
	CMPQ CX, $32
	JB   amax2_8
	VPAND (SI), Y4, Y5
	VPAND 32(SI), Y4, Y6
	VPAND 64(SI), Y4, Y7
	VPAND 96(SI), Y4, Y8
	VPMAXUD Y5, Y0, Y0
	VPMAXUD Y6, Y1, Y1
	VPMAXUD Y7, Y2, Y2
	VPMAXUD Y8, Y3, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  amax2_32
amax2_8:
	CMPQ CX, $8
	JB   amax2_reduce
	VPAND (SI), Y4, Y5
	VPMAXUD Y5, Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  amax2_8
amax2_reduce:
	VPMAXUD Y1, Y0, Y0
	VPMAXUD Y3, Y2, Y2
	VPMAXUD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPMAXUD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// func maxAbsIntoAVX2(acc *uint32, x *float32, n int)
TEXT ·maxAbsIntoAVX2(SB), NOSPLIT, $0-24
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $0x7fffffff, AX
	MOVD AX, X4
	VPBROADCASTD X4, Y4
	SHRQ $3, CX
	JZ   mai2_done
mai2_loop:
	VPAND (SI), Y4, Y0
	VPMAXUD (DI), Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  mai2_loop
mai2_done:
	VZEROUPPER
	RET

// QUANT8 quantizes the 8 floats in Y0 (already divided) to 8 bytes at off(DI):
// clamp, convert (MXCSR rounding: half to even, Go's default), then pack
// int32 -> int16 -> int8 within each 128-bit lane and join the two lanes.
#define QUANT8(off) \
	VMINPS Y8, Y0, Y0 \
	VMAXPS Y9, Y0, Y0 \
	VCVTPS2DQ Y0, Y0 \
	VPACKSSDW Y0, Y0, Y0 \
	VPACKSSWB Y0, Y0, Y0 \
	VEXTRACTI128 $1, Y0, X1 \
	VPUNPCKLDQ X1, X0, X0 \
	MOVQ X0, off(DI)

// func quantizeRunAVX2(dst *byte, x *float32, n int, s float32)
TEXT ·quantizeRunAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y7
	MOVL $0x42fe0000, AX
	MOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL $0xc2fe0000, AX
	MOVD AX, X9
	VPBROADCASTD X9, Y9
	SHRQ $3, CX
	JZ   qr2_done
qr2_loop:
	VMOVUPS (SI), Y0
	VDIVPS Y7, Y0, Y0
	QUANT8(0)
	ADDQ $32, SI
	ADDQ $8, DI
	DECQ CX
	JNZ  qr2_loop
qr2_done:
	VZEROUPPER
	RET

// func quantizeEachAVX2(dst *byte, x, s *float32, n int)
TEXT ·quantizeEachAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ s+16(FP), DX
	MOVQ n+24(FP), CX
	MOVL $0x42fe0000, AX
	MOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL $0xc2fe0000, AX
	MOVD AX, X9
	VPBROADCASTD X9, Y9
	SHRQ $3, CX
	JZ   qe2_done
qe2_loop:
	VMOVUPS (SI), Y0
	VDIVPS (DX), Y0, Y0
	QUANT8(0)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $8, DI
	DECQ CX
	JNZ  qe2_loop
qe2_done:
	VZEROUPPER
	RET

// AMAX_REDUCE512 leaves in AX the largest unsigned dword of Z0..Z3.
#define AMAX_REDUCE512 \
	VPMAXUD Z1, Z0, Z0 \
	VPMAXUD Z3, Z2, Z2 \
	VPMAXUD Z2, Z0, Z0 \
	VEXTRACTI64X4 $1, Z0, Y1 \
	VPMAXUD Y1, Y0, Y0 \
	VEXTRACTI128 $1, Y0, X1 \
	VPMAXUD X1, X0, X0 \
	VPSHUFD $0x4e, X0, X1 \
	VPMAXUD X1, X0, X0 \
	VPSHUFD $0xb1, X0, X1 \
	VPMAXUD X1, X0, X0 \
	VMOVD X0, AX

// func absmaxGroupsAVX512(dst *uint32, x *float32, groups, gs int)
//
// dst[g] = AbsMaxBits(x[g*gs : (g+1)*gs]) for g < groups; gs a multiple of 16.
TEXT ·absmaxGroupsAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ groups+16(FP), DX
	MOVQ gs+24(FP), BX
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z4
ag512_group:
	TESTQ DX, DX
	JZ   ag512_done
	MOVQ BX, CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
ag512_64:
	CMPQ CX, $64
	JB   ag512_16
	VPANDD (SI), Z4, Z5
	VPANDD 64(SI), Z4, Z6
	VPANDD 128(SI), Z4, Z7
	VPANDD 192(SI), Z4, Z8
	VPMAXUD Z5, Z0, Z0
	VPMAXUD Z6, Z1, Z1
	VPMAXUD Z7, Z2, Z2
	VPMAXUD Z8, Z3, Z3
	ADDQ $256, SI
	SUBQ $64, CX
	JMP  ag512_64
ag512_16:
	TESTQ CX, CX
	JZ   ag512_reduce
	VPANDD (SI), Z4, Z5
	VPMAXUD Z5, Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  ag512_16
ag512_reduce:
	AMAX_REDUCE512
	MOVL AX, (DI)
	ADDQ $4, DI
	DECQ DX
	JMP  ag512_group
ag512_done:
	VZEROUPPER
	RET

// func quantizeGroupsAVX512(dst *byte, x, s *float32, groups, gs int)
//
// QuantizeRun(dst[g*gs:(g+1)*gs], x[g*gs:(g+1)*gs], s[g]) for g < groups;
// gs a multiple of 16.
TEXT ·quantizeGroupsAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ s+16(FP), R8
	MOVQ groups+24(FP), DX
	MOVQ gs+32(FP), BX
	MOVL $0x42fe0000, AX
	VPBROADCASTD AX, Z8
	MOVL $0xc2fe0000, AX
	VPBROADCASTD AX, Z9
qg512_group:
	TESTQ DX, DX
	JZ   qg512_done
	VBROADCASTSS (R8), Z7
	MOVQ BX, CX
qg512_64:
	CMPQ CX, $64
	JB   qg512_16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS 128(SI), Z2
	VMOVUPS 192(SI), Z3
	VDIVPS Z7, Z0, Z0
	VDIVPS Z7, Z1, Z1
	VDIVPS Z7, Z2, Z2
	VDIVPS Z7, Z3, Z3
	VMINPS Z8, Z0, Z0
	VMINPS Z8, Z1, Z1
	VMINPS Z8, Z2, Z2
	VMINPS Z8, Z3, Z3
	VMAXPS Z9, Z0, Z0
	VMAXPS Z9, Z1, Z1
	VMAXPS Z9, Z2, Z2
	VMAXPS Z9, Z3, Z3
	VCVTPS2DQ.RN_SAE Z0, Z0
	VCVTPS2DQ.RN_SAE Z1, Z1
	VCVTPS2DQ.RN_SAE Z2, Z2
	VCVTPS2DQ.RN_SAE Z3, Z3
	VPMOVSDB Z0, (DI)
	VPMOVSDB Z1, 16(DI)
	VPMOVSDB Z2, 32(DI)
	VPMOVSDB Z3, 48(DI)
	ADDQ $256, SI
	ADDQ $64, DI
	SUBQ $64, CX
	JMP  qg512_64
qg512_16:
	TESTQ CX, CX
	JZ   qg512_next
	VMOVUPS (SI), Z0
	VDIVPS Z7, Z0, Z0
	VMINPS Z8, Z0, Z0
	VMAXPS Z9, Z0, Z0
	VCVTPS2DQ.RN_SAE Z0, Z0
	VPMOVSDB Z0, (DI)
	ADDQ $64, SI
	ADDQ $16, DI
	SUBQ $16, CX
	JMP  qg512_16
qg512_next:
	ADDQ $4, R8
	DECQ DX
	JMP  qg512_group
qg512_done:
	VZEROUPPER
	RET

// func absmaxGroupsAVX2(dst *uint32, x *float32, groups, gs int)
//
// As absmaxGroupsAVX512, gs a multiple of 8.
TEXT ·absmaxGroupsAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ groups+16(FP), DX
	MOVQ gs+24(FP), BX
	MOVL $0x7fffffff, AX
	MOVD AX, X4
	VPBROADCASTD X4, Y4
ag2_group:
	TESTQ DX, DX
	JZ   ag2_done
	MOVQ BX, CX
	VPXOR Y0, Y0, Y0
ag2_8:
	TESTQ CX, CX
	JZ   ag2_reduce
	VPAND (SI), Y4, Y5
	VPMAXUD Y5, Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  ag2_8
ag2_reduce:
	VEXTRACTI128 $1, Y0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPMAXUD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPMAXUD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, (DI)
	ADDQ $4, DI
	DECQ DX
	JMP  ag2_group
ag2_done:
	VZEROUPPER
	RET

// func quantizeGroupsAVX2(dst *byte, x, s *float32, groups, gs int)
//
// As quantizeGroupsAVX512, gs a multiple of 8.
TEXT ·quantizeGroupsAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ s+16(FP), R8
	MOVQ groups+24(FP), DX
	MOVQ gs+32(FP), BX
	MOVL $0x42fe0000, AX
	MOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL $0xc2fe0000, AX
	MOVD AX, X9
	VPBROADCASTD X9, Y9
qg2_group:
	TESTQ DX, DX
	JZ   qg2_done
	VBROADCASTSS (R8), Y7
	MOVQ BX, CX
qg2_8:
	TESTQ CX, CX
	JZ   qg2_next
	VMOVUPS (SI), Y0
	VDIVPS Y7, Y0, Y0
	QUANT8(0)
	ADDQ $32, SI
	ADDQ $8, DI
	SUBQ $8, CX
	JMP  qg2_8
qg2_next:
	ADDQ $4, R8
	DECQ DX
	JMP  qg2_group
qg2_done:
	VZEROUPPER
	RET
