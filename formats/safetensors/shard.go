package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/hubmirror/hubmirror/weights"
)

// SingleFile is the name WriteSharded gives a checkpoint that fits in one
// file.
const SingleFile = "model.safetensors"

// ShardName returns the name of shard i (from 1) of n, as transformers and
// huggingface_hub name them: model-00001-of-00003.safetensors.
func ShardName(i, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n)
}

// planShards splits tensors of the given byte sizes into shards the way
// huggingface_hub's split_state_dict_into_shards_factory (and transformers'
// shard_checkpoint before it) does: walk the tensors in order, adding each to
// the current shard, and start a new shard when the next tensor would take
// the current one over max. A tensor bigger than max gets a shard of its own,
// appended at once while the current shard keeps filling, so such a shard
// can come before tensors that preceded it. max <= 0 means one shard. It
// returns the tensors' indices per shard; no shard is empty, and an empty
// input gives one empty shard.
func planShards(sizes []int64, max int64) [][]int {
	if max <= 0 {
		all := make([]int, len(sizes))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	var shards [][]int
	var cur []int
	var curSize int64
	for i, n := range sizes {
		if n > max {
			shards = append(shards, []int{i})
			continue
		}
		if curSize+n > max { // cannot overflow: both are at most max
			shards = append(shards, cur)
			cur, curSize = nil, 0
		}
		cur = append(cur, i)
		curSize += n
	}
	if len(cur) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	return shards
}

// indexJSON is the layout of model.safetensors.index.json.
type indexJSON struct {
	Metadata  indexMetadata     `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

type indexMetadata struct {
	TotalSize int64 `json:"total_size"`
}

// WriteSharded writes tensors into dir as a checkpoint of shards of at most
// maxShardBytes bytes of tensor data each (see planShards for how tensors are
// split; a tensor bigger than maxShardBytes gets its own shard). When
// everything fits in one shard, or maxShardBytes <= 0, it writes a single
// model.safetensors and no index. Otherwise it writes
// model-00001-of-0000N.safetensors ... and then model.safetensors.index.json,
// {"metadata": {"total_size": N}, "weight_map": {name: shard}} with sorted
// keys and two-space indent as transformers writes it. Every shard gets
// metadata as its __metadata__. Each file is written atomically (see
// WriteFile), the index last; on error the files this call already wrote are
// removed. It returns the paths written, the index last.
func WriteSharded(dir string, tensors []*weights.Tensor, metadata map[string]string, maxShardBytes int64) ([]string, error) {
	// Check every tensor before writing anything.
	if _, _, err := plan(tensors, metadata); err != nil {
		return nil, fmt.Errorf("%w (writing into %s)", err, dir)
	}
	sizes := make([]int64, len(tensors))
	var total int64
	for i, t := range tensors {
		sizes[i] = t.NumBytes() // valid: plan checked
		if sizes[i] > math.MaxInt64-total {
			return nil, errors.New("safetensors: tensors hold more than 2^63 bytes")
		}
		total += sizes[i]
	}
	shards := planShards(sizes, maxShardBytes)
	if len(shards) == 1 {
		path := filepath.Join(dir, SingleFile)
		if err := WriteFile(path, tensors, metadata); err != nil {
			return nil, err
		}
		return []string{path}, nil
	}
	var written []string
	ok := false
	defer func() {
		if !ok {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	index := indexJSON{Metadata: indexMetadata{TotalSize: total}, WeightMap: make(map[string]string, len(tensors))}
	for i, members := range shards {
		name := ShardName(i+1, len(shards))
		shard := make([]*weights.Tensor, len(members))
		for j, k := range members {
			shard[j] = tensors[k]
			index.WeightMap[tensors[k].Name] = name
		}
		path := filepath.Join(dir, name)
		if err := WriteFile(path, shard, metadata); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	indexPath := filepath.Join(dir, IndexFile)
	err := writeAtomic(indexPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(index) // map keys sorted, newline at the end
	})
	if err != nil {
		return nil, fmt.Errorf("safetensors: writing %s: %w", indexPath, err)
	}
	written = append(written, indexPath)
	ok = true
	return written, nil
}
