package tokenizer

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// A small scanner for the two big parts of a tokenizer.json, the vocab
// object and the merges list, which encoding/json decodes slowly through
// reflection. The input is JSON the json.Decoder has already validated;
// the scanner still checks every index and reports anything unexpected.

var errScan = errors.New("unexpected JSON")

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errScan
	}
	s.i++
	return nil
}

// str reads a JSON string.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", errScan
	}
	start := s.i
	s.i++
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '\\' {
			escaped = true
			s.i += 2
			continue
		}
		if c == '"' {
			s.i++
			raw := s.b[start:s.i]
			if !escaped {
				inner := raw[1 : len(raw)-1]
				if utf8.Valid(inner) {
					return string(inner), nil
				}
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return "", err
			}
			return out, nil
		}
		s.i++
	}
	return "", errScan
}

// strBytes reads a JSON string: a slice of the input when it has no
// escapes and is valid UTF-8, else a decoded copy.
func (s *scanner) strBytes() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errScan
	}
	start := s.i
	s.i++
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '\\' {
			escaped = true
			s.i += 2
			continue
		}
		if c == '"' {
			s.i++
			raw := s.b[start:s.i]
			if inner := raw[1 : len(raw)-1]; !escaped && utf8.Valid(inner) {
				return inner, nil
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return nil, err
			}
			return []byte(out), nil
		}
		s.i++
	}
	return nil, errScan
}

// integer reads a JSON number that must be an integer.
func (s *scanner) integer() (int, error) {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	n, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil {
		return 0, errScan
	}
	return n, nil
}

// scanVocab reads {"token": id, ...}.
func scanVocab(b []byte) (map[string]int, error) {
	s := &scanner{b: b}
	if err := s.expect('{'); err != nil {
		return nil, err
	}
	m := make(map[string]int, len(b)/16)
	if s.peek() == '}' {
		return m, nil
	}
	for {
		k, err := s.str()
		if err != nil {
			return nil, err
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		v, err := s.integer()
		if err != nil {
			return nil, err
		}
		m[k] = v
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			return m, nil
		default:
			return nil, errScan
		}
	}
}

// scanMerges reads ["a b", ...] or [["a", "b"], ...], calling visit for
// each merge (a "#version" string is skipped); an element that is neither
// form is reported by index in bad, an error of visit is returned as is.
func scanMerges(b []byte, visit func(a, b []byte) error) (bad int, err error) {
	s := &scanner{b: b}
	if err := s.expect('['); err != nil {
		return -1, err
	}
	if s.peek() == ']' {
		return -1, nil
	}
	for idx := 0; ; idx++ {
		switch s.peek() {
		case '"':
			v, err := s.strBytes()
			if err != nil {
				return -1, err
			}
			if len(v) >= 8 && string(v[:8]) == "#version" {
				break
			}
			sp := -1
			for k := 0; k < len(v); k++ {
				if v[k] == ' ' {
					if sp >= 0 {
						return idx, nil
					}
					sp = k
				}
			}
			if sp < 0 {
				return idx, nil
			}
			if err := visit(v[:sp], v[sp+1:]); err != nil {
				return -1, err
			}
		case '[':
			s.i++
			a, err := s.strBytes()
			if err != nil {
				return idx, nil
			}
			if err := s.expect(','); err != nil {
				return idx, nil
			}
			c, err := s.strBytes()
			if err != nil {
				return idx, nil
			}
			if err := s.expect(']'); err != nil {
				return idx, nil
			}
			if err := visit(a, c); err != nil {
				return -1, err
			}
		default:
			return idx, nil
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			return -1, nil
		default:
			return -1, errScan
		}
	}
}
