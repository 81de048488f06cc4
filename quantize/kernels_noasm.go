//go:build !amd64 || purego

package quantize

import "github.com/hubmirror/hubmirror/weights"

func absmax(x []float32) uint32                        { return absmaxGo(x) }
func maxAbsInto(acc []uint32, x []float32)             { maxAbsIntoGo(acc, x) }
func quantizeRun(dst []byte, x []float32, s float32)   { quantizeRunGo(dst, x, s) }
func quantizeEach(dst []byte, x, s []float32)          { quantizeEachGo(dst, x, s) }
func widen(dst []float32, src []byte, d weights.DType) { widenGo(dst, src, d) }

func absmaxGroups(dst []uint32, x []float32, gs int) { absmaxGroupsGo(dst, x, gs) }

func quantizeGroups(dst []byte, x, s []float32, gs int) { quantizeGroupsGo(dst, x, s, gs) }
