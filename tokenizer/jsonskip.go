package tokenizer

import (
	"encoding/json"
	"fmt"
)

// A strict JSON skipper: Load splits the document into its top-level
// values and the model's fields with it, validating as it goes, so that
// the big vocab and merges values are scanned once by a tight loop and
// then read by jsonscan.go (encoding/json's Decoder would scan them twice
// through its state machine first). Small values still go through
// json.Unmarshal.

// maxJSONDepth bounds nesting, as encoding/json does.
const maxJSONDepth = 10000

func jsonError(b []byte, i int, msg string) error {
	if i >= len(b) {
		return fmt.Errorf("invalid JSON: unexpected end of input")
	}
	return fmt.Errorf("invalid JSON at byte %d: %s", i, msg)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the end of the JSON value that starts at b[i] (after
// any white space), or an error when it is not valid JSON.
func skipValue(b []byte, i, depth int) (int, error) {
	i = skipWS(b, i)
	if i >= len(b) {
		return i, jsonError(b, i, "")
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return i, jsonError(b, i, "nested too deeply")
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				i = skipWS(b, i)
				if i >= len(b) || b[i] != '"' {
					return i, jsonError(b, i, "want an object key")
				}
				if i, err = skipString(b, i); err != nil {
					return i, err
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return i, jsonError(b, i, "want ':' after an object key")
				}
				i++
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = skipWS(b, i)
			switch {
			case i >= len(b):
				return i, jsonError(b, i, "")
			case b[i] == ',':
				i++
			case b[i] == closing:
				return i + 1, nil
			default:
				return i, jsonError(b, i, fmt.Sprintf("want ',' or '%c'", closing))
			}
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	}
	return i, jsonError(b, i, fmt.Sprintf("invalid character %q", b[i]))
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, jsonError(b, i, "invalid literal")
	}
	return i + len(lit), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, jsonError(b, start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, jsonError(b, start, "invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, jsonError(b, start, "invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// skipString returns the end of the string that starts at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	start := i
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return i, jsonError(b, len(b), "")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, jsonError(b, i, "invalid \\u escape")
				}
				i += 6
			default:
				return i, jsonError(b, i, "invalid escape")
			}
		case c < 0x20:
			return i, jsonError(b, i, "control character in a string")
		default:
			i++
		}
	}
	return start, jsonError(b, len(b), "")
}

// decodeString decodes a string value that skipString accepted.
func decodeString(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}
