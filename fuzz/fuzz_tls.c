/*
 * fuzz_tls.c - libFuzzer target for util/tls's parsers of outside bytes
 *
 * The input is used two ways: (1) as a protocol list in Postfix's syntax
 * (tls_parse_protocols), whose result must be 0 with a reason or a mask
 * of TLS versions only (never SSLv2/SSLv3); (2) as a saved client session
 * (tls_session_load, the DER bytes a session cache hands back), which
 * must be refused or accepted without a crash or a leak.
 */
#include "util/sys.h"

#include <string.h>
#include <sys/socket.h>

#include "util/alloc.h"
#include "util/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* LLVMFuzzerTestOneInput - one input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tls_ctx *client;
    static int fd[2] = {-1, -1};
    char *text = xstrndup((const char *)data, size);
    const char *why = NULL;
    unsigned mask = tls_parse_protocols(text, &why);
    struct tls_conn *t;

    check(mask != 0 || why != NULL, "no reason for a refused list");
    check((mask & (TLS_PROTO_SSLv2 | TLS_PROTO_SSLv3)) == 0, "SSL enabled");
    check((mask & ~TLS_PROTO_ALL) == 0, "unknown bits");
    free(text);

    if (client == NULL) {
        struct tls_client_opts o = {"", "", "", "", "", "medium"};
        char *err = NULL;

        client = tls_client_ctx_new(&o, &err);
        check(client != NULL, "client context");
        check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) == 0, "socketpair");
    }
    t = tls_conn_client(client, fd[0], "example.org", TLS_LEVEL_MAY, NULL, 0);
    check(t != NULL, "connection");
    (void)tls_session_load(t, data, size);
    tls_conn_free(t);
    return 0;
}
