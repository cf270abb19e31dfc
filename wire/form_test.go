package wire

import (
	"strings"
	"testing"
)

// A bad %-escape is reported by its offset, never by its bytes: the value
// may be a password, and the message reaches the device and the log.
func TestBadEscapeDoesNotEchoTheValue(t *testing.T) {
	_, err := DecodeRequest([]byte("operation=request&username=u&password=s3cr%Zt&device=1&customer=2&nonce=AA&request=AAAA"))
	if err == nil {
		t.Fatal("a bad escape was accepted")
	}
	if msg := err.Error(); strings.Contains(msg, "%Z") || strings.Contains(msg, "Zt") || !strings.Contains(msg, "password") {
		t.Fatalf("error %q echoes the value or does not name the field", msg)
	}
}
