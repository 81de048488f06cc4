// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length N, N bytes of JSON describing every tensor,
// then the tensors' bytes, contiguous and in header-offset order.
//
// The reader validates every rule of the format before it hands out a tensor
// and reports each broken rule with its own sentinel error (see ErrFormat).
// Open maps the file and returns tensors whose data are views of the mapping,
// so nothing is read until it is touched. The writer streams one tensor at a
// time into a temporary file that is renamed into place when complete.
// Sharded checkpoints (model.safetensors.index.json) are read by OpenIndex
// and written by WriteSharded.
package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/hubmirror/hubmirror/weights"
)

// MaxHeaderSize is the largest header length the format allows (the
// reference implementation's limit).
const MaxHeaderSize = 100_000_000

// TensorInfo is one tensor entry of a header.
type TensorInfo struct {
	Name  string
	DType weights.DType
	Shape []int64
	// Begin and End are the tensor's data_offsets: byte offsets of its first
	// byte and one past its last, relative to Header.DataStart.
	Begin, End int64
}

// Header is the parsed and validated header of a safetensors file.
type Header struct {
	// Metadata is the __metadata__ object, nil when the header has none.
	Metadata map[string]string
	// Tensors are in data-offset order (header order among equal offsets,
	// which only empty tensors can share).
	Tensors []TensorInfo
	// DataStart is the file offset of the data section: 8 + header length.
	DataStart int64
}

// ReadHeader reads and validates the header of a safetensors file of size
// bytes that r reads. Only the header is read, but every rule that the
// header and the file size decide is checked, so a nil error means that the
// file is well formed. Errors name the file when r has a Name method (as
// *os.File does).
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	name := ""
	if n, ok := r.(interface{ Name() string }); ok {
		name = n.Name()
	}
	return readHeader(r, size, name)
}

func readHeader(r io.ReaderAt, size int64, name string) (*Header, error) {
	if size < 8 {
		return nil, &Error{File: name, Err: ErrTooShort, Detail: fmt.Sprintf("%d bytes", size)}
	}
	var lenBuf [8]byte
	if err := readFullAt(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %s: reading header length: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, &Error{File: name, Err: ErrHeaderTooLarge, Detail: fmt.Sprintf("%d bytes", n)}
	}
	if n > uint64(size-8) {
		return nil, &Error{File: name, Err: ErrHeaderLength,
			Detail: fmt.Sprintf("header of %d bytes in a file of %d bytes", n, size)}
	}
	var first [1]byte
	if n > 0 {
		if err := readFullAt(r, first[:], 8); err != nil {
			return nil, fmt.Errorf("safetensors: %s: reading header: %w", name, err)
		}
	}
	if n == 0 || first[0] != '{' {
		detail := "header is empty"
		if n > 0 {
			detail = fmt.Sprintf("first byte is %q", first[0])
		}
		return nil, &Error{File: name, Err: ErrHeaderStart, Detail: detail}
	}
	p := &headerParser{name: name}
	// Read in large pieces: r may be a file, or a remote object read by ranges.
	header := bufio.NewReaderSize(io.NewSectionReader(r, 8, int64(n)), int(min(n, 64<<10)))
	p.dec = json.NewDecoder(&jsonReader{r: header})
	p.dec.UseNumber()
	h, err := p.parse()
	if err != nil {
		return nil, err
	}
	h.DataStart = 8 + int64(n)
	if err := h.validate(size, name); err != nil {
		return nil, err
	}
	return h, nil
}

// readFullAt fills p from r at off; a short read is io.ErrUnexpectedEOF.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// validate checks the layout rules: contiguous data from offset 0, sizes that
// match dtype and shape, and a data section that ends at the end of the file.
func (h *Header) validate(fileSize int64, name string) error {
	sort.SliceStable(h.Tensors, func(i, j int) bool {
		a, b := &h.Tensors[i], &h.Tensors[j]
		return a.Begin < b.Begin || (a.Begin == b.Begin && a.End < b.End)
	})
	var pos int64
	for i := range h.Tensors {
		t := &h.Tensors[i]
		if t.Begin != pos {
			what := "gap"
			if t.Begin < pos {
				what = "overlap"
			}
			return &Error{File: name, Tensor: t.Name, Err: ErrNotContiguous,
				Detail: fmt.Sprintf("%s: begins at %d, previous data ends at %d", what, t.Begin, pos)}
		}
		if t.End < t.Begin {
			return &Error{File: name, Tensor: t.Name, Err: ErrNotContiguous,
				Detail: fmt.Sprintf("ends at %d before it begins at %d", t.End, t.Begin)}
		}
		want, err := weights.ByteSize(t.DType, t.Shape)
		if err != nil {
			return &Error{File: name, Tensor: t.Name, Err: ErrShape, Cause: err}
		}
		if t.End-t.Begin != want {
			return &Error{File: name, Tensor: t.Name, Err: ErrDataSize,
				Detail: fmt.Sprintf("data_offsets [%d, %d] hold %d bytes, %v %v needs %d",
					t.Begin, t.End, t.End-t.Begin, t.DType, t.Shape, want)}
		}
		pos = t.End
	}
	if have := fileSize - h.DataStart; pos != have {
		return &Error{File: name, Err: ErrFileSize,
			Detail: fmt.Sprintf("tensors cover %d bytes, the file has %d bytes after the header", pos, have)}
	}
	return nil
}

// headerParser reads the header JSON token by token, so that memory grows
// only with what the header describes, and so that duplicate keys (which
// encoding/json would silently overwrite) are seen.
type headerParser struct {
	dec  *json.Decoder
	name string
}

const metadataKey = "__metadata__"

func (p *headerParser) parse() (*Header, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, p.fail("", ErrHeaderJSON, "header is a JSON %s", kind(tok))
	}
	h := &Header{}
	seen := map[string]struct{}{}
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // the decoder guarantees a string in key position
		if _, dup := seen[key]; dup {
			if key == metadataKey {
				return nil, p.fail("", ErrDuplicate, "%s appears twice", metadataKey)
			}
			return nil, p.fail(key, ErrDuplicate, "two tensors of this name")
		}
		seen[key] = struct{}{}
		if key == metadataKey {
			if h.Metadata, err = p.metadata(); err != nil {
				return nil, err
			}
			continue
		}
		info, err := p.entry(key)
		if err != nil {
			return nil, err
		}
		h.Tensors = append(h.Tensors, info)
	}
	if _, err := p.token(); err != nil { // the closing '}'
		return nil, err
	}
	// Only whitespace may follow the object.
	switch tok, err := p.dec.Token(); {
	case err == io.EOF:
		return h, nil
	case err != nil:
		return nil, p.tokenError(err)
	default:
		return nil, p.fail("", ErrHeaderJSON, "a JSON %s follows the header object", kind(tok))
	}
}

// metadata reads the value of __metadata__: an object of strings. A JSON
// null counts as no metadata, as the reference implementation has it.
func (p *headerParser) metadata() (map[string]string, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, p.fail("", ErrMetadata, "%s is a JSON %s", metadataKey, kind(tok))
	}
	m := map[string]string{}
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if _, dup := m[key]; dup {
			return nil, p.fail("", ErrDuplicate, "%s key %s appears twice", metadataKey, quote(key))
		}
		if tok, err = p.token(); err != nil {
			return nil, err
		}
		s, ok := tok.(string)
		if !ok {
			return nil, p.fail("", ErrMetadata, "value of %s is a JSON %s", quote(key), kind(tok))
		}
		m[key] = s
	}
	if _, err := p.token(); err != nil {
		return nil, err
	}
	return m, nil
}

// entry reads one tensor entry: exactly dtype, shape and data_offsets.
func (p *headerParser) entry(name string) (TensorInfo, error) {
	info := TensorInfo{Name: name}
	tok, err := p.token()
	if err != nil {
		return info, err
	}
	if tok != json.Delim('{') {
		return info, p.fail(name, ErrEntry, "entry is a JSON %s", kind(tok))
	}
	const hasDType, hasShape, hasOffsets = 1, 2, 4
	var have int
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return info, err
		}
		key := tok.(string)
		var bit int
		switch key {
		case "dtype":
			bit = hasDType
		case "shape":
			bit = hasShape
		case "data_offsets":
			bit = hasOffsets
		default:
			return info, p.fail(name, ErrEntry, "unexpected key %s", quote(key))
		}
		if have&bit != 0 {
			return info, p.fail(name, ErrDuplicate, "key %q appears twice", key)
		}
		have |= bit
		switch bit {
		case hasDType:
			if tok, err = p.token(); err != nil {
				return info, err
			}
			s, ok := tok.(string)
			if !ok {
				return info, p.fail(name, ErrEntry, "dtype is a JSON %s", kind(tok))
			}
			if info.DType, err = weights.ParseDType(s); err != nil {
				return info, p.fail(name, ErrDType, "%s", quote(s))
			}
		case hasShape:
			if info.Shape, err = p.integers(name, "shape", ErrShape, -1); err != nil {
				return info, err
			}
			if info.Shape == nil {
				info.Shape = []int64{}
			}
		case hasOffsets:
			offs, err := p.integers(name, "data_offsets", ErrDataOffsets, 2)
			if err != nil {
				return info, err
			}
			if len(offs) != 2 {
				return info, p.fail(name, ErrDataOffsets, "%d integers", len(offs))
			}
			info.Begin, info.End = offs[0], offs[1]
		}
	}
	if _, err := p.token(); err != nil {
		return info, err
	}
	if have != hasDType|hasShape|hasOffsets {
		missing := "data_offsets"
		if have&hasDType == 0 {
			missing = "dtype"
		} else if have&hasShape == 0 {
			missing = "shape"
		}
		return info, p.fail(name, ErrEntry, "no %s", missing)
	}
	return info, nil
}

// integers reads an array of non-negative integers that fit in an int64,
// stopping with sentinel as soon as the array holds more than max (when max
// is not negative).
func (p *headerParser) integers(name, field string, sentinel error, max int) ([]int64, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, p.fail(name, sentinel, "%s is a JSON %s", field, kind(tok))
	}
	var out []int64
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, p.fail(name, sentinel, "%s holds a JSON %s", field, kind(tok))
		}
		v, err := strconv.ParseUint(string(num), 10, 63)
		if err != nil {
			what := "is not a non-negative integer"
			if errors.Is(err, strconv.ErrRange) {
				what = "is out of range"
			}
			return nil, p.fail(name, sentinel, "%s: %s %s", field, quote(string(num)), what)
		}
		if max >= 0 && len(out) == max {
			return nil, p.fail(name, sentinel, "%s has more than %d elements", field, max)
		}
		out = append(out, int64(v))
	}
	if _, err := p.token(); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *headerParser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.tokenError(err)
	}
	return tok, nil
}

// tokenError sorts the decoder's errors: bad UTF-8 and bad JSON are format
// errors; anything else came from reading the file.
func (p *headerParser) tokenError(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, errBadUTF8):
		return &Error{File: p.name, Err: ErrHeaderUTF8, Cause: err}
	case errors.Is(err, errSurrogate):
		return &Error{File: p.name, Err: ErrHeaderJSON, Cause: err}
	case errors.As(err, &syn):
		// syn.Offset counts squeezed bytes (see jsonReader), so it is left out.
		return &Error{File: p.name, Err: ErrHeaderJSON, Cause: err}
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return &Error{File: p.name, Err: ErrHeaderJSON, Detail: "ends inside the JSON object"}
	default:
		return fmt.Errorf("safetensors: %s: reading header: %w", p.name, err)
	}
}

func (p *headerParser) fail(tensor string, sentinel error, format string, args ...any) error {
	return &Error{File: p.name, Tensor: tensor, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

// kind names the JSON type of a token for error messages.
func kind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '{' {
			return "object"
		}
		return "array"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// errBadUTF8 and errSurrogate are returned by jsonReader.
var (
	errBadUTF8   = errors.New("invalid UTF-8")
	errSurrogate = errors.New("escape of a lone UTF-16 surrogate")
)

// jsonReader feeds a JSON text to encoding/json's Decoder and refuses what
// the Decoder would silently repair:
//
//   - invalid UTF-8 (which the Decoder replaces with U+FFFD in strings) fails
//     with errBadUTF8; the bytes of a rune split across two reads are kept,
//     so a stream of any length is checked in constant memory;
//   - a \u escape of a lone UTF-16 surrogate (which the Decoder also turns
//     into U+FFFD, and serde_json refuses) fails with errSurrogate.
//
// It also squeezes each run of whitespace outside strings to its first
// byte: the Decoder keeps the whole of a whitespace run in its buffer while
// it looks for the next token, so a header padded with 100 MB of spaces
// would otherwise cost 100 MB or more of memory.
type jsonReader struct {
	r       io.Reader
	pending [utf8.UTFMax]byte
	npend   int
	off     int64 // bytes read from r

	// String state for squeeze.
	inString, escaped, space bool
	hexLeft                  int  // hex digits of a \u escape still to come
	hex                      rune // value of the \u escape so far
	wantLow                  bool // a high surrogate escape awaits its low half
}

func (u *jsonReader) Read(p []byte) (int, error) {
	for {
		n, err := u.r.Read(p)
		if verr := u.check(p[:n], err == io.EOF); verr != nil {
			return 0, verr
		}
		start := u.off
		u.off += int64(n)
		w, serr := u.squeeze(p[:n], start)
		if serr != nil {
			return 0, serr
		}
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
		// Only whitespace was read and dropped: read on rather than
		// return 0 bytes without an error.
	}
}

// squeeze drops whitespace outside strings that follows whitespace, in place,
// and returns the new length; it checks \u escapes as it goes. Bytes of
// multi-byte runes are all >= 0x80, so a rune split across reads does not
// disturb the string tracking. Malformed escapes are left to the Decoder.
func (u *jsonReader) squeeze(b []byte, off int64) (int, error) {
	w := 0
	for i, c := range b {
		switch {
		case u.inString:
			switch {
			case u.hexLeft > 0:
				d := hexDigit(c)
				if d < 0 {
					u.hexLeft, u.wantLow = 0, false // the Decoder reports the bad escape
					break
				}
				u.hex = u.hex<<4 | d
				u.hexLeft--
				if u.hexLeft > 0 {
					break
				}
				high := 0xd800 <= u.hex && u.hex <= 0xdbff
				low := 0xdc00 <= u.hex && u.hex <= 0xdfff
				switch {
				case u.wantLow && !low, !u.wantLow && low:
					return 0, fmt.Errorf("%w near byte %d", errSurrogate, off+int64(i))
				case u.wantLow:
					u.wantLow = false
				case high:
					u.wantLow = true
				}
			case u.escaped:
				u.escaped = false
				if c == 'u' {
					u.hexLeft, u.hex = 4, 0
				} else if u.wantLow {
					return 0, fmt.Errorf("%w near byte %d", errSurrogate, off+int64(i))
				}
			case u.wantLow:
				if c != '\\' {
					return 0, fmt.Errorf("%w near byte %d", errSurrogate, off+int64(i))
				}
				u.escaped = true
			case c == '\\':
				u.escaped = true
			case c == '"':
				u.inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if u.space {
				continue
			}
			u.space = true
		default:
			u.space = false
			u.inString = c == '"'
		}
		b[w] = c
		w++
	}
	return w, nil
}

func hexDigit(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func (u *jsonReader) check(b []byte, atEOF bool) error {
	base := u.off // file offset of b[0] within the header
	if u.npend > 0 {
		// Complete the rune split by the previous read.
		var tmp [2 * utf8.UTFMax]byte
		k := copy(tmp[:], u.pending[:u.npend])
		m := copy(tmp[k:utf8.UTFMax], b)
		t := tmp[:k+m]
		start := u.off - int64(u.npend)
		if !utf8.FullRune(t) {
			if atEOF {
				return fmt.Errorf("%w: truncated sequence at byte %d", errBadUTF8, start)
			}
			u.npend = copy(u.pending[:], t)
			return nil
		}
		r, size := utf8.DecodeRune(t)
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%w at byte %d", errBadUTF8, start)
		}
		b = b[size-k:]
		base += int64(size - k)
		u.npend = 0
	}
	// Hold back a rune cut at the end of b.
	j := len(b)
	for back := 1; back <= utf8.UTFMax-1 && back <= len(b); back++ {
		if utf8.RuneStart(b[len(b)-back]) {
			if !utf8.FullRune(b[len(b)-back:]) {
				j = len(b) - back
			}
			break
		}
	}
	if !utf8.Valid(b[:j]) {
		i := 0
		for i < j {
			r, size := utf8.DecodeRune(b[i:j])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return fmt.Errorf("%w at byte %d", errBadUTF8, base+int64(i))
	}
	u.npend = copy(u.pending[:], b[j:])
	if atEOF && u.npend > 0 {
		return fmt.Errorf("%w: truncated sequence at byte %d", errBadUTF8, base+int64(j))
	}
	return nil
}
