package torch

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/weights"
)

// The allowlist: every global a checkpoint pickle may name, and what the
// unpickler builds for it. A global missing here is refused with a
// *ForbiddenGlobalError when its opcode is read. Nothing here imports or
// executes Python: each entry is a Go value or a Go function over Go values.
//
// Deliberately absent: torch.storage._load_from_bytes (calls torch.load on
// embedded bytes), torch._utils._rebuild_qtensor / _rebuild_sparse_tensor
// and friends (not weights of the kind this package reads), numpy
// reconstructors, copyreg, every builtin but the pure-data set, frozenset and
// bytes(), and every module class.

// callable is an allowed global that REDUCE (call) or NEWOBJ (newObj) may
// apply; a nil function refuses that use.
type callable struct {
	module, name string
	call         func(args pyTuple) (any, error)
	newObj       func(args pyTuple) (any, error)
	// rebuildsTensor marks the functions _rebuild_from_type_v2 may wrap.
	rebuildsTensor bool
}

func (c *callable) String() string { return c.module + "." + c.name }

// dtypeValue is a torch dtype global (torch.float16, ...).
type dtypeValue struct {
	name  string
	dtype weights.DType
}

func (d dtypeValue) String() string { return "torch." + d.name }

// storageType is a torch storage class global (torch.HalfStorage, ...).
// dtype is Invalid for storage types this package cannot represent.
type storageType struct {
	name  string
	dtype weights.DType
}

func (s storageType) String() string { return "torch." + s.name }

// tensorClass is torch.Tensor or torch.nn.Parameter, as the type argument of
// torch._tensor._rebuild_from_type_v2.
type tensorClass struct{ name string }

func (t tensorClass) String() string { return t.name }

// deviceValue is a torch.device.
type deviceValue struct{ name string }

func (d deviceValue) String() string { return "torch.device" }

// torchDTypes maps the torch dtype names (and aliases) to weights dtypes.
var torchDTypes = map[string]weights.DType{
	"float32": weights.F32, "float": weights.F32,
	"float64": weights.F64, "double": weights.F64,
	"float16": weights.F16, "half": weights.F16,
	"bfloat16": weights.BF16,
	"int64":    weights.I64, "long": weights.I64,
	"int32": weights.I32, "int": weights.I32,
	"int16": weights.I16, "short": weights.I16,
	"int8":   weights.I8,
	"uint8":  weights.U8,
	"bool":   weights.Bool,
	"uint16": weights.U16, "uint32": weights.U32, "uint64": weights.U64,
	"float8_e4m3fn": weights.F8E4M3, "float8_e5m2": weights.F8E5M2,
	// Valid torch dtypes without a weights counterpart: allowed names,
	// refused when a tensor uses them.
	"complex64": weights.Invalid, "complex128": weights.Invalid, "cfloat": weights.Invalid, "cdouble": weights.Invalid,
	"complex32": weights.Invalid, "chalf": weights.Invalid,
	"qint8": weights.Invalid, "quint8": weights.Invalid, "qint32": weights.Invalid, "quint4x2": weights.Invalid,
}

// storageTypes maps torch storage class names to their element dtypes. They
// are accepted in modules torch, torch.cuda (checkpoints saved from a GPU;
// the location is ignored) and torch.storage (where UntypedStorage lives).
var storageTypes = map[string]weights.DType{
	"FloatStorage":    weights.F32,
	"DoubleStorage":   weights.F64,
	"HalfStorage":     weights.F16,
	"BFloat16Storage": weights.BF16,
	"LongStorage":     weights.I64,
	"IntStorage":      weights.I32,
	"ShortStorage":    weights.I16,
	"CharStorage":     weights.I8,
	"ByteStorage":     weights.U8,
	"BoolStorage":     weights.Bool,
	// Untyped storage holds bytes; _rebuild_tensor_v3 names the dtype.
	"UntypedStorage": weights.U8,
	// Real torch storage types this package cannot represent.
	"ComplexFloatStorage":  weights.Invalid,
	"ComplexDoubleStorage": weights.Invalid,
	"QInt8Storage":         weights.Invalid,
	"QUInt8Storage":        weights.Invalid,
	"QInt32Storage":        weights.Invalid,
	"QUInt4x2Storage":      weights.Invalid,
	"QUInt2x4Storage":      weights.Invalid,
}

var callables = func() map[string]*callable {
	list := []*callable{
		{module: "collections", name: "OrderedDict", call: newOrderedDict, newObj: newOrderedDict},
		{module: "torch._utils", name: "_rebuild_tensor", call: rebuildTensorV1, rebuildsTensor: true},
		{module: "torch._utils", name: "_rebuild_tensor_v2", call: rebuildTensorV2, rebuildsTensor: true},
		{module: "torch._utils", name: "_rebuild_tensor_v3", call: rebuildTensorV3, rebuildsTensor: true},
		{module: "torch._utils", name: "_rebuild_parameter", call: rebuildParameter, rebuildsTensor: true},
		{module: "torch._utils", name: "_rebuild_parameter_with_state", call: rebuildParameterWithState, rebuildsTensor: true},
		{module: "torch._tensor", name: "_rebuild_from_type_v2", call: rebuildFromTypeV2},
		{module: "torch", name: "Size", call: newSize},
		{module: "torch", name: "device", call: newDevice},
		{module: "_codecs", name: "encode", call: codecsEncode},
		// How protocols < 4 spell a set; pure data.
		{module: "builtins", name: "set", call: newSet},
		{module: "builtins", name: "frozenset", call: newSet},
		{module: "__builtin__", name: "set", call: newSet},
		{module: "__builtin__", name: "frozenset", call: newSet},
		// How protocols < 3 spell b"": bytes() with no argument only
		// (bytes(n) would allocate n bytes).
		{module: "builtins", name: "bytes", call: emptyBytes},
		{module: "__builtin__", name: "bytes", call: emptyBytes},
	}
	m := map[string]*callable{}
	for _, c := range list {
		m[c.module+"."+c.name] = c
	}
	return m
}()

var tensorClasses = map[string]bool{
	"torch.Tensor":                 true,
	"torch._tensor.Tensor":         true,
	"torch.nn.parameter.Parameter": true,
}

// moduleAliases are the renames torch.load applies before looking a global
// up (torch/serialization.py load_module_mapping).
var moduleAliases = map[string]string{"torch.tensor": "torch._tensor"}

// lookupGlobal resolves an allowed global to its value. The error for any
// other global is a *ForbiddenGlobalError (File filled in by the caller).
func lookupGlobal(module, name string) (any, error) {
	full := module + "." + name
	if alias, ok := moduleAliases[module]; ok {
		full = alias + "." + name
	}
	if c, ok := callables[full]; ok {
		return c, nil
	}
	if tensorClasses[full] {
		return tensorClass{name: full}, nil
	}
	if module == "torch" {
		if d, ok := torchDTypes[name]; ok {
			return dtypeValue{name: name, dtype: d}, nil
		}
	}
	if module == "torch" || module == "torch.cuda" || module == "torch.storage" {
		if d, ok := storageTypes[name]; ok {
			return storageType{name: name, dtype: d}, nil
		}
	}
	return nil, &ForbiddenGlobalError{Module: module, Name: name}
}

// AllowedGlobals lists every global the unpickler accepts, as module.name,
// sorted. It documents the allowlist; the reader consults it internally.
func AllowedGlobals() []string {
	var out []string
	for k := range callables {
		out = append(out, k)
	}
	for k := range tensorClasses {
		out = append(out, k)
	}
	for k := range torchDTypes {
		out = append(out, "torch."+k)
	}
	for k := range storageTypes {
		out = append(out, "torch."+k, "torch.cuda."+k, "torch.storage."+k)
	}
	sort.Strings(out)
	return out
}

func badArgs(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadArguments, fmt.Sprintf(format, args...))
}

func newOrderedDict(args pyTuple) (any, error) {
	d := newDict()
	if len(args) == 0 {
		return d, nil
	}
	if len(args) != 1 {
		return nil, badArgs("OrderedDict takes at most 1 argument, got %d", len(args))
	}
	var items []any
	switch v := args[0].(type) {
	case *pyDict:
		for i := range v.keys {
			d.set(v.keys[i], v.values[i])
		}
		return d, nil
	case *pyList:
		items = v.items
	case pyTuple:
		items = v
	default:
		return nil, badArgs("OrderedDict of %s", typeName(args[0]))
	}
	for _, it := range items {
		var pair []any
		switch p := it.(type) {
		case pyTuple:
			pair = p
		case *pyList:
			pair = p.items
		}
		if len(pair) != 2 {
			return nil, badArgs("OrderedDict item is %s, not a pair", typeName(it))
		}
		d.set(pair[0], pair[1])
	}
	return d, nil
}

func newSize(args pyTuple) (any, error) {
	if len(args) != 1 {
		return nil, badArgs("torch.Size takes 1 argument, got %d", len(args))
	}
	dims, err := intList(args[0], "torch.Size")
	if err != nil {
		return nil, err
	}
	out := make(pyTuple, len(dims))
	for i, d := range dims {
		out[i] = d
	}
	return out, nil
}

func newDevice(args pyTuple) (any, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, badArgs("torch.device takes 1 or 2 arguments, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, badArgs("torch.device of %s", typeName(args[0]))
	}
	if len(args) == 2 {
		if _, ok := args[1].(int64); !ok && args[1] != nil {
			return nil, badArgs("torch.device index is %s", typeName(args[1]))
		}
	}
	return deviceValue{name: s}, nil
}

func emptyBytes(args pyTuple) (any, error) {
	if len(args) != 0 {
		return nil, badArgs("bytes takes no arguments here, got %d", len(args))
	}
	return []byte{}, nil
}

// newSet is set(iterable) / frozenset(iterable).
func newSet(args pyTuple) (any, error) {
	if len(args) == 0 {
		return &pySet{}, nil
	}
	if len(args) != 1 {
		return nil, badArgs("set takes at most 1 argument, got %d", len(args))
	}
	switch v := args[0].(type) {
	case *pyList:
		return &pySet{items: append([]any(nil), v.items...)}, nil
	case pyTuple:
		return &pySet{items: append([]any(nil), v...)}, nil
	case *pySet:
		return &pySet{items: append([]any(nil), v.items...)}, nil
	}
	return nil, badArgs("set of %s", typeName(args[0]))
}

// codecsEncode is _codecs.encode(str, 'latin1'): how protocol 2 pickles
// written by Python 3 spell a bytes object.
func codecsEncode(args pyTuple) (any, error) {
	if len(args) != 2 {
		return nil, badArgs("_codecs.encode takes 2 arguments here, got %d", len(args))
	}
	s, ok1 := args[0].(string)
	enc, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, badArgs("_codecs.encode of %s, %s", typeName(args[0]), typeName(args[1]))
	}
	if e := strings.ToLower(enc); e != "latin1" && e != "latin-1" && e != "iso-8859-1" {
		return nil, badArgs("_codecs.encode with encoding %q (only latin1 is allowed)", enc)
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, badArgs("_codecs.encode: %U is not Latin-1", r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// intList converts a tuple, list or torch.Size of non-negative ints.
func intList(v any, what string) ([]int64, error) {
	var items []any
	switch t := v.(type) {
	case pyTuple:
		items = t
	case *pyList:
		items = t.items
	default:
		return nil, badArgs("%s is %s, not a tuple of ints", what, typeName(v))
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, ok := it.(int64)
		if !ok {
			return nil, badArgs("%s[%d] is %s, not an int", what, i, typeName(it))
		}
		if n < 0 {
			return nil, badArgs("%s[%d] is negative (%d)", what, i, n)
		}
		out[i] = n
	}
	return out, nil
}

func isDictOrNone(v any) bool {
	_, ok := v.(*pyDict)
	return ok || v == nil
}

func rebuildTensorV1(args pyTuple) (any, error) {
	if len(args) != 4 {
		return nil, badArgs("_rebuild_tensor takes 4 arguments, got %d", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, badArgs("storage argument is %s", typeName(args[0]))
	}
	return newTensorRef(st, st.dtype, args[1], args[2], args[3])
}

// rebuildTensorV2 is _rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensorV2(args pyTuple) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, badArgs("_rebuild_tensor_v2 takes 6 or 7 arguments, got %d", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, badArgs("storage argument is %s", typeName(args[0]))
	}
	if err := checkGradArgs(args[4], args[5]); err != nil {
		return nil, err
	}
	if len(args) == 7 && !isDictOrNone(args[6]) {
		return nil, badArgs("metadata argument is %s", typeName(args[6]))
	}
	return newTensorRef(st, st.dtype, args[1], args[2], args[3])
}

// rebuildTensorV3 is _rebuild_tensor_v3(storage, storage_offset, size,
// stride, requires_grad, backward_hooks, dtype[, metadata]), which newer
// torch writes for dtypes without a storage type; the storage is then
// untyped (bytes) and offsets count elements of dtype.
func rebuildTensorV3(args pyTuple) (any, error) {
	if len(args) != 7 && len(args) != 8 {
		return nil, badArgs("_rebuild_tensor_v3 takes 7 or 8 arguments, got %d", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, badArgs("storage argument is %s", typeName(args[0]))
	}
	if err := checkGradArgs(args[4], args[5]); err != nil {
		return nil, err
	}
	dt, ok := args[6].(dtypeValue)
	if !ok {
		return nil, badArgs("dtype argument is %s", typeName(args[6]))
	}
	if !dt.dtype.Valid() {
		return nil, fmt.Errorf("%w: dtype torch.%s", ErrUnsupported, dt.name)
	}
	if len(args) == 8 && !isDictOrNone(args[7]) {
		return nil, badArgs("metadata argument is %s", typeName(args[7]))
	}
	return newTensorRef(st, dt.dtype, args[1], args[2], args[3])
}

func checkGradArgs(requiresGrad, hooks any) error {
	if _, ok := requiresGrad.(bool); !ok {
		return badArgs("requires_grad argument is %s", typeName(requiresGrad))
	}
	if !isDictOrNone(hooks) {
		return badArgs("backward_hooks argument is %s", typeName(hooks))
	}
	return nil
}

func rebuildParameter(args pyTuple) (any, error) {
	if len(args) != 3 {
		return nil, badArgs("_rebuild_parameter takes 3 arguments, got %d", len(args))
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, badArgs("data argument is %s", typeName(args[0]))
	}
	if err := checkGradArgs(args[1], args[2]); err != nil {
		return nil, err
	}
	return t, nil
}

func rebuildParameterWithState(args pyTuple) (any, error) {
	if len(args) != 4 {
		return nil, badArgs("_rebuild_parameter_with_state takes 4 arguments, got %d", len(args))
	}
	if !isDictOrNone(args[3]) {
		return nil, badArgs("state argument is %s", typeName(args[3]))
	}
	return rebuildParameter(args[:3])
}

// rebuildFromTypeV2 is torch._tensor._rebuild_from_type_v2(func, new_type,
// args, state), written for tensors that carry Python attributes: func must
// be a tensor rebuild function and new_type torch.Tensor or Parameter; the
// attributes (state) are dropped.
func rebuildFromTypeV2(args pyTuple) (any, error) {
	if len(args) != 4 {
		return nil, badArgs("_rebuild_from_type_v2 takes 4 arguments, got %d", len(args))
	}
	fn, ok := args[0].(*callable)
	if !ok || !fn.rebuildsTensor {
		return nil, badArgs("func argument is %s, not a tensor rebuild function", describeCallee(args[0]))
	}
	if _, ok := args[1].(tensorClass); !ok {
		return nil, badArgs("new_type argument is %s, not a tensor class", typeName(args[1]))
	}
	inner, ok := args[2].(pyTuple)
	if !ok {
		return nil, badArgs("args argument is %s, not a tuple", typeName(args[2]))
	}
	if !isDictOrNone(args[3]) {
		if t, ok := args[3].(pyTuple); !ok || len(t) != 2 || !isDictOrNone(t[0]) || !isDictOrNone(t[1]) {
			return nil, badArgs("state argument is %s", typeName(args[3]))
		}
	}
	return fn.call(inner)
}

// tensorRef is a rebuilt tensor: a strided view of a storage. Offsets and
// strides count elements of dtype.
type tensorRef struct {
	st     *storageRef
	dtype  weights.DType
	offset int64
	shape  []int64
	stride []int64
	numel  int64
}

func (t *tensorRef) String() string { return "torch.Tensor" }

// newTensorRef validates a view against its storage: shape and stride
// agree, nothing overflows, and every element the view can address lies
// inside the storage.
func newTensorRef(st *storageRef, dtype weights.DType, offset, size, stride any) (*tensorRef, error) {
	if !dtype.Valid() {
		return nil, fmt.Errorf("%w: tensor of an unsupported dtype", ErrUnsupported)
	}
	off, ok := offset.(int64)
	if !ok || off < 0 {
		return nil, badArgs("storage_offset is %s, not a non-negative int", typeName(offset))
	}
	shape, err := intList(size, "size")
	if err != nil {
		return nil, err
	}
	strides, err := intList(stride, "stride")
	if err != nil {
		return nil, err
	}
	if len(shape) != len(strides) {
		return nil, badArgs("size has %d dimensions, stride %d", len(shape), len(strides))
	}
	numel, err := weights.NumElements(shape)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	es := uint64(dtype.Size())
	// last is the index of the last element the view addresses (or, for an
	// empty view, its offset).
	last := uint64(off)
	if numel > 0 {
		for i, n := range shape {
			hi, lo := bits.Mul64(uint64(n-1), uint64(strides[i]))
			var carry uint64
			last, carry = bits.Add64(last, lo, 0)
			if hi != 0 || carry != 0 || last > 1<<62 {
				return nil, fmt.Errorf("%w: size %v with stride %v overflows", ErrStorage, shape, strides)
			}
		}
		last++ // one past the last element
	}
	hi, end := bits.Mul64(last, es)
	if hi != 0 || end > uint64(st.nbytes) {
		return nil, fmt.Errorf("%w: tensor of size %v, stride %v, offset %d (%v) reaches past storage %q of %d bytes",
			ErrStorage, shape, strides, off, dtype, st.root.key, st.nbytes)
	}
	// Overlapping strides (expand) can address few bytes many times; the
	// gathered copy must still fit in what the file could hold.
	if size, err := weights.ByteSize(dtype, shape); err != nil || size > st.root.fileSize {
		return nil, fmt.Errorf("%w: tensor of size %v (%v) would materialize to more bytes than the %d-byte file holds", ErrStorage, shape, dtype, st.root.fileSize)
	}
	return &tensorRef{st: st, dtype: dtype, offset: off, shape: shape, stride: strides, numel: numel}, nil
}

// globalRecorder resolves globals through the allowlist and records the
// allowed ones, in first-seen order.
type globalRecorder struct {
	names []string
	seen  map[string]bool
}

func (r *globalRecorder) find(module, name string) (any, error) {
	v, err := lookupGlobal(module, name)
	if err != nil {
		return nil, err
	}
	full := module + "." + name
	if !r.seen[full] {
		if r.seen == nil {
			r.seen = map[string]bool{}
		}
		r.seen[full] = true
		r.names = append(r.names, full)
	}
	return v, nil
}
