/*
 * Test harness: runs the OSP Toolkit's own enrollment-client checks
 * (enroll/osptnepenroll.c OSPPValidateDeviceCert, src/ospx509.c) on a CA
 * certificate, a device certificate and the device's certificate request
 * produced by package ca's legacy profile. Built and run by
 * TestOSPToolkitValidatesLegacyCertificates; not part of the product.
 *
 * usage: harness ca.der cert.b64 csr.b64
 * prints "ok" and exits 0 when the toolkit accepts the certificate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "osp/ospmsginfo.h"
#include "osp/osp.h"
#include "osp/ospssl.h"
#include "osp/osputils.h"
#include "osp/ospcomm.h"
#include "osp/ospsecurity.h"
#include "osp/ospb64.h"
#include "osp/ospx509.h"
#include "osptnep.h"
#include "osptnepenroll.h"

static unsigned char *slurp(const char *path, unsigned *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (f == NULL) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(2); }
    fclose(f);
    *len = (unsigned)n;
    return buf;
}

int main(int argc, char **argv)
{
    unsigned caLen, certLen, csrLen, outLen = 0;
    unsigned char *caDER, *certB64, *csrB64, *out = NULL;
    OSPTASN1OBJECT *ca = NULL;
    OSPTASN1OBJECT reqKey;
    OSPTSEC sec;
    int idx = -1, rc;

    if (argc != 4) {
        fprintf(stderr, "usage: %s ca.der cert.b64 csr.b64\n", argv[0]);
        return 2;
    }
    caDER = slurp(argv[1], &caLen);
    certB64 = slurp(argv[2], &certLen);
    csrB64 = slurp(argv[3], &csrLen);

    rc = OSPPX509CertCreate(caDER, &ca);
    if (rc != 0) { printf("CA certificate parse failed: %d\n", rc); return 1; }

    /* The CA must be self-signed with MD5-RSA (toolkit's own chain walk). */
    rc = OSPPX509CertValidateCertificate(ca, &ca, 1, &idx);
    if (rc != 0) { printf("CA certificate not accepted: %d\n", rc); return 1; }

    memset(&reqKey, 0, sizeof(reqKey));
    rc = OSPPGetPublicKeyInfoFromCertReq(csrB64, &reqKey);
    if (rc != 0) { printf("certificate request parse failed: %d\n", rc); return 1; }

    memset(&sec, 0, sizeof(sec));
    sec.NumberOfAuthorityCertificates = 1;
    sec.AuthorityCertInfo[0] = ca;
    rc = OSPPValidateDeviceCert(&sec, &reqKey, certB64, &out, &outLen);
    if (rc != 0) { printf("device certificate not accepted: %d\n", rc); return 1; }
    printf("ok\n");
    return 0;
}
