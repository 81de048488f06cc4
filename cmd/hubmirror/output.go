package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// output is the stdout of a command. Without --json, writes pass through.
// With --json it holds what the command prints until the command returns,
// so that run can make stdout exactly one JSON document: the command's own,
// with "error" and "code" added when the command failed, or
// {"error": ..., "code": ...} alone when it printed nothing. A command that
// prints while it runs (serve) calls stream, after which writes pass
// through and a failure adds its document as one more line.
type output struct {
	mu        sync.Mutex
	w         io.Writer
	json      bool
	streaming bool
	buf       bytes.Buffer
}

func newOutput(w io.Writer, asJSON bool) *output { return &output{w: w, json: asJSON} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.json && !o.streaming {
		return o.buf.Write(p)
	}
	return o.w.Write(p)
}

// setJSON sets the mode once the command's flags are parsed.
func (o *output) setJSON(on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.json && !on {
		o.flushLocked()
	}
	o.json = on
}

// stream writes what is held and passes later writes through.
func (o *output) stream() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.streaming = true
	return o.flushLocked()
}

// streamOutput makes w, a command's stdout, pass writes through at once.
func streamOutput(w io.Writer) error {
	if o, ok := w.(*output); ok {
		return o.stream()
	}
	return nil
}

func (o *output) flushLocked() error {
	if o.buf.Len() == 0 {
		return nil
	}
	_, err := o.w.Write(o.buf.Bytes())
	o.buf.Reset()
	return err
}

// finish writes what the command printed, with the error of a failed
// command in the JSON document.
func (o *output) finish(cmdErr error, code int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.json {
		return o.flushLocked()
	}
	if cmdErr == nil {
		return o.flushLocked()
	}
	if o.streaming {
		b, err := marshal(errorDocument(cmdErr, code))
		if err != nil {
			return err
		}
		_, err = o.w.Write(append(b, '\n'))
		return err
	}
	doc, ok := withError(o.buf.Bytes(), cmdErr, code)
	if !ok {
		// Not one JSON object (help text): keep it, then the error.
		if err := o.flushLocked(); err != nil {
			return err
		}
		doc, _ = withError(nil, cmdErr, code)
	}
	o.buf.Reset()
	_, err := o.w.Write(doc)
	return err
}

// errorDocument is the JSON document of a failure.
func errorDocument(err error, code int) any {
	return struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
	}{err.Error(), code}
}

// marshal is json.Marshal without escaping <, > and & (error messages say
// "cosine 0.99 < 0.999").
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// withError returns the JSON object doc with "error" and "code" first (in
// place of any it had), indented; an empty doc gives the two alone. ok is
// false when doc is not one JSON object.
func withError(doc []byte, cmdErr error, code int) ([]byte, bool) {
	head, err := marshal(errorDocument(cmdErr, code))
	if err != nil {
		return nil, false
	}
	var merged bytes.Buffer
	merged.Write(head[:len(head)-1]) // without the closing brace
	if len(bytes.TrimSpace(doc)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(doc))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, false
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, false
			}
			var value json.RawMessage
			if err := dec.Decode(&value); err != nil {
				return nil, false
			}
			if key == "error" || key == "code" {
				continue
			}
			k, _ := json.Marshal(key)
			fmt.Fprintf(&merged, ",%s:%s", k, value)
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return nil, false
		}
		if _, err := dec.Token(); err != io.EOF { // nothing after it
			return nil, false
		}
	}
	merged.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, merged.Bytes(), "", "  "); err != nil {
		return nil, false
	}
	out.WriteByte('\n')
	return out.Bytes(), true
}
