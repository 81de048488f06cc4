package storage

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestVerifyReaderWithholdsLastBytes(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	good := SHA256Hex(data)
	bad := SHA256Hex(data[:len(data)-1])

	got, err := io.ReadAll(NewVerifyReader(bytes.NewReader(data), int64(len(data)), good))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("matching stream: %d bytes, %v", len(got), err)
	}
	for _, chunk := range []int{1, 7, 4096, len(data)} {
		vr := NewVerifyReader(iotest.HalfReader(bytes.NewReader(data)), int64(len(data)), bad)
		buf := make([]byte, chunk)
		total := 0
		var rerr error
		for {
			n, err := vr.Read(buf)
			total += n
			if err != nil {
				rerr = err
				break
			}
		}
		if !errors.Is(rerr, ErrHashMismatch) {
			t.Errorf("chunk %d: error %v, want ErrHashMismatch", chunk, rerr)
		}
		if total >= len(data) {
			t.Errorf("chunk %d: delivered all %d bytes of a mismatching stream", chunk, total)
		}
		if vr.Verified() {
			t.Errorf("chunk %d: Verified after a mismatch", chunk)
		}
	}
}

func TestVerifyReaderReadsNoFurther(t *testing.T) {
	data := []byte("hello world")
	// A reader that fails if asked for anything after the first 5 bytes.
	r := io.MultiReader(bytes.NewReader(data[:5]), iotest.ErrReader(errors.New("read past size")))
	got, err := io.ReadAll(NewVerifyReader(r, 5, SHA256Hex(data[:5])))
	if err != nil || string(got) != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestVerifyReaderShort(t *testing.T) {
	_, err := io.ReadAll(NewVerifyReader(bytes.NewReader([]byte("abc")), 4, SHA256Hex([]byte("abcd"))))
	if !errors.Is(err, ErrShortRead) {
		t.Fatalf("err %v, want ErrShortRead", err)
	}
	_, err = io.ReadAll(NewVerifyReader(bytes.NewReader(nil), 0, "nothex"))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err %v, want ErrInvalidArgument", err)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "a/b", "blobs/sha256/" + SHA256Hex(nil), "with space/ü", ".hidden", "a/.hubmirror-tmp"} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", "a/../b", "..", "a\x00", "a\\b", TempDir, TempDir + "/x", "\x7f"} {
		if err := ValidateKey(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}
