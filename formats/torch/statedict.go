package torch

import (
	"fmt"
	"strconv"

	"github.com/hubmirror/hubmirror/weights"
)

// pickled is what a checkpoint's object pickle produced.
type pickled struct {
	result  any
	globals []string
	// size is the length of the object pickle; it bounds the work of
	// walking the result.
	size int
}

// wrapperKeys are the keys under which training checkpoints nest the
// weights, tried in this order when a dict holds no tensor itself.
var wrapperKeys = []string{"state_dict", "model_state_dict", "model", "module"}

const (
	// maxDictDepth bounds the nesting of dicts walked for tensors (and so
	// stops at dicts that contain themselves).
	maxDictDepth = 64
	// maxUnwrap bounds how many wrapper dicts are stripped.
	maxUnwrap = 4
)

// namedTensor is a tensor found in the state dict under its dotted name.
type namedTensor struct {
	name string
	t    *tensorRef
}

// stateDict finds the tensors in a pickle's result. The result must be a
// dict. While it holds no tensor directly and has a dict under one of
// wrapperKeys, that dict is taken instead ({"state_dict": {...}, "epoch": 3}
// and {"model": {...}} checkpoints). The dict is then flattened: tensors
// keep their key, tensors in nested dicts get "outer.inner" names, and
// values that are neither tensors nor dicts (step counters, config strings,
// lists) are skipped.
func stateDict(p *pickled, file string) ([]namedTensor, error) {
	root, ok := p.result.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds %s, not a dict of tensors", ErrNotStateDict, file, typeName(p.result))
	}
	for i := 0; i < maxUnwrap && !holdsTensor(root); i++ {
		inner := unwrap(root)
		if inner == nil {
			break
		}
		root = inner
	}
	w := &walker{file: file, budget: p.size + 1024, nameBudget: 16*p.size + 1<<20}
	if err := w.walk(root, "", 0); err != nil {
		return nil, err
	}
	if len(w.out) == 0 {
		return nil, fmt.Errorf("%w: %s holds a dict without tensors", ErrNotStateDict, file)
	}
	return w.out, nil
}

func holdsTensor(d *pyDict) bool {
	for _, v := range d.values {
		if _, ok := v.(*tensorRef); ok {
			return true
		}
	}
	return false
}

func unwrap(d *pyDict) *pyDict {
	for _, k := range wrapperKeys {
		if v, ok := d.get(k); ok {
			if inner, ok := v.(*pyDict); ok {
				return inner
			}
		}
	}
	return nil
}

// walker flattens nested dicts within budgets proportional to the pickle's
// size, so that a pickle reusing one dict many times over (a DAG whose
// expansion is exponential) is refused instead of expanded.
type walker struct {
	file       string
	budget     int
	nameBudget int
	out        []namedTensor
}

func (w *walker) walk(d *pyDict, prefix string, depth int) error {
	if depth > maxDictDepth {
		return fmt.Errorf("%w: %s: state dict nested more than %d deep", ErrPickle, w.file, maxDictDepth)
	}
	for i, k := range d.keys {
		w.budget--
		if w.budget < 0 {
			return fmt.Errorf("%w: %s: state dict expands to more entries than its pickle could hold", ErrPickle, w.file)
		}
		var name string
		switch k := k.(type) {
		case string:
			name = k
		case []byte:
			name = string(k)
		case int64:
			name = strconv.FormatInt(k, 10)
		default:
			if _, ok := d.values[i].(*tensorRef); ok {
				return fmt.Errorf("%w: %s: tensor under a %s key", ErrNotStateDict, w.file, typeName(k))
			}
			continue
		}
		switch v := d.values[i].(type) {
		case *tensorRef:
			full := prefix + name
			if w.nameBudget -= len(full); w.nameBudget < 0 {
				return fmt.Errorf("%w: %s: tensor names longer than the pickle could hold", ErrPickle, w.file)
			}
			w.out = append(w.out, namedTensor{name: full, t: v})
		case *pyDict:
			inner := prefix + name + "."
			if w.nameBudget -= len(inner); w.nameBudget < 0 {
				return fmt.Errorf("%w: %s: tensor names longer than the pickle could hold", ErrPickle, w.file)
			}
			if err := w.walk(v, inner, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// buildGraph turns a checkpoint's pickle into a Graph. Tensors that share a
// storage record with another tensor of the graph get its id as Storage, so
// Graph.TiedGroups reports them.
func buildGraph(p *pickled, file string) (*weights.Graph, error) {
	named, err := stateDict(p, file)
	if err != nil {
		return nil, err
	}
	users := map[*rootStorage]int{}
	for _, n := range named {
		users[n.t.st.root]++
	}
	g := weights.NewGraph()
	g.Files = []string{file}
	for _, name := range p.globals {
		g.AddGlobal(name)
	}
	for _, n := range named {
		t := n.t
		wt := &weights.Tensor{
			Name:          n.name,
			DType:         t.dtype,
			Shape:         append([]int64{}, t.shape...),
			Data:          t.source(),
			StorageOffset: t.st.byteOffset + t.offset*int64(t.dtype.Size()),
			File:          file,
		}
		if users[t.st.root] > 1 {
			wt.Storage = t.st.root.id
		}
		if err := g.Add(wt); err != nil {
			return nil, fmt.Errorf("torch: %s: %w", file, err)
		}
	}
	return g, nil
}
