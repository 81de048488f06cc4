package torch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a restricted unpickler: it reads the opcodes of pickle
// protocols 0 to 5 and builds Go values from them. It never imports or calls
// anything: a global is looked up in the allowlist (globals.go) when its
// opcode is read, and REDUCE, NEWOBJ, INST and OBJ call only the Go
// functions the allowlist attaches to allowed globals.
//
// Values on the stack:
//
//	nil          None
//	bool         True, False
//	int64        int that fits
//	*big.Int     int that does not
//	float64      float
//	string       str (and protocol 0-2 byte strings, kept as their bytes)
//	[]byte       bytes, bytearray
//	pyTuple      tuple
//	*pyList      list
//	*pyDict      dict, collections.OrderedDict
//	*pySet       set, frozenset
//	anything the allowlist builds (globals.go)

// pyTuple is a Python tuple.
type pyTuple []any

// pyList is a Python list; a pointer, since APPEND mutates it after it was
// memoized.
type pyList struct{ items []any }

// pySet is a Python set or frozenset. Its items are not deduplicated: no
// checkpoint this package reads depends on set semantics.
type pySet struct{ items []any }

// pyDict is an insertion-ordered Python dict. Keys of scalar types (str,
// int, float, bool, None, bytes) replace an earlier equal key as in Python;
// other keys (tuples, ...) are appended without comparison.
type pyDict struct {
	keys, values []any
	index        map[dictKey]int
}

type dictKey struct {
	kind byte
	s    string
	i    int64
	f    float64
}

func keyOf(k any) (dictKey, bool) {
	switch v := k.(type) {
	case string:
		return dictKey{kind: 's', s: v}, true
	case []byte:
		return dictKey{kind: 'b', s: string(v)}, true
	case int64:
		return dictKey{kind: 'i', i: v}, true
	case bool:
		if v {
			return dictKey{kind: 'i', i: 1}, true
		}
		return dictKey{kind: 'i', i: 0}, true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
			return dictKey{kind: 'i', i: int64(v)}, true
		}
		return dictKey{kind: 'f', f: v}, true
	case *big.Int:
		return dictKey{kind: 'B', s: v.String()}, true
	case nil:
		return dictKey{kind: 'n'}, true
	}
	return dictKey{}, false
}

func newDict() *pyDict { return &pyDict{} }

// dictIndexFrom is the size from which a dict indexes its keys in a map;
// smaller dicts (most of those in checkpoints) are searched linearly.
const dictIndexFrom = 8

func (d *pyDict) find(dk dictKey) (int, bool) {
	if d.index != nil {
		i, ok := d.index[dk]
		return i, ok
	}
	for i, k := range d.keys {
		if kk, ok := keyOf(k); ok && kk == dk {
			return i, true
		}
	}
	return 0, false
}

func (d *pyDict) set(k, v any) {
	dk, hashable := keyOf(k)
	if hashable {
		if i, ok := d.find(dk); ok {
			d.values[i] = v
			return
		}
	}
	d.keys = append(d.keys, k)
	d.values = append(d.values, v)
	switch {
	case d.index != nil && hashable:
		d.index[dk] = len(d.keys) - 1
	case d.index == nil && len(d.keys) == dictIndexFrom:
		d.index = make(map[dictKey]int, 2*dictIndexFrom)
		for i, k := range d.keys {
			if kk, ok := keyOf(k); ok {
				if _, dup := d.index[kk]; !dup {
					d.index[kk] = i
				}
			}
		}
	}
}

func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.find(dictKey{kind: 's', s: k})
	if !ok {
		return nil, false
	}
	return d.values[i], true
}

// Limits that bound the work and memory a pickle can cause beyond its own
// size. Every opcode pushes at most one value and reads at least one byte,
// so the number of values is bounded by the input length; these bound what
// is not.
const (
	// maxMarks bounds nested MARKs (containers being built at once).
	maxMarks = 1024
	// maxLineLength bounds the text arguments of protocol 0 opcodes.
	maxLineLength = 1 << 16
	// maxIntDigits bounds protocol 0 LONG literals and LONG1/LONG4 bytes.
	maxIntBytes = 1 << 12
)

// pickleMagic (0x1950a86a20f9469cfc6c) opens a legacy checkpoint stream.
var pickleMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// unpickler reads one pickle from data[pos:].
type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint64]any

	// file names the pickle in errors ("path:archive/data.pkl").
	file string
	// findGlobal resolves an allowed global or returns an error (a
	// *ForbiddenGlobalError for one outside the allowlist).
	findGlobal func(module, name string) (any, error)
	// persistentLoad resolves BINPERSID/PERSID ids; nil refuses them.
	persistentLoad func(pid any) (any, error)
}

// errPickle builds an ErrPickle error at the current offset.
func (u *unpickler) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d: %s", ErrPickle, u.file, u.pos, fmt.Sprintf(format, args...))
}

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, u.errorf("truncated: %d bytes needed, %d left", n, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

// readLen reads a length and checks it against what is left of the input.
func (u *unpickler) readLen(size int) (int, error) {
	b, err := u.read(size)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(b[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
	case 8:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > uint64(len(u.data)-u.pos) {
		return 0, u.errorf("length %d exceeds the %d bytes left", n, len(u.data)-u.pos)
	}
	return int(n), nil
}

func (u *unpickler) readLine() ([]byte, error) {
	rest := u.data[u.pos:]
	if len(rest) > maxLineLength {
		rest = rest[:maxLineLength]
	}
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return nil, u.errorf("truncated or overlong text argument")
	}
	line := u.data[u.pos : u.pos+i]
	u.pos += i + 1
	return line, nil
}

// base is the stack index below which the current MARK hides the stack.
func (u *unpickler) base() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) <= u.base() {
		return nil, u.errorf("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack[len(u.stack)-1] = nil
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.base() {
		return nil, u.errorf("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the values above the last MARK (a fresh slice) and drops
// them and the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.errorf("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := make([]any, len(u.stack)-m)
	copy(items, u.stack[m:])
	clear(u.stack[m:])
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoPut(i uint64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(i uint64) error {
	v, ok := u.memo[i]
	if !ok {
		return u.errorf("memo entry %d not set", i)
	}
	u.push(v)
	return nil
}

// Opcodes of pickle protocols 0-5 (CPython Lib/pickle.py).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'

	opProto    = 0x80
	opNewObj   = 0x81
	opExt1     = 0x82
	opExt2     = 0x83
	opExt4     = 0x84
	opTuple1   = 0x85
	opTuple2   = 0x86
	opTuple3   = 0x87
	opNewTrue  = 0x88
	opNewFalse = 0x89
	opLong1    = 0x8a
	opLong4    = 0x8b

	opBinBytes      = 'B'
	opShortBinBytes = 'C'

	opShortBinUnicode = 0x8c
	opBinUnicode8     = 0x8d
	opBinBytes8       = 0x8e
	opEmptySet        = 0x8f
	opAddItems        = 0x90
	opFrozenSet       = 0x91
	opNewObjEx        = 0x92
	opStackGlobal     = 0x93
	opMemoize         = 0x94
	opFrame           = 0x95

	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadOnlyBuffer = 0x98
)

// load runs the pickle machine from u.pos to its STOP opcode and returns the
// value it leaves; u.pos is then just past STOP.
func (u *unpickler) load() (any, error) {
	if u.memo == nil {
		u.memo = map[uint64]any{}
	}
	for {
		if u.pos >= len(u.data) {
			return nil, u.errorf("truncated: no STOP opcode")
		}
		op := u.data[u.pos]
		u.pos++
		if op == opStop {
			return u.pop()
		}
		if err := u.step(op); err != nil {
			return nil, err
		}
	}
}

func (u *unpickler) step(op byte) error {
	switch op {
	case opProto:
		b, err := u.read(1)
		if err != nil {
			return err
		}
		if b[0] > 5 {
			return u.errorf("unsupported pickle protocol %d", b[0])
		}
	case opFrame:
		// Frames only group opcodes for buffered reading; the whole input
		// is in memory, so a frame's length is only checked.
		if _, err := u.readLen(8); err != nil {
			return err
		}
	case opMark:
		if len(u.marks) >= maxMarks {
			return u.errorf("more than %d nested MARKs", maxMarks)
		}
		u.marks = append(u.marks, len(u.stack))
	case opPop:
		if len(u.stack) > u.base() {
			_, err := u.pop()
			return err
		}
		if len(u.marks) == 0 {
			return u.errorf("stack underflow")
		}
		_, err := u.popMark()
		return err
	case opPopMark:
		_, err := u.popMark()
		return err
	case opDup:
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)

	case opNone:
		u.push(nil)
	case opNewTrue:
		u.push(true)
	case opNewFalse:
		u.push(false)
	case opBinInt:
		b, err := u.read(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case opBinInt1:
		b, err := u.read(1)
		if err != nil {
			return err
		}
		u.push(int64(b[0]))
	case opBinInt2:
		b, err := u.read(2)
		if err != nil {
			return err
		}
		u.push(int64(binary.LittleEndian.Uint16(b)))
	case opLong1, opLong4:
		var n int
		if op == opLong1 {
			b, err := u.read(1)
			if err != nil {
				return err
			}
			n = int(b[0])
		} else {
			b, err := u.read(4)
			if err != nil {
				return err
			}
			n32 := int32(binary.LittleEndian.Uint32(b))
			if n32 < 0 || n32 > maxIntBytes {
				return u.errorf("LONG4 length %d out of range", n32)
			}
			n = int(n32)
		}
		b, err := u.read(n)
		if err != nil {
			return err
		}
		u.push(decodeLong(b))
	case opInt:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		switch string(line) {
		case "00":
			u.push(false)
		case "01":
			u.push(true)
		default:
			v, err := parseIntLiteral(string(line))
			if err != nil {
				return u.errorf("INT: %v", err)
			}
			u.push(v)
		}
	case opLong:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		s := strings.TrimSuffix(string(line), "L")
		v, err := parseIntLiteral(s)
		if err != nil {
			return u.errorf("LONG: %v", err)
		}
		u.push(v)
	case opFloat:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(string(line)), 64)
		if err != nil {
			return u.errorf("FLOAT %q", line)
		}
		u.push(f)
	case opBinFloat:
		b, err := u.read(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))

	case opShortBinUnicode, opBinUnicode, opBinUnicode8:
		size := lengthSize(op)
		n, err := u.readLen(size)
		if err != nil {
			return err
		}
		b, err := u.read(n)
		if err != nil {
			return err
		}
		u.push(string(b))
	case opShortBinString, opBinString:
		var n int
		var err error
		if op == opShortBinString {
			n, err = u.readLen(1)
		} else {
			b, rerr := u.read(4)
			if rerr != nil {
				return rerr
			}
			n32 := int32(binary.LittleEndian.Uint32(b))
			if n32 < 0 || int(n32) > len(u.data)-u.pos {
				return u.errorf("BINSTRING length %d out of range", n32)
			}
			n = int(n32)
		}
		if err != nil {
			return err
		}
		b, err := u.read(n)
		if err != nil {
			return err
		}
		u.push(string(b))
	case opShortBinBytes, opBinBytes, opBinBytes8, opByteArray8:
		size := lengthSize(op)
		n, err := u.readLen(size)
		if err != nil {
			return err
		}
		b, err := u.read(n)
		if err != nil {
			return err
		}
		u.push(append([]byte(nil), b...))
	case opString:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		s, err := decodeStringRepr(line)
		if err != nil {
			return u.errorf("STRING: %v", err)
		}
		u.push(s)
	case opUnicode:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		s, err := decodeRawUnicodeEscape(line)
		if err != nil {
			return u.errorf("UNICODE: %v", err)
		}
		u.push(s)

	case opEmptyTuple:
		u.push(pyTuple{})
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(u.stack)-u.base() < n {
			return u.errorf("stack underflow")
		}
		t := make(pyTuple, n)
		copy(t, u.stack[len(u.stack)-n:])
		clear(u.stack[len(u.stack)-n:])
		u.stack = u.stack[:len(u.stack)-n]
		u.push(t)
	case opTuple:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(pyTuple(items))
	case opEmptyList:
		u.push(&pyList{})
	case opList:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyList{items: items})
	case opEmptyDict:
		u.push(newDict())
	case opDict:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		d := newDict()
		if err := u.setItems(d, items); err != nil {
			return err
		}
		u.push(d)
	case opEmptySet:
		u.push(&pySet{})
	case opFrozenSet:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pySet{items: items})
	case opAppend:
		v, err := u.pop()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		l, ok := t.(*pyList)
		if !ok {
			return u.errorf("APPEND to %s", typeName(t))
		}
		l.items = append(l.items, v)
	case opAppends:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		l, ok := t.(*pyList)
		if !ok {
			return u.errorf("APPENDS to %s", typeName(t))
		}
		l.items = append(l.items, items...)
	case opAddItems:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		s, ok := t.(*pySet)
		if !ok {
			return u.errorf("ADDITEMS to %s", typeName(t))
		}
		s.items = append(s.items, items...)
	case opSetItem:
		v, err := u.pop()
		if err != nil {
			return err
		}
		k, err := u.pop()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return u.errorf("SETITEM on %s", typeName(t))
		}
		d.set(k, v)
	case opSetItems:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return u.errorf("SETITEMS on %s", typeName(t))
		}
		return u.setItems(d, items)

	case opPut:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		i, err := strconv.ParseUint(string(line), 10, 63)
		if err != nil {
			return u.errorf("PUT index %q", line)
		}
		return u.memoPut(i)
	case opBinPut:
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.memoPut(uint64(b[0]))
	case opLongBinPut:
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.memoPut(uint64(binary.LittleEndian.Uint32(b)))
	case opMemoize:
		return u.memoPut(uint64(len(u.memo)))
	case opGet:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		i, err := strconv.ParseUint(string(line), 10, 63)
		if err != nil {
			return u.errorf("GET index %q", line)
		}
		return u.memoGet(i)
	case opBinGet:
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.memoGet(uint64(b[0]))
	case opLongBinGet:
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.memoGet(uint64(binary.LittleEndian.Uint32(b)))

	case opGlobal:
		module, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		return u.global(string(module), string(name))
	case opStackGlobal:
		name, err := u.pop()
		if err != nil {
			return err
		}
		module, err := u.pop()
		if err != nil {
			return err
		}
		ms, ok1 := module.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return u.errorf("STACK_GLOBAL with %s and %s instead of two strings", typeName(module), typeName(name))
		}
		return u.global(ms, ns)
	case opInst:
		module, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		cls, err := u.resolve(string(module), string(name))
		if err != nil {
			return err
		}
		args, err := u.popMark()
		if err != nil {
			return err
		}
		return u.call(cls, pyTuple(args))
	case opObj:
		args, err := u.popMark()
		if err != nil {
			return err
		}
		if len(args) == 0 {
			return u.errorf("OBJ without a class")
		}
		return u.call(args[0], pyTuple(args[1:]))
	case opReduce:
		args, err := u.pop()
		if err != nil {
			return err
		}
		fn, err := u.pop()
		if err != nil {
			return err
		}
		t, ok := args.(pyTuple)
		if !ok {
			return u.errorf("REDUCE arguments are %s, not a tuple", typeName(args))
		}
		return u.call(fn, t)
	case opNewObj, opNewObjEx:
		var kwargs any
		if op == opNewObjEx {
			var err error
			if kwargs, err = u.pop(); err != nil {
				return err
			}
		}
		args, err := u.pop()
		if err != nil {
			return err
		}
		cls, err := u.pop()
		if err != nil {
			return err
		}
		t, ok := args.(pyTuple)
		if !ok {
			return u.errorf("NEWOBJ arguments are %s, not a tuple", typeName(args))
		}
		if kw, ok := kwargs.(*pyDict); kwargs != nil && (!ok || len(kw.keys) != 0) {
			return u.errorf("NEWOBJ_EX with keyword arguments")
		}
		g, ok := cls.(*callable)
		if !ok || g.newObj == nil {
			return fmt.Errorf("%w: %s: NEWOBJ of %s at byte %d", ErrBadArguments, u.file, describeCallee(cls), u.pos)
		}
		v, err := g.newObj(t)
		if err != nil {
			return locate(fmt.Sprintf("%s: NEWOBJ %s.%s at byte %d", u.file, g.module, g.name, u.pos), err)
		}
		u.push(v)
	case opBuild:
		state, err := u.pop()
		if err != nil {
			return err
		}
		obj, err := u.top()
		if err != nil {
			return err
		}
		return u.build(obj, state)

	case opPersID:
		line, err := u.readLine()
		if err != nil {
			return err
		}
		return u.persistent(string(line))
	case opBinPersID:
		pid, err := u.pop()
		if err != nil {
			return err
		}
		return u.persistent(pid)

	case opExt1, opExt2, opExt4:
		return u.errorf("extension registry codes (EXT1/2/4) are not supported")
	case opNextBuffer, opReadOnlyBuffer:
		return u.errorf("out-of-band buffers are not supported")
	default:
		return u.errorf("unknown opcode 0x%02x", op)
	}
	return nil
}

// lengthSize is the size of the length prefix of a string or bytes opcode.
func lengthSize(op byte) int {
	switch op {
	case opShortBinUnicode, opShortBinBytes:
		return 1
	case opBinUnicode, opBinBytes:
		return 4
	}
	return 8
}

func (u *unpickler) setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return u.errorf("odd number of items (%d) for a dict", len(items))
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

func (u *unpickler) resolve(module, name string) (any, error) {
	if u.findGlobal == nil {
		return nil, &ForbiddenGlobalError{File: u.file, Module: module, Name: name}
	}
	v, err := u.findGlobal(module, name)
	if err != nil {
		if fe, ok := err.(*ForbiddenGlobalError); ok && fe.File == "" {
			fe.File = u.file
		}
		return nil, err
	}
	return v, nil
}

func (u *unpickler) global(module, name string) error {
	v, err := u.resolve(module, name)
	if err != nil {
		return err
	}
	u.push(v)
	return nil
}

func (u *unpickler) call(fn any, args pyTuple) error {
	g, ok := fn.(*callable)
	if !ok || g.call == nil {
		return fmt.Errorf("%w: %s: call of %s at byte %d", ErrBadArguments, u.file, describeCallee(fn), u.pos)
	}
	v, err := g.call(args)
	if err != nil {
		return locate(fmt.Sprintf("%s: %s.%s at byte %d", u.file, g.module, g.name, u.pos), err)
	}
	u.push(v)
	return nil
}

func (u *unpickler) persistent(pid any) error {
	if u.persistentLoad == nil {
		return u.errorf("persistent id in a pickle that may not have one")
	}
	v, err := u.persistentLoad(pid)
	if err != nil {
		return err
	}
	u.push(v)
	return nil
}

// build applies BUILD. The only objects real checkpoints BUILD are
// OrderedDicts (state {'_metadata': ...}), whose state carries no weights and
// is dropped; a dict state on a dict is otherwise refused.
func (u *unpickler) build(obj, state any) error {
	if _, ok := obj.(*pyDict); !ok {
		return fmt.Errorf("%w: %s: BUILD on %s at byte %d", ErrBadArguments, u.file, typeName(obj), u.pos)
	}
	switch s := state.(type) {
	case nil, *pyDict:
		return nil
	case pyTuple:
		if len(s) == 2 {
			_, ok0 := s[0].(*pyDict)
			_, ok1 := s[1].(*pyDict)
			if (ok0 || s[0] == nil) && (ok1 || s[1] == nil) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s: BUILD of a dict with %s state at byte %d", ErrBadArguments, u.file, typeName(state), u.pos)
}

// decodeLong decodes a little-endian two's complement integer.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return int64(v<<shift) >> shift
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return normInt(v)
}

// normInt returns v as int64 when it fits.
func normInt(v *big.Int) any {
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

func parseIntLiteral(s string) (any, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxIntBytes {
		return nil, fmt.Errorf("integer literal of %d characters", len(s))
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	v, ok := new(big.Int).SetString(s, 0)
	if !ok {
		return nil, fmt.Errorf("bad integer literal %q", s)
	}
	return normInt(v), nil
}

// decodeStringRepr decodes the quoted Python 2 str repr of the STRING
// opcode (codecs.escape_decode semantics).
func decodeStringRepr(line []byte) (string, error) {
	if len(line) < 2 || line[0] != line[len(line)-1] || (line[0] != '\'' && line[0] != '"') {
		return "", fmt.Errorf("the STRING opcode argument must be quoted")
	}
	s := line[1 : len(line)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return "", fmt.Errorf("trailing backslash")
		}
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, c)
		case 'a':
			out = append(out, 7)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, 11)
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf("truncated \\x escape")
			}
			v, err := strconv.ParseUint(string(s[i+1:i+3]), 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad \\x escape")
			}
			out = append(out, byte(v))
			i += 2
		default:
			if c >= '0' && c <= '7' {
				v := int(c - '0')
				for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
					i++
					v = v*8 + int(s[i]-'0')
				}
				out = append(out, byte(v))
			} else {
				out = append(out, '\\', c)
			}
		}
	}
	return string(out), nil
}

// decodeRawUnicodeEscape decodes the raw-unicode-escape text of the UNICODE
// opcode: \uXXXX and \UXXXXXXXX escapes, other bytes as Latin-1.
func decodeRawUnicodeEscape(b []byte) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) && (b[i+1] == 'u' || b[i+1] == 'U') {
			n := 4
			if b[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(b) {
				return "", fmt.Errorf("truncated \\%c escape", b[i+1])
			}
			v, err := strconv.ParseUint(string(b[i+2:i+2+n]), 16, 32)
			if err != nil || v > utf8.MaxRune {
				return "", fmt.Errorf("bad \\%c escape", b[i+1])
			}
			sb.WriteRune(rune(v))
			i += 1 + n
			continue
		}
		sb.WriteRune(rune(b[i]))
	}
	return sb.String(), nil
}

// typeName names the Python type of a value for error messages, without
// formatting the value (which may be huge or cyclic).
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case pyTuple:
		return fmt.Sprintf("tuple of %d", len(v))
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case *pySet:
		return "set"
	case *callable:
		return v.module + "." + v.name
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprintf("%T", v)
}

func describeCallee(v any) string {
	if c, ok := v.(*callable); ok {
		return c.module + "." + c.name
	}
	return typeName(v)
}
