package safetensors

import (
	"bytes"
	"fmt"
	"io"

	"github.com/hubmirror/hubmirror/internal/mmap"
	"github.com/hubmirror/hubmirror/weights"
)

// Open maps the safetensors file at path, validates it, and returns its
// tensors in data-offset order. Each tensor's Data is a weights.Memory view
// of the mapping: nothing is read until it is touched, and the kernel shares
// the pages with its page cache. The graph's Metadata is the file's
// __metadata__, Files is [path], and closing the graph unmaps the file, after
// which the tensors' data must not be used.
//
// A file that breaks the format yields an *Error wrapping one of the Err*
// sentinels. Like any mapping, the views fault if the file is truncated by
// someone else while mapped.
func Open(path string) (*weights.Graph, error) {
	return mmap.OpenGraph(path, "safetensors", Parse)
}

// Parse validates a whole safetensors file held in data and returns its
// tensors in data-offset order, each a weights.Memory view of data (not a
// copy). name is used in errors, as each tensor's File and as the graph's
// Files; it may be empty.
func Parse(data []byte, name string) (*weights.Graph, error) {
	h, err := readHeader(bytes.NewReader(data), int64(len(data)), name)
	if err != nil {
		return nil, err
	}
	body := data[h.DataStart:]
	return h.graph(name, func(ti *TensorInfo) weights.Source {
		return weights.Memory(body[ti.Begin:ti.End:ti.End])
	})
}

// ReadGraph validates the safetensors file of size bytes that r reads, reading
// only its header, and returns its tensors in data-offset order. Each
// tensor's Data reads the tensor's bytes from r into a new slice on every
// Bytes call; r must stay usable while the graph is. This suits files that
// cannot be mapped (a remote object read by ranges); prefer Open for local
// files.
func ReadGraph(r io.ReaderAt, size int64, name string) (*weights.Graph, error) {
	h, err := readHeader(r, size, name)
	if err != nil {
		return nil, err
	}
	return h.graph(name, func(ti *TensorInfo) weights.Source {
		off, n, tensor := h.DataStart+ti.Begin, ti.End-ti.Begin, ti.Name
		return weights.SourceFunc(func() ([]byte, error) {
			if int64(int(n)) != n {
				return nil, fmt.Errorf("safetensors: %s: tensor %s: %d bytes do not fit in memory", name, quote(tensor), n)
			}
			b := make([]byte, n)
			if err := readFullAt(r, b, off); err != nil {
				return nil, fmt.Errorf("safetensors: %s: reading tensor %s: %w", name, quote(tensor), err)
			}
			return b, nil
		})
	})
}

// graph builds the weights.Graph of a validated header.
func (h *Header) graph(name string, source func(*TensorInfo) weights.Source) (*weights.Graph, error) {
	g := weights.NewGraph()
	g.Metadata = h.Metadata
	if name != "" {
		g.Files = []string{name}
	}
	for i := range h.Tensors {
		ti := &h.Tensors[i]
		t := &weights.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: source(ti), File: name}
		if err := g.Add(t); err != nil {
			// The parser rejects duplicate names, so this is a bug here.
			panic(fmt.Sprintf("safetensors: %v", err))
		}
	}
	return g, nil
}
