package wire

import (
	"errors"
	"fmt"
	"testing"
)

func TestStatusTable(t *testing.T) {
	consts := map[string]int{
		"OK": StatusOK, "Pending": StatusPending, "BadRequest": StatusBadRequest,
		"BadCredentials": StatusBadCredentials, "EnrollmentDisabled": StatusEnrollmentDisabled,
		"UnknownDevice": StatusUnknownDevice, "DeviceDisabled": StatusDeviceDisabled, "BadCSR": StatusBadCSR,
		"Rejected": StatusRejected, "NonceReused": StatusNonceReused, "RateLimited": StatusRateLimited,
		"NotFound": StatusNotFound, "SSLRequired": StatusSSLRequired, "CustomerMismatch": StatusCustomerMismatch,
		"ServerError": StatusServerError, "UnsupportedOperation": StatusUnsupportedOperation,
	}
	rows := Statuses()
	if len(rows) != len(consts) {
		t.Fatalf("%d rows, %d constants", len(rows), len(consts))
	}
	texts := map[string]bool{}
	for i, s := range rows {
		if s.Code != i {
			t.Errorf("row %d has code %d: table must be dense and ordered", i, s.Code)
		}
		if c, ok := consts[s.Name]; !ok || c != s.Code {
			t.Errorf("row %d name %q does not match a Status%s constant", i, s.Name, s.Name)
		}
		if s.Text == "" || s.Meaning == "" || texts[s.Text] {
			t.Errorf("row %d: empty or duplicate text/meaning: %+v", i, s)
		}
		texts[s.Text] = true
		if StatusText(s.Code) != s.Text || StatusName(s.Code) != s.Name {
			t.Errorf("StatusText/StatusName(%d) disagree with the table", s.Code)
		}
		// Errors are ≥ 2 (the toolkit exits with the status) and fit an exit code.
		if s.Code > 255 {
			t.Errorf("code %d does not fit an exit status", s.Code)
		}
	}
	if StatusOK != 0 || StatusPending != 1 {
		t.Error("0 and 1 are fixed by the seed and the toolkit")
	}
	if StatusText(99) != "status 99" || StatusName(-1) != "" {
		t.Error("out-of-table codes")
	}
	rows[0].Name = "changed"
	if Statuses()[0].Name != "OK" {
		t.Error("Statuses must return a copy")
	}
}

func TestStatusForError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, StatusOK},
		{&DecodeError{Field: "x", Msg: "m", Err: ErrMalformed}, StatusBadRequest},
		{fmt.Errorf("wrapped: %w", &DecodeError{Msg: "m", Err: ErrTooLarge}), StatusBadRequest},
		{&DecodeError{Field: "operation", Msg: "m", Err: ErrUnsupportedOperation}, StatusUnsupportedOperation},
		{errors.New("disk on fire"), StatusServerError},
	} {
		if got := StatusForError(tt.err); got != tt.want {
			t.Errorf("StatusForError(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	e := &DecodeError{Field: "nonce", Msg: "too long", Err: ErrTooLarge}
	if e.Error() != "wire: nonce: too long" || (&DecodeError{Msg: "empty body"}).Error() != "wire: empty body" {
		t.Errorf("Error() = %q", e.Error())
	}
}
