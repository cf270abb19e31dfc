/*
 * validate.c - runs the OSP Toolkit's own token check,
 * OSPPTransactionValidateAuthorisation, on one token, trusting only the CA
 * certificate given: what a gateway built on the toolkit does with the
 * token the clearinghouse issued. The provider is set up as test_app does
 * (test/test_app.c is included with main renamed, for its
 * testOSPPProviderNew and configuration), then its authority certificate
 * is replaced with ours (OSPPProviderSetAuthorityCertificates), which
 * test_app's menu cannot do. No toolkit source is modified.
 *
 * usage: validate CA.der TOKEN CALLING CALLED CALLID DESTINATION TOKENALGO
 * (TOKENALGO 0 signed, 1 unsigned, 2 both; test.cfg in the working folder)
 * prints: errcode=N authorised=N timelimit=N
 */
#define main test_app_main
#include "test_app.c"
#undef main

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

int main(int argc, char *argv[])
{
    unsigned calen = 0, toklen = 0, authorised = 0, timelimit = 0, logsize = 0;
    unsigned char *ca, *tok;
    OSPT_CERT cert;
    const OSPT_CERT *certs[1];
    OSPTTRANHANDLE trans = OSPC_TRAN_HANDLE_INVALID;
    int err;

    if (argc != 8) {
        fprintf(stderr, "usage: %s CA.der TOKEN CALLING CALLED CALLID DESTINATION TOKENALGO\n", argv[0]);
        return 2;
    }
    ca = readfile(argv[1], &calen);
    tok = readfile(argv[2], &toklen);
    quietmode = 1;
    if (GetConfiguration()) {
        return 3;
    }
    /* as test_app does with its argument: a local service point, never
     * contacted (validation is local), instead of test.cfg's host name */
    if (servicepoints[0] != OSPC_OSNULL) {
        OSPM_FREE(servicepoints[0]);
    }
    servicepoints[0] = _Strdup("http://127.0.0.1:9/osp");
    err = OSPPInit(OSPC_FALSE);
    if (err == 0) {
        err = testOSPPProviderNew(&OSPVProviderHandle);
    }
    if (err == 0) {
        cert.CertData = ca;
        cert.CertDataLength = calen;
        certs[0] = &cert;
        err = OSPPProviderSetAuthorityCertificates(OSPVProviderHandle, 1, certs);
    }
    if (err == 0) {
        err = OSPPTransactionNew(OSPVProviderHandle, &trans);
    }
    if (err == 0) {
        err = OSPPTransactionValidateAuthorisation(trans, "[127.0.0.1]", argv[6], NULL, NULL,
            argv[3], OSPC_NFORMAT_E164, argv[4], OSPC_NFORMAT_E164,
            (unsigned)strlen(argv[5]), argv[5], toklen, tok,
            &authorised, &timelimit, &logsize, NULL, (unsigned)atoi(argv[7]));
    }
    printf("errcode=%d authorised=%u timelimit=%u\n", err, authorised, timelimit);
    fflush(stdout);
    _exit(0); /* no provider shutdown: it waits for the (empty) queue */
}
