/*
 * pickup_dkim.c - DKIM signing of locally submitted mail (sendmail/postdrop)
 *
 * Local submission is "our mail": when dkim_signing_table has a key for
 * the domain of the message's From address, pickup adds a DKIM-Signature
 * when it writes the queue file, so every delivery attempt carries the
 * same signature. The field goes right after the Received field that
 * pickup adds (trace fields first), like smtpd's signatures.
 *
 * pickup handles one file at a time; signing is plain blocking code.
 *
 * DIAGNOSTICS: a table or key that cannot be loaded is fatal at start
 * (master restarts pickup with its throttle); a message that cannot be
 * signed is logged and queued unsigned.
 *
 * SECURITY: the keys are read before privileges are dropped (they are
 * readable by root and mail_owner's group only).
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/config.h"
#include "mail/dkim.h"
#include "mail/dmarc.h"
#include "util/alloc.h"
#include "util/log.h"

#include "pickup_dkim.h"

static struct dkim_keys *pk_keys;
static struct dkim_sign_opts pk_opts;
static bool pk_signing;

/* pickup_dkim_pre_jail - load the signing table and its keys */
void pickup_dkim_pre_jail(struct cfg *cfg)
{
    char *err = NULL;

    pk_signing = *cfg_str(cfg, "dkim_signing_table") != 0;
    if (!pk_signing)
        return;
    if ((pk_keys = dkim_keys_load(cfg, &err)) == NULL)
        msg_fatal("dkim_signing_table: %s", err ? err : "cannot load");
    if (!dkim_sign_opts_from_cfg(cfg, &pk_opts, &err))
        msg_fatal("%s", err ? err : "bad DKIM signing settings");
}

/* field_end - the end of the header field starting at p (after its line end) */
static size_t field_end(const char *hdr, size_t len, size_t p)
{
    while (p < len) {
        const char *nl = memchr(hdr + p, '\n', len - p);

        p = nl ? (size_t)(nl - hdr) + 1 : len;
        if (p >= len || (hdr[p] != ' ' && hdr[p] != '\t'))
            break;
    }
    return p;
}

/* from_values - the values of every From field of the header block */
static size_t from_values(const char *hdr, size_t len, char ***out)
{
    size_t n = 0, p = 0;

    *out = NULL;
    while (p < len) {
        size_t e = field_end(hdr, len, p), k = e;

        if (k > p && hdr[k - 1] == '\n')
            k--;
        if (k - p > 5 && strncasecmp(hdr + p, "from", 4) == 0) {
            size_t c = p + 4;

            while (c < k && (hdr[c] == ' ' || hdr[c] == '\t'))
                c++;
            if (c < k && hdr[c] == ':') {
                *out = xreallocarray(*out, n + 1, sizeof(**out));
                (*out)[n++] = xstrndup(hdr + c + 1, k - c - 1);
            }
        }
        p = e;
    }
    return n;
}

/* pickup_dkim_sign - add a DKIM-Signature to msg (LF line ends) when a key fits */
void pickup_dkim_sign(const char *qid, struct buf *msg)
{
    const char *m = msg->data ? msg->data : "", *why = NULL, *sep;
    size_t hlen, nfrom, at = 0;
    char **fromv, *err = NULL;
    struct buf dom = BUF_INIT, sig = BUF_INIT, out = BUF_INIT;
    struct dkim_key *k = NULL;
    bool tempfail = false;

    if (!pk_signing || pk_keys == NULL)
        return;
    /* the header block ends at the first empty line */
    if (msg->len > 0 && m[0] == '\n')
        hlen = 0;
    else if ((sep = memmem(m, msg->len, "\n\n", 2)) != NULL)
        hlen = (size_t)(sep - m) + 1;
    else
        hlen = msg->len;
    nfrom = from_values(m, hlen, &fromv);
    if (dmarc_from_domain((const char *const *)fromv, nfrom, &dom, &why) == DMARC_FROM_OK)
        k = dkim_keys_find(pk_keys, buf_str(&dom), &tempfail);
    for (size_t i = 0; i < nfrom; i++)
        free(fromv[i]);
    free(fromv);
    if (tempfail)
        msg_warn("%s: dkim_signing_table lookup for %s failed: message not signed", qid,
                 buf_str(&dom));
    if (k != NULL) {
        struct dkim_sign *s = dkim_sign_new(k, &pk_opts, time(NULL));
        size_t body = hlen < msg->len ? hlen + 1 : msg->len;

        dkim_sign_header(s, m, hlen);
        dkim_sign_body(s, m + body, msg->len - body);
        if (dkim_sign_finish(s, "\n", &sig, &err) < 0) {
            msg_warn("%s: DKIM signing: %s: message not signed", qid, err ? err : "?");
        } else {
            /* after pickup's own Received field */
            if (hlen > 9 && strncasecmp(m, "Received:", 9) == 0)
                at = field_end(m, hlen, 0);
            (void)buf_append(&out, m, at);
            (void)buf_append(&out, sig.data, sig.len);
            (void)buf_putc(&out, '\n');
            (void)buf_append(&out, m + at, msg->len - at);
            buf_free(msg);
            *msg = out;
            out = (struct buf)BUF_INIT;
            msg_info("%s: DKIM-Signature added d=%s", qid, buf_str(&dom));
        }
        free(err);
        dkim_sign_free(s);
    }
    buf_free(&dom);
    buf_free(&sig);
    buf_free(&out);
}
