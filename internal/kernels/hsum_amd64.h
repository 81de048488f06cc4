// Horizontal sums the AVX-512 and AVX2 dot kernels share, in one fixed
// order (the kernels' results are bit-exact against each other through it):
// HSUMY0 leaves in X0 the sum of Y0's eight lanes, HSUMZ0 that of Z0's
// sixteen. Y1/Z1 are clobbered.
#define HSUMY0 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VPERMILPS $0x4E, X0, X1; \
	VADDPS X1, X0, X0; \
	VPERMILPS $0xB1, X0, X1; \
	VADDSS X1, X0, X0

#define HSUMZ0 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS Y1, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VPERMILPS $0x4E, X0, X1; \
	VADDPS X1, X0, X0; \
	VPERMILPS $0xB1, X0, X1; \
	VADDSS X1, X0, X0
