package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/hubmirror/hubmirror/internal/atomicfile"
	"github.com/hubmirror/hubmirror/weights"
)

// writeRank orders dtypes the way the reference writer (Rust, which the
// Python package calls) does: it sorts tensors by its Dtype enum, which is
// declared in increasing alignment, descending, then by name. Tensors of
// larger elements come first, so every tensor's data is aligned to its
// element size once the header is padded to a multiple of 8. (The Rust enum
// puts U8 and I8 before the F8 types, and F8_E5M2 before F8_E4M3; the
// declaration order of weights.DType differs there, so it is not used.)
var writeRank = map[weights.DType]int{
	weights.Bool:   0,
	weights.U8:     1,
	weights.I8:     2,
	weights.F8E5M2: 3,
	weights.F8E4M3: 4,
	weights.I16:    5,
	weights.U16:    6,
	weights.F16:    7,
	weights.BF16:   8,
	weights.I32:    9,
	weights.U32:    10,
	weights.F32:    11,
	weights.F64:    12,
	weights.I64:    13,
	weights.U64:    14,
}

// planned is a tensor with its place in the file being written.
type planned struct {
	t          *weights.Tensor
	begin, end int64
}

// plan checks the tensors, orders them as the reference writer does and
// returns the padded header and the tensors in file order.
func plan(tensors []*weights.Tensor, metadata map[string]string) ([]byte, []planned, error) {
	order := make([]planned, 0, len(tensors))
	seen := make(map[string]struct{}, len(tensors))
	for i, t := range tensors {
		if t == nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %d is nil", i)
		}
		if t.Data == nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %s has no data", quote(t.Name))
		}
		if t.Name == metadataKey {
			return nil, nil, fmt.Errorf("safetensors: a tensor cannot be named %s", metadataKey)
		}
		if !utf8.ValidString(t.Name) {
			return nil, nil, fmt.Errorf("safetensors: tensor name %s is not valid UTF-8", quote(t.Name))
		}
		if _, dup := seen[t.Name]; dup {
			return nil, nil, fmt.Errorf("safetensors: %w: %s", weights.ErrDuplicate, quote(t.Name))
		}
		seen[t.Name] = struct{}{}
		if _, ok := writeRank[t.DType]; !ok {
			return nil, nil, fmt.Errorf("safetensors: tensor %s: cannot write dtype %v", quote(t.Name), t.DType)
		}
		n, err := weights.ByteSize(t.DType, t.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %s: %w", quote(t.Name), err)
		}
		order = append(order, planned{t: t, end: n}) // end holds the size until offsets are set
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("safetensors: metadata %s: not valid UTF-8", quote(k))
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i].t, order[j].t
		if ra, rb := writeRank[a.DType], writeRank[b.DType]; ra != rb {
			return ra > rb
		}
		return a.Name < b.Name
	})
	var off int64
	for i := range order {
		n := order[i].end
		if n > math.MaxInt64-off {
			return nil, nil, errors.New("safetensors: tensors hold more than 2^63 bytes")
		}
		order[i].begin, order[i].end = off, off+n
		off += n
	}
	header := encodeHeader(order, metadata)
	if len(header) > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes is over the format's limit of %d", len(header), MaxHeaderSize)
	}
	return header, order, nil
}

// encodeHeader writes the header JSON as the reference writer does: compact,
// __metadata__ first (keys sorted here, for reproducible files), tensors in
// file order with keys dtype, shape, data_offsets; strings without HTML
// escaping, as serde_json writes them; padded with spaces to a multiple of 8
// bytes. Names and metadata are valid UTF-8 (plan checks).
func encodeHeader(order []planned, metadata map[string]string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	str := func(s string) {
		_ = enc.Encode(s)           // cannot fail for a string
		buf.Truncate(buf.Len() - 1) // Encode appends a newline
	}
	buf.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		str(metadataKey)
		buf.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			str(k)
			buf.WriteByte(':')
			str(metadata[k])
		}
		buf.WriteByte('}')
	}
	var num []byte
	for i, p := range order {
		if i > 0 || len(metadata) > 0 {
			buf.WriteByte(',')
		}
		str(p.t.Name)
		buf.WriteString(`:{"dtype":"`)
		buf.WriteString(p.t.DType.String())
		buf.WriteString(`","shape":[`)
		for j, d := range p.t.Shape {
			if j > 0 {
				buf.WriteByte(',')
			}
			num = strconv.AppendInt(num[:0], d, 10)
			buf.Write(num)
		}
		buf.WriteString(`],"data_offsets":[`)
		num = strconv.AppendInt(num[:0], p.begin, 10)
		buf.Write(num)
		buf.WriteByte(',')
		num = strconv.AppendInt(num[:0], p.end, 10)
		buf.Write(num)
		buf.WriteString("]}")
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	return buf.Bytes()
}

// Write writes tensors as one safetensors file to w and returns the number
// of bytes written. Tensors are laid out as the reference writer lays them
// out: by dtype alignment, largest first, then by name, contiguous. Each
// tensor's bytes are obtained (t.Bytes) and written one tensor at a time, so
// a writer fed by lazy sources holds one tensor in memory at most.
// metadata becomes __metadata__ (omitted when empty); note that transformers
// refuses files whose __metadata__ lacks "format" ("pt" for PyTorch).
func Write(w io.Writer, tensors []*weights.Tensor, metadata map[string]string) (int64, error) {
	header, order, err := plan(tensors, metadata)
	if err != nil {
		return 0, err
	}
	return writePlanned(w, header, order)
}

func writePlanned(w io.Writer, header []byte, order []planned) (int64, error) {
	var written int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	n, err := w.Write(lenBuf[:])
	written += int64(n)
	if err != nil {
		return written, err
	}
	n, err = w.Write(header)
	written += int64(n)
	if err != nil {
		return written, err
	}
	for _, p := range order {
		b, err := p.t.Bytes()
		if err != nil {
			return written, fmt.Errorf("safetensors: %w", err)
		}
		if int64(len(b)) != p.end-p.begin { // Bytes checks this; a Source may still change its mind
			return written, fmt.Errorf("safetensors: tensor %s: %d bytes, planned %d", quote(p.t.Name), len(b), p.end-p.begin)
		}
		n, err = w.Write(b)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// WriteFile writes tensors as a safetensors file at path (see Write for the
// layout). The file is written under a temporary name in the same directory,
// synced, and renamed to path only when complete: a failure leaves nothing at
// path (and an existing file there untouched).
func WriteFile(path string, tensors []*weights.Tensor, metadata map[string]string) error {
	header, order, err := plan(tensors, metadata)
	if err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	err = writeAtomic(path, func(w io.Writer) error {
		_, err := writePlanned(w, header, order)
		return err
	})
	if err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	return nil
}

// writeAtomic calls fill with a buffered writer on a temporary file next to
// path, which becomes path only when complete (internal/atomicfile).
func writeAtomic(path string, fill func(io.Writer) error) error {
	return atomicfile.Write(path, func(f *os.File) error {
		bw := &alignedWriter{w: f, buf: make([]byte, 0, writeChunk)}
		if err := fill(bw); err != nil {
			return err
		}
		return bw.flush()
	})
}

// writeChunk is the size of every write to a file but the last.
const writeChunk = 4 << 20

// alignedWriter passes bytes to w in writes of exactly writeChunk bytes (but
// the last), so every write starts at a multiple of writeChunk. Unlike
// bufio.Writer it never passes a large slice straight through: writes of
// whole aligned 4 MiB runs let the page cache keep a new file in 2 MiB
// folios, which a reader that maps the file right away (Open) then maps with
// one page-table entry per 2 MiB instead of one per 4 KiB. (Measured on the
// development VM: the first read of a 512 MiB file mapped after 1 MiB
// unaligned writes ran at a quarter of the speed.)
type alignedWriter struct {
	w   io.Writer
	buf []byte
}

func (a *alignedWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := copy(a.buf[len(a.buf):cap(a.buf)], p)
		a.buf = a.buf[:len(a.buf)+k]
		p = p[k:]
		n += k
		if len(a.buf) == cap(a.buf) {
			if err := a.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (a *alignedWriter) flush() error {
	if len(a.buf) == 0 {
		return nil
	}
	_, err := a.w.Write(a.buf)
	a.buf = a.buf[:0]
	return err
}
