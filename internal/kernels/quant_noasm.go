//go:build !amd64 || purego

package kernels

// Without assembly the int8 kernels are the unrolled Go loops of quant.go;
// quant_amd64.go documents each.

func AbsMaxBits(x []float32) uint32                      { return absmaxGo(x) }
func MaxAbsBitsInto(acc []uint32, x []float32)           { maxAbsIntoGo(acc, x) }
func QuantizeRun(dst []byte, x []float32, s float32)     { quantizeRunGo(dst, x, s) }
func QuantizeEach(dst []byte, x, s []float32)            { quantizeEachGo(dst, x, s) }
func AbsMaxBitsGroups(dst []uint32, x []float32, gs int) { absmaxGroupsGo(dst, x, gs) }
func QuantizeGroups(dst []byte, x, s []float32, gs int)  { quantizeGroupsGo(dst, x, s, gs) }
