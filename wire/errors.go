package wire

import (
	"errors"
)

// Error classes carried in DecodeError.Err; test with errors.Is.
var (
	ErrMalformed            = errors.New("malformed")             // syntax: bad %-escape, bad base64, non-digit id, control byte, ...
	ErrTooLarge             = errors.New("too large")             // body, value or pair count over its bound
	ErrDuplicate            = errors.New("duplicate variable")    // a variable given twice
	ErrConflict             = errors.New("conflicting variables") // certreq and request both given, different
	ErrMissing              = errors.New("missing variable")      // a required variable absent or empty
	ErrUnsupportedOperation = errors.New("unsupported operation") // operation= is not getcacert|request|retrieve
)

// DecodeError reports why a body, value or base64 string was refused.
// Field is the variable concerned ("" for the body as a whole).
type DecodeError struct {
	Field string
	Msg   string
	Err   error // one of the Err* classes above
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "wire: " + e.Msg
	}
	return "wire: " + e.Field + ": " + e.Msg
}

func (e *DecodeError) Unwrap() error { return e.Err }

func derr(field string, class error, msg string) *DecodeError {
	return &DecodeError{Field: field, Msg: msg, Err: class}
}

// StatusForError maps a decode error to the status the server answers with:
// 0 for nil, StatusUnsupportedOperation for ErrUnsupportedOperation,
// StatusBadRequest for any other *DecodeError, StatusServerError otherwise.
func StatusForError(err error) int {
	if err == nil {
		return StatusOK
	}
	if errors.Is(err, ErrUnsupportedOperation) {
		return StatusUnsupportedOperation
	}
	var de *DecodeError
	if errors.As(err, &de) {
		return StatusBadRequest
	}
	return StatusServerError
}
