// Package formats detects the layout of a model directory or weight file and
// reads it into a weights.Graph, through the readers in formats/safetensors
// and formats/torch, and GGUF files through the reader package quantize
// registers (RegisterGGUF). What a config.json means is package arch's.
package formats

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/formats/torch"
	"github.com/hubmirror/hubmirror/weights"
)

// ErrNoWeights reports a directory in which no weight files were found.
var ErrNoWeights = errors.New("formats: no weight files")

// ErrUnknownFormat reports a file that is neither safetensors, a PyTorch
// checkpoint nor a sharding index.
var ErrUnknownFormat = errors.New("formats: unknown weight file format")

// Kind is a weight file format.
type Kind string

// The weight formats Open reads.
const (
	KindSafetensors      Kind = "safetensors"
	KindSafetensorsIndex Kind = "safetensors-index"
	KindTorch            Kind = "torch"
	KindTorchIndex       Kind = "torch-index"
	// KindGGUF is a GGUF file, read by the function given to RegisterGGUF.
	KindGGUF Kind = "gguf"
)

// openGGUF reads a GGUF file as a model for its config.json (nil when
// there is none); package quantize, which knows llama.cpp's layouts,
// registers it.
var openGGUF func(path string, config []byte) (*weights.Graph, error)

// RegisterGGUF sets the reader of GGUF files (quantize.OpenGGUF registers
// itself when package quantize is linked in).
func RegisterGGUF(open func(path string, config []byte) (*weights.Graph, error)) { openGGUF = open }

// Layout says where a model's weights and config are.
type Layout struct {
	// Dir is the model directory ("" for a lone file).
	Dir string
	// Weights is the file Open reads: a weight file or a sharding index.
	Weights string
	Kind    Kind
	// Config is the path of config.json, "" when there is none.
	Config string
}

// The file names that the Hugging Face libraries look for, in the order
// transformers prefers them.
var preferred = []struct {
	name string
	kind Kind
}{
	{"model.safetensors", KindSafetensors},
	{"model.safetensors.index.json", KindSafetensorsIndex},
	{"pytorch_model.bin", KindTorch},
	{"pytorch_model.bin.index.json", KindTorchIndex},
}

// Detect finds the weights of a model directory or identifies a single file.
func Detect(path string) (*Layout, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		kind, err := sniff(path)
		if err != nil {
			return nil, err
		}
		return &Layout{Weights: path, Kind: kind}, nil
	}
	l := &Layout{Dir: path}
	if _, err := os.Stat(filepath.Join(path, "config.json")); err == nil {
		l.Config = filepath.Join(path, "config.json")
	}
	for _, p := range preferred {
		f := filepath.Join(path, p.name)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			l.Weights, l.Kind = f, p.kind
			return l, nil
		}
	}
	// Otherwise a single weight file under another name.
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".safetensors") || strings.HasSuffix(n, ".bin") || strings.HasSuffix(n, ".pt") || strings.HasSuffix(n, ".pth") || strings.HasSuffix(n, ".gguf") {
			found = append(found, n)
		}
	}
	sort.Strings(found)
	if len(found) > 1 {
		// A GGUF export beside a checkpoint: the checkpoint.
		var other []string
		for _, n := range found {
			if !strings.HasSuffix(n, ".gguf") {
				other = append(other, n)
			}
		}
		if len(other) > 0 {
			found = other
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w in %s (looked for %s, or one *.safetensors, *.bin, *.pt, *.gguf file)", ErrNoWeights, path, names())
	case 1:
		f := filepath.Join(path, found[0])
		kind, err := sniff(f)
		if err != nil {
			return nil, err
		}
		l.Weights, l.Kind = f, kind
		return l, nil
	}
	return nil, fmt.Errorf("%w in %s: several candidate files (%s) and none of %s", ErrNoWeights, path, strings.Join(found, ", "), names())
}

func names() string {
	var s []string
	for _, p := range preferred {
		s = append(s, p.name)
	}
	return strings.Join(s, ", ")
}

// sniff identifies a file by its first bytes: a zip or pickle is a PyTorch
// checkpoint, a little-endian length followed by '{' is safetensors, a JSON
// object with a weight_map is a sharding index.
func sniff(path string) (Kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 16)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("GGUF")):
		return KindGGUF, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return KindTorch, nil
	case len(head) >= 2 && head[0] == 0x80 && head[1] <= 5: // pickle PROTO opcode
		return KindTorch, nil
	case len(head) >= 9 && head[8] == '{' && binary.LittleEndian.Uint64(head) >= 2:
		return KindSafetensors, nil
	case len(bytes.TrimSpace(head)) > 0 && bytes.TrimSpace(head)[0] == '{':
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if json.Unmarshal(b, &idx) != nil || len(idx.WeightMap) == 0 {
			return "", fmt.Errorf("%w: %s is JSON but not a sharding index (no weight_map)", ErrUnknownFormat, path)
		}
		for _, shard := range idx.WeightMap {
			if strings.HasSuffix(shard, ".safetensors") {
				return KindSafetensorsIndex, nil
			}
			return KindTorchIndex, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrUnknownFormat, path)
}

// Open reads the model at path, a model directory or a single weight file,
// into a Graph whose tensors are views over the mapped files. The Graph's
// Config holds config.json when the directory has one. Close the Graph when
// done.
func Open(path string) (*weights.Graph, error) {
	l, err := Detect(path)
	if err != nil {
		return nil, err
	}
	return OpenLayout(l)
}

// OpenLayout reads the weights that Detect found.
func OpenLayout(l *Layout) (*weights.Graph, error) {
	var (
		g   *weights.Graph
		err error
	)
	switch l.Kind {
	case KindSafetensors:
		g, err = safetensors.Open(l.Weights)
	case KindSafetensorsIndex:
		g, err = safetensors.OpenIndex(l.Weights)
	case KindTorch:
		g, err = torch.Open(l.Weights)
	case KindTorchIndex:
		g, err = torch.OpenIndex(l.Weights)
	case KindGGUF:
		return openGGUFLayout(l)
	default:
		err = fmt.Errorf("%w: %s", ErrUnknownFormat, l.Weights)
	}
	if err != nil {
		return nil, err
	}
	if l.Config != "" {
		raw, err := os.ReadFile(l.Config)
		if err != nil {
			g.Close()
			return nil, err
		}
		if _, err := arch.ParseConfig(raw); err != nil {
			g.Close()
			return nil, fmt.Errorf("%s: %w", l.Config, err)
		}
		g.Config = raw
	}
	return g, nil
}

// openGGUFLayout reads a GGUF file with the config.json of its directory
// (or, for a lone file, the one beside it).
func openGGUFLayout(l *Layout) (*weights.Graph, error) {
	if openGGUF == nil {
		return nil, fmt.Errorf("%w: %s is GGUF, and no GGUF reader is linked in (package quantize)", ErrUnknownFormat, l.Weights)
	}
	cfgPath := l.Config
	if cfgPath == "" {
		if p := filepath.Join(filepath.Dir(l.Weights), "config.json"); fileExists(p) {
			cfgPath = p
		}
	}
	var raw []byte
	if cfgPath != "" {
		var err error
		if raw, err = os.ReadFile(cfgPath); err != nil {
			return nil, err
		}
	}
	return openGGUF(l.Weights, raw)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
