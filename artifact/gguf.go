package artifact

import (
	"path/filepath"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// GGUFFile is the name of the Q8_0 file GGUFWriter writes (GGUFFileName
// of "q8_0").
const GGUFFile = "model-Q8_0.gguf"

// GGUFFileName is the name of the GGUF file of a type (quantize.GGUFOptions'
// Type: "q8_0" gives model-Q8_0.gguf, "f16" model-F16.gguf).
func GGUFFileName(typ string) string {
	if typ == "" {
		typ = "q8_0"
	}
	return "model-" + strings.ToUpper(typ) + ".gguf"
}

// GGUFWriter is the Writer of a GGUF artifact: the model as one GGUF file
// (quantize.GGUF with opts, the vocabulary read from the source directory
// unless opts.NoVocab), tensors encoded one at a time on opts.Threads
// goroutines. report, when not nil, receives what was written.
func GGUFWriter(opts quantize.GGUFOptions, report func(*quantize.GGUFReport)) Writer {
	return func(dir, srcDir string, g *weights.Graph, cfg *arch.Config, release func()) ([]string, error) {
		o := opts
		if srcDir != "" {
			if o.Name == "" {
				o.Name = filepath.Base(filepath.Clean(srcDir))
			}
			o.TokenizerDir = srcDir
		}
		m, err := quantize.GGUF(g, cfg, o)
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
		name := GGUFFileName(o.Type)
		if err := gguf.WriteFile(filepath.Join(dir, name), m.Metadata, m.Tensors); err != nil {
			return nil, err
		}
		if report != nil {
			report(m.Report)
		}
		return []string{name}, nil
	}
}
