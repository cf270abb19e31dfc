package caddyenroll

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"strings"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// IssuedCertificate is an issued certificate as the admin API shows it.
type IssuedCertificate struct {
	Device string `json:"device"`
	CertificateInfo
	Certificate string `json:"certificate_pem"`
	// The certificate in human-readable form.
	Text string `json:"text"`
}

func (ad *adminAPI) certificate(w http.ResponseWriter, r *http.Request, serial string) error {
	if r.Method != http.MethodGet {
		return notAllowed(w, r, http.MethodGet)
	}
	hits, err := ad.lookupSerial(r.Context(), serial)
	if err != nil {
		return err
	}
	rec := hits[0].rec
	text, err := ca.Describe(rec.DER)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	return writeJSON(w, IssuedCertificate{Device: rec.Device, CertificateInfo: certificateInfo(hits[0].profile, rec),
		Certificate: string(rec.PEM()), Text: text})
}

// CAInfo describes an operational CA.
type CAInfo struct {
	Profile     string `json:"profile"`
	Crypto      string `json:"crypto"`
	Subject     string `json:"subject"`
	Fingerprint string `json:"sha256_fingerprint"`
	// Hex MD5 of the certificate, no colons: what the OSP Toolkit's
	// `enroll -fprint` compares (legacy profile only).
	MD5Fingerprint string `json:"md5_fingerprint,omitempty"`
	// When the CA stops issuing: the first end in its chain (with an
	// intermediate, the intermediate's if it ends first).
	NotAfter    string `json:"not_after"`
	Certificate string `json:"certificate_pem"`
	// The certificate in human-readable form.
	Text string `json:"text"`
}

func (ad *adminAPI) caInfo(w http.ResponseWriter, r *http.Request, profile string) error {
	if r.Method != http.MethodGet {
		return notAllowed(w, r, http.MethodGet)
	}
	c, err := ad.app.authority(profile)
	if err != nil {
		return apiErr(http.StatusNotFound, err)
	}
	root := c.Root()
	text, err := ca.Describe(root.Raw)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	md5Hex := ""
	if profile == profileLegacy {
		sum := md5.Sum(root.Raw)
		md5Hex = strings.ToUpper(hex.EncodeToString(sum[:]))
	}
	return writeJSON(w, CAInfo{
		MD5Fingerprint: md5Hex,
		Profile:        profile, Crypto: c.CryptoParam(), Subject: root.Subject.String(),
		Fingerprint: ca.Fingerprint(root.Raw), NotAfter: caEnd(c).UTC().Format(time.RFC3339),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})),
		Text:        text,
	})
}
