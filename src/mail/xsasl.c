/*
 * xsasl.c - SASL for smtpd: the part common to the Cyrus and Dovecot
 * backends
 *
 * Picks the backend by smtpd_sasl_type, parses the security options,
 * filters mechanisms by their properties, checks and converts base64,
 * and owns the session's one pending callback: a backend reports its
 * result with xsasl_finish(), which arms a zero timer; the timer runs
 * the caller's function from the event loop. xsasl_sess_free disarms
 * it, so a callback never reaches a freed session.
 *
 * DIAGNOSTICS
 *	Calling xsasl_start/xsasl_step while a call is pending is a panic
 *	(smtpd waits for each answer). An unknown security option is a
 *	warning here; xsasl_check_options lets smtpd refuse it at start.
 * SECURITY
 *	Client data is bounded (XSASL_DATA_MAX) and checked as base64 before
 *	a backend sees it. Result texts are wiped before they are freed.
 */
#include "util/sys.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail/xsasl.h"
#include "mail/xsasl_impl.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/event.h"
#include "util/log.h"

#define XSASL_OPT_SEPARATORS " \t,"
#define XSASL_RESULT_MAX (XSASL_DATA_MAX * 2) /* longest result text kept */
#define B64_BITS 6
#define B64_GROUP 4 /* characters per group */
#define B64_BYTES 3 /* bytes per group */
#define B64_INVALID 0xff
#define B64_MASK 0x3fu
#define BYTE_MASK 0xffu
#define BYTE_BITS 8
#define DEL_CHAR 0x7f

char *xsasl_cyrus_config_path;
char *xsasl_local_domain;

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Properties of the mechanisms that Cyrus and Dovecot commonly provide. */
static const struct {
    const char *name;
    unsigned props;
} known_mechs[] = {
    {"ANONYMOUS", XSASL_SEC_ANONYMOUS},
    {"CRAM-MD5", XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
    {"DIGEST-MD5", XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE | XSASL_SEC_MUTUAL_AUTH},
    {"EXTERNAL", 0},
    {"GSSAPI", XSASL_SEC_MUTUAL_AUTH},
    {"GS2-KRB5", XSASL_SEC_MUTUAL_AUTH},
    {"LOGIN", XSASL_SEC_PLAINTEXT | XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
    {"NTLM", XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
    {"OTP", XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE | XSASL_SEC_FORWARD_SECRECY},
    {"PLAIN", XSASL_SEC_PLAINTEXT | XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
    {"SCRAM-SHA-1", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
    {"SCRAM-SHA-1-PLUS", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
    {"SCRAM-SHA-224", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
    {"SCRAM-SHA-256", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
    {"SCRAM-SHA-256-PLUS", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
    {"SCRAM-SHA-384", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
    {"SCRAM-SHA-512", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
};

static const struct xsasl_ops *const backends[] = {&xsasl_cyrus_ops, &xsasl_dovecot_ops};

/* xsasl_configure - remember the process-wide settings */
void xsasl_configure(const char *cyrus_config_path, const char *local_domain)
{
    free(xsasl_cyrus_config_path);
    free(xsasl_local_domain);
    xsasl_cyrus_config_path =
        cyrus_config_path && *cyrus_config_path ? xstrdup(cyrus_config_path) : NULL;
    xsasl_local_domain = local_domain && *local_domain ? xstrdup(local_domain) : NULL;
}

/* parse_options - options text into *o; false with *err at an unknown word */
static bool parse_options(const char *text, struct xsasl_opts *o, char **err)
{
    static const struct {
        const char *word;
        size_t off;
    } words[] = {
        {"noanonymous", offsetof(struct xsasl_opts, noanonymous)},
        {"noplaintext", offsetof(struct xsasl_opts, noplaintext)},
        {"noactive", offsetof(struct xsasl_opts, noactive)},
        {"nodictionary", offsetof(struct xsasl_opts, nodictionary)},
        {"forward_secrecy", offsetof(struct xsasl_opts, forward_secrecy)},
        {"mutual_auth", offsetof(struct xsasl_opts, mutual_auth)},
    };
    const char *p = text ? text : "";
    size_t n, i;
    bool ok = true;

    memset(o, 0, sizeof(*o));
    while (*p) {
        p += strspn(p, XSASL_OPT_SEPARATORS);
        n = strcspn(p, XSASL_OPT_SEPARATORS);
        if (n == 0)
            break;
        for (i = 0; i < POSTA_ARRAY_LEN(words); i++) {
            if (strlen(words[i].word) == n && strncasecmp(p, words[i].word, n) == 0) {
                *(bool *)((char *)o + words[i].off) = true;
                break;
            }
        }
        if (i == POSTA_ARRAY_LEN(words) && ok) {
            ok = false;
            if (err)
                *err = xasprintf("unknown SASL security option \"%.*s\"", (int)n, p);
        }
        p += n;
    }
    return ok;
}

/* xsasl_check_options - validate a security options value */
bool xsasl_check_options(const char *options, char **err)
{
    struct xsasl_opts o;

    return parse_options(options, &o, err);
}

/* xsasl_mech_props - properties of a well-known mechanism */
bool xsasl_mech_props(const char *name, unsigned *props)
{
    for (size_t i = 0; i < POSTA_ARRAY_LEN(known_mechs); i++) {
        if (strcasecmp(known_mechs[i].name, name) == 0) {
            *props = known_mechs[i].props;
            return true;
        }
    }
    return false;
}

/* xsasl_mech_allowed - a mechanism with props passes the options */
bool xsasl_mech_allowed(unsigned props, const struct xsasl_opts *o)
{
    if (props & XSASL_SEC_PRIVATE)
        return false;
    if (o->noanonymous && (props & XSASL_SEC_ANONYMOUS))
        return false;
    if (o->noplaintext && (props & XSASL_SEC_PLAINTEXT))
        return false;
    if (o->noactive && (props & XSASL_SEC_ACTIVE))
        return false;
    if (o->nodictionary && (props & XSASL_SEC_DICTIONARY))
        return false;
    if (o->forward_secrecy && !(props & XSASL_SEC_FORWARD_SECRECY))
        return false;
    if (o->mutual_auth && !(props & XSASL_SEC_MUTUAL_AUTH))
        return false;
    return true;
}

/* mech_name_ok - a SASL mechanism name (RFC 4422: A-Z 0-9 - _, 1..20) */
static bool mech_name_ok(const char *name, bool any_case)
{
    enum { MECH_NAME_MAX = 20 };
    size_t n = 0;

    for (; name[n]; n++)
        if (!(isupper((unsigned char)name[n]) || isdigit((unsigned char)name[n]) ||
              (any_case && islower((unsigned char)name[n])) || name[n] == '-' ||
              name[n] == '_'))
            return false;
    return n > 0 && n <= MECH_NAME_MAX;
}

/* xsasl_mechs_filter - the names of list that the options allow */
void xsasl_mechs_filter(const struct xsasl_mech *list, size_t n, const struct xsasl_opts *o,
                        struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (!mech_name_ok(list[i].name, false) || !xsasl_mech_allowed(list[i].props, o) ||
            xsasl_mech_in_list(buf_str(out), list[i].name))
            continue;
        if (out->len)
            buf_putc(out, ' ');
        buf_puts(out, list[i].name);
    }
}

/* xsasl_mechs_add - one more mechanism at the end of a backend's array */
void xsasl_mechs_add(struct xsasl_mech **list, size_t *n, char *name, unsigned props)
{
    *list = xreallocarray(*list, *n + 1, sizeof(**list));
    (*list)[*n].name = name;
    (*list)[*n].props = props;
    (*n)++;
}

/* xsasl_mechs_free - release a backend's mechanism array */
void xsasl_mechs_free(struct xsasl_mech *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

/* xsasl_mech_in_list - name is one word of a space-separated list */
bool xsasl_mech_in_list(const char *list, const char *name)
{
    size_t n = strlen(name), w;
    const char *p = list;

    if (n == 0)
        return false;
    while (*p) {
        p += strspn(p, " ");
        w = strcspn(p, " ");
        if (w == n && strncasecmp(p, name, n) == 0)
            return true;
        p += w;
    }
    return false;
}

/* b64_value - the 6-bit value of c, or B64_INVALID */
static unsigned b64_value(unsigned char c)
{
    const char *p = memchr(b64_alphabet, c, sizeof(b64_alphabet) - 1);

    return p ? (unsigned)(p - b64_alphabet) : B64_INVALID;
}

/* xsasl_base64_valid - s[len] is padded base64 */
bool xsasl_base64_valid(const char *s, size_t len)
{
    size_t pad = 0;

    if (len % B64_GROUP != 0)
        return false;
    if (len >= 1 && s[len - 1] == '=')
        pad++;
    if (len >= 2 && s[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (b64_value((unsigned char)s[i]) == B64_INVALID)
            return false;
    return true;
}

/* xsasl_base64_decode - append the decoded bytes of s[len] to out */
int xsasl_base64_decode(const char *s, size_t len, struct buf *out)
{
    unsigned acc = 0, bits = 0, v;
    size_t i, end = len;

    if (!xsasl_base64_valid(s, len))
        return -1;
    while (end > 0 && s[end - 1] == '=')
        end--;
    for (i = 0; i < end; i++) {
        v = b64_value((unsigned char)s[i]);
        acc = (acc << B64_BITS) | v;
        bits += B64_BITS;
        if (bits >= BYTE_BITS) {
            bits -= BYTE_BITS;
            if (buf_putc(out, (int)((acc >> bits) & BYTE_MASK)) < 0)
                return -1;
        }
    }
    return 0;
}

/* xsasl_base64_encode - append the padded base64 of p[n] to out */
int xsasl_base64_encode(const void *p, size_t n, struct buf *out)
{
    const unsigned char *b = p;
    char q[B64_GROUP];
    unsigned long v;
    size_t i, k;

    for (i = 0; i < n; i += B64_BYTES) {
        k = n - i < B64_BYTES ? n - i : B64_BYTES;
        v = (unsigned long)b[i] << (2 * BYTE_BITS);
        if (k > 1)
            v |= (unsigned long)b[i + 1] << BYTE_BITS;
        if (k > 2)
            v |= b[i + 2];
        q[0] = b64_alphabet[(v >> (3 * B64_BITS)) & B64_MASK];
        q[1] = b64_alphabet[(v >> (2 * B64_BITS)) & B64_MASK];
        q[2] = k > 1 ? b64_alphabet[(v >> B64_BITS) & B64_MASK] : '=';
        q[3] = k > 2 ? b64_alphabet[v & B64_MASK] : '=';
        if (buf_append(out, q, sizeof(q)) < 0)
            return -1;
    }
    return 0;
}

/* xsasl_wipe - clear a buffer's storage, then free it */
void xsasl_wipe(struct buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    buf_free(b);
}

/* xsasl_server_open - the backend named by type */
struct xsasl_server *xsasl_server_open(const char *type, const char *path,
                                       const char *queue_dir, const char *service,
                                       char **err)
{
    struct xsasl_server *srv;

    for (size_t i = 0; i < POSTA_ARRAY_LEN(backends); i++) {
        if (strcasecmp(type, backends[i]->type) != 0)
            continue;
        srv = xcalloc(1, sizeof(*srv));
        srv->ops = backends[i];
        srv->path = xstrdup(path && *path ? path : "smtpd");
        srv->queue_dir = xstrdup(queue_dir ? queue_dir : "");
        srv->service = xstrdup(service && *service ? service : "smtp");
        if (srv->ops->open(srv, err) < 0) {
            free(srv->path);
            free(srv->queue_dir);
            free(srv->service);
            free(srv);
            return NULL;
        }
        return srv;
    }
    *err = xasprintf("unsupported SASL server implementation: %s (use cyrus or dovecot)",
                     type);
    return NULL;
}

/* xsasl_server_close - end the backend (sessions must be freed first) */
void xsasl_server_close(struct xsasl_server *srv)
{
    if (srv == NULL)
        return;
    srv->ops->close(srv);
    free(srv->path);
    free(srv->queue_dir);
    free(srv->service);
    free(srv);
}

/* split_ipport - "ip;port" into its halves ("" when absent) */
static void split_ipport(const char *text, char **ip, char **port)
{
    const char *semi = text ? strrchr(text, ';') : NULL;

    if (text == NULL) {
        *ip = xstrdup("");
        *port = xstrdup("");
    } else if (semi == NULL) {
        *ip = xstrdup(text);
        *port = xstrdup("");
    } else {
        *ip = xstrndup(text, (size_t)(semi - text));
        *port = xstrdup(semi + 1);
    }
}

/* deliver_result - the zero timer: hand the stored result to the caller */
static void deliver_result(void *ctx)
{
    struct xsasl_sess *s = ctx;
    xsasl_fn fn = s->fn;
    void *fctx = s->ctx;
    enum xsasl_status st = s->result;
    struct buf copy = BUF_INIT;

    if (!s->result_ready)
        return;
    buf_append(&copy, buf_str(&s->data), s->data.len);
    xsasl_wipe(&s->data);
    s->result_ready = false;
    s->busy = false;
    s->fn = NULL;
    s->ctx = NULL;
    /* fn may free the session: touch nothing of s afterwards. */
    fn(fctx, st, buf_str(&copy));
    xsasl_wipe(&copy);
}

/* text_clean - s has no control bytes (and, unless empty_ok, is not empty) */
static bool text_clean(const char *s, bool empty_ok)
{
    if (!empty_ok && *s == 0)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < ' ' || c == DEL_CHAR)
            return false;
    }
    return true;
}

/* text_sanitize - control bytes of a reason become '?' (it is logged) */
static void text_sanitize(struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] < ' ' || (unsigned char)b->data[i] == DEL_CHAR)
            b->data[i] = '?';
}

/* xsasl_finish - record the result of the current call */
void xsasl_finish(struct xsasl_sess *s, enum xsasl_status st, const char *data)
{
    if (!s->busy || s->result_ready)
        msg_panic("xsasl_finish: no call in progress");
    buf_init(&s->data, XSASL_RESULT_MAX);
    if (buf_puts(&s->data, data ? data : "") < 0) {
        st = XSASL_FAIL;
        buf_set(&s->data, "backend reply too long");
    }
    if (st == XSASL_OK && !text_clean(buf_str(&s->data), false)) {
        /* The name goes into logs and headers: no control bytes. */
        st = XSASL_FAIL;
        buf_set(&s->data, "invalid user name from the authentication backend");
    } else if ((st == XSASL_FAIL || st == XSASL_TEMP) &&
               !text_clean(buf_str(&s->data), true)) {
        text_sanitize(&s->data);
    }
    if ((st == XSASL_FAIL || st == XSASL_TEMP) && s->data.len == 0)
        buf_set(&s->data,
                st == XSASL_FAIL ? "authentication failure" : "temporary failure");
    if (st != XSASL_CONTINUE) {
        free(s->mech);
        s->mech = NULL;
    }
    s->result = st;
    s->result_ready = true;
    event_timer_arm(&s->deliver, 0);
}

/* xsasl_sess_new - a session for one client */
struct xsasl_sess *xsasl_sess_new(struct xsasl_server *srv, const char *security_options,
                                  bool tls_active, const char *local_ipport,
                                  const char *remote_ipport, const char *client_addr)
{
    struct xsasl_sess *s = xcalloc(1, sizeof(*s));
    char *err = NULL;

    event_init();
    s->srv = srv;
    if (!parse_options(security_options, &s->opts, &err)) {
        msg_warn("%s (ignored)", err);
        free(err);
    }
    s->tls_active = tls_active;
    s->local_ipport = xstrdup(local_ipport ? local_ipport : "");
    s->remote_ipport = xstrdup(remote_ipport ? remote_ipport : "");
    split_ipport(local_ipport, &s->local_ip, &s->local_port);
    split_ipport(remote_ipport, &s->remote_ip, &s->remote_port);
    s->client_addr = xstrdup(client_addr && *client_addr ? client_addr : s->remote_ip);
    buf_init(&s->mechs, XSASL_DATA_MAX);
    event_timer_setup(&s->deliver, deliver_result, s);
    srv->ops->sess_init(s);
    return s;
}

/* xsasl_mechs - the mechanisms to offer now */
const char *xsasl_mechs(struct xsasl_sess *s)
{
    s->srv->ops->mechs(s);
    return buf_str(&s->mechs);
}

/* begin_call - remember the caller's function for this call */
static void begin_call(struct xsasl_sess *s, const char *what, xsasl_fn fn, void *ctx)
{
    if (s->busy)
        msg_panic("%s: the previous SASL call has not answered yet", what);
    if (fn == NULL)
        msg_panic("%s: no callback", what);
    s->busy = true;
    s->fn = fn;
    s->ctx = ctx;
}

/* client_data - NULL ok, "" for "=" or empty, else checked base64; false if bad */
static bool client_data(const char *in, const char **out)
{
    size_t n;

    *out = in;
    if (in == NULL)
        return true;
    if (strcmp(in, "=") == 0) {
        *out = "";
        return true;
    }
    n = strlen(in);
    return n <= XSASL_DATA_MAX && xsasl_base64_valid(in, n);
}

/* xsasl_start - begin an exchange */
void xsasl_start(struct xsasl_sess *s, const char *mech, const char *initial, xsasl_fn fn,
                 void *ctx)
{
    const char *in;
    char *upper;

    begin_call(s, "xsasl_start", fn, ctx);
    free(s->mech);
    s->mech = NULL;
    if (!client_data(initial, &in)) {
        xsasl_finish(s, XSASL_FAIL, "malformed initial response");
        return;
    }
    if (mech == NULL || !mech_name_ok(mech, true)) {
        xsasl_finish(s, XSASL_FAIL, "invalid mechanism name");
        return;
    }
    s->srv->ops->mechs(s);
    if (!xsasl_mech_in_list(buf_str(&s->mechs), mech)) {
        xsasl_finish(s, XSASL_FAIL, "mechanism not available");
        return;
    }
    upper = xstrdup(mech);
    for (char *p = upper; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    s->mech = upper;
    s->srv->ops->start(s, upper, in);
}

/* xsasl_step - the client's next response */
void xsasl_step(struct xsasl_sess *s, const char *response, xsasl_fn fn, void *ctx)
{
    const char *in;

    begin_call(s, "xsasl_step", fn, ctx);
    if (s->mech == NULL) {
        xsasl_finish(s, XSASL_FAIL, "no authentication in progress");
        return;
    }
    if (response == NULL || *response == 0)
        response = "=";
    if (!client_data(response, &in)) {
        xsasl_finish(s, XSASL_FAIL, "malformed client response");
        return;
    }
    s->srv->ops->step(s, in);
}

/* xsasl_sess_free - end a session; a pending callback never runs */
void xsasl_sess_free(struct xsasl_sess *s)
{
    if (s == NULL)
        return;
    event_timer_disarm(&s->deliver);
    s->srv->ops->sess_done(s);
    xsasl_wipe(&s->data);
    buf_free(&s->mechs);
    free(s->mech);
    free(s->local_ip);
    free(s->local_port);
    free(s->remote_ip);
    free(s->remote_port);
    free(s->local_ipport);
    free(s->remote_ipport);
    free(s->client_addr);
    free(s);
}
