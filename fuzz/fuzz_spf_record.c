/*
 * fuzz_spf_record.c - libFuzzer target for the SPF record and macro parsers
 * and the check_host() evaluator
 *
 * The input is (1) parsed as a record: a record that parses must have
 * only valid qualifiers and prefix lengths; (2) expanded as a macro
 * string in both contexts, which must agree with spf_macro_check; (3)
 * served as the only TXT record of every name to a whole evaluation over
 * a resolver that answers everything at once (A, AAAA, MX, PTR), so that
 * include/redirect loops must end on the lookup limits.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <string.h>

#include "mail/spf.h"
#include "util/alloc.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 4096

static char *record;
static unsigned asked;

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

static void *f_txt(void *d, const char *name, dns_txt_fn fn, void *ctx)
{
    char *v[1] = {record};

    asked++;
    fn(ctx, DNS_OK, v, 1, "");
    return NULL;
}

static void *f_mx(void *d, const char *name, dns_mx_fn fn, void *ctx)
{
    struct dns_mx mx[2] = {{10, (char *)"mx.example"}, {20, (char *)""}};

    asked++;
    fn(ctx, DNS_OK, mx, 2, "");
    return NULL;
}

static void *f_addr(void *d, const char *name, int family, dns_addr_fn fn, void *ctx)
{
    struct dns_addr a;

    asked++;
    memset(&a, 0, sizeof(a));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.sa;
        sin->sin_family = AF_INET;
        inet_pton(AF_INET, "192.0.2.1", &sin->sin_addr);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.sa;
        sin6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr);
    }
    fn(ctx, name[0] == 'n' ? DNS_NOTFOUND : DNS_OK, &a, 1, "");
    return NULL;
}

static void *f_ptr(void *d, const struct sockaddr *sa, socklen_t len, spf_ptr_fn fn, void *ctx)
{
    char *v[2] = {(char *)"mail.example", (char *)"x.example."};

    asked++;
    fn(ctx, DNS_OK, v, 2, "");
    return NULL;
}

static const struct spf_dns_ops fops = {f_txt, f_mx, f_addr, f_ptr, NULL, NULL, NULL};

static void on_done(void *ctx, const struct spf_outcome *out)
{
    *(int *)ctx = (int)out->result;
}

/* LLVMFuzzerTestOneInput - one fuzz input, checked as the header says */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spf_record rec;
    struct spf_macro_vars v = {"a@b.example", "a", "b.example", "b.example", "192.0.2.1",
                               "unknown", "helo.example", "192.0.2.1", "r.example", "in-addr",
                               1};
    struct spf_request req = {SPF_SCOPE_MAILFROM, "192.0.2.1", "a@b.example", "helo.example",
                              "r.example", 1};
    struct buf out = BUF_INIT;
    const char *why;
    size_t i;
    int result = -1, exp;

    if (size > FUZZ_MAX)
        return 0;
    record = xstrndup((const char *)data, size);
    if (spf_record_parse(record, &rec, &why) == 0) {
        for (i = 0; i < rec.n; i++) {
            check(strchr("+-~?", rec.terms[i].qual) != NULL, "qualifier");
            check(rec.terms[i].cidr4 <= 32 && rec.terms[i].cidr6 <= 128, "prefix length");
        }
    }
    spf_record_free(&rec);
    for (exp = 0; exp < 2; exp++) {
        int c = spf_macro_check(record, exp, &why);
        buf_reset(&out);
        check(spf_macro_expand(record, &v, exp, &out, &why) == c || c == 0,
              "check and expand agree");
    }
    buf_free(&out);
    asked = 0;
    check(spf_eval_start(&fops, &req, on_done, &result) == NULL, "synchronous evaluation ends");
    check(result >= SPF_NONE && result <= SPF_PERMERROR, "a result");
    check(asked < 200, "lookups bounded");
    req.client_ip = "2001:db8::1";
    req.sender = "";
    check(spf_eval_start(&fops, &req, on_done, &result) == NULL, "synchronous evaluation ends");
    free(record);
    return 0;
}
