// Package weights holds the in-memory description of a model's weights: data
// types, tensors whose data is read lazily, and the Graph that orders them.
// It knows nothing about files, HTTP or storage; readers in package formats
// build Graphs and writers consume them.
package weights

import (
	"fmt"
)

// DType is the element type of a tensor. The set and the spelling of the names
// follow the safetensors format, which names every type a checkpoint uses.
type DType uint8

// Every safetensors dtype, in roughly increasing element size. (The
// safetensors writer sorts tensors by its own dtype ranking, which differs
// for the 8-bit types; see formats/safetensors.)
const (
	Invalid DType = iota
	Bool
	F8E4M3
	F8E5M2
	U8
	I8
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	F64
	I64
	U64
)

var dtypeInfo = [...]struct {
	name string
	size int
}{
	Invalid: {"INVALID", 0},
	Bool:    {"BOOL", 1},
	F8E4M3:  {"F8_E4M3", 1},
	F8E5M2:  {"F8_E5M2", 1},
	U8:      {"U8", 1},
	I8:      {"I8", 1},
	I16:     {"I16", 2},
	U16:     {"U16", 2},
	F16:     {"F16", 2},
	BF16:    {"BF16", 2},
	I32:     {"I32", 4},
	U32:     {"U32", 4},
	F32:     {"F32", 4},
	F64:     {"F64", 8},
	I64:     {"I64", 8},
	U64:     {"U64", 8},
}

// DTypes lists every valid DType in alignment order.
func DTypes() []DType {
	out := make([]DType, 0, len(dtypeInfo)-1)
	for d := Bool; int(d) < len(dtypeInfo); d++ {
		out = append(out, d)
	}
	return out
}

// ParseDType returns the DType with the given safetensors name ("F32", "BF16",
// "F8_E4M3", ...).
func ParseDType(name string) (DType, error) {
	for d := Bool; int(d) < len(dtypeInfo); d++ {
		if dtypeInfo[d].name == name {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("weights: unknown dtype %q", name)
}

// Valid reports whether d is one of the defined dtypes.
func (d DType) Valid() bool { return d > Invalid && int(d) < len(dtypeInfo) }

// String returns the safetensors name of d.
func (d DType) String() string {
	if int(d) < len(dtypeInfo) {
		return dtypeInfo[d].name
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the number of bytes of one element; 0 for an invalid dtype.
func (d DType) Size() int {
	if int(d) < len(dtypeInfo) {
		return dtypeInfo[d].size
	}
	return 0
}

// IsFloat reports whether d is a floating point type.
func (d DType) IsFloat() bool {
	switch d {
	case F8E4M3, F8E5M2, F16, BF16, F32, F64:
		return true
	}
	return false
}

// MarshalText writes the safetensors name, so DTypes print well in JSON.
func (d DType) MarshalText() ([]byte, error) {
	if !d.Valid() {
		return nil, fmt.Errorf("weights: cannot marshal %v", d)
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses a safetensors name.
func (d *DType) UnmarshalText(b []byte) error {
	v, err := ParseDType(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
