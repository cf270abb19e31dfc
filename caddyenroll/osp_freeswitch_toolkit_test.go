package caddyenroll_test

// FreeSWITCH's mod_osp (src/mod/applications/mod_osp/mod_osp.c, MPL 1.1)
// against a real Caddy: a harness linking the unmodified OSP Toolkit 4.33.1
// makes the toolkit calls mod_osp makes, with its arguments and buffer
// sizes, in its order (described in fswHarness's comment; no FreeSWITCH
// code is copied). Identifiers here start with fsw (the package's other
// test files are edited in parallel).

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/osptk"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

// fswHarness is a C program on the toolkit library making the calls
// mod_osp makes, written from a reading of mod_osp.c (current FreeSWITCH,
// the osplookup/ospnext version; FreeSWITCH 1.0's mod_osp, which reported
// usage from scratch, is the "lookup" and "scratch" modes):
//
//   - the provider: OSPPInit(0), the toolkit's test credentials (mod_osp
//     has no setting for a key or certificates: it always presents the
//     TransNexus test certificate and trusts the TransNexus test CA, the
//     same three base64 strings as test_app; here they come from the
//     environment, read from test_app.c), one service point, audit URL
//     "localhost", local validation, its profile defaults (SSL lifetime
//     300 s, 20 connections, persistence 60 s, retry delay 0, retry limit
//     2, timeout 10000 ms), empty customer and device ids;
//   - "call" is a call through the osplookup and ospnext applications and
//     the A leg's usage report: a new transaction; SetNetworkIds(source
//     network id or NULL, NULL), SetProtocol(source, sip),
//     SetNumberPortability with the inbound routing number, CIC and npdi
//     (none here), SetSIPHeader of the From display name (E.164 RPID, PAI
//     and P-Charge-Info users are empty here: mod_osp's calls fail
//     harmlessly), SetDiversion("", ""), SetUserAgent, SetServiceType
//     (voice, or npquery with the To host as preferred destination and one
//     destination asked for); RequestAuthorisation(source, source device,
//     calling, E.164, called, E.164, no user, no call id, preferred
//     destinations, max-destinations (default 12), no log); the
//     transaction id from OSPPTransactionGetContext; GetFirstDestination,
//     then GetNextDestination while a destination's protocol is one it
//     cannot dial (failure reason Q.850 111), with no timestamps, no call
//     id, no destination device and no token (size 0, NULL: mod_osp never
//     reads or forwards a token), called and calling numbers and the
//     destination into 512-byte buffers; for each, IsDestOSPEnabled,
//     GetDestProtocol, GetDestinationNetworkId, GetCNAM,
//     GetNumberPortabilityParameters and GetOperatorName of every type into
//     512-byte buffers, their errors ignored. Each failed bridge is
//     followed by ospnext: GetNextDestination with the bridge's Q.850
//     cause. At the A leg's hangup: SetRoleInfo(stop, osp, freeswitch),
//     RecordFailure(16 when a bridge connected, else the last failure's
//     cause), SetProviderPDD, SetSrcAudioAddr and
//     SetDestAudioAddr (the SDPs' addresses), SetProxyIngressAddr and
//     SetProxyEgressAddr (its own address), SetCDRProxy(device-ip,
//     "freeswitch", NULL), SetCodec of both sides, SetOctets and SetPackets
//     (RTP, source-to-reporter) when a bridge connected,
//     ReportUsage(duration in seconds (the toolkit takes milliseconds since
//     4.26), start, end, alert,
//     connect, post-dial delay present when it alerted, in ms, release
//     source, no conference id, packet losses -1), and the transaction is
//     deleted;
//   - "lookup" is FreeSWITCH 1.0's osp application: the same request
//     (without the SIP headers, user agent and custom info), then
//     GetFirstDestination and GetNextDestination (failure reason none)
//     for every destination announced, into 256-byte buffers (one that
//     fails drops the whole answer), and the transaction is deleted;
//   - "scratch" is FreeSWITCH 1.0's usage report at a B leg's hangup (it
//     kept only the transaction id): a new transaction,
//     BuildUsageFromScratch(transaction id, source role, source,
//     destination, source device, "" as destination device, calling,
//     E.164, called, E.164, the B leg's Call-ID, failure reason 0),
//     SetDestinationCount, SetProtocol of source and destination (sip),
//     SetDestNetworkId when known, SetCodec of both sides, SetOctets and
//     SetPackets (RTP, both directions), SetRoleInfo(stop when this was the
//     last destination or the call was cleared normally (Q.850 16), else
//     interim; osp; freeswitch), RecordFailure(the Q.850 cause),
//     ReportUsage as above.
//
// Addresses are given as mod_osp passes them: IPv4 as "[a.b.c.d]" or
// "[a.b.c.d]:port", host names as they are.
//
// usage:
//
//	fsw SP call SOURCE SRCDEV CALLING CALLED MAXDEST voice|npquery PREFERRED CAUSES DURATION
//	  prints: route errcode=N total=N transid=N
//	          per destination read: dest n=N errcode=N addr=A called=C calling=C limit=N enabled=N proto=P nid=I rn=R cic=C npdi=N
//	          usage report=N (when the lookup succeeded)
//	  CAUSES: the Q.850 causes of the bridges that fail before the one
//	  that connects for DURATION seconds, comma-separated, or "-"; when
//	  no destination is left the call fails (its usage still reported)
//	fsw SP lookup SOURCE SRCDEV CALLING CALLED MAXDEST
//	  prints: route and dest lines as call does, without usage
//	fsw SP scratch SOURCE DEST SRCDEV CALLING CALLED CALLID TRANSID COUNT TOTAL CAUSE DESTNID DURATION
//	  prints: usage build=N report=N
//
// (PREFERRED and DESTNID "-" for none.)
const fswHarness = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "osp/osp.h"
#include "osp/ospb64.h"
#include "osp/osptrans.h"

#define FSW_BUF 512

static const char *opt(const char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

static int provider_new(const char *sp, OSPTPROVHANDLE *provider)
{
    unsigned char keydata[1024], certdata[1024], cadata[1024];
    OSPTPRIVATEKEY key;
    OSPT_CERT cert, ca;
    const OSPT_CERT *cas[1];
    const char *sps[1];
    const char *k = getenv("FSW_PKEY"), *c = getenv("FSW_LCERT"), *a = getenv("FSW_CACERT");
    int err;

    if (k == NULL || c == NULL || a == NULL) {
        fprintf(stderr, "fsw: FSW_PKEY, FSW_LCERT, FSW_CACERT must be set\n");
        exit(2);
    }
    key.PrivateKeyData = keydata;
    key.PrivateKeyLength = sizeof(keydata);
    cert.CertData = certdata;
    cert.CertDataLength = sizeof(certdata);
    ca.CertData = cadata;
    ca.CertDataLength = sizeof(cadata);
    if ((err = OSPPBase64Decode(k, strlen(k), key.PrivateKeyData, &key.PrivateKeyLength)) != OSPC_ERR_NO_ERROR ||
        (err = OSPPBase64Decode(c, strlen(c), cert.CertData, &cert.CertDataLength)) != OSPC_ERR_NO_ERROR ||
        (err = OSPPBase64Decode(a, strlen(a), ca.CertData, &ca.CertDataLength)) != OSPC_ERR_NO_ERROR) {
        fprintf(stderr, "fsw: decoding the test credentials: %d\n", err);
        return err;
    }
    cas[0] = &ca;
    sps[0] = sp;
    return OSPPProviderNew(1, sps, NULL, "localhost", &key, &cert, 1, cas, 1, 300, 20, 60, 0, 2, 10000, "", "", provider);
}

static const char *protoname(OSPE_PROTOCOL_NAME p)
{
    switch (p) {
    case OSPC_PROTNAME_SIP: return "sip";
    case OSPC_PROTNAME_Q931: return "h323";
    case OSPC_PROTNAME_IAX: return "iax";
    case OSPC_PROTNAME_SKYPE: return "skype";
    case OSPC_PROTNAME_UNDEFINED: return "undefined";
    case OSPC_PROTNAME_UNKNOWN: return "unknown";
    default: return "unsupported";
    }
}

/* reads a destination as mod_osp's check; returns 1 when mod_osp would dial it */
static int destination(OSPTTRANHANDLE trans, unsigned n, int err, const char *addr, const char *called, const char *calling, unsigned limit)
{
    OSPE_DEST_OSPENABLED enabled = OSPC_DOSP_UNKNOWN;
    OSPE_PROTOCOL_NAME proto = OSPC_PROTNAME_UNKNOWN;
    OSPE_OPERATOR_NAME type;
    char nid[FSW_BUF] = "", cnam[FSW_BUF] = "", rn[FSW_BUF] = "", cic[FSW_BUF] = "", opname[FSW_BUF];
    int npdi = 0;

    if (err == OSPC_ERR_NO_ERROR) {
        OSPPTransactionIsDestOSPEnabled(trans, &enabled);
        OSPPTransactionGetDestProtocol(trans, &proto);
        if (OSPPTransactionGetDestinationNetworkId(trans, sizeof(nid), nid) != OSPC_ERR_NO_ERROR) {
            nid[0] = '\0';
        }
        if (OSPPTransactionGetCNAM(trans, sizeof(cnam), cnam) != OSPC_ERR_NO_ERROR) {
            cnam[0] = '\0';
        }
        if (OSPPTransactionGetNumberPortabilityParameters(trans, sizeof(rn), rn, sizeof(cic), cic, &npdi) != OSPC_ERR_NO_ERROR) {
            rn[0] = cic[0] = '\0';
            npdi = 0;
        }
        for (type = OSPC_OPNAME_START; type < OSPC_OPNAME_NUMBER; type++) {
            OSPPTransactionGetOperatorName(trans, type, sizeof(opname), opname);
        }
    }
    printf("dest n=%u errcode=%d addr=%s called=%s calling=%s limit=%u enabled=%d proto=%s nid=%s rn=%s cic=%s npdi=%d\n",
        n, err, addr, called, calling, limit, (int)enabled, protoname(proto), nid, rn, cic, npdi);
    /* only sip is configured (osp.conf.xml's <param name="sip" module="sofia" profile="external"/>),
       and the default protocol for unknown/undefined ones is sip */
    return err == OSPC_ERR_NO_ERROR && (proto == OSPC_PROTNAME_SIP || proto == OSPC_PROTNAME_UNKNOWN || proto == OSPC_PROTNAME_UNDEFINED);
}

/* GetNextDestination until one mod_osp can dial; returns it count or 0 */
static unsigned next(OSPTTRANHANDLE trans, unsigned count, unsigned total, unsigned cause)
{
    char called[FSW_BUF], calling[FSW_BUF], addr[FSW_BUF];
    unsigned callidlen = 0, tokenlen = 0, limit = 0;
    int err;

    while (count < total) {
        count++;
        called[0] = calling[0] = addr[0] = '\0';
        err = OSPPTransactionGetNextDestination(trans, (OSPEFAILREASON)cause, 0, NULL, NULL, &limit, &callidlen, NULL,
            sizeof(called), called, sizeof(calling), calling, sizeof(addr), addr, 0, NULL, &tokenlen, NULL);
        if (destination(trans, count, err, addr, called, calling, limit)) {
            return count;
        }
        if (err != OSPC_ERR_NO_ERROR) {
            return 0;
        }
        cause = 111; /* mod_osp: protocol error, unspecified */
    }
    return 0;
}

static int call(char **a)
{
    OSPTPROVHANDLE provider = -1;
    OSPTTRANHANDLE trans = -1;
    OSPTTRANS *ctx;
    const char *preferred[2] = { NULL, NULL };
    unsigned total = (unsigned)atoi(a[4]), callidlen = 0, tokenlen = 0, limit = 0, count, dummy = 0, cause = 0;
    unsigned duration = (unsigned)atoi(a[8]);
    unsigned long long transid = 0;
    char called[FSW_BUF] = "", calling[FSW_BUF] = "", addr[FSW_BUF] = "", causes[FSW_BUF];
    char *tok, *save;
    time_t end = time(NULL), connect = end - duration, alert = connect - 2, start = alert - 1;
    int err;

    if ((err = provider_new(a[-2], &provider)) == OSPC_ERR_NO_ERROR) {
        err = OSPPTransactionNew(provider, &trans);
    }
    if (err != OSPC_ERR_NO_ERROR) {
        printf("route errcode=%d total=0 transid=0\n", err);
        return 0;
    }
    /* osplookup */
    OSPPTransactionSetNetworkIds(trans, NULL, NULL);
    OSPPTransactionSetProtocol(trans, OSPC_PROTTYPE_SOURCE, OSPC_PROTNAME_SIP);
    OSPPTransactionSetNumberPortability(trans, "", "", 0);
    OSPPTransactionSetSIPHeader(trans, OSPC_SIPHEADER_FROM, OSPC_NFORMAT_DISPLAYNAME, "Alice");
    OSPPTransactionSetSIPHeader(trans, OSPC_SIPHEADER_RPID, OSPC_NFORMAT_E164, "");
    OSPPTransactionSetSIPHeader(trans, OSPC_SIPHEADER_PAI, OSPC_NFORMAT_E164, "");
    OSPPTransactionSetSIPHeader(trans, OSPC_SIPHEADER_PCI, OSPC_NFORMAT_E164, "");
    OSPPTransactionSetDiversion(trans, "", "");
    OSPPTransactionSetUserAgent(trans, "FreeSWITCH-mod_sofia/1.10.12-release~64bit");
    if (strcmp(a[5], "npquery") == 0) {
        OSPPTransactionSetServiceType(trans, OSPC_SERVICE_NPQUERY);
        preferred[0] = opt(a[6]) != NULL ? a[6] : a[0];
        total = 1;
    } else {
        OSPPTransactionSetServiceType(trans, OSPC_SERVICE_VOICE);
    }
    err = OSPPTransactionRequestAuthorisation(trans, a[0], a[1], a[2], OSPC_NFORMAT_E164, a[3], OSPC_NFORMAT_E164,
        NULL, 0, NULL, preferred, &total, NULL, NULL);
    if (err != OSPC_ERR_NO_ERROR || total == 0) {
        /* mod_osp reports no usage for a failed lookup */
        printf("route errcode=%d total=%u transid=0\n", err, err == OSPC_ERR_NO_ERROR ? total : 0);
        return 0;
    }
    ctx = OSPPTransactionGetContext(trans, &err);
    if (err == OSPC_ERR_NO_ERROR) {
        transid = (unsigned long long)ctx->TransactionID;
    }
    printf("route errcode=%d total=%u transid=%llu\n", err, total, transid);
    count = 1;
    err = OSPPTransactionGetFirstDestination(trans, 0, NULL, NULL, &limit, &callidlen, NULL,
        sizeof(called), called, sizeof(calling), calling, sizeof(addr), addr, 0, NULL, &tokenlen, NULL);
    if (!destination(trans, count, err, addr, called, calling, limit)) {
        count = next(trans, count, total, 111);
    }
    /* each failed bridge, then ospnext with its cause; when none is left
       the call fails, and its usage is still reported */
    if (count != 0 && strcmp(a[7], "-") != 0) {
        strncpy(causes, a[7], sizeof(causes) - 1);
        causes[sizeof(causes) - 1] = '\0';
        for (tok = strtok_r(causes, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
            cause = (unsigned)atoi(tok);
            if ((count = next(trans, count, total, cause)) == 0) {
                break;
            }
        }
    }
    if (count == 0) {
        duration = 0;
        connect = 0;
    } else {
        cause = 16;
    }
    /* the A leg's hangup */
    OSPPTransactionSetRoleInfo(trans, OSPC_RSTATE_STOP, OSPC_RFORMAT_OSP, OSPC_RVENDOR_FREESWITCH);
    OSPPTransactionRecordFailure(trans, (OSPEFAILREASON)cause);
    OSPPTransactionSetProviderPDD(trans, 2500);
    if (count != 0) { /* answered: media addresses, codecs and RTP counters */
        OSPPTransactionSetSrcAudioAddr(trans, "127.0.0.1");
        OSPPTransactionSetDestAudioAddr(trans, "127.0.0.2");
    }
    OSPPTransactionSetProxyIngressAddr(trans, "127.0.0.1");
    OSPPTransactionSetProxyEgressAddr(trans, "127.0.0.1");
    OSPPTransactionSetCDRProxy(trans, "127.0.0.1:5080", "freeswitch", NULL);
    if (count != 0) {
        OSPPTransactionSetCodec(trans, OSPC_CODEC_SOURCE, "PCMU");
        OSPPTransactionSetCodec(trans, OSPC_CODEC_DESTINATION, "PCMA");
        OSPPTransactionSetOctets(trans, OSPC_SMETRIC_RTP, OSPC_SDIR_SRCREP, 160000);
        OSPPTransactionSetPackets(trans, OSPC_SMETRIC_RTP, OSPC_SDIR_SRCREP, 1000);
    }
    err = OSPPTransactionReportUsage(trans, duration, start, end, alert, connect, 1, 3000, OSPC_RELEASE_SOURCE,
        NULL, -1, -1, -1, -1, &dummy, NULL);
    printf("usage report=%d\n", err);
    OSPPTransactionDelete(trans);
    return 0;
}

/* FreeSWITCH 1.0's osp application: every destination at once, 256-byte buffers */
static int lookup(char **a)
{
    OSPTPROVHANDLE provider = -1;
    OSPTTRANHANDLE trans = -1;
    OSPTTRANS *ctx;
    const char *preferred[2] = { NULL, NULL };
    unsigned total = (unsigned)atoi(a[4]), callidlen = 0, tokenlen = 0, limit = 0, i;
    unsigned long long transid = 0;
    char called[256], calling[256], addr[256];
    int err;

    if ((err = provider_new(a[-2], &provider)) == OSPC_ERR_NO_ERROR) {
        err = OSPPTransactionNew(provider, &trans);
    }
    if (err != OSPC_ERR_NO_ERROR) {
        printf("route errcode=%d total=0 transid=0\n", err);
        return 0;
    }
    OSPPTransactionSetProtocol(trans, OSPC_PROTTYPE_SOURCE, OSPC_PROTNAME_SIP);
    OSPPTransactionSetNumberPortability(trans, "", "", 0);
    OSPPTransactionSetDiversion(trans, "", "");
    OSPPTransactionSetNetworkIds(trans, NULL, NULL);
    OSPPTransactionSetServiceType(trans, OSPC_SERVICE_VOICE);
    err = OSPPTransactionRequestAuthorisation(trans, a[0], a[1], a[2], OSPC_NFORMAT_E164, a[3], OSPC_NFORMAT_E164,
        NULL, 0, NULL, preferred, &total, NULL, NULL);
    if (err != OSPC_ERR_NO_ERROR || total == 0) {
        printf("route errcode=%d total=%u transid=0\n", err, err == OSPC_ERR_NO_ERROR ? total : 0);
        return 0;
    }
    ctx = OSPPTransactionGetContext(trans, &err);
    if (err == OSPC_ERR_NO_ERROR) {
        transid = (unsigned long long)ctx->TransactionID;
    }
    printf("route errcode=%d total=%u transid=%llu\n", err, total, transid);
    for (i = 0; i < total; i++) {
        called[0] = calling[0] = addr[0] = '\0';
        if (i == 0) {
            err = OSPPTransactionGetFirstDestination(trans, 0, NULL, NULL, &limit, &callidlen, NULL,
                sizeof(called), called, sizeof(calling), calling, sizeof(addr), addr, 0, NULL, &tokenlen, NULL);
        } else {
            err = OSPPTransactionGetNextDestination(trans, OSPC_FAIL_NONE, 0, NULL, NULL, &limit, &callidlen, NULL,
                sizeof(called), called, sizeof(calling), calling, sizeof(addr), addr, 0, NULL, &tokenlen, NULL);
        }
        destination(trans, i + 1, err, addr, called, calling, limit);
        if (err != OSPC_ERR_NO_ERROR) {
            break; /* the 1.0 module then drops every destination */
        }
    }
    OSPPTransactionDelete(trans); /* no usage on this transaction */
    return 0;
}

static int scratch(char **a)
{
    OSPTPROVHANDLE provider = -1;
    OSPTTRANHANDLE trans = -1;
    unsigned count = (unsigned)atoi(a[7]), total = (unsigned)atoi(a[8]), cause = (unsigned)atoi(a[9]);
    unsigned duration = (unsigned)atoi(a[11]);
    time_t end = time(NULL), connect = duration > 0 ? end - duration : 0, start = end - duration - 3, alert = start + 1;
    int err, build;

    if ((err = provider_new(a[-2], &provider)) == OSPC_ERR_NO_ERROR) {
        err = OSPPTransactionNew(provider, &trans);
    }
    if (err != OSPC_ERR_NO_ERROR) {
        printf("usage build=%d report=-1\n", err);
        return 0;
    }
    build = OSPPTransactionBuildUsageFromScratch(trans, (OSPTUINT64)strtoull(a[6], NULL, 10), OSPC_ROLE_SOURCE,
        a[0], a[1], a[2], "", a[3], OSPC_NFORMAT_E164, a[4], OSPC_NFORMAT_E164, strlen(a[5]), a[5], 0, NULL, NULL);
    if (build != OSPC_ERR_NO_ERROR) {
        printf("usage build=%d report=-1\n", build);
        return 0;
    }
    OSPPTransactionSetDestinationCount(trans, count);
    OSPPTransactionSetProtocol(trans, OSPC_PROTTYPE_SOURCE, OSPC_PROTNAME_SIP);
    OSPPTransactionSetProtocol(trans, OSPC_PROTTYPE_DESTINATION, OSPC_PROTNAME_SIP);
    if (opt(a[10]) != NULL) {
        OSPPTransactionSetDestNetworkId(trans, a[10]);
    }
    OSPPTransactionSetCodec(trans, OSPC_CODEC_SOURCE, "PCMU");
    OSPPTransactionSetCodec(trans, OSPC_CODEC_DESTINATION, "PCMA");
    if (duration > 0) {
        OSPPTransactionSetOctets(trans, OSPC_SMETRIC_RTP, OSPC_SDIR_SRCREP, 160000);
        OSPPTransactionSetOctets(trans, OSPC_SMETRIC_RTP, OSPC_SDIR_DESTREP, 159840);
        OSPPTransactionSetPackets(trans, OSPC_SMETRIC_RTP, OSPC_SDIR_SRCREP, 1000);
        OSPPTransactionSetPackets(trans, OSPC_SMETRIC_RTP, OSPC_SDIR_DESTREP, 999);
    }
    OSPPTransactionSetRoleInfo(trans, (count == total || cause == 16) ? OSPC_RSTATE_STOP : OSPC_RSTATE_INTERIM,
        OSPC_RFORMAT_OSP, OSPC_RVENDOR_FREESWITCH);
    OSPPTransactionRecordFailure(trans, (OSPEFAILREASON)cause);
    err = OSPPTransactionReportUsage(trans, duration, start, end, alert, connect, duration > 0, duration > 0 ? 2500 : 0,
        cause == 16 ? OSPC_RELEASE_DESTINATION : OSPC_RELEASE_SOURCE, NULL, -1, -1, -1, -1, NULL, NULL);
    printf("usage build=%d report=%d\n", build, err);
    return 0;
}

int main(int argc, char *argv[])
{
    int err;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SP call|scratch ...\n", argv[0]);
        return 2;
    }
    if ((err = OSPPInit(OSPC_FALSE)) != OSPC_ERR_NO_ERROR) {
        fprintf(stderr, "fsw: OSPPInit: %d\n", err);
        return 2;
    }
    if (strcmp(argv[2], "call") == 0 && argc == 12) {
        call(argv + 3);
    } else if (strcmp(argv[2], "lookup") == 0 && argc == 8) {
        lookup(argv + 3);
    } else if (strcmp(argv[2], "scratch") == 0 && argc == 15) {
        scratch(argv + 3);
    } else {
        fprintf(stderr, "fsw: bad arguments\n");
        return 2;
    }
    fflush(stdout);
    _exit(0); /* no provider shutdown: OSPPProviderDelete waits for its queue */
}
`

var (
	fswRouteOut   = regexp.MustCompile(`route errcode=(-?\d+) total=(\d+) transid=(\d+)`)
	fswDestOut    = regexp.MustCompile(`dest n=(\d+) errcode=(-?\d+) addr=(\S*) called=(\S*) calling=(\S*) limit=(\d+) enabled=(\d+) proto=(\S+) nid=(\S*) rn=(\S*) cic=(\S*) npdi=(\d+)`)
	fswReportOut  = regexp.MustCompile(`usage report=(-?\d+|none)`)
	fswScratchOut = regexp.MustCompile(`usage build=(-?\d+) report=(-?\d+)`)
	fswCred       = regexp.MustCompile(`const char\* (B64PKey|B64LCert|B64CACert) = "([A-Za-z0-9+/=]+)";`)
)

// fswGateway runs the harness with the toolkit's test credentials.
type fswGateway struct {
	t   *testing.T
	exe string
	env []string
}

// fswNewGateway builds the harness and reads the test credentials mod_osp
// compiles in (the same as test_app's) from the toolkit's test_app.c.
func fswNewGateway(t *testing.T) *fswGateway {
	t.Helper()
	src := filepath.Join(t.TempDir(), "fsw.c")
	if err := os.WriteFile(src, []byte(fswHarness), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := osptk.BuildHarness(t, src)
	app, err := os.ReadFile(filepath.Join(osptk.Source(), "test", "test_app.c"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"B64PKey": "FSW_PKEY", "B64LCert": "FSW_LCERT", "B64CACert": "FSW_CACERT"}
	env := os.Environ()
	for _, m := range fswCred.FindAllStringSubmatch(string(app), -1) {
		env = append(env, names[m[1]]+"="+m[2])
		delete(names, m[1])
	}
	if len(names) != 0 {
		t.Fatalf("test/test_app.c: the base64 test credentials %v not found", names)
	}
	return &fswGateway{t: t, exe: exe, env: env}
}

func (g *fswGateway) run(args ...string) string {
	g.t.Helper()
	return runHarness(g.t, "fsw", g.exe, "", g.env, args...)
}

// fswDest is a destination as the harness read it.
type fswDest struct {
	n, errcode            int
	addr, called, calling string
	limit, enabled        int
	proto, nid, rn, cic   string
	npdi                  int
}

// fswCall is what a call through mod_osp did: the lookup's error code
// and destinations announced (total), the transaction id, the
// destinations read and ReportUsage's error code ("none": not reported).
type fswCall struct {
	errcode, total int
	transID        uint64
	dests          []fswDest
	report         string
	out            string
}

// fswCallOpts is a call: the service type (voice or npquery), the
// Q.850 causes of the bridges that fail before one connects, and how
// long that one lasts.
type fswCallOpts struct {
	maxDest  int
	srvType  string
	causes   []int
	duration int
}

// call makes a call through sp as mod_osp in direct mode does: its
// device-ip is the source, the caller's address the source device.
func (g *fswGateway) call(sp string, o fswCallOpts) fswCall {
	g.t.Helper()
	causes := make([]string, len(o.causes))
	for i, c := range o.causes {
		causes[i] = strconv.Itoa(c)
	}
	list := strings.Join(causes, ",")
	if list == "" {
		list = "-"
	}
	return g.parse(g.run(sp, "call", fswSource, fswSrcDev, otkCalling, otkCalled, strconv.Itoa(o.maxDest), o.srvType, "-", list, strconv.Itoa(o.duration)))
}

// lookup routes a call through sp as FreeSWITCH 1.0's osp application
// did, reading every destination and reporting no usage.
func (g *fswGateway) lookup(sp string, maxDest int) fswCall {
	g.t.Helper()
	return g.parse(g.run(sp, "lookup", fswSource, fswSrcDev, otkCalling, otkCalled, strconv.Itoa(maxDest)))
}

func (g *fswGateway) parse(out string) fswCall {
	g.t.Helper()
	m := fswRouteOut.FindStringSubmatch(out)
	if m == nil {
		g.t.Fatalf("fsw printed: %s", out)
	}
	r := fswCall{out: out, report: "none"}
	r.errcode, _ = strconv.Atoi(m[1])
	r.total, _ = strconv.Atoi(m[2])
	r.transID, _ = strconv.ParseUint(m[3], 10, 64)
	for _, d := range fswDestOut.FindAllStringSubmatch(out, -1) {
		var x fswDest
		x.n, _ = strconv.Atoi(d[1])
		x.errcode, _ = strconv.Atoi(d[2])
		x.addr, x.called, x.calling = d[3], d[4], d[5]
		x.limit, _ = strconv.Atoi(d[6])
		x.enabled, _ = strconv.Atoi(d[7])
		x.proto, x.nid, x.rn, x.cic = d[8], d[9], d[10], d[11]
		x.npdi, _ = strconv.Atoi(d[12])
		r.dests = append(r.dests, x)
	}
	if m := fswReportOut.FindStringSubmatch(out); m != nil {
		r.report = m[1]
	}
	return r
}

// checkTable7 checks that a lookup read Table 7's two destinations as
// mod_osp reads them: address, numbers, sip, OSP-enabled (OSPC_DOSP_TRUE,
// 2), the device's name as network id, a time limit.
func (r fswCall) checkTable7(t *testing.T) {
	t.Helper()
	if r.errcode != 0 || r.total != 2 || r.transID == 0 || len(r.dests) != 2 {
		t.Fatalf("lookup: want 2 destinations and a transaction id:\n%s", r.out)
	}
	for i, want := range []struct{ addr, nid string }{{otkFirst, "device2.itsp.com"}, {otkSecond, "device4.carrier.com"}} {
		d := r.dests[i]
		if d.n != i+1 || d.errcode != 0 || d.addr != want.addr || d.called != otkCalled || d.calling != otkCalling ||
			d.enabled != 2 || d.proto != "sip" || d.nid != want.nid || d.limit <= 0 || d.rn != "" || d.cic != "" || d.npdi != 0 {
			t.Errorf("destination %d: %+v, want %s (network id %s), %s -> %s, sip, OSP-enabled, a time limit", i+1, d, want.addr, want.nid, otkCalling, otkCalled)
		}
	}
}

// fswAttempt is one B leg whose usage FreeSWITCH 1.0's mod_osp reports.
type fswAttempt struct {
	dest, callID, destNID string
	count, total, cause   int
	duration              int
}

// scratch reports an attempt as FreeSWITCH 1.0's mod_osp did at the B
// leg's hangup and returns BuildUsageFromScratch's and ReportUsage's
// error codes.
func (g *fswGateway) scratch(sp string, transID uint64, a fswAttempt) (build, report int) {
	g.t.Helper()
	out := g.run(sp, "scratch", fswSource, a.dest, fswSrcDev, otkCalling, otkCalled, a.callID, strconv.FormatUint(transID, 10),
		strconv.Itoa(a.count), strconv.Itoa(a.total), strconv.Itoa(a.cause), a.destNID, strconv.Itoa(a.duration))
	m := fswScratchOut.FindStringSubmatch(out)
	if m == nil {
		g.t.Fatalf("fsw scratch printed: %s", out)
	}
	build, _ = strconv.Atoi(m[1])
	report, _ = strconv.Atoi(m[2])
	return build, report
}

// fswCDR is what these tests read of a stored record.
type fswCDR struct {
	TransactionID uint64            `json:"transaction_id,string"`
	Role          string            `json:"role"`
	RoleState     string            `json:"role_state"`
	Reporter      string            `json:"reporter"`
	Source        string            `json:"transaction_source"`
	Issued        *bool             `json:"transaction_issued"`
	CallID        string            `json:"call_id"`
	Calling       string            `json:"calling"`
	Called        string            `json:"called"`
	Destination   string            `json:"destination"`
	DestDevice    string            `json:"destination_device"`
	Duration      float64           `json:"duration_seconds"`
	Reported      *float64          `json:"reported_duration_seconds"`
	TermCauses    []string          `json:"term_causes"`
	PDD           *float64          `json:"post_dial_delay_seconds"`
	ProviderPDD   *float64          `json:"provider_post_dial_delay_seconds"`
	Protocol      string            `json:"protocol"`
	Statistics    map[string]string `json:"statistics"`
	Details       map[string]string `json:"details"`
}

// fswReportedAsMilliseconds reports whether c keeps the duration as the
// toolkit wrote it (a thousandth of the call's) beside the corrected one
// exactly when the call connected.
func fswReportedAsMilliseconds(c fswCDR) bool {
	if c.Duration == 0 {
		return c.Reported == nil
	}
	return c.Reported != nil && *c.Reported == c.Duration/1000
}

func (s *legServer) fswCDRs() []fswCDR {
	s.t.Helper()
	code, body := s.Admin("GET", "/enroll/cdrs", "")
	if code != 200 {
		s.t.Fatalf("GET /enroll/cdrs: %d %s", code, body)
	}
	var list []fswCDR
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		s.t.Fatalf("%v: %s", err, body)
	}
	return list
}

// fswUndefined is the call id of every record of a call through
// mod_osp, base64 as records keep call ids: it gives the toolkit none, and
// the toolkit then sends "UNDEFINED".
var fswUndefined = base64.StdEncoding.EncodeToString([]byte("UNDEFINED"))

// mod_osp's direct work mode: its profile's device-ip (here
// 127.0.0.1:5080, the FreeSWITCH SIP profile) is the source, the
// caller's address the source device.
const (
	fswSource = "[127.0.0.1]:5080"
	fswSrcDev = "[127.0.0.1]"
)

// A FreeSWITCH on the toolkit makes calls as mod_osp does, against the
// shipped legacy example's two OSP sites (plain HTTP with unsigned tokens,
// HTTPS with signed ones), identified by its source address (mod_osp
// presents the toolkit's expired TransNexus test certificate, which no
// setting replaces): osplookup reads Table 7's first destination with no
// token buffer, its protocol, OSP version and network id; each failed
// bridge is followed by ospnext with its cause; the A leg's usage report
// is stored as the source's records of every attempt of the transaction
// the authorization made, with the call id "UNDEFINED" (mod_osp gives
// none) and, for the call that connected, the duration the toolkit reads
// from mod_osp's seconds as milliseconds. A number portability query
// (service-type npquery) is refused with 501, which the toolkit returns as
// 11495, and mod_osp then reports no usage.
func TestOSPFreeSWITCHModOSP(t *testing.T) {
	g := fswNewGateway(t)
	s := otkStart(t, false)
	type attempt struct {
		dest, nid string
		cause     int
		duration  float64
	}
	for _, sp := range []string{"http://" + s.httpAddr + "/osp", "https://" + s.tlsAddr + "/osp"} {
		for _, tc := range []struct {
			name     string
			opts     fswCallOpts
			attempts []attempt
		}{
			// mod_osp passes ReportUsage the duration in seconds, which the
			// toolkit takes in milliseconds since 4.26: a 30 s call is
			// reported as 0.03 s, and recorded as 30 s (the reported value
			// kept beside it), since its connect and end times say so
			{"busy then connected", fswCallOpts{maxDest: 12, srvType: "voice", causes: []int{17}, duration: 30},
				[]attempt{{otkFirst, "device2.itsp.com", 17, 0}, {otkSecond, "device4.carrier.com", 16, 30}}},
			{"busy then no answer", fswCallOpts{maxDest: 12, srvType: "voice", causes: []int{17, 19}},
				[]attempt{{otkFirst, "device2.itsp.com", 17, 0}, {otkSecond, "device4.carrier.com", 19, 0}}},
		} {
			t.Run(sp+" "+tc.name, func(t *testing.T) {
				before := len(s.fswCDRs())
				r := g.call(sp, tc.opts)
				r.checkTable7(t)
				if r.report != "0" {
					t.Fatalf("ReportUsage: %s, want 0:\n%s", r.report, r.out)
				}
				list := s.fswCDRs()
				if len(list) != before+len(tc.attempts) {
					t.Fatalf("want %d more CDRs (one per attempt), got %+v", len(tc.attempts), list[before:])
				}
				byDest := map[string]fswCDR{}
				for _, c := range list[before:] {
					byDest[c.Destination] = c
				}
				for _, want := range tc.attempts {
					c, ok := byDest[want.dest]
					if !ok || c.TransactionID != r.transID || c.Role != "source" || c.Reporter != otkSource ||
						c.Source != otkSource || c.Issued == nil || !*c.Issued || c.Calling != otkCalling || c.Called != otkCalled ||
						c.CallID != fswUndefined ||
						c.DestDevice != want.nid || c.Duration != want.duration || !fswReportedAsMilliseconds(c) || len(c.TermCauses) != 1 ||
						!strings.HasPrefix(c.TermCauses[0], fmt.Sprintf("q850:%d:", want.cause)) || c.RoleState != "stop" ||
						c.Details["RoleInfo.VendorInfo"] != "freeswitch" {
						t.Errorf("record of the attempt at %s: %+v, want the source's (%s) of transaction %d, call id UNDEFINED, destination device %s, %v s, cause %d, state stop, vendor freeswitch",
							want.dest, c, otkSource, r.transID, want.nid, want.duration, want.cause)
					}
				}
				if tc.opts.duration > 0 {
					if c := byDest[otkSecond]; c.PDD == nil || *c.PDD != 3 || c.ProviderPDD == nil || *c.ProviderPDD != 2.5 ||
						c.Details["Codec[service:voice,type:source]"] != "PCMU" {
						t.Errorf("connected call: %+v, want post-dial delays of 3 s and 2.5 s (provider), codec PCMU", c)
					}
				}
				t.Logf("records: %+v", list[before:])
			})
		}
		t.Run(sp+" npquery", func(t *testing.T) {
			before := len(s.fswCDRs())
			r := g.call(sp, fswCallOpts{maxDest: 12, srvType: "npquery", duration: 30})
			if r.errcode != 11495 || len(r.dests) != 0 || r.report != "none" { // OSP status 501
				t.Errorf("npquery: want error 11495 and no usage:\n%s", r.out)
			}
			if list := s.fswCDRs(); len(list) != before {
				t.Errorf("npquery: records %+v, want none", list[before:])
			}
		})
	}
}

// FreeSWITCH 1.0's mod_osp read every destination of the answer into
// 256-byte buffers and reported each B leg's usage from scratch
// (OSPPTransactionBuildUsageFromScratch with the transaction id it kept,
// as the OpenSIPS/Kamailio modules do): a busy first attempt (interim) and
// a connected second one (stop), each its own UsageIndication, are stored
// as the source's records of the transaction.
func TestOSPFreeSWITCHUsageFromScratch(t *testing.T) {
	g := fswNewGateway(t)
	s := otkStart(t, false)
	sp := "http://" + s.httpAddr + "/osp"
	r := g.lookup(sp, 5)
	r.checkTable7(t)
	before := len(s.fswCDRs())
	attempts := []fswAttempt{
		{dest: otkFirst, callID: "a84b4c76e66710@127.0.0.1", destNID: "device2.itsp.com", count: 1, total: 2, cause: 17},
		{dest: otkSecond, callID: "b84b4c76e66711@127.0.0.1", destNID: "device4.carrier.com", count: 2, total: 2, cause: 16, duration: 30},
	}
	// the record's duration: mod_osp passes seconds, which the toolkit
	// takes in milliseconds since 4.26 (a 1.0 build, on an older toolkit,
	// reported seconds): reported as 0.03 s, recorded as 30 s
	recorded := map[string]float64{otkFirst: 0, otkSecond: 30}
	for _, a := range attempts {
		if build, report := g.scratch(sp, r.transID, a); build != 0 || report != 0 {
			t.Fatalf("usage of the attempt at %s: BuildUsageFromScratch %d, ReportUsage %d", a.dest, build, report)
		}
	}
	list := s.fswCDRs()
	if len(list) != before+2 {
		t.Fatalf("want 2 more CDRs, got %+v", list[before:])
	}
	byDest := map[string]fswCDR{}
	for _, c := range list[before:] {
		byDest[c.Destination] = c
	}
	for _, a := range attempts {
		c, ok := byDest[a.dest]
		state := "interim"
		if a.cause == 16 {
			state = "stop"
		}
		if !ok || c.TransactionID != r.transID || c.Role != "source" || c.Reporter != otkSource ||
			c.Source != otkSource || c.Issued == nil || !*c.Issued || c.CallID != base64.StdEncoding.EncodeToString([]byte(a.callID)) ||
			c.Calling != otkCalling || c.Called != otkCalled || c.DestDevice != a.destNID ||
			c.Duration != recorded[a.dest] || !fswReportedAsMilliseconds(c) || len(c.TermCauses) != 1 ||
			!strings.HasPrefix(c.TermCauses[0], fmt.Sprintf("q850:%d:", a.cause)) || c.RoleState != state {
			t.Errorf("record of the attempt at %s: %+v, want the source's (%s) of transaction %d, call id %s (base64), destination device %s, %v s, cause %d, state %s",
				a.dest, c, otkSource, r.transID, a.callID, a.destNID, recorded[a.dest], a.cause, state)
		}
	}
	t.Logf("records: %+v", list[before:])
}

// fswStartClientAuth is the legacy example with one more HTTPS site per
// client_auth mode given, serving the shipped signed osp block (source
// address 127.0.0.1 for device1.itsp.com) behind a TLS policy asking for
// client certificates of the legacy operational CA; it returns the sites'
// service points by mode.
func fswStartClientAuth(t *testing.T, modes ...string) (*legServer, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "legacy.conf"))
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "legacy.conf")
	if err := os.WriteFile(confPath, conf, 0o640); err != nil {
		t.Fatal(err)
	}
	s := &legServer{t: t, conf: confPath,
		httpAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		tlsAddr:  fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
	}
	admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cf := legacyCaddyfile(t, dir, admin, s.httpAddr, s.tlsAddr, "", confPath, legOpts{})
	// gateways send no SNI: without this, client_auth makes Caddy refuse
	// their requests (421), as the README's OSP example says
	cf = replaceOnce(t, cf, "\t\tprotocols h1 h2\n", "\t\tprotocols h1 h2\n\t\tstrict_sni_host insecure_off\n")
	wait := []string{s.httpAddr, s.tlsAddr}
	sps := map[string]string{}
	for _, mode := range modes {
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		cf += fmt.Sprintf("\nhttps://%s {\n\tbind 127.0.0.1\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode %s\n"+
			"\t\t\ttrust_pool enroll legacy\n\t\t}\n\t}\n\thandle /osp {\n\t\tosp {\n\t\t\ttokens signed\n\t\t\tprofile legacy\n"+
			"\t\t\tsource_address 127.0.0.1 device1.itsp.com\n\t\t}\n\t}\n}\n", addr, mode)
		wait = append(wait, addr)
		sps[mode] = "https://" + addr + "/osp"
	}
	s.Caddy = testutil.StartCaddy(t, dir, cf, admin, wait...)
	for _, a := range wait[1:] {
		legWaitTLS(t, a)
	}
	return s, sps
}

// mod_osp on sites that ask for client certificates: the toolkit here is
// built with OpenSSL 3, which cannot load mod_osp's built-in TransNexus
// test key (512 bits: "ee key too small"), so the toolkit connects without
// a certificate and the source address names the device, whether the site
// verifies a certificate given (verify_if_given) or only asks for one
// (request). A toolkit on OpenSSL 1.x presents the test certificate, and a
// verifying site refuses the handshake (README).
func TestOSPFreeSWITCHClientAuthSites(t *testing.T) {
	g := fswNewGateway(t)
	s, sps := fswStartClientAuth(t, "verify_if_given", "request")
	for _, mode := range []string{"verify_if_given", "request"} {
		t.Run(mode, func(t *testing.T) {
			before := len(s.fswCDRs())
			r := g.call(sps[mode], fswCallOpts{maxDest: 12, srvType: "voice", causes: []int{17}, duration: 30})
			r.checkTable7(t)
			if r.report != "0" {
				t.Fatalf("ReportUsage: %s, want 0:\n%s", r.report, r.out)
			}
			list := s.fswCDRs()
			if len(list) != before+2 {
				t.Fatalf("want 2 more CDRs, got %+v", list[before:])
			}
			for _, c := range list[before:] {
				if c.Reporter != otkSource || c.TransactionID != r.transID {
					t.Errorf("record %+v: want device1.itsp.com's of transaction %d", c, r.transID)
				}
			}
		})
	}
}
