package safetensors

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hubmirror/hubmirror/weights"
)

// IndexFile is the name of the index of a sharded checkpoint that
// transformers and huggingface_hub write.
const IndexFile = "model.safetensors.index.json"

// maxIndexSize bounds the index files this package reads: an index for a
// model of 100,000 tensors takes a few megabytes.
const maxIndexSize = MaxHeaderSize

// IndexEntry is one weight_map entry: a tensor and the shard that holds it.
type IndexEntry struct {
	Tensor string
	File   string
}

// Index is a parsed model.safetensors.index.json.
type Index struct {
	// Metadata is the raw "metadata" object ({"total_size": N, ...}), nil
	// when absent.
	Metadata json.RawMessage
	// WeightMap lists the entries in file order; names are unique.
	WeightMap []IndexEntry
	// Shards lists the distinct shard file names in order of first
	// appearance in WeightMap. Each is a plain file name (checked).
	Shards []string
}

// ReadIndex parses an index read from r; name is used in errors. It checks
// that weight_map is an object of string to string without duplicate names
// and that every shard name is a plain file name in the index's directory.
// Keys other than metadata and weight_map are ignored.
func ReadIndex(r io.Reader, name string) (*Index, error) {
	p := &headerParser{name: name, dec: json.NewDecoder(&jsonReader{r: r})}
	p.dec.UseNumber()
	fail := func(format string, args ...any) error { return p.fail("", ErrIndex, format, args...) }
	relabel := func(err error) error { // header sentinels become ErrIndex
		var e *Error
		if errors.As(err, &e) {
			switch e.Err {
			case ErrHeaderUTF8:
				e.Err, e.Detail = ErrIndex, "not valid UTF-8"
			case ErrHeaderJSON:
				e.Err, e.Detail = ErrIndex, strings.TrimSuffix("not valid JSON: "+e.Detail, ": ")
			}
		}
		return err
	}
	tok, err := p.token()
	if err != nil {
		return nil, relabel(err)
	}
	if tok != json.Delim('{') {
		return nil, fail("index is a JSON %s", kind(tok))
	}
	idx := &Index{}
	seen := map[string]bool{}
	haveMap := false
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, relabel(err)
		}
		key := tok.(string)
		if seen[key] {
			return nil, p.fail("", ErrDuplicate, "index key %s appears twice", quote(key))
		}
		seen[key] = true
		switch key {
		case "weight_map":
			haveMap = true
			if err := p.weightMap(idx); err != nil {
				return nil, relabel(err)
			}
		case "metadata":
			var raw json.RawMessage
			if err := p.dec.Decode(&raw); err != nil {
				return nil, relabel(p.tokenError(err))
			}
			if raw[0] != '{' && string(raw) != "null" {
				return nil, fail("metadata is not an object")
			}
			idx.Metadata = raw
		default:
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return nil, relabel(p.tokenError(err))
			}
		}
	}
	if _, err := p.token(); err != nil {
		return nil, relabel(err)
	}
	switch tok, err := p.dec.Token(); {
	case err == io.EOF:
	case err != nil:
		return nil, relabel(p.tokenError(err))
	default:
		return nil, fail("a JSON %s follows the index object", kind(tok))
	}
	if !haveMap {
		return nil, fail("no weight_map")
	}
	if len(idx.WeightMap) == 0 {
		return nil, fail("weight_map is empty")
	}
	return idx, nil
}

func (p *headerParser) weightMap(idx *Index) error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return p.fail("", ErrIndex, "weight_map is a JSON %s", kind(tok))
	}
	names := map[string]struct{}{}
	shards := map[string]struct{}{}
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return err
		}
		tensor := tok.(string)
		if _, dup := names[tensor]; dup {
			return p.fail(tensor, ErrDuplicate, "weight_map names the tensor twice")
		}
		names[tensor] = struct{}{}
		if tok, err = p.token(); err != nil {
			return err
		}
		file, ok := tok.(string)
		if !ok {
			return p.fail(tensor, ErrIndex, "weight_map value is a JSON %s", kind(tok))
		}
		if _, ok := shards[file]; !ok {
			if !plainFileName(file) {
				return p.fail(tensor, ErrShardName, "%s", quote(file))
			}
			shards[file] = struct{}{}
			idx.Shards = append(idx.Shards, file)
		}
		idx.WeightMap = append(idx.WeightMap, IndexEntry{Tensor: tensor, File: file})
	}
	_, err = p.token()
	return err
}

// plainFileName reports whether s names a file directly in a directory: not
// empty, no separator of any platform, not "." or "..", not absolute, no NUL
// and no reserved name (filepath.IsLocal).
func plainFileName(s string) bool {
	return s != "" && s != "." && s != ".." &&
		!strings.ContainsAny(s, "/\\\x00") &&
		!filepath.IsAbs(s) && filepath.IsLocal(s)
}

// OpenIndex opens a sharded checkpoint from its index (normally
// model.safetensors.index.json): each shard named in weight_map is opened
// once (with Open, so it is mapped and validated), every name in weight_map
// must be in the shard it names, and every tensor of a shard must be in
// weight_map under that shard. Tensors come in shard order (order of first
// appearance in weight_map), then data-offset order within a shard. Files is
// the index followed by the shards; Metadata merges the shards' __metadata__.
// On error every shard opened so far is closed.
func OpenIndex(indexPath string) (*weights.Graph, error) {
	f, err := os.Open(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.Size() > maxIndexSize {
		return nil, &Error{File: indexPath, Err: ErrIndex, Detail: fmt.Sprintf("%d bytes is over the limit of %d", st.Size(), maxIndexSize)}
	}
	idx, err := ReadIndex(bufio.NewReader(io.LimitReader(f, maxIndexSize)), indexPath)
	if err != nil {
		return nil, err
	}
	return openShards(indexPath, idx)
}

func openShards(indexPath string, idx *Index) (*weights.Graph, error) {
	dir := filepath.Dir(indexPath)
	byShard := map[string][]string{}
	fileOf := make(map[string]string, len(idx.WeightMap))
	for _, e := range idx.WeightMap {
		byShard[e.File] = append(byShard[e.File], e.Tensor)
		fileOf[e.Tensor] = e.File
	}
	g := weights.NewGraph()
	g.Files = []string{indexPath}
	for _, shard := range idx.Shards {
		path := filepath.Join(dir, shard)
		sg, err := Open(path)
		if err == nil {
			err = checkShard(indexPath, path, shard, sg, byShard[shard], fileOf)
			if err == nil {
				err = g.Merge(sg) // cannot fail: names are unique across shards
			}
			if err != nil {
				sg.Close()
			}
		}
		if err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// checkShard compares a shard's tensors with the names weight_map gives it.
func checkShard(indexPath, path, shard string, sg *weights.Graph, want []string, fileOf map[string]string) error {
	for _, t := range sg.Tensors() {
		f, ok := fileOf[t.Name]
		if !ok {
			return &Error{File: path, Tensor: t.Name, Err: ErrIndexMismatch, Detail: "the shard holds a tensor that weight_map does not name"}
		}
		if f != shard {
			return &Error{File: path, Tensor: t.Name, Err: ErrIndexMismatch, Detail: fmt.Sprintf("weight_map puts it in %s", quote(f))}
		}
	}
	for _, name := range want {
		if _, ok := sg.Tensor(name); !ok {
			return &Error{File: indexPath, Tensor: name, Err: ErrIndexMismatch, Detail: fmt.Sprintf("weight_map puts it in %s, which does not hold it", quote(shard))}
		}
	}
	return nil
}
