package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zapcore"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// cancelOnLock cancels a request's context once the lock named lock is
// taken (not another, which background work may take first): the device
// hangs up while its request is being decided.
type cancelOnLock struct {
	certmagic.Storage
	lock   string
	cancel context.CancelFunc
}

// Store fails once ctx is done, as network storages do.
func (s cancelOnLock) Store(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Storage.Store(ctx, key, value)
}

func (s cancelOnLock) Lock(ctx context.Context, name string) error {
	err := s.Storage.Lock(ctx, name)
	if name == s.lock {
		s.cancel()
	}
	return err
}

// enrollForm is a request of gw1.example with a fresh key, as ops.
func enrollForm(t *testing.T) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"operation": {"request"}, "nonce": {base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))},
		"username": {"ops"}, "password": {"right"}, "device": {"1"}, "customer": {"0"},
		"request": {base64.StdEncoding.EncodeToString(csr)}}.Encode()
}

// A device hanging up while its request is decided does not cut the
// decision short nor read as a server error; one hanging up while it waits
// for another request of the device gets nothing decided, no answer and no
// ERROR line.
func TestEnrollClientHangsUp(t *testing.T) {
	keepPendingCount(t)
	t.Run("while decided", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		st := cancelOnLock{localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, deviceLockName("gw1.example"), cancel}
		h, logs := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(enrollForm(t))).WithContext(ctx)
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
		ans, err := wire.DecodeResponse(w.Body.Bytes())
		if err != nil || ans.Status != wire.StatusOK {
			t.Fatalf("answer %+v (%v), want the certificate", ans, err)
		}
		if errs := logs.FilterLevelExact(zapcore.ErrorLevel).All(); len(errs) > 0 {
			t.Fatalf("ERROR logged: %v", errs[0].Message)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
		h, logs := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
		unlock, err := h.app.state.lockDevice(context.Background(), "gw1.example")
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(enrollForm(t))).WithContext(ctx)
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
		if w.Body.Len() != 0 {
			t.Fatalf("answered %q to a client gone", w.Body.String())
		}
		if errs := logs.FilterLevelExact(zapcore.ErrorLevel).All(); len(errs) > 0 {
			t.Fatalf("ERROR logged: %v", errs[0].Message)
		}
		if n, err := h.app.state.pendingMarkers(context.Background()); err != nil || n != 0 {
			t.Fatalf("%d requests stored (%v)", n, err)
		}
	})
}

// failingWriter fails every write of the body: the client hung up.
type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("write: broken pipe") }

// An answer the client no longer reads is not a server error (Caddy would
// log one and count a 500).
func TestWriteToClientGone(t *testing.T) {
	if err := writeFixed(failingWriter{httptest.NewRecorder()}, false, "text/xml", []byte("<Message/>")); err != nil {
		t.Fatalf("writeFixed: %v", err)
	}
}

// ctxStores fails Stores whose context is done, as network storages do,
// and calls after once a Store is done.
type ctxStores struct {
	certmagic.Storage
	after func()
}

func (s ctxStores) Store(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.Storage.Store(ctx, key, value)
	s.after()
	return err
}

// A gateway hanging up while its usage indication is stored does not cut
// the indication in half: every record is stored, nothing logged as a
// storage error.
func TestUsageClientHangsUp(t *testing.T) {
	f := newOSPFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	st := localLocks{ctxStores{&certmagic.FileStorage{Path: t.TempDir()}, cancel}}
	f.a.storage, f.a.state = st, newStateStore(st, time.Hour)
	f.setFlags(flags{CDRs: true})
	r := httptest.NewRequest(http.MethodPost, "/osp", strings.NewReader(string(usageBody(t, 31, 32, 33)))).WithContext(ctx)
	r.RemoteAddr = "192.0.2.1:5060"
	w := httptest.NewRecorder()
	if err := f.h.ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	cdrs, err := f.a.cdrs(context.Background(), dayRange{})
	if err != nil || len(cdrs) != 3 {
		t.Fatalf("%d records stored (%v), want the 3 of the indication", len(cdrs), err)
	}
}
