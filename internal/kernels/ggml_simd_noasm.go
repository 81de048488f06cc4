//go:build !amd64 || purego

package kernels

// ggmlSIMD would be an assembly kernel of a ggml block type; there are none
// without assembly, and ggml.go's plain loops run.
type ggmlSIMD struct {
	name                 string
	ggmlType             int
	blockLen, blockBytes int
}

var ggmlSIMDKernels []*ggmlSIMD

func (k *ggmlSIMD) decodeRow(dst []float32, src []byte)    { panic("kernels: no ggml assembly") }
func (k *ggmlSIMD) dotRow(x []float32, src []byte) float32 { panic("kernels: no ggml assembly") }

// packGGMLSIMD packs nothing without assembly; packGGML's loop runs.
func (s bSource) packGGMLSIMD(bp []float32, pc, kc, c0, c1, nr int) bool { return false }
