package enrollclient

import (
	"context"
	"errors"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Every refusal of the first request (status ≥ 2, 2 included) ends Enroll
// with a *RejectedError after that one request, a temporary one (10, 14)
// too: only polls are retried. The request and its key are dropped when
// they can never be certified (7 bad CSR, 8 rejected, 9 nonce refused, 11
// unknown request) and kept for a corrected retry otherwise.
func TestRefusalOfTheRequest(t *testing.T) {
	for _, c := range []struct {
		status int
		kept   bool
	}{
		{wire.StatusBadRequest, true},
		{wire.StatusBadCredentials, true},
		{wire.StatusEnrollmentDisabled, true},
		{wire.StatusUnknownDevice, true},
		{wire.StatusDeviceDisabled, true},
		{wire.StatusBadCSR, false},
		{wire.StatusRejected, false},
		{wire.StatusNonceReused, false},
		{wire.StatusRateLimited, true},
		{wire.StatusNotFound, false},
		{wire.StatusSSLRequired, true},
		{wire.StatusCustomerMismatch, true},
		{wire.StatusServerError, true},
		{wire.StatusUnsupportedOperation, true},
	} {
		t.Run(wire.StatusName(c.status), func(t *testing.T) {
			srv := enrolltest.New(t, enrolltest.Config{RejectStatus: c.status, RejectReason: "no"})
			cl := newClient(t, srv, newClock())
			_, err := cl.Enroll(context.Background())
			var re *RejectedError
			if !errors.As(err, &re) || re.Status != c.status || re.Op != wire.OpRequest {
				t.Fatalf("err = %v, want a refusal of the request with status %d", err, c.status)
			}
			if n := countOps(srv.Ops(), wire.OpRequest) + countOps(srv.Ops(), wire.OpRetrieve); n != 1 {
				t.Errorf("%d requests and retrieves sent, want 1 (%v)", n, srv.Ops())
			}
			if got := exists(cl.Dir, PendingFile); got != c.kept {
				t.Errorf("%s kept: %v, want %v", PendingFile, got, c.kept)
			}
		})
	}
}

// Poll sends one retrieve and returns, even when the answer is one that
// Enroll would wait out (a temporary refusal).
func TestPollDoesNotRetry(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	cl := newClient(t, srv, newClock())
	cl.MaxWait = -1
	if _, err := cl.Enroll(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("Enroll: %v, want ErrPending", err)
	}
	srv.Update(func(c *enrolltest.Config) { c.RejectStatus = wire.StatusServerError })
	cl.MaxWait = 0
	_, err := cl.Poll(context.Background())
	var re *RejectedError
	if !errors.As(err, &re) || re.Status != wire.StatusServerError {
		t.Fatalf("Poll: %v, want the server error", err)
	}
	if n := countOps(srv.Ops(), wire.OpRetrieve); n != 1 {
		t.Errorf("Poll sent %d retrieves, want 1", n)
	}
}
