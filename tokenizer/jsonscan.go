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

// scanMerges reads ["a b", ...] or [["a", "b"], ...]; elements that are
// neither are reported by index in bad.
func scanMerges(b []byte) (pairs [][2]string, bad int, err error) {
	s := &scanner{b: b}
	if err := s.expect('['); err != nil {
		return nil, -1, err
	}
	pairs = make([][2]string, 0, len(b)/12)
	if s.peek() == ']' {
		return pairs, -1, nil
	}
	for idx := 0; ; idx++ {
		switch s.peek() {
		case '"':
			v, err := s.str()
			if err != nil {
				return nil, -1, err
			}
			if len(v) >= 8 && v[:8] == "#version" {
				break
			}
			sp := -1
			for k := 0; k < len(v); k++ {
				if v[k] == ' ' {
					if sp >= 0 {
						return nil, idx, nil
					}
					sp = k
				}
			}
			if sp < 0 {
				return nil, idx, nil
			}
			pairs = append(pairs, [2]string{v[:sp], v[sp+1:]})
		case '[':
			s.i++
			a, err := s.str()
			if err != nil {
				return nil, idx, nil
			}
			if err := s.expect(','); err != nil {
				return nil, idx, nil
			}
			c, err := s.str()
			if err != nil {
				return nil, idx, nil
			}
			if err := s.expect(']'); err != nil {
				return nil, idx, nil
			}
			pairs = append(pairs, [2]string{a, c})
		default:
			return nil, idx, nil
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			return pairs, -1, nil
		default:
			return nil, -1, errScan
		}
	}
}
