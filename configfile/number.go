package configfile

import "errors"

// normalizeNumber appends the digits of a called-number pattern to buf and
// tells whether the pattern is exact. On error it returns a message. first
// is the index in number of the first digit kept (to reuse number's memory
// when the digits are contiguous).
func normalizeNumber(number string, buf []byte) (out []byte, exact bool, first int, msg string) {
	out = buf
	first = -1
	s := number
	exact = true
	if s == "" {
		return out, false, first, ""
	}
	if len(s) >= 3 && s[len(s)-3:] == "..." {
		s = s[:len(s)-3]
		exact = false
	}
	n0 := len(out)
	plus := false
	dot := false // a '.' since the last digit: another one would make ".."
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#':
			if first < 0 {
				first = i
			}
			out = append(out, c)
			dot = false
		case ' ', '-':
		case '.':
			if i+1 < len(s) && s[i+1] == '.' {
				return out[:n0], exact, -1, `"..." is allowed only at the end of a number`
			}
			if dot {
				return out[:n0], exact, -1, `two '.' separators in a row (only the final "..." may repeat dots)`
			}
			dot = true
		case '+':
			if plus || len(out) > n0 {
				return out[:n0], exact, -1, `"+" is allowed only at the start of a number`
			}
			plus = true
		default:
			return out[:n0], exact, -1, "number may hold only digits, '*', '#', a leading '+', separators ' ', '-', '.' and a final \"...\""
		}
	}
	switch {
	case dot && !exact:
		return out[:n0], exact, -1, `'.' before the final "..." (a prefix ends in exactly three dots)`
	case len(out) == n0 && exact:
		return out, exact, -1, "number has no digits"
	case len(out)-n0 > MaxNumberDigits:
		return out[:n0], exact, -1, "number too long (more than 32 digits)"
	}
	return out, exact, first, ""
}

// NormalizeNumber normalizes a called-number pattern the way route numbers
// are: it returns the digits (with '*' and '#') without the leading '+' and
// the separators ' ', '-' and '.', and whether the pattern is exact (has no
// final "..."). "" and "..." are the catch-all: prefix "" and exact false.
//
// The routing code can use it to normalize a dialed number before matching
// it against Route.Prefix.
func NormalizeNumber(number string) (prefix string, exact bool, err error) {
	out, exact, _, msg := normalizeNumber(number, nil)
	if msg != "" {
		return "", false, errors.New(msg)
	}
	return string(out), exact, nil
}
