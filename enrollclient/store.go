package enrollclient

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files in Client.Dir.
const (
	KeyFile     = "key.pem"      // device private key, PKCS#8 PEM, mode 0600
	CertFile    = "cert.pem"     // device certificate, PEM, mode 0644
	CAFile      = "ca.pem"       // the pinned CA certificate, PEM, mode 0644
	PendingFile = "pending.json" // a request in flight (holds its key), mode 0600
	// The key and certificate that the last installation replaced (renew,
	// enroll --force), kept to go back to.
	KeyBackupFile  = KeyFile + ".bak"  // mode 0600
	CertBackupFile = CertFile + ".bak" // mode 0644
	lockFile       = ".chclient.lock"
)

const pendingVersion = 1

// pendingState is pending.json: a request in flight. It is written before
// the first message carrying the key is sent, so that a request the server
// stored (or even issued) is never orphaned by the command exiting, and it
// doubles as the journal of the final commit (Certificate set).
type pendingState struct {
	Version       int       `json:"version"`
	Server        string    `json:"server"`
	DeviceName    string    `json:"device_name"`
	DeviceID      string    `json:"device_id"`
	Customer      string    `json:"customer"`
	Username      string    `json:"username"`
	KeyType       KeyType   `json:"key_type"`
	CSRField      string    `json:"csr_field"`
	Created       time.Time `json:"created"`
	Submitted     bool      `json:"submitted"`       // the server answered pending: resume with retrieve
	Nonce         string    `json:"nonce,omitempty"` // of the request and all its retrieves (older files: made on resume)
	ServerNonce   string    `json:"server_nonce,omitempty"`
	Polls         int       `json:"polls"`
	LastPoll      time.Time `json:"last_poll,omitzero"`
	CAFingerprint string    `json:"ca_fingerprint"`
	CACert        string    `json:"ca_cert"`               // PEM, the pinned CA
	Key           string    `json:"key"`                   // PEM PKCS#8
	CSR           string    `json:"csr"`                   // PEM
	Certificate   string    `json:"certificate,omitempty"` // PEM, verified, being committed
	// Refused: the server's last answer refused the request (status ≥ 2)
	// and the request was kept for a corrected retry (bad credentials,
	// device disabled, ...); cleared by a pending answer.
	Refused *savedRefusal `json:"refused,omitempty"`

	key    crypto.Signer
	csrDER []byte
	ca     *x509.Certificate
}

// savedRefusal is a RejectedError as pending.json keeps it.
type savedRefusal struct {
	Op     string `json:"op"`
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (c *Client) path(name string) string { return filepath.Join(c.dir(), name) }

func (c *Client) loadPending() (*pendingState, error) {
	data, err := os.ReadFile(c.path(PendingFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := parsePending(data)
	if err != nil {
		// written only atomically: damaged outside this client
		return nil, fmt.Errorf("%s cannot be used (%s): remove it to start over with a new key and request", c.path(PendingFile),
			strings.TrimPrefix(err.Error(), PendingFile+": "))
	}
	return p, nil
}

func parsePending(data []byte) (*pendingState, error) {
	var p pendingState
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %v", PendingFile, err)
	}
	if p.Version != pendingVersion {
		return nil, fmt.Errorf("%s: unsupported version %d", PendingFile, p.Version)
	}
	var err error
	if p.key, err = parseKeyPEM([]byte(p.Key)); err != nil {
		return nil, fmt.Errorf("%s: key: %v", PendingFile, err)
	}
	if p.csrDER, err = pemBlock([]byte(p.CSR), "CERTIFICATE REQUEST"); err != nil {
		return nil, fmt.Errorf("%s: %v", PendingFile, err)
	}
	if p.ca, err = parseCertPEM([]byte(p.CACert)); err != nil {
		return nil, fmt.Errorf("%s: CA certificate: %v", PendingFile, err)
	}
	if p.DeviceName == "" {
		return nil, fmt.Errorf("%s: no device name", PendingFile)
	}
	return &p, nil
}

func (c *Client) savePending(p *pendingState) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(c.dir(), PendingFile, append(data, '\n'), 0o600)
}

func (c *Client) removePending() error {
	err := os.Remove(c.path(PendingFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(c.dir())
}

// writeFileAtomic replaces dir/name with data: a temporary file in dir,
// written, fsynced and closed, renamed over name, then dir fsynced.
func writeFileAtomic(dir, name string, data []byte, mode os.FileMode) error {
	tmp, err := stageFile(dir, name, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// stageFile writes data to a new temporary file next to dir/name and
// returns its path; the caller renames or removes it.
func stageFile(dir, name string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}

// commitFiles installs a verified key, certificate and CA certificate.
//
// Order (crash safety): pending.json already holds the key and, as the
// journal, the verified certificate. All three new files are staged as
// temporaries in Dir, read back and verified together (verify); then the
// cert.pem and key.pem being replaced are copied (atomically) to
// cert.pem.bak and key.pem.bak; only then are the new files renamed over
// ca.pem, cert.pem and finally key.pem, the directory is synced, and
// pending.json is removed last. A failure before the renames leaves the
// working set untouched; a crash between renames leaves pending.json, from
// which the next Enroll/Renew finishes the commit without contacting the
// server. A file that already holds its new content (renamed before such a
// crash) is not copied again, so the .bak files keep the previous set (a
// cert.pem kept while key.pem was missing leaves no key.pem.bak: an
// earlier one is removed, as it is not the key of that cert.pem.bak; with
// no cert.pem kept, the .bak files are left as they are). The key is
// never only in a temporary file.
func (c *Client) commitFiles(keyPEM, certPEMData, caPEM []byte, verify func(keyPEM, certPEM, caPEM []byte) error) error {
	dir := c.dir()
	type staged struct {
		name string
		data []byte
		mode os.FileMode
		tmp  string
	}
	files := []*staged{
		{name: CAFile, data: caPEM, mode: 0o644},
		{name: CertFile, data: certPEMData, mode: 0o644},
		{name: KeyFile, data: keyPEM, mode: 0o600},
	}
	cleanup := func() {
		for _, f := range files {
			if f.tmp != "" {
				os.Remove(f.tmp)
			}
		}
	}
	for _, f := range files {
		tmp, err := stageFile(dir, f.name, f.data, f.mode)
		if err != nil {
			cleanup()
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
		f.tmp = tmp
	}
	// Read back what is on disk and verify it as a set.
	var back [3][]byte
	for i, f := range files {
		b, err := os.ReadFile(f.tmp)
		if err != nil {
			cleanup()
			return err
		}
		back[i] = b
	}
	if err := verify(back[2], back[1], back[0]); err != nil {
		cleanup()
		return err
	}
	certKept := false // cert.pem.bak written now (cert.pem comes first)
	for _, f := range files[1:] {
		old, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, fs.ErrNotExist) && f.name == KeyFile {
			if !certKept {
				// no certificate replaced now (none installed, or renamed
				// by a run cut short, which removed it already): the .bak
				// files are an earlier pair
				continue
			}
			// the key was lost: a key.pem.bak is an earlier set's, which
			// must not pass for the key of the cert.pem.bak kept now
			err = os.Remove(filepath.Join(dir, KeyBackupFile))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				cleanup()
				return fmt.Errorf("removing the earlier %s: %w", KeyBackupFile, err)
			}
			continue
		}
		if errors.Is(err, fs.ErrNotExist) || err == nil && bytes.Equal(old, f.data) {
			continue
		}
		if err == nil {
			err = writeFileAtomic(dir, f.name+".bak", old, f.mode)
		}
		if err != nil {
			cleanup()
			return fmt.Errorf("keeping the previous %s: %w", f.name, err)
		}
		certKept = certKept || f.name == CertFile
	}
	for i, f := range files {
		if err := os.Rename(f.tmp, filepath.Join(dir, f.name)); err != nil {
			for _, g := range files[i:] {
				os.Remove(g.tmp)
			}
			return fmt.Errorf("installing %s: %w", f.name, err)
		}
		f.tmp = ""
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return c.removePending()
}

// unlockFunc releases the directory lock.
type unlockFunc func()

// lockDir takes the lock on Dir, then removes the temporaries that a
// writer killed before its rename left there (see removeStaleTemps).
func (c *Client) lockDir() (unlockFunc, error) {
	if err := os.MkdirAll(c.dir(), 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockFileExclusive(c.path(lockFile))
	if err != nil {
		return nil, err
	}
	if lockIsExclusive {
		removeStaleTemps(c.dir())
	}
	return unlock, nil
}

// tempNames are the files stageFile makes temporaries of.
var tempNames = []string{KeyFile, CertFile, CAFile, PendingFile, KeyBackupFile, CertBackupFile}

// isStaleTemp reports whether name is one of stageFile's temporaries:
// "." + a name of tempNames + ".tmp-" + the decimal digits os.CreateTemp
// puts for its "*".
func isStaleTemp(name string) bool {
	for _, n := range tempNames {
		digits, ok := strings.CutPrefix(name, "."+n+".tmp-")
		if ok && digits != "" && strings.Trim(digits, "0123456789") == "" {
			return true
		}
	}
	return false
}

// removeStaleTemps removes stageFile's temporaries (regular files only)
// from dir. With the lock on dir held no writer is between stageFile and
// its rename, so any found was left by a process killed there (kill -9,
// power loss); .key.pem.tmp-* ones hold a private key. Best effort: what
// cannot be removed stays, and the next run tries again.
func removeStaleTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	removed := false
	for _, e := range ents {
		if e.Type().IsRegular() && isStaleTemp(e.Name()) {
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				removed = true
			}
		}
	}
	if removed {
		syncDir(dir)
	}
}
