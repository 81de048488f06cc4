package torch

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/hubmirror/hubmirror/weights"
)

const (
	// maxPickleRecord bounds data.pkl when it has to be decompressed.
	maxPickleRecord = 1 << 30
	// maxDeflateRatio is the largest expansion deflate can achieve
	// (258-byte matches coded in about 2 bits); a compressed record that
	// claims more is lying.
	maxDeflateRatio = 1032
)

// zipCheckpoint reads the torch >= 1.6 format: a zip archive whose entries
// live under one top folder (any name): data.pkl, data/<key> per storage,
// byteorder, version.
type zipCheckpoint struct {
	file      string
	data      []byte
	prefix    string
	entries   map[string]*zip.File
	bigEndian bool
	roots     map[string]*storageRef
}

func parseZip(data []byte, file string) (*pickled, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// Insecure names do not matter: nothing is extracted to disk.
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, file, err)
	}
	z := &zipCheckpoint{file: file, data: data, entries: map[string]*zip.File{}, roots: map[string]*storageRef{}}
	for _, f := range zr.File {
		if strings.Count(f.Name, "/") == 1 && strings.HasSuffix(f.Name, "/data.pkl") {
			p := strings.TrimSuffix(f.Name, "data.pkl")
			if z.prefix != "" && z.prefix != p {
				return nil, fmt.Errorf("%w: %s: two checkpoints in one archive (%sdata.pkl and %sdata.pkl)", ErrFormat, file, z.prefix, p)
			}
			z.prefix = p
		}
	}
	if z.prefix == "" {
		return nil, fmt.Errorf("%w: %s: zip archive without <folder>/data.pkl", ErrFormat, file)
	}
	for _, f := range zr.File {
		rel, ok := strings.CutPrefix(f.Name, z.prefix)
		if !ok {
			continue
		}
		if _, dup := z.entries[rel]; dup {
			return nil, fmt.Errorf("%w: %s: archive holds %s twice", ErrFormat, file, f.Name)
		}
		z.entries[rel] = f
	}
	if _, ok := z.entries["constants.pkl"]; ok {
		return nil, fmt.Errorf("%w: %s is a TorchScript archive (torch.jit.save), not a state dict", ErrUnsupported, file)
	}
	if f, ok := z.entries["byteorder"]; ok {
		b, err := z.record(f, 64)
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			z.bigEndian = true
		default:
			return nil, fmt.Errorf("%w: %s: byteorder record is %q", ErrFormat, file, b)
		}
	}
	pkl, err := z.record(z.entries["data.pkl"], maxPickleRecord)
	if err != nil {
		return nil, err
	}
	var rec globalRecorder
	u := &unpickler{
		data:           pkl,
		file:           file + ":" + z.prefix + "data.pkl",
		findGlobal:     rec.find,
		persistentLoad: z.persistentLoad,
	}
	result, err := u.load()
	if err != nil {
		return nil, err
	}
	return &pickled{result: result, globals: rec.names, size: len(pkl)}, nil
}

// record returns a small record's bytes (a view for stored entries,
// otherwise decompressed), at most max bytes, with its CRC checked.
func (z *zipCheckpoint) record(f *zip.File, max int64) ([]byte, error) {
	name := f.Name
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("%w: %s: record %s claims %d bytes (limit %d)", ErrFormat, z.file, name, f.UncompressedSize64, max)
	}
	if f.Method == zip.Store {
		b, err := z.stored(f)
		if err != nil {
			return nil, err
		}
		if crc32.ChecksumIEEE(b) != f.CRC32 {
			return nil, fmt.Errorf("%w: %s: record %s fails its CRC", ErrFormat, z.file, name)
		}
		return b, nil
	}
	if f.Method != zip.Deflate {
		return nil, fmt.Errorf("%w: %s: record %s uses compression method %d", ErrUnsupported, z.file, name, f.Method)
	}
	if f.UncompressedSize64 > f.CompressedSize64*maxDeflateRatio+64 {
		return nil, fmt.Errorf("%w: %s: record %s claims %d bytes from %d compressed", ErrFormat, z.file, name, f.UncompressedSize64, f.CompressedSize64)
	}
	return readAllExact(f, int64(f.UncompressedSize64))
}

// stored returns the bytes of a stored (uncompressed) entry as a view of the
// archive, after checking its local header and extent.
func (z *zipCheckpoint) stored(f *zip.File) ([]byte, error) {
	if f.CompressedSize64 != f.UncompressedSize64 {
		return nil, fmt.Errorf("%w: %s: stored record %s has compressed size %d but size %d", ErrFormat, z.file, f.Name, f.CompressedSize64, f.UncompressedSize64)
	}
	off, err := f.DataOffset()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: record %s: %v", ErrFormat, z.file, f.Name, err)
	}
	if off < 0 || uint64(off) > uint64(len(z.data)) || f.UncompressedSize64 > uint64(len(z.data))-uint64(off) {
		return nil, fmt.Errorf("%w: %s: record %s (%d bytes at %d) reaches past the end of the file (%d bytes)", ErrFormat, z.file, f.Name, f.UncompressedSize64, off, len(z.data))
	}
	end := off + int64(f.UncompressedSize64)
	return z.data[off:end:end], nil
}

// readAllExact decompresses an entry that must hold exactly n bytes; reading
// to EOF makes archive/zip verify its CRC.
func readAllExact(f *zip.File, n int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: record %s: %v", ErrFormat, f.Name, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("%w: record %s: %v", ErrFormat, f.Name, err)
	}
	var one [1]byte
	if k, err := rc.Read(one[:]); k != 0 || err != io.EOF {
		return nil, fmt.Errorf("%w: record %s: more data than its declared %d bytes or bad CRC (%v)", ErrFormat, f.Name, n, err)
	}
	return buf, nil
}

// persistentLoad resolves ('storage', storage_type, key, location, numel)
// to the storage record data/<key>, checking its size against numel before
// anything is read.
func (z *zipCheckpoint) persistentLoad(pid any) (any, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 || asString(t[0]) != "storage" {
		return nil, fmt.Errorf("%w: %s: persistent id is %s, not ('storage', type, key, location, numel)", ErrBadArguments, z.file, typeName(pid))
	}
	st, key, numel, err := storageArgs(t)
	if err != nil {
		return nil, locate(z.file, err)
	}
	nbytes, err := weights.ByteSize(st.dtype, []int64{numel})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: storage %q: %v", ErrStorage, z.file, key, err)
	}
	if ref, ok := z.roots[key]; ok {
		if ref.dtype != st.dtype || ref.root.numel != numel {
			return nil, fmt.Errorf("%w: %s: storage %q used as %d x %v and as %d x %v", ErrStorage, z.file, key, ref.root.numel, ref.dtype, numel, st.dtype)
		}
		return ref, nil
	}
	f, ok := z.entries["data/"+key]
	if !ok {
		return nil, fmt.Errorf("%w: %s: storage %q has no record %sdata/%s in the archive", ErrStorage, z.file, key, z.prefix, key)
	}
	if f.UncompressedSize64 != uint64(nbytes) {
		return nil, fmt.Errorf("%w: %s: storage %q claims %d x %v (%d bytes), record %s holds %d bytes", ErrStorage, z.file, key, numel, st.dtype, nbytes, f.Name, f.UncompressedSize64)
	}
	root := &rootStorage{key: key, id: z.file + "#" + key, dtype: st.dtype, numel: numel, nbytes: nbytes, bigEndian: z.bigEndian, fileSize: int64(len(z.data))}
	switch f.Method {
	case zip.Store:
		b, err := z.stored(f)
		if err != nil {
			return nil, err
		}
		root.data = b
	case zip.Deflate:
		// A bounded copy, made on every read: nbytes was checked against
		// the pickle and against what the compressed size can expand to.
		if f.UncompressedSize64 > f.CompressedSize64*maxDeflateRatio+64 {
			return nil, fmt.Errorf("%w: %s: record %s claims %d bytes from %d compressed", ErrStorage, z.file, f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
		root.load = func() ([]byte, error) { return readAllExact(f, nbytes) }
	default:
		return nil, fmt.Errorf("%w: %s: record %s uses compression method %d", ErrUnsupported, z.file, f.Name, f.Method)
	}
	ref := &storageRef{root: root, dtype: st.dtype, nbytes: nbytes}
	z.roots[key] = ref
	return ref, nil
}
