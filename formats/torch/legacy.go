package torch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/hubmirror/hubmirror/weights"
)

// legacyProtocolVersion is torch/serialization.py's PROTOCOL_VERSION.
const legacyProtocolVersion = 1001

// legacyCheckpoint reads the format torch < 1.6 wrote (and later versions
// with _use_new_zipfile_serialization=False): five pickles in a row, then
// the storages.
//
//	pickle  magic number 0x1950a86a20f9469cfc6c
//	pickle  protocol version 1001
//	pickle  sys_info {'protocol_version', 'little_endian', 'type_sizes'}
//	pickle  the object; storages are persistent ids
//	        ('storage', storage_type, root_key, location, numel, view_metadata)
//	        view_metadata is None or (view_key, offset, view_numel)
//	pickle  the list of root keys, in the order of the blocks below
//	per key int64 little-endian element count, then count*element_size bytes
//
// Storage data is little-endian whatever the writer's byte order (torch's
// writeFileRaw converts); very old big-endian writers stored the count in
// native order, so a count that does not match is tried byte-swapped when
// sys_info says the writer was big-endian.
type legacyCheckpoint struct {
	file  string
	data  []byte
	pos   int
	roots map[string]*storageRef
	views map[string]*storageRef
	order []*rootStorage
}

func parseLegacy(data []byte, file string) (*pickled, error) {
	l := &legacyCheckpoint{file: file, data: data, roots: map[string]*storageRef{}, views: map[string]*storageRef{}}
	var rec globalRecorder
	next := func(what string, persistent func(any) (any, error)) (any, int, error) {
		u := &unpickler{data: data, pos: l.pos, file: file + " (" + what + ")", findGlobal: rec.find, persistentLoad: persistent}
		start := l.pos
		v, err := u.load()
		l.pos = u.pos
		return v, l.pos - start, err
	}

	magic, _, err := next("magic number", nil)
	if err != nil {
		if len(data) > 0 && data[0] != opProto && !errors.Is(err, ErrForbiddenGlobal) {
			return nil, fmt.Errorf("%w: %s is neither a zip archive nor a pickle stream", ErrFormat, file)
		}
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(pickleMagic) != 0 {
		return nil, fmt.Errorf("%w: %s: a pickle, but not a torch checkpoint (no magic number)", ErrFormat, file)
	}
	version, _, err := next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if v, ok := version.(int64); !ok || v != legacyProtocolVersion {
		return nil, fmt.Errorf("%w: %s: legacy protocol version is %s, want %d", ErrFormat, file, typeName(version), legacyProtocolVersion)
	}
	sysInfo, _, err := next("sys_info", nil)
	if err != nil {
		return nil, err
	}
	info, ok := sysInfo.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("%w: %s: sys_info is %s, not a dict", ErrFormat, file, typeName(sysInfo))
	}
	writerLittle := true
	if v, ok := info.get("little_endian"); ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, fmt.Errorf("%w: %s: sys_info little_endian is %s", ErrFormat, file, typeName(v))
		}
		writerLittle = b
	}
	result, size, err := next("object", l.persistentLoad)
	if err != nil {
		return nil, err
	}
	keys, _, err := next("storage keys", nil)
	if err != nil {
		return nil, err
	}
	keyList, ok := keys.(*pyList)
	if !ok {
		return nil, fmt.Errorf("%w: %s: storage key list is %s", ErrFormat, file, typeName(keys))
	}
	for i, k := range keyList.items {
		key := asString(k)
		ref, ok := l.roots[key]
		if !ok {
			return nil, fmt.Errorf("%w: %s: storage key %d (%s) is not used by the pickle", ErrStorage, file, i, typeName(k))
		}
		if err := l.readBlock(ref.root, writerLittle); err != nil {
			return nil, err
		}
	}
	for _, r := range l.order {
		if !r.written {
			return nil, fmt.Errorf("%w: %s: storage %q has no data block", ErrStorage, file, r.key)
		}
	}
	return &pickled{result: result, globals: rec.names, size: size}, nil
}

// readBlock binds a root storage to its block: an 8-byte element count that
// must equal the pickle's, then the data, which must lie inside the file.
func (l *legacyCheckpoint) readBlock(r *rootStorage, writerLittle bool) error {
	if r.written {
		return fmt.Errorf("%w: %s: storage %q listed twice", ErrStorage, l.file, r.key)
	}
	if len(l.data)-l.pos < 8 {
		return fmt.Errorf("%w: %s: truncated before the size of storage %q", ErrStorage, l.file, r.key)
	}
	raw := l.data[l.pos : l.pos+8]
	count := binary.LittleEndian.Uint64(raw)
	if count != uint64(r.numel) && !writerLittle {
		count = binary.BigEndian.Uint64(raw)
	}
	if count != uint64(r.numel) {
		return fmt.Errorf("%w: %s: storage %q block says %d elements, the pickle %d", ErrStorage, l.file, r.key, count, r.numel)
	}
	l.pos += 8
	if r.nbytes > int64(len(l.data)-l.pos) {
		return fmt.Errorf("%w: %s: storage %q needs %d bytes, %d left in the file", ErrStorage, l.file, r.key, r.nbytes, len(l.data)-l.pos)
	}
	end := l.pos + int(r.nbytes)
	r.data = l.data[l.pos:end:end]
	r.written = true
	l.pos = end
	return nil
}

// persistentLoad resolves a legacy storage id. The claimed size is checked
// against what is left of the file; the block itself comes later.
func (l *legacyCheckpoint) persistentLoad(pid any) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) == 0 {
		return nil, fmt.Errorf("%w: %s: persistent id is %s", ErrBadArguments, l.file, typeName(pid))
	}
	switch asString(t[0]) {
	case "storage":
	case "module":
		return nil, fmt.Errorf("%w: %s pickles a whole nn.Module, not a state dict", ErrUnsupported, l.file)
	default:
		return nil, fmt.Errorf("%w: %s: persistent id of type %s", ErrBadArguments, l.file, typeName(t[0]))
	}
	if len(t) != 6 {
		return nil, fmt.Errorf("%w: %s: storage persistent id has %d fields, want 6", ErrBadArguments, l.file, len(t))
	}
	st, key, numel, err := storageArgs(t)
	if err != nil {
		return nil, locate(l.file, err)
	}
	nbytes, err := weights.ByteSize(st.dtype, []int64{numel})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: storage %q: %v", ErrStorage, l.file, key, err)
	}
	ref, ok := l.roots[key]
	if ok {
		if ref.dtype != st.dtype || ref.root.numel != numel {
			return nil, fmt.Errorf("%w: %s: storage %q used as %d x %v and as %d x %v", ErrStorage, l.file, key, ref.root.numel, ref.dtype, numel, st.dtype)
		}
	} else {
		// The block follows the pickles, so it must fit in what is left.
		if nbytes > int64(len(l.data)) {
			return nil, fmt.Errorf("%w: %s: storage %q claims %d x %v (%d bytes) in a file of %d bytes", ErrStorage, l.file, key, numel, st.dtype, nbytes, len(l.data))
		}
		root := &rootStorage{key: key, id: l.file + "#" + key, dtype: st.dtype, numel: numel, nbytes: nbytes, fileSize: int64(len(l.data))}
		ref = &storageRef{root: root, dtype: st.dtype, nbytes: nbytes}
		l.roots[key] = ref
		l.order = append(l.order, root)
	}
	view := t[5]
	if view == nil {
		return ref, nil
	}
	vt, ok := view.(pyTuple)
	if !ok || len(vt) != 3 {
		return nil, fmt.Errorf("%w: %s: storage %q view metadata is %s", ErrBadArguments, l.file, key, typeName(view))
	}
	viewKey := asString(vt[0])
	off, ok1 := vt[1].(int64)
	n, ok2 := vt[2].(int64)
	if viewKey == "" || !ok1 || !ok2 || off < 0 || n < 0 {
		return nil, fmt.Errorf("%w: %s: storage %q view metadata is not (key, offset, size)", ErrBadArguments, l.file, key)
	}
	es := int64(st.dtype.Size())
	if off > ref.root.numel || n > ref.root.numel-off {
		return nil, fmt.Errorf("%w: %s: view %q of storage %q (offset %d, %d elements) reaches past its %d elements", ErrStorage, l.file, viewKey, key, off, n, ref.root.numel)
	}
	if v, ok := l.views[viewKey]; ok {
		if v.root != ref.root || v.byteOffset != off*es || v.nbytes != n*es {
			return nil, fmt.Errorf("%w: %s: view %q defined twice differently", ErrStorage, l.file, viewKey)
		}
		return v, nil
	}
	v := &storageRef{root: ref.root, dtype: st.dtype, byteOffset: off * es, nbytes: n * es}
	l.views[viewKey] = v
	return v, nil
}
