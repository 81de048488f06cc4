package artifact

import (
	"path/filepath"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// GGUFFile is the name of the file GGUFWriter writes.
const GGUFFile = "model-Q8_0.gguf"

// GGUFWriter is the Writer of a GGUF artifact: the Llama model as one Q8_0
// GGUF file (quantize.LlamaGGUF), tensors encoded one at a time on threads
// goroutines.
func GGUFWriter(threads int) Writer {
	return func(dir, srcDir string, g *weights.Graph, cfg *arch.Config, release func()) ([]string, error) {
		name := ""
		if srcDir != "" {
			name = filepath.Base(filepath.Clean(srcDir))
		}
		m, err := quantize.LlamaGGUF(g, cfg, quantize.GGUFOptions{Name: name, TokenizerDir: srcDir, Threads: threads})
		if err != nil {
			return nil, err
		}
		for _, t := range m.Tensors {
			data := t.Data
			t.Data = weights.SourceFunc(func() ([]byte, error) {
				release()
				return data.Bytes()
			})
		}
		if err := gguf.WriteFile(filepath.Join(dir, GGUFFile), m.Metadata, m.Tensors); err != nil {
			return nil, err
		}
		return []string{GGUFFile}, nil
	}
}
