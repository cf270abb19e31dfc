package caddyenroll

import (
	"container/heap"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// CertificateInfo is an issued certificate as the admin API shows it.
type CertificateInfo struct {
	Profile     string    `json:"profile"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"sha256"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	IssuedAt    time.Time `json:"issued_at,omitzero"` // when it was signed (NotBefore is backdated); zero in records of earlier versions
	Revoked     bool      `json:"revoked"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	Reason      int       `json:"reason,omitempty"`
}

// certificateBefore orders a device's certificates as they were signed.
func certificateBefore(x, y *CertificateInfo) bool {
	return ca.SignedBefore(x.IssuedAt, x.NotBefore, y.IssuedAt, y.NotBefore)
}

func certificateInfo(profile string, rec *ca.Record) CertificateInfo {
	return CertificateInfo{Profile: profile, Serial: rec.Serial, Fingerprint: rec.Fingerprint,
		NotBefore: rec.NotBefore, NotAfter: rec.NotAfter, IssuedAt: rec.IssuedAt, Revoked: rec.Revoked, RevokedAt: rec.RevokedAt, Reason: rec.Reason}
}

// DeviceInfo is a device of the configuration file with its certificates.
type DeviceInfo struct {
	Name         string            `json:"name"`
	Group        string            `json:"group"`
	Enabled      bool              `json:"enabled"`
	Enrolled     bool              `json:"enrolled"`
	Certificates []CertificateInfo `json:"certificates"`
}

// devices answers a page of the file's devices with their certificates,
// in the order of their names (configfile.DeviceKey), as a JSON array; the
// Link header names the next page as listRequests does. A device's
// certificates take a storage read per CA: a page costs reads for its
// devices only (listing a carrier's 100,000 devices whole took seconds).
func (ad *adminAPI) devices(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return notAllowed(w, r, http.MethodGet)
	}
	q := r.URL.Query()
	limit, err := pageLimit(q)
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	after := q.Get("after")
	if len(after) > 255 {
		return apiErr(http.StatusBadRequest, fmt.Errorf("after must be a device name, not %d bytes", len(after)))
	}
	after = configfile.DeviceKey(after)
	// the limit+1 first names after after (one more tells whether more
	// follow), kept in a heap: no sort of the whole file per page
	var page devicePage
	ad.app.cfg.read(func(f *configfile.File) {
		for i := range f.Devices {
			d := &f.Devices[i]
			k := configfile.DeviceKey(d.Name)
			if k <= after || len(page) > limit && k >= page[0].key {
				continue
			}
			e := pageEntry{k, DeviceInfo{Name: d.Name, Group: d.Group, Enabled: d.Enabled, Enrolled: d.Enrolled}}
			if len(page) > limit {
				page[0] = e
				heap.Fix(&page, 0)
			} else {
				heap.Push(&page, e)
			}
		}
	})
	slices.SortFunc(page, func(x, y pageEntry) int { return strings.Compare(x.key, y.key) })
	more := len(page) > limit
	page = page[:min(len(page), limit)]
	out := make([]DeviceInfo, len(page))
	for i := range page {
		out[i] = page[i].DeviceInfo
		out[i].Certificates = []CertificateInfo{}
	}
	// each device's certificates from its index: those of devices the
	// file lists, up to deviceIndexRetention after they expired
	for profile, c := range ad.app.cas {
		for i := range out {
			recs, err := c.Records(r.Context(), out[i].Name)
			if errors.Is(err, ca.ErrBadDeviceName) {
				continue // a name no CA would certify
			}
			if err != nil {
				return apiErr(http.StatusInternalServerError, err)
			}
			for _, rec := range recs {
				out[i].Certificates = append(out[i].Certificates, certificateInfo(profile, &rec))
			}
		}
	}
	for i := range out {
		sort.SliceStable(out[i].Certificates, func(a, b int) bool {
			return certificateBefore(&out[i].Certificates[a], &out[i].Certificates[b])
		})
	}
	if more {
		next := url.Values{"after": {page[len(page)-1].key}, "limit": {strconv.Itoa(limit)}}
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
	}
	return writeJSON(w, out)
}

// devicePage is a max-heap of devices by name (configfile.DeviceKey): the
// first names of the list, the greatest on top.
type devicePage []pageEntry

type pageEntry struct {
	key string
	DeviceInfo
}

func (p devicePage) Len() int           { return len(p) }
func (p devicePage) Less(i, j int) bool { return p[i].key > p[j].key }
func (p devicePage) Swap(i, j int)      { p[i], p[j] = p[j], p[i] }
func (p *devicePage) Push(x any)        { *p = append(*p, x.(pageEntry)) }
func (p *devicePage) Pop() any {
	old := *p
	e := old[len(old)-1]
	*p = old[:len(old)-1]
	return e
}
