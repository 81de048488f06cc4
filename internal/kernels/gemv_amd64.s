//go:build amd64 && !purego

#include "textflag.h"
#include "hsum_amd64.h"

// func dotAVX512(x, y *float32, n int) float32
//
// Returns Σ x[i]·y[i] for i < n, n a multiple of 16, in 16 lanes and 4
// accumulators (64 values a step), summed at the end.
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ CX, DX
	SHRQ $6, DX
	JZ   dot16
dot64:
	VMOVUPS (SI), Z4
	VMOVUPS 64(SI), Z5
	VMOVUPS 128(SI), Z6
	VMOVUPS 192(SI), Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ $256, SI
	ADDQ $256, DI
	DECQ DX
	JNZ  dot64
dot16:
	ANDQ $63, CX
	SHRQ $4, CX
	JZ   dotsum
dot16loop:
	VMOVUPS (SI), Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  dot16loop
dotsum:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUMZ0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyAVX512(a float32, x, y *float32, n int)
//
// y[i] += a·x[i] for i < n, n a multiple of 16.
TEXT ·axpyAVX512(SB), NOSPLIT, $0-32
	VBROADCASTSS a+0(FP), Z0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ CX, DX
	SHRQ $6, DX
	JZ   axpy16
axpy64:
	VMOVUPS (DI), Z4
	VMOVUPS 64(DI), Z5
	VMOVUPS 128(DI), Z6
	VMOVUPS 192(DI), Z7
	VFMADD231PS (SI), Z0, Z4
	VFMADD231PS 64(SI), Z0, Z5
	VFMADD231PS 128(SI), Z0, Z6
	VFMADD231PS 192(SI), Z0, Z7
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, 64(DI)
	VMOVUPS Z6, 128(DI)
	VMOVUPS Z7, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	DECQ DX
	JNZ  axpy64
axpy16:
	ANDQ $63, CX
	SHRQ $4, CX
	JZ   axpydone
axpy16loop:
	VMOVUPS (DI), Z4
	VFMADD231PS (SI), Z0, Z4
	VMOVUPS Z4, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  axpy16loop
axpydone:
	VZEROUPPER
	RET

