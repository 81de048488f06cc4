// Package torch reads PyTorch checkpoints (pytorch_model.bin and other
// torch.save files) into a weights.Graph without running any of the pickled
// code.
//
// Both on-disk formats are read, detected by content:
//
//   - the zip format (torch >= 1.6): one top folder of any name holding
//     data.pkl, data/<key> per storage, and optionally byteorder ("little"
//     or "big"; absent means little) and version. Stored (uncompressed)
//     storage records, which is all torch writes, become zero-copy views of
//     the memory-mapped file. Deflated records are decompressed, into a new
//     buffer of exactly the size the pickle claims, every time a tensor's
//     Bytes is called; other compression methods are refused. The CRCs of
//     data.pkl and byteorder are checked; those of storage records are not
//     (that would read every byte at open time).
//   - the legacy format (torch < 1.6, or _use_new_zipfile_serialization=False):
//     a stream of pickles followed by the raw storages (see legacyCheckpoint).
//
// The pickle is read by a restricted unpickler of this package: it accepts
// the opcodes of protocols 0 to 5 and an allowlist of globals
// (AllowedGlobals: tensor and parameter rebuild functions, storage types,
// dtypes, collections.OrderedDict, torch.Size, torch.device, set,
// frozenset, and bytes() and _codecs.encode(str, 'latin1') for bytes). Any other global is refused with a
// *ForbiddenGlobalError when it is read. Every size, shape, stride and
// offset is checked against the bytes actually present before a tensor is
// made, and the work a pickle can cause is bounded by its size.
//
// What becomes the graph: the pickle must produce a dict. While it holds no
// tensor itself and has a dict under "state_dict", "model_state_dict",
// "model" or "module", that dict is used instead. Tensors are named by their
// keys; tensors in nested dicts get dotted names ("encoder.weight");
// non-tensor values are skipped. A contiguous little-endian tensor is a view
// of the file (weights.Memory); a strided view (transposed, sliced,
// expanded) or big-endian data becomes a weights.SourceFunc that gathers and
// byte-swaps into a new buffer when Bytes is called. Tensors sharing one
// storage record carry its id in Tensor.Storage, so Graph.TiedGroups reports
// them, and Tensor.StorageOffset is their byte offset in it.
package torch

import (
	"bytes"
	"fmt"

	"github.com/hubmirror/hubmirror/internal/mmap"
	"github.com/hubmirror/hubmirror/weights"
)

// Open reads the PyTorch checkpoint at path. The file is memory-mapped;
// tensor data stays valid until the graph is closed.
func Open(path string) (*weights.Graph, error) {
	return mmap.OpenGraph(path, "torch", Parse)
}

// Parse reads a PyTorch checkpoint held in data; name is used for
// g.Files, Tensor.File, storage ids and error messages. Tensors may alias
// data, which must stay unmodified while the graph is in use.
func Parse(data []byte, name string) (*weights.Graph, error) {
	var p *pickled
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		p, err = parseZip(data, name)
	case len(data) > 262 && string(data[257:262]) == "ustar":
		return nil, fmt.Errorf("%w: %s is a tar archive (the format of torch < 0.4)", ErrUnsupported, name)
	case len(data) == 0:
		return nil, fmt.Errorf("%w: %s is empty", ErrFormat, name)
	default:
		p, err = parseLegacy(data, name)
	}
	if err != nil {
		return nil, err
	}
	return buildGraph(p, name)
}
