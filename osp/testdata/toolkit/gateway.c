/*
 * gateway.c - an OSP gateway as Asterisk's res_osp makes one from the
 * unmodified OSP Toolkit library (res/res_osp.c of current Asterisk, with
 * `securityfeatures=yes` in osp.conf), for the clearinghouse's tests:
 *
 *  - the provider: OSPPInit(0); the private key, local certificate and CA
 *    certificate read from PEM files with OSPPUtilLoadPEMPrivateKey and
 *    OSPPUtilLoadPEMCert (res_osp's privatekey=, localcert=, cacert=, the
 *    files enrollment gave the gateway); OSPPProviderNew with res_osp's
 *    constants (audit URL "localhost", local validation, SSL lifetime 300 s,
 *    persistence, no message counts, empty customer and device ids) and its
 *    setting defaults (maxconnect 20, retrydelay 0, retrylimit 2) except
 *    timeout: 10000 ms (res_osp's largest; its default 500 ms is short for a
 *    loaded test machine);
 *  - "lookup" is res_osp's osp_lookup (OSPLookup) in direct mode for a SIP
 *    call: OSPPTransactionRequestAuthorisation with no call id (res_osp makes
 *    call ids only for H.323) and up to 12 destinations, then
 *    OSPPTransactionGetFirstDestination; the token is written to a file
 *    (res_osp base64-encodes it into the P-OSP-Auth-Token header, and the
 *    terminating gateway decodes the same bytes); b64 is what
 *    OSPPBase64Encode returns for the token into 2048 bytes, as the OSP
 *    modules of OpenSIPS and Kamailio encode it (0: the header is sent;
 *    otherwise the INVITE leaves without it);
 *  - "validate" is res_osp's osp_validate_token (OSPAuth):
 *    OSPPTransactionValidateAuthorisation(source, destination, no devices,
 *    calling, called as E.164, no call id, the token, tokenformat).
 *
 * No toolkit source is modified; link with the library internal/osptk builds.
 *
 * usage:
 *   gateway SP KEY.pem CERT.pem CA.pem lookup SOURCE CALLING CALLED TOKENOUT
 *     prints: lookup errcode=N numdest=N dest=D timelimit=N tokensize=N b64=N
 *   gateway SP KEY.pem CERT.pem CA.pem validate SOURCE DEST CALLING CALLED TOKEN TOKENFORMAT
 *     prints: validate errcode=N authorised=N timelimit=N
 *   (TOKENFORMAT: 0 signed only, res_osp's default; 1 unsigned only; 2 both)
 * The exit status is 0 whenever the line was printed; 2 for usage or file errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osp/osp.h"
#include "osp/osputils.h"
#include "osp/ospb64.h"

#define GW_TIMEOUT_MS 10000
#define GW_MAXDESTS 12
#define GW_TOKEN_SZ 4096
#define GW_B64_SZ 2048 /* the OpenSIPS/Kamailio osp modules' header buffer */

static unsigned char *readfile(const char *name, unsigned *len)
{
    FILE *f = fopen(name, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(name);
        exit(2);
    }
    buf = malloc(n + 1);
    if (buf == NULL || fread(buf, 1, n, f) != (size_t)n) {
        perror(name);
        exit(2);
    }
    fclose(f);
    *len = (unsigned)n;
    return buf;
}

/* osp_create_provider of res_osp with securityfeatures=yes */
static int provider_new(const char *sp, const char *keyfile, const char *certfile, const char *cafile, OSPTPROVHANDLE *provider)
{
    OSPTPRIVATEKEY privatekey;
    OSPT_CERT localcert;
    OSPT_CERT cacert;
    const OSPT_CERT *pcacerts[1];
    const char *pspoints[1];
    int err;

    privatekey.PrivateKeyData = NULL;
    privatekey.PrivateKeyLength = 0;
    localcert.CertData = NULL;
    localcert.CertDataLength = 0;
    cacert.CertData = NULL;
    cacert.CertDataLength = 0;

    if ((err = OSPPUtilLoadPEMPrivateKey((unsigned char *)keyfile, &privatekey)) != OSPC_ERR_NO_ERROR) {
        fprintf(stderr, "gateway: cannot load privatekey '%s': %d\n", keyfile, err);
        return err;
    }
    if ((err = OSPPUtilLoadPEMCert((unsigned char *)certfile, &localcert)) != OSPC_ERR_NO_ERROR) {
        fprintf(stderr, "gateway: cannot load localcert '%s': %d\n", certfile, err);
        return err;
    }
    if ((err = OSPPUtilLoadPEMCert((unsigned char *)cafile, &cacert)) != OSPC_ERR_NO_ERROR) {
        fprintf(stderr, "gateway: cannot load cacert '%s': %d\n", cafile, err);
        return err;
    }
    pcacerts[0] = &cacert;
    pspoints[0] = sp;
    err = OSPPProviderNew(1, pspoints, NULL, "localhost", &privatekey, &localcert, 1, pcacerts,
        1 /* local validation */, 300 /* SSL lifetime */, 20 /* maxconnect */, 1 /* persistence */,
        0 /* retrydelay */, 2 /* retrylimit */, GW_TIMEOUT_MS, "", "", provider);
    if (err != OSPC_ERR_NO_ERROR) {
        fprintf(stderr, "gateway: OSPPProviderNew: %d\n", err);
    }
    return err;
}

int main(int argc, char *argv[])
{
    OSPTPROVHANDLE provider = -1; /* res_osp's OSP_INVALID_HANDLE */
    OSPTTRANHANDLE trans = -1;
    int err;

    if (argc < 6) {
        fprintf(stderr, "usage: %s SP KEY.pem CERT.pem CA.pem lookup|validate ...\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[5], "lookup") == 0 && argc == 10) {
        unsigned numdests = GW_MAXDESTS, dummy = 0, timelimit = 0, callidlen = 0, tokenlen = GW_TOKEN_SZ;
        OSPT_CALL_ID *callids[1] = { NULL };
        const char *preferred[2] = { NULL, NULL };
        unsigned char callid[256];
        char callednum[256] = "", callingnum[256] = "", destination[256] = "";
        unsigned char token[GW_TOKEN_SZ];
        unsigned char b64[GW_B64_SZ];
        unsigned b64len = sizeof(b64);
        int b64err = -1;
        FILE *out;

        err = OSPPInit(OSPC_FALSE);
        if (err == OSPC_ERR_NO_ERROR) {
            err = provider_new(argv[1], argv[2], argv[3], argv[4], &provider);
        }
        if (err == OSPC_ERR_NO_ERROR) {
            err = OSPPTransactionNew(provider, &trans);
        }
        if (err == OSPC_ERR_NO_ERROR) {
            err = OSPPTransactionRequestAuthorisation(trans, argv[6], "", argv[7], OSPC_NFORMAT_E164,
                argv[8], OSPC_NFORMAT_E164, NULL, 0, callids, preferred, &numdests, &dummy, NULL);
        }
        if (err == OSPC_ERR_NO_ERROR && numdests > 0) {
            callidlen = sizeof(callid);
            err = OSPPTransactionGetFirstDestination(trans, 0, NULL, NULL, &timelimit, &callidlen, callid,
                sizeof(callednum), callednum, sizeof(callingnum), callingnum, sizeof(destination), destination,
                0, NULL, &tokenlen, token);
        } else {
            tokenlen = 0;
        }
        if (err == OSPC_ERR_NO_ERROR && tokenlen > 0) {
            b64err = OSPPBase64Encode(token, tokenlen, b64, &b64len);
            if ((out = fopen(argv[9], "wb")) == NULL || fwrite(token, 1, tokenlen, out) != tokenlen || fclose(out) != 0) {
                perror(argv[9]);
                return 2;
            }
        }
        printf("lookup errcode=%d numdest=%u dest=%s timelimit=%u tokensize=%u b64=%d\n", err, numdests, destination, timelimit,
            err == OSPC_ERR_NO_ERROR ? tokenlen : 0, b64err);
    } else if (strcmp(argv[5], "validate") == 0 && argc == 12) {
        unsigned toklen = 0, authorised = 0, timelimit = 0, dummy = 0;
        unsigned char *tok = readfile(argv[10], &toklen);

        err = OSPPInit(OSPC_FALSE);
        if (err == OSPC_ERR_NO_ERROR) {
            err = provider_new(argv[1], argv[2], argv[3], argv[4], &provider);
        }
        if (err == OSPC_ERR_NO_ERROR) {
            err = OSPPTransactionNew(provider, &trans);
        }
        if (err == OSPC_ERR_NO_ERROR) {
            err = OSPPTransactionValidateAuthorisation(trans, argv[6], argv[7], NULL, NULL,
                argv[8], OSPC_NFORMAT_E164, argv[9], OSPC_NFORMAT_E164, 0, NULL,
                toklen, tok, &authorised, &timelimit, &dummy, NULL, (unsigned)atoi(argv[11]));
        }
        printf("validate errcode=%d authorised=%u timelimit=%u\n", err, authorised, timelimit);
    } else {
        fprintf(stderr, "usage: %s SP KEY.pem CERT.pem CA.pem lookup SOURCE CALLING CALLED TOKENOUT\n"
            "       %s SP KEY.pem CERT.pem CA.pem validate SOURCE DEST CALLING CALLED TOKEN TOKENFORMAT\n", argv[0], argv[0]);
        return 2;
    }
    fflush(stdout);
    _exit(0); /* no provider shutdown: OSPPProviderDelete waits for its queue */
}
