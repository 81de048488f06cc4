package safetensors

import (
	"errors"
	"strconv"
	"strings"
)

// ErrFormat matches every error that reports a file or index breaking the
// format: errors.Is(err, ErrFormat) is true for each of the sentinels below,
// and false for I/O errors.
var ErrFormat = errors.New("safetensors: invalid file")

// formatError is the type of the sentinels: each matches itself (by identity)
// and ErrFormat.
type formatError struct{ msg string }

func (e *formatError) Error() string        { return e.msg }
func (e *formatError) Is(target error) bool { return target == ErrFormat }

func newFormatError(msg string) error { return &formatError{msg} }

// The rules of the format, one sentinel each. Errors returned by this package
// wrap one of them in an *Error that names the file and, where there is one,
// the tensor.
var (
	// ErrTooShort: the file is shorter than the 8-byte header length.
	ErrTooShort = newFormatError("file shorter than 8 bytes")
	// ErrHeaderTooLarge: the header length is over MaxHeaderSize.
	ErrHeaderTooLarge = newFormatError("header length over 100000000 bytes")
	// ErrHeaderLength: the header length runs past the end of the file.
	ErrHeaderLength = newFormatError("header length beyond the end of the file")
	// ErrHeaderUTF8: the header is not valid UTF-8.
	ErrHeaderUTF8 = newFormatError("header is not valid UTF-8")
	// ErrHeaderStart: the header is empty or its first byte is not '{'.
	ErrHeaderStart = newFormatError("header does not begin with '{'")
	// ErrHeaderJSON: the header is not one JSON object followed only by
	// whitespace padding.
	ErrHeaderJSON = newFormatError("header is not a JSON object")
	// ErrMetadata: __metadata__ is not an object of string to string.
	ErrMetadata = newFormatError("__metadata__ is not an object of strings")
	// ErrEntry: a tensor entry is not an object of exactly dtype, shape and
	// data_offsets, or dtype is not a string.
	ErrEntry = newFormatError("tensor entry is not {dtype, shape, data_offsets}")
	// ErrDType: dtype names no known type.
	ErrDType = newFormatError("unknown dtype")
	// ErrShape: shape is not an array of non-negative integers, or its
	// element or byte count overflows.
	ErrShape = newFormatError("invalid shape")
	// ErrDataOffsets: data_offsets is not an array of two non-negative
	// integers.
	ErrDataOffsets = newFormatError("data_offsets is not two non-negative integers")
	// ErrNotContiguous: the tensors' data do not follow each other from
	// offset 0 without gap or overlap (or an entry ends before it begins).
	ErrNotContiguous = newFormatError("tensor data not contiguous")
	// ErrDataSize: end-begin differs from the element count times the
	// element size.
	ErrDataSize = newFormatError("data size does not match dtype and shape")
	// ErrFileSize: the last tensor does not end at the end of the file.
	ErrFileSize = newFormatError("data does not end at the end of the file")
	// ErrDuplicate: a key appears twice in one JSON object (two tensors of
	// one name, say).
	ErrDuplicate = newFormatError("duplicate key")

	// ErrIndex: an index.json is not an object with a weight_map of tensor
	// name to file name.
	ErrIndex = newFormatError("invalid index")
	// ErrShardName: an index names a shard file outside its own directory.
	ErrShardName = newFormatError("shard file name is not a plain file name")
	// ErrIndexMismatch: the index and the shards disagree about which
	// tensors a shard holds.
	ErrIndexMismatch = newFormatError("index does not match the shards")
)

// Error reports a rule of the format that a file breaks.
type Error struct {
	// File is the file, as given to Open, Parse or OpenIndex.
	File string
	// Tensor is the tensor entry at fault, "" when there is none.
	Tensor string
	// Err is one of the Err* sentinels.
	Err error
	// Detail says what was found; may be empty.
	Detail string
	// Cause is an underlying error (a JSON syntax error, weights.ErrShape,
	// ...), or nil.
	Cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("safetensors: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Tensor != "" {
		b.WriteString("tensor ")
		b.WriteString(quote(e.Tensor))
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// quote quotes a name for an error message, shortening very long ones (a
// hostile header can hold a name of many megabytes).
func quote(s string) string {
	const max = 200
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
