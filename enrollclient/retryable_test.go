package enrollclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// While polling, only what may pass unchanged later is retried: HTTP 5xx
// (500 included) and 429, the temporary refusals, and network trouble; not
// another HTTP status, a lasting refusal, a cancellation, or a protocol,
// trust or configuration error, even when the HTTP client wraps it in a
// *url.Error as it does for a redirect refused.
func TestRetryable(t *testing.T) {
	inURL := func(err error) error { return &url.Error{Op: "Post", URL: "https://ch.example/enroll", Err: err} }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"HTTP 500", &httpStatusError{code: 500}, true},
		{"HTTP 503", &httpStatusError{code: 503}, true},
		{"HTTP 429", &httpStatusError{code: 429}, true},
		{"HTTP 499", &httpStatusError{code: 499}, false},
		{"HTTP 404", &httpStatusError{code: 404}, false},
		{"rate limited", &RejectedError{Status: wire.StatusRateLimited}, true},
		{"server error", &RejectedError{Status: wire.StatusServerError}, true},
		{"bad credentials", &RejectedError{Status: wire.StatusBadCredentials}, false},
		{"network", inURL(errors.New("connection refused")), true},
		{"canceled", inURL(context.Canceled), false},
		{"protocol", inURL(fmt.Errorf("%w: redirect not followed", ErrProtocol)), false},
		{"server not trusted", inURL(&ServerTrustError{Err: errors.New("x")}), false},
		{"config", inURL(configErr("bad")), false},
		{"http not allowed", inURL(ErrHTTPNotAllowed), false},
		{"bad certificate", inURL(&CertificateError{Reason: "r", Err: errors.New("x")}), false},
	} {
		if got := retryable(c.err); got != c.want {
			t.Errorf("%s: retryable = %v, want %v", c.name, got, c.want)
		}
	}
}
