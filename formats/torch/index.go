package torch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/weights"
)

// maxIndexSize bounds an index JSON file (real ones are tens of KB).
const maxIndexSize = 64 << 20

// OpenIndex reads a sharded checkpoint through its index
// (pytorch_model.bin.index.json): {"metadata": {...}, "weight_map": {tensor
// name: shard file}}. Shard names must be plain file names in the index's
// folder. Each shard is opened once, shards in sorted name order; every name
// in weight_map must be found in the shard it maps to. Tensors a shard holds
// beyond the map are kept (as torch's sharded loading does). g.Files lists
// the index, then the shards.
func OpenIndex(indexPath string) (*weights.Graph, error) {
	f, err := os.Open(indexPath)
	if err != nil {
		return nil, fmt.Errorf("torch: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("torch: %w", err)
	}
	if st.Size() > maxIndexSize {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrIndex, indexPath, st.Size())
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	dec := json.NewDecoder(f)
	if err := dec.Decode(&idx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIndex, indexPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%w: %s has no weight_map", ErrIndex, indexPath)
	}
	var shards []string
	seen := map[string]bool{}
	for name, shard := range idx.WeightMap {
		if !plainFileName(shard) {
			return nil, fmt.Errorf("%w: %s maps %q to %q, which is not a plain file name", ErrIndex, indexPath, name, shard)
		}
		if !seen[shard] {
			seen[shard] = true
			shards = append(shards, shard)
		}
	}
	sort.Strings(shards)
	dir := filepath.Dir(indexPath)
	g := weights.NewGraph()
	g.Files = []string{indexPath}
	for _, shard := range shards {
		sg, err := Open(filepath.Join(dir, shard))
		if err != nil {
			return nil, errors.Join(err, g.Close())
		}
		if err := g.Merge(sg); err != nil {
			return nil, errors.Join(fmt.Errorf("torch: %s: shard %s: %w", indexPath, shard, err), sg.Close(), g.Close())
		}
	}
	var missing []string
	for name, shard := range idx.WeightMap {
		t, ok := g.Tensor(name)
		if !ok || t.File != filepath.Join(dir, shard) {
			missing = append(missing, fmt.Sprintf("%q (mapped to %s)", name, shard))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		if len(missing) > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
		}
		return nil, errors.Join(fmt.Errorf("%w: %s: tensors not in their shard: %s", ErrIndex, indexPath, strings.Join(missing, ", ")), g.Close())
	}
	return g, nil
}

// plainFileName reports whether s names a file directly inside a folder: no
// separators, no "." or "..", nothing absolute.
func plainFileName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00:") && filepath.IsLocal(s)
}
