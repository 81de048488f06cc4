// Command gen writes the hand-built safetensors fixtures of this package's
// tests into the testdata directory: valid files that exercise corners of the
// format, and one malformed file per rule of the format, each named for the
// rule it breaks (reader_test.go lists the error each must give). It builds
// every file byte by byte, without the package under test, so that the
// reader is checked against an independent writer.
//
// Run from formats/safetensors:
//
//	go run ./testdata/gen
//
// The torch-written fixtures come from gen_torch.py instead.
package main

import (
	"encoding/binary"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	out := "testdata"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	for name, content := range files() {
		path := filepath.Join(out, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// raw returns a file of the given header length field, header bytes and data.
func raw(n uint64, header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, n)
	b = append(b, header...)
	return append(b, data...)
}

// file returns a file whose header is h padded with spaces to a multiple of
// 8, as writers do, followed by data.
func file(h string, data []byte) []byte {
	for len(h)%8 != 0 {
		h += " "
	}
	return raw(uint64(len(h)), h, data)
}

// seq returns n bytes 0, 1, 2, ... (mod 251, so patterns do not repeat on
// power-of-two boundaries).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// entry returns a tensor entry `"name":{...}`.
func entry(name, dtype, shape string, begin, end int) string {
	return fmt.Sprintf(`%q:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, name, dtype, shape, begin, end)
}

// one is a file with a single F32 tensor "t" of shape [2] whose entry body is
// given (for malformed entries).
func one(body string, data []byte) []byte {
	return file(`{"t":`+body+`}`, data)
}

func files() map[string][]byte {
	f := map[string][]byte{}

	// Valid files.
	{
		// Every dtype, in the reference writer's order (descending alignment
		// rank, then name), each of shape [2,3].
		order := []struct{ name, dtype string }{
			{"u64", "U64"}, {"i64", "I64"}, {"f64", "F64"}, {"f32", "F32"}, {"u32", "U32"},
			{"i32", "I32"}, {"bf16", "BF16"}, {"f16", "F16"}, {"u16", "U16"}, {"i16", "I16"},
			{"f8_e4m3", "F8_E4M3"}, {"f8_e5m2", "F8_E5M2"}, {"i8", "I8"}, {"u8", "U8"}, {"bool", "BOOL"},
		}
		size := map[string]int{"U64": 8, "I64": 8, "F64": 8, "F32": 4, "U32": 4, "I32": 4, "BF16": 2, "F16": 2,
			"U16": 2, "I16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1}
		var parts []string
		var data []byte
		for _, o := range order {
			n := 6 * size[o.dtype]
			parts = append(parts, entry(o.name, o.dtype, "[2,3]", len(data), len(data)+n))
			chunk := seq(n)
			if o.dtype == "BOOL" {
				chunk = []byte{1, 0, 0, 1, 1, 0}
			}
			data = append(data, chunk...)
		}
		f["valid_all_dtypes.safetensors"] = file(`{"__metadata__":{"format":"pt"},`+strings.Join(parts, ",")+`}`, data)
	}
	f["valid_scalar.safetensors"] = file(`{`+entry("scalar", "F32", "[]", 0, 4)+`}`,
		binary.LittleEndian.AppendUint32(nil, math.Float32bits(3.5)))
	// Empty tensors take no bytes; two of them share offset 8.
	f["valid_empty_tensor.safetensors"] = file(`{`+entry("a", "F32", "[2]", 0, 8)+","+entry("empty", "F16", "[0,4]", 8, 8)+
		","+entry("empty2", "I64", "[3,0]", 8, 8)+","+entry("b", "U8", "[3]", 8, 11)+`}`, seq(11))
	f["valid_metadata.safetensors"] = file(`{"__metadata__":{"format":"pt","note":"ünïcödé \"quoted\" \\ back","empty":""},`+
		entry("w", "BF16", "[2,2]", 0, 8)+`}`, seq(8))
	f["valid_no_tensors.safetensors"] = file(`{}`, nil)
	f["valid_null_metadata.safetensors"] = file(`{"__metadata__":null,`+entry("x", "I32", "[1]", 0, 4)+`}`, seq(4))
	// The header lists tensors in an order unrelated to their offsets; the
	// reader returns offset order.
	f["valid_header_order.safetensors"] = file(`{`+entry("z_first", "U8", "[4]", 0, 4)+","+entry("c_third", "U8", "[2]", 6, 8)+
		","+entry("a_second", "U8", "[2]", 4, 6)+`}`, seq(8))
	// JSON whitespace (not only spaces) inside and after the object.
	{
		h := "{\n\t\"t\" : {\"dtype\": \"U8\", \"shape\": [ 2 ],\r\n\"data_offsets\":[0,2]} }\n\t \n"
		f["valid_whitespace.safetensors"] = raw(uint64(len(h)), h, seq(2))
	}
	// A name with escapes, non-ASCII characters and a surrogate pair.
	f["valid_escaped_name.safetensors"] = file(`{"a\"b\\c\u00e9\n\ud834\udd1e":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, seq(1))

	// One file per rule.
	okEntry := entry("t", "F32", "[2]", 0, 8)
	f["too_short.safetensors"] = []byte{8, 0, 0, 0, 0}
	f["empty_file.safetensors"] = nil
	f["header_too_large.safetensors"] = raw(100_000_001, "{}", nil)
	f["header_length_max_u64.safetensors"] = raw(math.MaxUint64, "{}", nil)
	f["header_beyond_file.safetensors"] = raw(64, `{"t":{"dtype":"F32"`, nil)
	f["header_empty.safetensors"] = raw(0, "", nil)
	f["header_leading_space.safetensors"] = file(` {}`, nil)
	f["header_array.safetensors"] = file(`[]`, nil)
	f["header_bad_utf8_name.safetensors"] = file("{\"t\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", seq(1))
	f["header_bad_utf8_metadata.safetensors"] = file("{\"__metadata__\":{\"k\":\"v\xe2\x82\"}}", nil)
	f["header_lone_surrogate.safetensors"] = file(`{"t\ud800x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, seq(1))
	f["header_lone_low_surrogate.safetensors"] = file(`{"__metadata__":{"k":"\udc00"}}`, nil)
	f["header_truncated_json.safetensors"] = file(`{"t":{"dtype":"F32"`, nil)
	f["header_trailing_comma.safetensors"] = file(`{`+okEntry+`,}`, seq(8))
	f["header_trailing_junk.safetensors"] = file(`{`+okEntry+`} x`, seq(8))
	f["header_two_objects.safetensors"] = file(`{`+okEntry+`}{}`, seq(8))
	f["header_nul_padding.safetensors"] = raw(16, "{}\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", nil)
	f["metadata_string.safetensors"] = file(`{"__metadata__":"pt",`+okEntry+`}`, seq(8))
	f["metadata_number_value.safetensors"] = file(`{"__metadata__":{"format":1},`+okEntry+`}`, seq(8))
	f["metadata_nested.safetensors"] = file(`{"__metadata__":{"a":{"b":"c"}},`+okEntry+`}`, seq(8))
	f["entry_not_object.safetensors"] = one(`[0,8]`, seq(8))
	f["entry_missing_dtype.safetensors"] = one(`{"shape":[2],"data_offsets":[0,8]}`, seq(8))
	f["entry_missing_shape.safetensors"] = one(`{"dtype":"F32","data_offsets":[0,8]}`, seq(8))
	f["entry_missing_offsets.safetensors"] = one(`{"dtype":"F32","shape":[2]}`, seq(8))
	f["entry_extra_key.safetensors"] = one(`{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}`, seq(8))
	f["entry_deep_nesting.safetensors"] = one(strings.Repeat("[", 20000)+strings.Repeat("]", 20000), nil)
	f["dtype_number.safetensors"] = one(`{"dtype":4,"shape":[2],"data_offsets":[0,8]}`, seq(8))
	f["dtype_unknown.safetensors"] = one(`{"dtype":"Q4_0","shape":[2],"data_offsets":[0,8]}`, seq(8))
	f["dtype_lowercase.safetensors"] = one(`{"dtype":"f32","shape":[2],"data_offsets":[0,8]}`, seq(8))
	f["shape_negative.safetensors"] = one(`{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}`, seq(8))
	f["shape_fraction.safetensors"] = one(`{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}`, seq(8))
	f["shape_exponent.safetensors"] = one(`{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}`, seq(8))
	f["shape_string.safetensors"] = one(`{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}`, seq(8))
	f["shape_not_array.safetensors"] = one(`{"dtype":"F32","shape":2,"data_offsets":[0,8]}`, seq(8))
	f["shape_out_of_range.safetensors"] = one(`{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}`, seq(8))
	f["shape_count_overflow.safetensors"] = one(`{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}`, nil)
	f["shape_bytes_overflow.safetensors"] = one(`{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,0]}`, nil)
	f["offsets_one_value.safetensors"] = one(`{"dtype":"F32","shape":[2],"data_offsets":[8]}`, seq(8))
	f["offsets_three_values.safetensors"] = one(`{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}`, seq(8))
	f["offsets_negative.safetensors"] = one(`{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}`, seq(8))
	f["offsets_fraction.safetensors"] = one(`{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}`, seq(8))
	f["offsets_not_array.safetensors"] = one(`{"dtype":"F32","shape":[2],"data_offsets":"0-8"}`, seq(8))
	f["offsets_out_of_range.safetensors"] = one(`{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551624]}`, seq(8))
	f["layout_gap_at_start.safetensors"] = file(`{`+entry("t", "F32", "[2]", 4, 12)+`}`, seq(12))
	f["layout_gap_between.safetensors"] = file(`{`+entry("a", "F32", "[1]", 0, 4)+","+entry("b", "F32", "[1]", 8, 12)+`}`, seq(12))
	f["layout_overlap.safetensors"] = file(`{`+entry("a", "F32", "[2]", 0, 8)+","+entry("b", "F32", "[2]", 4, 12)+`}`, seq(12))
	f["layout_end_before_begin.safetensors"] = file(`{`+entry("a", "F32", "[1]", 0, 4)+","+entry("b", "F32", "[1]", 4, 0)+`}`, seq(4))
	f["size_too_few_bytes.safetensors"] = file(`{`+entry("t", "F32", "[3]", 0, 8)+`}`, seq(8))
	f["size_empty_with_bytes.safetensors"] = file(`{`+entry("t", "F32", "[0,2]", 0, 8)+`}`, seq(8))
	f["file_trailing_bytes.safetensors"] = file(`{`+okEntry+`}`, seq(12))
	f["file_missing_bytes.safetensors"] = file(`{`+okEntry+`}`, seq(6))
	f["duplicate_tensor.safetensors"] = file(`{`+entry("t", "F32", "[1]", 0, 4)+","+entry("t", "F32", "[1]", 4, 8)+`}`, seq(8))
	f["duplicate_metadata.safetensors"] = file(`{"__metadata__":{"a":"b"},`+okEntry+`,"__metadata__":{"c":"d"}}`, seq(8))
	f["duplicate_metadata_key.safetensors"] = file(`{"__metadata__":{"format":"pt","format":"tf"},`+okEntry+`}`, seq(8))
	f["duplicate_entry_key.safetensors"] = one(`{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}`, seq(8))

	// Sharded checkpoints: a shard holds a, b; another holds c. weight_map
	// names shard 2 first, so the reader's shard order is 2, 1.
	shard1 := file(`{"__metadata__":{"format":"pt"},`+entry("a", "F32", "[2]", 0, 8)+","+entry("b", "U8", "[3]", 8, 11)+`}`, seq(11))
	shard2 := file(`{"__metadata__":{"format":"pt"},`+entry("c", "I16", "[2,2]", 0, 8)+`}`, seq(8))
	s1, s2 := "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	index := func(weightMap string) []byte {
		return []byte(`{"metadata":{"total_size":19},"weight_map":{` + weightMap + `}}` + "\n")
	}
	wm := func(pairs ...string) string {
		var parts []string
		for i := 0; i < len(pairs); i += 2 {
			parts = append(parts, fmt.Sprintf("%q:%q", pairs[i], pairs[i+1]))
		}
		return strings.Join(parts, ",")
	}
	shardDir := func(dir string, idx []byte, shards ...[]byte) {
		f[dir+"/model.safetensors.index.json"] = idx
		if len(shards) > 0 {
			f[dir+"/"+s1] = shards[0]
		}
		if len(shards) > 1 {
			f[dir+"/"+s2] = shards[1]
		}
	}
	shardDir("index_valid", index(wm("c", s2, "a", s1, "b", s1)), shard1, shard2)
	shardDir("index_missing_tensor", index(wm("a", s1, "b", s1, "c", s2, "d", s2)), shard1, shard2)
	shardDir("index_extra_tensor", index(wm("a", s1, "c", s2)), shard1, shard2)
	shardDir("index_wrong_shard", index(wm("a", s1, "b", s2, "c", s2)), shard1, shard2)
	shardDir("index_name_dotdot", index(wm("a", "../"+s1)), shard1)
	shardDir("index_name_absolute", index(wm("a", "/tmp/"+s1)), shard1)
	shardDir("index_name_subdir", index(wm("a", "sub/"+s1)), shard1)
	shardDir("index_name_backslash", index(wm("a", `sub\`+s1)), shard1)
	shardDir("index_name_empty", index(wm("a", "")), shard1)
	shardDir("index_duplicate_name", index(wm("a", s1, "b", s1, "a", s1)), shard1)
	shardDir("index_no_weight_map", []byte(`{"metadata":{"total_size":19}}`), shard1)
	shardDir("index_empty_weight_map", []byte(`{"weight_map":{}}`), shard1)
	shardDir("index_value_not_string", []byte(`{"weight_map":{"a":1}}`), shard1)
	shardDir("index_not_json", []byte(`{"weight_map":{"a":`), shard1)
	shardDir("index_bad_utf8", []byte("{\"weight_map\":{\"a\xff\":\"x\"}}"), shard1)
	shardDir("index_trailing_junk", []byte(`{"weight_map":{"a":"`+s1+`","b":"`+s1+`"}} junk`), shard1)
	shardDir("index_corrupt_shard", index(wm("a", s1, "b", s1, "c", s2)), shard1, shard2[:len(shard2)-1])
	shardDir("index_missing_shard_file", index(wm("a", s1, "b", s1, "c", s2)), shard1)
	return f
}
