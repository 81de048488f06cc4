//go:build amd64 && !purego

#include "textflag.h"

// Vectorized element-wise kernels for AVX-512, 16 values at a time; n is a
// multiple of 16 (the Go callers do the tail with the reference loop).
//
// exp is Cephes' expf scheme with FMA: n = round(x·log2 e), r = x - n·ln 2 in
// two parts, exp(r) ≈ 1 + r + r²·P(r) (degree 5), scaled by 2ⁿ with
// VSCALEFPS, which gives +Inf on overflow and 0 or a subnormal on underflow.
// The argument is clamped to [-104, 89] (beyond it the result is 0 or +Inf
// already), NaN passes through.

// func siluAVX512(x *float32, n int)
//
// x[i] = x[i] / (1 + exp(-x[i]))
TEXT ·siluAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0xc2d00000, AX	// exp clamps its argument to [-104, 89]
	VPBROADCASTD AX, Z16
	MOVL $0x42b20000, AX
	VPBROADCASTD AX, Z17
	MOVL $0x3fb8aa3b, AX	// log2(e)
	VPBROADCASTD AX, Z18
	MOVL $0x3f318000, AX	// ln 2 = ln2hi + ln2lo
	VPBROADCASTD AX, Z19
	MOVL $0xb95e8083, AX
	VPBROADCASTD AX, Z20
	MOVL $0x39506967, AX	// exp polynomial
	VPBROADCASTD AX, Z21
	MOVL $0x3ab743ce, AX
	VPBROADCASTD AX, Z22
	MOVL $0x3c088908, AX
	VPBROADCASTD AX, Z23
	MOVL $0x3d2aa9c1, AX
	VPBROADCASTD AX, Z24
	MOVL $0x3e2aaaaa, AX
	VPBROADCASTD AX, Z25
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z26
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z27
	MOVL $0xbf800000, AX
	VPBROADCASTD AX, Z28
	SHRQ $4, CX
	JZ   siluAVX512_done
siluAVX512_loop:
	VMOVUPS (SI), Z4
	VMULPS Z28, Z4, Z0
	// Z0 = exp(Z0): 2^n·p(r), n = round(x·log2 e), r = x - n·ln 2
	VMAXPS Z0, Z16, Z0
	VMINPS Z0, Z17, Z0
	VMULPS Z18, Z0, Z1
	VRNDSCALEPS $0, Z1, Z1
	VFNMADD231PS Z19, Z1, Z0
	VFNMADD231PS Z20, Z1, Z0
	VMOVAPS Z21, Z2
	VFMADD213PS Z22, Z0, Z2
	VFMADD213PS Z23, Z0, Z2
	VFMADD213PS Z24, Z0, Z2
	VFMADD213PS Z25, Z0, Z2
	VFMADD213PS Z26, Z0, Z2
	VMULPS Z0, Z0, Z3
	VFMADD213PS Z0, Z3, Z2
	VADDPS Z27, Z2, Z2
	VSCALEFPS Z1, Z2, Z0
	VADDPS Z27, Z0, Z0
	VDIVPS Z0, Z4, Z4
	VMOVUPS Z4, (SI)
	ADDQ $64, SI
	DECQ CX
	JNZ  siluAVX512_loop
siluAVX512_done:
	VZEROUPPER
	RET

// func geluTanhAVX512(x *float32, n int)
//
// x[i] = 0.5·x·(1 + tanh(u)), u = sqrt(2/pi)·(x + 0.044715·x³), computed as
// x / (1 + exp(-2u)), which is the same function and exact in the tails.
TEXT ·geluTanhAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0xc2d00000, AX	// exp clamps its argument to [-104, 89]
	VPBROADCASTD AX, Z16
	MOVL $0x42b20000, AX
	VPBROADCASTD AX, Z17
	MOVL $0x3fb8aa3b, AX	// log2(e)
	VPBROADCASTD AX, Z18
	MOVL $0x3f318000, AX	// ln 2 = ln2hi + ln2lo
	VPBROADCASTD AX, Z19
	MOVL $0xb95e8083, AX
	VPBROADCASTD AX, Z20
	MOVL $0x39506967, AX	// exp polynomial
	VPBROADCASTD AX, Z21
	MOVL $0x3ab743ce, AX
	VPBROADCASTD AX, Z22
	MOVL $0x3c088908, AX
	VPBROADCASTD AX, Z23
	MOVL $0x3d2aa9c1, AX
	VPBROADCASTD AX, Z24
	MOVL $0x3e2aaaaa, AX
	VPBROADCASTD AX, Z25
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z26
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z27
	MOVL $0x3d372713, AX
	VPBROADCASTD AX, Z28
	MOVL $0x3f4c422a, AX	// sqrt(2/pi)
	VPBROADCASTD AX, Z29
	MOVL $0xc0000000, AX
	VPBROADCASTD AX, Z30
	SHRQ $4, CX
	JZ   geluTanhAVX512_done
geluTanhAVX512_loop:
	VMOVUPS (SI), Z4
	// u = sqrt(2/pi)*(x + 0.044715*x*x*x), rounded as the reference does
	VMULPS Z4, Z28, Z5
	VMULPS Z4, Z5, Z5
	VMULPS Z4, Z5, Z5
	VADDPS Z5, Z4, Z5
	VMULPS Z5, Z29, Z5
	// 0.5·x·(1+tanh u) = x / (1 + exp(-2u))
	VMULPS Z30, Z5, Z0
	// Z0 = exp(Z0): 2^n·p(r), n = round(x·log2 e), r = x - n·ln 2
	VMAXPS Z0, Z16, Z0
	VMINPS Z0, Z17, Z0
	VMULPS Z18, Z0, Z1
	VRNDSCALEPS $0, Z1, Z1
	VFNMADD231PS Z19, Z1, Z0
	VFNMADD231PS Z20, Z1, Z0
	VMOVAPS Z21, Z2
	VFMADD213PS Z22, Z0, Z2
	VFMADD213PS Z23, Z0, Z2
	VFMADD213PS Z24, Z0, Z2
	VFMADD213PS Z25, Z0, Z2
	VFMADD213PS Z26, Z0, Z2
	VMULPS Z0, Z0, Z3
	VFMADD213PS Z0, Z3, Z2
	VADDPS Z27, Z2, Z2
	VSCALEFPS Z1, Z2, Z0
	VADDPS Z27, Z0, Z0
	VDIVPS Z0, Z4, Z4
	VMOVUPS Z4, (SI)
	ADDQ $64, SI
	DECQ CX
	JNZ  geluTanhAVX512_loop
geluTanhAVX512_done:
	VZEROUPPER
	RET

// The polynomials of erf, fitted by testdata/fit_erf.py: P (7 coefficients,
// degree 0 first) for |z| < 1, then R (11) for erfc(a)·exp(a²) on [1, 4].
DATA erfcoef<>+0(SB)/4, $0x3f906eba
DATA erfcoef<>+4(SB)/4, $0xbec0939f
DATA erfcoef<>+8(SB)/4, $0x3de71690
DATA erfcoef<>+12(SB)/4, $0xbcdbfddd
DATA erfcoef<>+16(SB)/4, $0x3baa0d11
DATA erfcoef<>+20(SB)/4, $0xba524384
DATA erfcoef<>+24(SB)/4, $0x38a573c6
DATA erfcoef<>+28(SB)/4, $0x3f7e3e41
DATA erfcoef<>+32(SB)/4, $0xbf8b1071
DATA erfcoef<>+36(SB)/4, $0x3f620ee2
DATA erfcoef<>+40(SB)/4, $0xbf0dabfd
DATA erfcoef<>+44(SB)/4, $0x3e8899ae
DATA erfcoef<>+48(SB)/4, $0xbdc753db
DATA erfcoef<>+52(SB)/4, $0x3cd6ad4d
DATA erfcoef<>+56(SB)/4, $0xbba48912
DATA erfcoef<>+60(SB)/4, $0x3a2928e5
DATA erfcoef<>+64(SB)/4, $0xb85093a5
DATA erfcoef<>+68(SB)/4, $0x35e8b1b6
GLOBL erfcoef<>(SB), RODATA|NOPTR, $72

// func geluAVX512(x *float32, n int)
//
// x[i] = x·0.5·(1 + erf(x/sqrt 2)) with erf from two polynomial fits.
TEXT ·geluAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0xc2d00000, AX	// exp clamps its argument to [-104, 89]
	VPBROADCASTD AX, Z16
	MOVL $0x42b20000, AX
	VPBROADCASTD AX, Z17
	MOVL $0x3fb8aa3b, AX	// log2(e)
	VPBROADCASTD AX, Z18
	MOVL $0x3f318000, AX	// ln 2 = ln2hi + ln2lo
	VPBROADCASTD AX, Z19
	MOVL $0xb95e8083, AX
	VPBROADCASTD AX, Z20
	MOVL $0x39506967, AX	// exp polynomial
	VPBROADCASTD AX, Z21
	MOVL $0x3ab743ce, AX
	VPBROADCASTD AX, Z22
	MOVL $0x3c088908, AX
	VPBROADCASTD AX, Z23
	MOVL $0x3d2aa9c1, AX
	VPBROADCASTD AX, Z24
	MOVL $0x3e2aaaaa, AX
	VPBROADCASTD AX, Z25
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z26
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z27
	MOVL $0x3f3504f3, AX	// 1/sqrt(2)
	VPBROADCASTD AX, Z28
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z29
	MOVL $0x40800000, AX
	VPBROADCASTD AX, Z30
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z31
	LEAQ erfcoef<>(SB), DX
	SHRQ $4, CX
	JZ   geluAVX512_done
geluAVX512_loop:
	VMOVUPS (SI), Z4
	VMULPS Z28, Z4, Z5	// z = x/sqrt(2)
	VPANDD Z29, Z5, Z6	// a = |z|
	VMULPS Z5, Z5, Z7	// z²
	// |z| < 1: 1 + erf(z) = 1 + z·P(z²)
	VBROADCASTSS 24(DX), Z8
	VFMADD213PS.BCST 20(DX), Z7, Z8
	VFMADD213PS.BCST 16(DX), Z7, Z8
	VFMADD213PS.BCST 12(DX), Z7, Z8
	VFMADD213PS.BCST 8(DX), Z7, Z8
	VFMADD213PS.BCST 4(DX), Z7, Z8
	VFMADD213PS.BCST 0(DX), Z7, Z8
	VMULPS Z5, Z8, Z8
	VADDPS Z27, Z8, Z8
	// |z| ≥ 1: erfc(a) = exp(-a²)·R(min(a, 4)); 1 + erf(z) = erfc(a) for z < 0, 2 - erfc(a) else
	VMINPS Z6, Z30, Z10
	VBROADCASTSS 68(DX), Z9
	VFMADD213PS.BCST 64(DX), Z10, Z9
	VFMADD213PS.BCST 60(DX), Z10, Z9
	VFMADD213PS.BCST 56(DX), Z10, Z9
	VFMADD213PS.BCST 52(DX), Z10, Z9
	VFMADD213PS.BCST 48(DX), Z10, Z9
	VFMADD213PS.BCST 44(DX), Z10, Z9
	VFMADD213PS.BCST 40(DX), Z10, Z9
	VFMADD213PS.BCST 36(DX), Z10, Z9
	VFMADD213PS.BCST 32(DX), Z10, Z9
	VFMADD213PS.BCST 28(DX), Z10, Z9
	VPXORD Z0, Z0, Z0
	VSUBPS Z7, Z0, Z0
	// Z0 = exp(Z0): 2^n·p(r), n = round(x·log2 e), r = x - n·ln 2
	VMAXPS Z0, Z16, Z0
	VMINPS Z0, Z17, Z0
	VMULPS Z18, Z0, Z1
	VRNDSCALEPS $0, Z1, Z1
	VFNMADD231PS Z19, Z1, Z0
	VFNMADD231PS Z20, Z1, Z0
	VMOVAPS Z21, Z2
	VFMADD213PS Z22, Z0, Z2
	VFMADD213PS Z23, Z0, Z2
	VFMADD213PS Z24, Z0, Z2
	VFMADD213PS Z25, Z0, Z2
	VFMADD213PS Z26, Z0, Z2
	VMULPS Z0, Z0, Z3
	VFMADD213PS Z0, Z3, Z2
	VADDPS Z27, Z2, Z2
	VSCALEFPS Z1, Z2, Z0
	VMULPS Z9, Z0, Z9	// erfc(a)
	VADDPS Z27, Z27, Z10
	VSUBPS Z9, Z10, Z10	// 2 - erfc(a)
	VPXORD Z11, Z11, Z11
	VCMPPS $1, Z11, Z5, K1	// z < 0
	VBLENDMPS Z9, Z10, K1, Z10
	VCMPPS $1, Z27, Z6, K2	// a < 1
	VBLENDMPS Z8, Z10, K2, Z10
	// x·0.5·(1 + erf(z)), rounded in the reference order
	VMULPS Z31, Z4, Z4
	VMULPS Z10, Z4, Z4
	VMOVUPS Z4, (SI)
	ADDQ $64, SI
	DECQ CX
	JNZ  geluAVX512_loop
geluAVX512_done:
	VZEROUPPER
	RET

// func softmaxExpAVX512(x *float32, n int, max float32) float64
//
// x[i] = exp(x[i] - max) for i < n; returns Σ x[i], accumulated in f64.
TEXT ·softmaxExpAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0xc2d00000, AX	// exp clamps its argument to [-104, 89]
	VPBROADCASTD AX, Z16
	MOVL $0x42b20000, AX
	VPBROADCASTD AX, Z17
	MOVL $0x3fb8aa3b, AX	// log2(e)
	VPBROADCASTD AX, Z18
	MOVL $0x3f318000, AX	// ln 2 = ln2hi + ln2lo
	VPBROADCASTD AX, Z19
	MOVL $0xb95e8083, AX
	VPBROADCASTD AX, Z20
	MOVL $0x39506967, AX	// exp polynomial
	VPBROADCASTD AX, Z21
	MOVL $0x3ab743ce, AX
	VPBROADCASTD AX, Z22
	MOVL $0x3c088908, AX
	VPBROADCASTD AX, Z23
	MOVL $0x3d2aa9c1, AX
	VPBROADCASTD AX, Z24
	MOVL $0x3e2aaaaa, AX
	VPBROADCASTD AX, Z25
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z26
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z27
	VBROADCASTSS max+16(FP), Z28
	VPXORQ Z29, Z29, Z29
	VPXORQ Z30, Z30, Z30
	SHRQ $4, CX
	JZ   softmaxExp_done
softmaxExp_loop:
	VMOVUPS (SI), Z0
	VSUBPS Z28, Z0, Z0
	// Z0 = exp(Z0): 2^n·p(r), n = round(x·log2 e), r = x - n·ln 2
	VMAXPS Z0, Z16, Z0
	VMINPS Z0, Z17, Z0
	VMULPS Z18, Z0, Z1
	VRNDSCALEPS $0, Z1, Z1
	VFNMADD231PS Z19, Z1, Z0
	VFNMADD231PS Z20, Z1, Z0
	VMOVAPS Z21, Z2
	VFMADD213PS Z22, Z0, Z2
	VFMADD213PS Z23, Z0, Z2
	VFMADD213PS Z24, Z0, Z2
	VFMADD213PS Z25, Z0, Z2
	VFMADD213PS Z26, Z0, Z2
	VMULPS Z0, Z0, Z3
	VFMADD213PS Z0, Z3, Z2
	VADDPS Z27, Z2, Z2
	VSCALEFPS Z1, Z2, Z0
	VMOVUPS Z0, (SI)
	VCVTPS2PD Y0, Z4
	VEXTRACTF64X4 $1, Z0, Y5
	VCVTPS2PD Y5, Z5
	VADDPD Z4, Z29, Z29
	VADDPD Z5, Z30, Z30
	ADDQ $64, SI
	DECQ CX
	JNZ  softmaxExp_loop
softmaxExp_done:
	VADDPD Z29, Z30, Z4
	VEXTRACTF64X4 $1, Z4, Y5
	VADDPD Y4, Y5, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPD X4, X5, X4
	VPERMILPD $1, X4, X5
	VADDSD X4, X5, X4
	VMOVSD X4, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX512(x *float32, n int) float32
//
// Returns the largest x[i], i < n, n a positive multiple of 16 (NaNs may or
// may not be skipped: a NaN row turns into NaNs in Softmax either way).
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Z0
	VMOVAPS Z0, Z1
	SHRQ $4, CX
maxloop:
	VMAXPS (SI), Z0, Z0
	ADDQ $64, SI
	DECQ CX
	JNZ  maxloop
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXSS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX512(x *float32, n int, s float32)
//
// x[i] *= s for i < n, n a multiple of 16.
TEXT ·scaleAVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Z1
	SHRQ $4, CX
	JZ   scaledone
scaleloop:
	VMULPS (SI), Z1, Z0
	VMOVUPS Z0, (SI)
	ADDQ $64, SI
	DECQ CX
	JNZ  scaleloop
scaledone:
	VZEROUPPER
	RET

// func sumSquaresF64AVX512(x *float32, n int, c float64) (sum, sumSquares float64)
//
// Returns Σ x[i] and Σ (x[i]-c)², both in f64, for i < n, n a multiple of 16.
TEXT ·sumSquaresF64AVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSD c+16(FP), Z8
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	SHRQ $4, CX
	JZ   sqdone
sqloop:
	VCVTPS2PD (SI), Z4
	VCVTPS2PD 32(SI), Z5
	VADDPD Z4, Z0, Z0
	VADDPD Z5, Z1, Z1
	VSUBPD Z8, Z4, Z4
	VSUBPD Z8, Z5, Z5
	VFMADD231PD Z4, Z4, Z2
	VFMADD231PD Z5, Z5, Z3
	ADDQ $64, SI
	DECQ CX
	JNZ  sqloop
sqdone:
	VADDPD Z1, Z0, Z0
	VADDPD Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, sum+24(FP)
	VEXTRACTF64X4 $1, Z2, Y3
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPD X3, X2, X2
	VPERMILPD $1, X2, X3
	VADDSD X3, X2, X2
	VMOVSD X2, sumSquares+32(FP)
	VZEROUPPER
	RET
