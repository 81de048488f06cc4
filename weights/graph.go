package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Graph is a model's weights: tensors in file order, the model's config,
// file-level metadata and the groups of names that share one storage.
type Graph struct {
	tensors []*Tensor
	byName  map[string]int

	// Config is the raw config.json of the model, nil when there is none.
	// Package formats parses it into typed architecture configs.
	Config json.RawMessage
	// Metadata is file-level string metadata (safetensors __metadata__).
	Metadata map[string]string
	// Files lists the files the graph was read from.
	Files []string
	// Globals lists the pickle globals the checkpoint referenced (module.name),
	// for pickled checkpoints; each appears once.
	Globals []string

	closers []io.Closer
}

// NewGraph returns an empty Graph.
func NewGraph() *Graph { return &Graph{byName: map[string]int{}} }

// ErrDuplicate is returned when a name is added twice.
var ErrDuplicate = errors.New("weights: duplicate tensor name")

// Add appends t; a name already present is an error.
func (g *Graph) Add(t *Tensor) error {
	if g.byName == nil {
		g.byName = map[string]int{}
	}
	if _, ok := g.byName[t.Name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, t.Name)
	}
	g.byName[t.Name] = len(g.tensors)
	g.tensors = append(g.tensors, t)
	return nil
}

// Tensors returns the tensors in order. The slice must not be modified.
func (g *Graph) Tensors() []*Tensor { return g.tensors }

// Len is the number of tensors.
func (g *Graph) Len() int { return len(g.tensors) }

// Tensor returns the tensor with the given name.
func (g *Graph) Tensor(name string) (*Tensor, bool) {
	i, ok := g.byName[name]
	if !ok {
		return nil, false
	}
	return g.tensors[i], true
}

// Names returns the tensor names in order.
func (g *Graph) Names() []string {
	out := make([]string, len(g.tensors))
	for i, t := range g.tensors {
		out[i] = t.Name
	}
	return out
}

// Remove drops the named tensor; it reports whether it was present.
func (g *Graph) Remove(name string) bool {
	i, ok := g.byName[name]
	if !ok {
		return false
	}
	g.tensors = append(g.tensors[:i], g.tensors[i+1:]...)
	delete(g.byName, name)
	for j := i; j < len(g.tensors); j++ {
		g.byName[g.tensors[j].Name] = j
	}
	return true
}

// Replace puts t in place of the tensor of the same name, or appends it.
func (g *Graph) Replace(t *Tensor) {
	if i, ok := g.byName[t.Name]; ok {
		g.tensors[i] = t
		return
	}
	_ = g.Add(t)
}

// NumParams sums the element counts of all tensors.
func (g *Graph) NumParams() int64 {
	var n int64
	for _, t := range g.tensors {
		n += t.NumElements()
	}
	return n
}

// NumBytes sums the data sizes of all tensors (tied tensors count once per
// name).
func (g *Graph) NumBytes() int64 {
	var n int64
	for _, t := range g.tensors {
		n += t.NumBytes()
	}
	return n
}

// TiedGroups returns the groups of two or more names whose data lives in the
// same storage, each group in graph order, groups ordered by first member.
func (g *Graph) TiedGroups() [][]string {
	groups := map[string][]string{}
	var order []string
	for _, t := range g.tensors {
		if t.Storage == "" {
			continue
		}
		if _, ok := groups[t.Storage]; !ok {
			order = append(order, t.Storage)
		}
		groups[t.Storage] = append(groups[t.Storage], t.Name)
	}
	var out [][]string
	for _, k := range order {
		if len(groups[k]) > 1 {
			out = append(out, groups[k])
		}
	}
	return out
}

// AddGlobal records a pickle global seen while reading, once.
func (g *Graph) AddGlobal(name string) {
	for _, s := range g.Globals {
		if s == name {
			return
		}
	}
	g.Globals = append(g.Globals, name)
	sort.Strings(g.Globals)
}

// AddCloser registers c to be closed with the graph (a mapped file, say).
func (g *Graph) AddCloser(c io.Closer) { g.closers = append(g.closers, c) }

// Merge moves the tensors, files, globals and closers of other into g; other
// must not be used afterwards. Metadata of other is added where g has none.
func (g *Graph) Merge(other *Graph) error {
	for _, t := range other.tensors {
		if err := g.Add(t); err != nil {
			return err
		}
	}
	g.Files = append(g.Files, other.Files...)
	for _, s := range other.Globals {
		g.AddGlobal(s)
	}
	for k, v := range other.Metadata {
		if g.Metadata == nil {
			g.Metadata = map[string]string{}
		}
		if _, ok := g.Metadata[k]; !ok {
			g.Metadata[k] = v
		}
	}
	if g.Config == nil {
		g.Config = other.Config
	}
	g.closers = append(g.closers, other.closers...)
	other.closers = nil
	return nil
}

// Close releases the files behind the graph. Tensor data obtained from it
// must not be used afterwards.
func (g *Graph) Close() error {
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i].Close())
	}
	g.closers = nil
	return errors.Join(errs...)
}

// Derive returns an empty Graph with g's config, a copy of its metadata, its
// files and globals, for a pass to fill with tensors computed from g's. The
// new Graph owns no files: g must stay open while it is used.
func (g *Graph) Derive() *Graph {
	out := NewGraph()
	out.Config = g.Config
	if g.Metadata != nil {
		out.Metadata = make(map[string]string, len(g.Metadata))
		for k, v := range g.Metadata {
			out.Metadata[k] = v
		}
	}
	out.Files = append([]string(nil), g.Files...)
	out.Globals = append([]string(nil), g.Globals...)
	return out
}

// Releaser is implemented by the files behind a Graph whose memory can be
// handed back to the operating system without invalidating data (mapped
// files: their pages are read again when next touched).
type Releaser interface {
	Release()
}

// Release hands back the memory of the files behind g that support it
// (see Releaser). Tensor data stays valid. Passes that stream a model call
// it between tensors to keep the resident set near the largest tensor.
func (g *Graph) Release() {
	for _, c := range g.closers {
		if r, ok := c.(Releaser); ok {
			r.Release()
		}
	}
}
