package hubtest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestGate: a gated download sends the bytes before the gate, then waits
// until the gate opens; a range beyond the gate waits too.
func TestGate(t *testing.T) {
	h := New(t)
	data := bytes.Repeat([]byte("0123456789"), 100)
	h.AddRepo("solo").AddFile("a.txt", data)
	g := h.Hold("a.txt", 300)
	t.Cleanup(g.Open)
	resp, err := http.Get(h.URL() + "/solo/resolve/main/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 300)
	if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.Equal(head, data[:300]) {
		t.Fatalf("head: %v", err)
	}
	select {
	case <-g.Reached():
	case <-time.After(30 * time.Second): // a hang guard, not a measure
		t.Fatal("the download never reached the gate")
	}
	more := make(chan int, 1)
	go func() {
		n, _ := resp.Body.Read(make([]byte, 1))
		more <- n
	}()
	select {
	case n := <-more:
		t.Fatalf("read %d bytes past a closed gate", n)
	default:
	}
	g.Open()
	if n := <-more; n != 1 {
		t.Fatalf("read %d bytes after the gate opened", n)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(rest, data[301:]) {
		t.Fatalf("tail: %d bytes, %v", len(rest), err)
	}
}
