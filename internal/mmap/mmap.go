// Package mmap maps files read-only into memory, so that readers can hand out
// tensors as views over the file: pages are read by the kernel when first
// touched, and shared with the page cache instead of copied.
package mmap

import (
	"fmt"
	"os"

	"github.com/hubmirror/hubmirror/weights"
)

// File is a read-only mapping of a whole file.
type File struct {
	data  []byte
	unmap func([]byte) error
	size  int64
}

// Open maps the named file. Where the platform has no mmap, the file is read
// into memory instead; the API is the same.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("mmap: %s is not a regular file", path)
	}
	size := st.Size()
	if size == 0 {
		return &File{}, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("mmap: %s: %d bytes does not fit in the address space", path, size)
	}
	data, unmap, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("mmap: %s: %w", path, err)
	}
	return &File{data: data, unmap: unmap, size: size}, nil
}

// Bytes returns the mapped contents. Writing to the slice faults; using it
// after Close faults.
func (m *File) Bytes() []byte { return m.data }

// Size is the length of the file when it was mapped.
func (m *File) Size() int64 { return m.size }

// Close unmaps the file.
func (m *File) Close() error {
	if m.unmap == nil || m.data == nil {
		return nil
	}
	d := m.data
	m.data = nil
	return m.unmap(d)
}

// Release tells the kernel that the pages of the mapping read so far are
// not needed now: they leave this process's resident set (they stay in the
// page cache, and a later read faults them back in). The contents stay
// valid. Streaming passes call it between tensors so that reading a whole
// model does not grow the process by the model's size.
func (m *File) Release() {
	if m.data != nil && m.unmap != nil {
		release(m.data)
	}
}

// OpenGraph maps the file at path and builds a graph from its bytes with
// parse (name is path); the mapping is registered with the graph, which
// unmaps it when closed, and unmapped at once when parse fails. prefix
// names the format in errors of the mapping itself.
func OpenGraph(path, prefix string, parse func(data []byte, name string) (*weights.Graph, error)) (*weights.Graph, error) {
	m, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	g, err := parse(m.Bytes(), path)
	if err != nil {
		m.Close()
		return nil, err
	}
	g.AddCloser(m)
	return g, nil
}
