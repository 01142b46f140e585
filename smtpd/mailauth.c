/*
 * mailauth.c - SPF, DKIM and DMARC inside smtpd sessions, the
 * Authentication-Results header, DKIM signing of our own mail
 *
 * One struct mailauth per transaction, found by session (a small hash:
 * struct session has no slot for it). Its life: mailauth_mail (MAIL FROM)
 * starts SPF for the MAIL FROM and HELO identities; mailauth_data_start
 * decides whether the content must be held back; mailauth_content
 * collects the header block, then feeds the body to the verifier as it
 * streams and keeps it (in memory up to MA_MEM_MAX, then in an unlinked
 * temporary file in incoming/); mailauth_end waits for the answers and
 * writes what is final: the Authentication-Results field right after
 * smtpd's own Received field, then the header (without
 * Authentication-Results fields that claim our authserv_id), then the
 * body. Received stays the first field (RFC 5321 4.4 trace order); A-R
 * follows it, above everything the message brought (RFC 8601 5: "at the
 * top").
 *
 * "Our" mail is mail from an AUTH client or a mynetworks client: it is
 * signed when the signing table has a key for its From domain and is
 * not verified. Nothing of it is held back: at the end of its header
 * block the pending signature field (mail/dkim.h: placeholders for bh=
 * and b=) goes right after Received, then the header (without
 * X-DKIM-Pending fields the client wrote), and the body streams to the
 * queue file; the queue file's dkim_sign attribute tells the queue
 * manager to complete the signature before any delivery. The private-key
 * work, the most expensive step of receiving our mail, thus runs after
 * the 250, in the queue manager's signing thread.
 *
 * Quarantine with dmarc_quarantine_action = hold: data_hold (actions.c)
 * renames the queue file from incoming/ to hold/ before it is finished
 * (still mode 0600, so the queue manager never sees it in incoming/) and
 * fsyncs hold/, then the group commit makes the data durable; "posta
 * super -H" releases it.
 *
 * DIAGNOSTICS: "QID: authentication: ..." logs each judged message;
 * rejections log as "QID: reject: END-OF-MESSAGE from ...". A key that
 * cannot be used, or a signing failure, is a warning and the message
 * goes unsigned.
 *
 * SECURITY: the header block is bounded by header_size_limit; what is
 * past it is body. Everything judged is outside input: the parsers are
 * in the libraries (fuzzed). Temporary DNS errors never reject.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mail/authres.h"
#include "mail/config.h"
#include "mail/dkim.h"
#include "mail/dmarc.h"
#include "mail/matchlist.h"
#include "mail/psl.h"
#include "mail/qfile.h"
#include "mail/spf.h"
#include "mail/spool.h"
#include "util/alloc.h"
#include "util/dns.h"
#include "util/log.h"

#include "mailauth.h"

#define MA_BUCKETS 256          /* session -> state hash */
#define MA_MEM_MAX (256 * 1024) /* body bytes kept in memory, then a file */
#define MA_DNS_TIMEOUT_MS 10000 /* each DNS question */
#define MA_COPY_CHUNK 65536     /* reading the spill file back */
#define MA_REPLY_CODE_LEN 3

/* settings (mailauth_post_jail) */
static struct {
    bool spf, spf_helo, spf_reject, spf_received;
    bool dkim, dmarc;
    struct dmarc_settings dmarc_set;
    unsigned dkim_limit;
    size_t header_max;
    char *authserv_id;
    struct dkim_keys *keys;
    struct dkim_sign_opts sign_opts;
    bool sign_opts_ok;
    const struct psl *psl;
    bool inbound; /* any inbound check on */
    bool signing; /* dkim_signing_table is set */
} ma_conf;

enum ma_phase {
    MA_OFF = 0, /* content goes straight to the queue file */
    MA_HEADER,  /* collecting the header block */
    MA_BODY,    /* holding the body back */
};

struct ma_spf {
    struct spf_eval *ev;
    bool started, done;
    enum spf_result result;
    char *domain, *sender, *problem;
    struct buf reject; /* "550 5.7.23 ..." for a fail */
};

struct mailauth {
    struct mailauth *next; /* hash chain */
    struct session *s;
    bool ours;      /* sign, do not verify */
    bool mail_wait; /* the MAIL FROM reply waits for SPF */
    struct ma_spf spf, helo;

    enum ma_phase phase;
    bool bol; /* header: at the start of a line */
    bool sep; /* the header ended with an empty line */
    struct buf hdr;
    struct buf body;
    int spill_fd;
    bool write_error;

    struct dkim_verify *dv;
    enum dmarc_from_status from_st;
    struct buf from; /* the From domain */

    struct dmarc_eval *dm;
    bool dm_started, dm_done;
    struct dmarc_outcome dmo;
    char *dm_policy_domain, *dm_problem;

    bool ended, in_end, decided;
    enum smtpd_verb verb;
};

static struct mailauth *ma_table[MA_BUCKETS];

static void ma_progress(struct mailauth *ma);

/* ma_hash - bucket of a session pointer */
static size_t ma_hash(const struct session *s)
{
    return ((uintptr_t)s >> 4) % MA_BUCKETS;
}

/* ma_find - the state of s, or NULL */
static struct mailauth *ma_find(const struct session *s)
{
    for (struct mailauth *ma = ma_table[ma_hash(s)]; ma; ma = ma->next)
        if (ma->s == s)
            return ma;
    return NULL;
}

/* ma_get - the state of s, made when missing */
static struct mailauth *ma_get(struct session *s)
{
    struct mailauth *ma = ma_find(s);

    if (ma != NULL)
        return ma;
    ma = xcalloc(1, sizeof(*ma));
    ma->s = s;
    ma->spill_fd = -1;
    ma->next = ma_table[ma_hash(s)];
    ma_table[ma_hash(s)] = ma;
    return ma;
}

/* spf_clear - cancel and free one SPF check */
static void spf_clear(struct ma_spf *sp)
{
    if (sp->ev != NULL)
        spf_eval_cancel(sp->ev);
    free(sp->domain);
    free(sp->sender);
    free(sp->problem);
    buf_free(&sp->reject);
    memset(sp, 0, sizeof(*sp));
}

/* mailauth_abort - the transaction ends: cancel every lookup, free */
void mailauth_abort(struct session *s)
{
    struct mailauth **pp = &ma_table[ma_hash(s)];

    while (*pp != NULL && (*pp)->s != s)
        pp = &(*pp)->next;
    if (*pp == NULL)
        return;
    struct mailauth *ma = *pp;

    *pp = ma->next;
    spf_clear(&ma->spf);
    spf_clear(&ma->helo);
    if (ma->dm != NULL)
        dmarc_eval_cancel(ma->dm);
    dkim_verify_free(ma->dv);
    if (ma->spill_fd >= 0)
        (void)close(ma->spill_fd);
    buf_free(&ma->hdr);
    buf_free(&ma->body);
    buf_free(&ma->from);
    free(ma->dm_policy_domain);
    free(ma->dm_problem);
    free(ma);
}

/* ---- settings ------------------------------------------------------------ */

/* choice - a two-word setting: true for yes_word, false for no_word, else fatal */
static bool choice(struct cfg *cfg, const char *name, const char *yes_word,
                   const char *no_word)
{
    const char *v = cfg_str(cfg, name);

    if (strcasecmp(v, yes_word) == 0)
        return true;
    if (strcasecmp(v, no_word) == 0)
        return false;
    msg_fatal("bad %s value: \"%s\" (%s or %s)", name, v, yes_word, no_word);
}

/* mailauth_pre_jail - resolver servers, the resolver, keys and the suffix list */
void mailauth_pre_jail(struct cfg *cfg)
{
    const char *servers = cfg_str(cfg, "dns_servers");
    const char *err = NULL;
    char *kerr = NULL;

    if (*servers && !dns_set_servers(servers, &err))
        msg_fatal("dns_servers: %s", err ? err : "malformed server list");
    if (cfg_bool(cfg, "spf_verify") || cfg_bool(cfg, "spf_helo_verify") ||
        cfg_bool(cfg, "dkim_verify") || cfg_bool(cfg, "dmarc_verify"))
        dns_init();
    /* key files are readable by root (and mail_owner's group) only */
    if ((ma_conf.keys = dkim_keys_load(cfg, &kerr)) == NULL)
        msg_fatal("dkim_signing_table: %s", kerr ? kerr : "cannot load");
    if (cfg_bool(cfg, "dmarc_verify"))
        ma_conf.psl = psl_get(cfg_str(cfg, "dmarc_public_suffix_list"));
}

/* mailauth_post_jail - the settings, the hold queue */
void mailauth_post_jail(struct cfg *cfg)
{
    char *err = NULL;
    long long hmax = cfg_int(cfg, "header_size_limit");

    ma_conf.spf = cfg_bool(cfg, "spf_verify");
    ma_conf.spf_helo = cfg_bool(cfg, "spf_helo_verify");
    ma_conf.spf_reject = choice(cfg, "spf_fail_action", "reject", "header");
    ma_conf.spf_received = cfg_bool(cfg, "spf_received_header");
    ma_conf.dkim = cfg_bool(cfg, "dkim_verify");
    ma_conf.dmarc = cfg_bool(cfg, "dmarc_verify");
    ma_conf.dmarc_set.enforce = cfg_bool(cfg, "dmarc_enforce");
    ma_conf.dmarc_set.quarantine_hold =
        choice(cfg, "dmarc_quarantine_action", "hold", "header");
    ma_conf.dmarc_set.temperror_defer =
        choice(cfg, "dmarc_temperror_action", "defer", "header");
    ma_conf.dkim_limit = (unsigned)cfg_int(cfg, "dkim_verify_limit");
    ma_conf.header_max = hmax > 0 ? (size_t)hmax : 1;
    ma_conf.authserv_id = xstrdup(cfg_str(cfg, "authserv_id"));
    if (*ma_conf.authserv_id == 0) {
        free(ma_conf.authserv_id);
        ma_conf.authserv_id = xstrdup(cfg_str(cfg, "myhostname"));
    }
    if (!dkim_sign_opts_from_cfg(cfg, &ma_conf.sign_opts, &err))
        msg_fatal("%s", err ? err : "bad DKIM signing settings");
    ma_conf.sign_opts_ok = true;
    ma_conf.inbound = ma_conf.spf || ma_conf.spf_helo || ma_conf.dkim || ma_conf.dmarc;
    ma_conf.signing = *cfg_str(cfg, "dkim_signing_table") != 0;
    if (ma_conf.signing)
        msg_info("DKIM signing: %zu key(s) loaded", dkim_keys_count(ma_conf.keys));
}

/* ---- replies and logs ---------------------------------------------------- */

/* split_reply - "550 5.7.1 text" into its parts (text points into r) */
static int split_reply(const char *r, char *enh, size_t enhlen, const char **text)
{
    int code = 0;
    size_t n;

    for (n = 0; n < MA_REPLY_CODE_LEN && r[n] >= '0' && r[n] <= '9'; n++)
        code = code * 10 + (r[n] - '0');
    r += n;
    while (*r == ' ')
        r++;
    n = strcspn(r, " ");
    snprintf(enh, enhlen, "%.*s", (int)n, r);
    r += n;
    while (*r == ' ')
        r++;
    *text = r;
    return code;
}

/* ---- SPF ---------------------------------------------------------------- */

/* mail_reply - SPF answered while MAIL FROM waits: 250, or 550 5.7.23 */
static void mail_reply(struct mailauth *ma)
{
    struct session *s = ma->s;
    const struct ma_spf *bad = NULL;

    if (ma->spf.started && !ma->spf.done)
        return;
    if (ma->helo.started && !ma->helo.done)
        return;
    ma->mail_wait = false;
    s->wait &= ~SW_LOOKUP;
    if (ma->helo.done && ma->helo.result == SPF_FAIL)
        bad = &ma->helo;
    if (ma->spf.done && ma->spf.result == SPF_FAIL)
        bad = &ma->spf;
    if (bad != NULL) {
        char enh[16];
        const char *text;
        char *full = xstrdup(buf_str(&bad->reject));
        int code = split_reply(full, enh, sizeof(enh), &text);

        session_log_reject(s, "MAIL", full);
        reply(s, code, enh, "%s", text);
        session_count_verb(s, V_MAIL, code);
        free(full);
        session_reset_transaction(s); /* frees ma */
    } else {
        reply(s, 250, "2.1.0", "Ok");
        session_count_verb(s, V_MAIL, 250);
    }
    session_resume(s);
}

/* spf_save - keep an SPF outcome (valid only during the callback) */
static void spf_save(struct ma_spf *sp, const struct spf_outcome *o)
{
    sp->ev = NULL; /* it frees itself after this callback */
    sp->done = true;
    sp->result = o->result;
    sp->domain = xstrdup(o->domain ? o->domain : "");
    sp->sender = xstrdup(o->sender ? o->sender : "");
    sp->problem = xstrdup(o->problem ? o->problem : "");
    if (o->result == SPF_FAIL)
        spf_reject_reply(o, &sp->reject);
}

/* spf_done_common - either check finished */
static void spf_done_common(struct mailauth *ma, bool sync)
{
    if (sync)
        return; /* mailauth_mail looks at the result itself */
    if (ma->mail_wait)
        mail_reply(ma);
    else
        ma_progress(ma);
}

/* spf_finished - one check's outcome: keep it and go on (sync: spf_start still runs) */
static void spf_finished(struct mailauth *ma, struct ma_spf *sp, const struct spf_outcome *o)
{
    bool sync = !sp->started;

    spf_save(sp, o);
    sp->started = true;
    spf_done_common(ma, sync);
}

/* spf_mail_done - the MAIL FROM check finished */
static void spf_mail_done(void *ctx, const struct spf_outcome *o)
{
    struct mailauth *ma = ctx;

    spf_finished(ma, &ma->spf, o);
}

/* spf_helo_done - the HELO check finished */
static void spf_helo_done(void *ctx, const struct spf_outcome *o)
{
    struct mailauth *ma = ctx;

    spf_finished(ma, &ma->helo, o);
}

/* session_ours - mail we sign rather than judge: AUTH or mynetworks clients */
static bool session_ours(struct session *s)
{
    if (session_authenticated(s))
        return true;
    return smtpd_conf.mynetworks != NULL &&
           matchlist_match_addr(smtpd_conf.mynetworks, s->addr) == MATCH_YES;
}

/* spf_start - start one check; the callback may run before this returns */
static void spf_start(struct mailauth *ma, struct ma_spf *sp, enum spf_scope scope,
                      spf_done_fn fn)
{
    struct session *s = ma->s;
    struct spf_request rq = {
        .scope = scope,
        .client_ip = s->addr,
        .sender = s->sender ? s->sender : "",
        .helo = s->helo ? s->helo : "",
        .receiver = smtpd_conf.myhostname,
        .now = 0,
    };
    struct spf_eval *ev = spf_eval_start(spf_dns_real(MA_DNS_TIMEOUT_MS), &rq, fn, ma);

    if (!sp->done)
        sp->ev = ev;
    sp->started = true;
}

/* mailauth_mail - MAIL FROM accepted: start SPF; 0, a refusal's code or MAILAUTH_LATER */
int mailauth_mail(struct session *s)
{
    struct mailauth *ma;

    mailauth_abort(s); /* a fresh transaction */
    if (!ma_conf.inbound && !ma_conf.signing)
        return 0;
    ma = ma_get(s);
    ma->ours = session_ours(s);
    if (ma->ours)
        return 0;
    if (ma_conf.spf)
        spf_start(ma, &ma->spf, SPF_SCOPE_MAILFROM, spf_mail_done);
    if (ma_conf.spf_helo && s->helo != NULL && *s->helo)
        spf_start(ma, &ma->helo, SPF_SCOPE_HELO, spf_helo_done);
    if (!ma_conf.spf_reject)
        return 0;
    if ((ma->spf.started && !ma->spf.done) || (ma->helo.started && !ma->helo.done)) {
        ma->mail_wait = true;
        s->wait |= SW_LOOKUP;
        return MAILAUTH_LATER;
    }
    /* every answer is here already: decide now */
    if ((ma->spf.done && ma->spf.result == SPF_FAIL) ||
        (ma->helo.done && ma->helo.result == SPF_FAIL)) {
        const struct ma_spf *bad = ma->spf.result == SPF_FAIL ? &ma->spf : &ma->helo;
        char enh[16];
        const char *text;
        char *full = xstrdup(buf_str(&bad->reject));
        int code = split_reply(full, enh, sizeof(enh), &text);

        session_log_reject(s, "MAIL", full);
        reply(s, code, enh, "%s", text);
        free(full);
        session_reset_transaction(s);
        return code;
    }
    return 0;
}

/* ---- content ------------------------------------------------------------ */

/* mailauth_signs - ours, with signing on (the state is made here when missing) */
bool mailauth_signs(struct session *s)
{
    struct mailauth *ma;

    if (!ma_conf.signing)
        return false;
    if ((ma = ma_find(s)) == NULL) {
        ma = ma_get(s);
        ma->ours = session_ours(s);
    }
    return ma->ours;
}

/* mailauth_data_start - decide whether the content is held back */
void mailauth_data_start(struct session *s)
{
    struct mailauth *ma = ma_find(s);

    if (ma == NULL) {
        /* no MAIL-time state (nothing on, or it was dropped): start plain */
        if (!ma_conf.inbound && !ma_conf.signing)
            return;
        ma = ma_get(s);
        ma->ours = session_ours(s);
    }
    buf_reset(&ma->hdr);
    buf_reset(&ma->body);
    ma->bol = true;
    ma->sep = false;
    if (ma->ours)
        ma->phase = ma_conf.signing ? MA_HEADER : MA_OFF;
    else
        ma->phase = ma_conf.inbound ? MA_HEADER : MA_OFF;
}

/* field_name_is - does field start with name followed by optional blanks and ':'? */
static bool field_name_is(const char *f, size_t len, const char *name)
{
    size_t n = strlen(name);

    if (len <= n || strncasecmp(f, name, n) != 0)
        return false;
    for (f += n, len -= n; len > 0 && (*f == ' ' || *f == '\t'); f++, len--)
        ;
    return len > 0 && *f == ':';
}

/* header_fields - filter our A-R fields out of hdr, collect From values */
static void header_fields(struct mailauth *ma, char ***fromv, size_t *nfrom)
{
    struct buf out = BUF_INIT;
    const char *p = ma->hdr.data ? ma->hdr.data : "", *end = p + ma->hdr.len;

    *fromv = NULL;
    *nfrom = 0;
    while (p < end) {
        const char *f = p, *nl;

        /* a field: its first line and every continuation line */
        do {
            nl = memchr(p, '\n', (size_t)(end - p));
            p = nl ? nl + 1 : end;
        } while (p < end && (*p == ' ' || *p == '\t'));
        size_t flen = (size_t)(p - f), vlen = flen;

        if (vlen > 0 && f[vlen - 1] == '\n')
            vlen--;
        if (authres_field_is_ours(f, vlen, ma_conf.authserv_id)) {
            msg_info("%s: removed an Authentication-Results field claiming %s", ma->s->qid,
                     ma_conf.authserv_id);
            continue;
        }
        if (ma->ours && field_name_is(f, vlen, DKIM_PENDING_HEADER)) {
            msg_info("%s: removed a %s field from the client", ma->s->qid,
                     DKIM_PENDING_HEADER);
            continue;
        }
        if (field_name_is(f, vlen, "From")) {
            const char *c = memchr(f, ':', vlen);

            *fromv = xreallocarray(*fromv, *nfrom + 1, sizeof(**fromv));
            (*fromv)[(*nfrom)++] = xstrndup(c + 1, vlen - (size_t)(c + 1 - f));
        }
        (void)buf_append(&out, f, flen);
    }
    buf_free(&ma->hdr);
    ma->hdr = out;
}

/* dkim_keys_done - every DKIM key lookup answered */
static void dkim_keys_done(void *ctx, struct dkim_verify *v)
{
    (void)v;
    ma_progress(ctx);
}

/* flush_header - our mail without a key: write the header, stream the rest */
static void flush_header(struct mailauth *ma)
{
    struct session *s = ma->s;

    qfw_content(s->qf, ma->hdr.data ? ma->hdr.data : "", ma->hdr.len);
    if (ma->sep)
        qfw_content(s->qf, "\n", 1);
    buf_free(&ma->hdr);
    ma->phase = MA_OFF;
}

/* header_end - the header block is complete: start verifying or signing */
static void header_end(struct mailauth *ma)
{
    char **fromv;
    size_t nfrom;
    const char *why = NULL;

    ma->phase = MA_BODY;
    if (!ma->ours && ma_conf.dkim) {
        ma->dv = dkim_verify_new(ma_conf.dkim_limit, time(NULL));
        /* verified as it arrived, before our own changes */
        dkim_verify_header(ma->dv, ma->hdr.data ? ma->hdr.data : "", ma->hdr.len);
        dkim_verify_run(ma->dv, MA_DNS_TIMEOUT_MS, dkim_keys_done, ma);
    }
    header_fields(ma, &fromv, &nfrom);
    ma->from_st = dmarc_from_domain((const char *const *)fromv, nfrom, &ma->from, &why);
    for (size_t i = 0; i < nfrom; i++)
        free(fromv[i]);
    free(fromv);
    if (!ma->ours)
        return;
    bool tempfail = false;
    struct dkim_key *k = ma->from_st == DMARC_FROM_OK
                             ? dkim_keys_find(ma_conf.keys, buf_str(&ma->from), &tempfail)
                             : NULL;

    if (tempfail)
        msg_warn("%s: dkim_signing_table lookup for %s failed: message not signed",
                 ma->s->qid, buf_str(&ma->from));
    if (k == NULL) {
        flush_header(ma);
        return;
    }
    /* the signature waits for the queue manager: see mailauth.h */
    struct dkim_sign *ds = dkim_sign_new(k, &ma_conf.sign_opts, time(NULL));
    struct buf field = BUF_INIT;
    char *err = NULL;

    dkim_sign_header(ds, ma->hdr.data ? ma->hdr.data : "", ma->hdr.len);
    if (dkim_sign_pending(ds, "\n", &field, &err) == 0) {
        buf_putc(&field, '\n');
        qfw_content(ma->s->qf, field.data, field.len);
    } else {
        msg_warn("%s: DKIM signing: %s: message not signed", ma->s->qid, err ? err : "?");
    }
    free(err);
    buf_free(&field);
    dkim_sign_free(ds);
    flush_header(ma);
}

/* body_keep - hold body bytes back: memory first, then a temporary file */
static void body_keep(struct mailauth *ma, const char *p, size_t n)
{
    if (ma->write_error)
        return;
    if (ma->spill_fd < 0 && ma->body.len + n <= MA_MEM_MAX) {
        (void)buf_append(&ma->body, p, n);
        return;
    }
    if (ma->spill_fd < 0) {
        ma->spill_fd =
            openat(smtpd_conf.incoming_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (ma->spill_fd < 0) {
            msg_warn("%s: temporary file in incoming/: %m", ma->s->qid);
            ma->write_error = true;
            return;
        }
    }
    while (n > 0) {
        ssize_t w = write(ma->spill_fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            msg_warn("%s: write temporary file: %m", ma->s->qid);
            ma->write_error = true;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* body_bytes - body content: verifier, signer, held back */
static void body_bytes(struct mailauth *ma, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (ma->dv != NULL)
        dkim_verify_body(ma->dv, p, n);
    body_keep(ma, p, n);
}

/* mailauth_content - decoded content; true when mailauth took it */
bool mailauth_content(struct session *s, const char *p, size_t n)
{
    struct mailauth *ma = ma_find(s);

    if (ma == NULL || ma->phase == MA_OFF)
        return false;
    while (n > 0 && ma->phase == MA_HEADER) {
        if (ma->bol && *p == '\n') {
            ma->sep = true;
            p++;
            n--;
            header_end(ma);
            break;
        }
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) + 1 : n;

        if (ma->hdr.len + seg > ma_conf.header_max) {
            header_end(ma); /* the rest is body */
            break;
        }
        (void)buf_append(&ma->hdr, p, seg);
        ma->bol = nl != NULL;
        p += seg;
        n -= seg;
    }
    if (ma->phase == MA_OFF) {
        if (n > 0)
            qfw_content(s->qf, p, n);
        return true;
    }
    if (ma->phase == MA_BODY)
        body_bytes(ma, p, n);
    return true;
}

/* ---- end of data ---------------------------------------------------------- */

/* copy_out - write what was held back into the queue file; false on error */
static bool copy_out(struct mailauth *ma, const struct buf *trace)
{
    struct session *s = ma->s;
    char *chunk;
    off_t off = 0;

    if (ma->write_error)
        return false;
    qfw_content(s->qf, trace->data ? trace->data : "", trace->len);
    qfw_content(s->qf, ma->hdr.data ? ma->hdr.data : "", ma->hdr.len);
    if (ma->sep)
        qfw_content(s->qf, "\n", 1);
    qfw_content(s->qf, ma->body.data ? ma->body.data : "", ma->body.len);
    if (ma->spill_fd < 0)
        return true;
    chunk = xmalloc(MA_COPY_CHUNK);
    for (;;) {
        ssize_t r = pread(ma->spill_fd, chunk, MA_COPY_CHUNK, off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            msg_warn("%s: read temporary file: %m", s->qid);
            free(chunk);
            return false;
        }
        if (r == 0)
            break;
        qfw_content(s->qf, chunk, (size_t)r);
        off += r;
    }
    free(chunk);
    return true;
}

/* ar_dkim - the dkim= parts from the verifier (*n entries, malloc'ed) */
static struct authres_dkim *ar_dkim(struct mailauth *ma, size_t *n)
{
    const struct dkim_result *r = dkim_verify_results(ma->dv, n);
    struct authres_dkim *d = *n ? xcalloc(*n, sizeof(*d)) : NULL;

    for (size_t i = 0; i < *n; i++) {
        d[i].result = dkim_status_name(r[i].status);
        d[i].domain = r[i].d;
        d[i].selector = r[i].s;
        d[i].b = r[i].b8;
        d[i].reason = r[i].reason;
    }
    return d;
}

/* trace_fields - Authentication-Results (and Received-SPF) for inbound mail */
static void trace_fields(struct mailauth *ma, struct buf *out)
{
    struct session *s = ma->s;
    struct authres ar = {.authserv_id = ma_conf.authserv_id};
    struct authres_dkim *dk = NULL;
    struct buf one = BUF_INIT;

    if (ma->spf.done) {
        ar.spf_checked = true;
        ar.spf = ma->spf.result;
        ar.mailfrom = ma->spf.sender;
    }
    if (ma->helo.done) {
        ar.helo_checked = true;
        ar.spf_helo = ma->helo.result;
        ar.helo = s->helo;
    }
    if (ma->dv != NULL) {
        ar.dkim_checked = true;
        dk = ar_dkim(ma, &ar.ndkim);
        ar.dkim = dk;
    }
    if (ma->dm_done) {
        ar.dmarc_checked = true;
        ar.dmarc = ma->dmo.result;
        ar.policy = ma->dmo.policy;
        ar.disposition = ma->dmo.disposition;
        ar.from_domain = buf_str(&ma->from);
    }
    authres_build(&ar, &one);
    (void)buf_append(out, one.data, one.len);
    if (ma_conf.spf_received && ma->spf.done) {
        authres_received_spf(ma->spf.result, smtpd_conf.myhostname, s->addr, s->sender,
                             s->helo, "mailfrom", ma->spf.problem, &one);
        (void)buf_append(out, one.data, one.len);
    }
    buf_free(&one);
    free(dk);
}

/* log_results - one line per judged message */
static void log_results(struct mailauth *ma, const char *action)
{
    struct buf b = BUF_INIT;
    size_t n = 0;

    if (ma->spf.done)
        (void)buf_printf(&b, " spf=%s", spf_result_name(ma->spf.result));
    if (ma->helo.done)
        (void)buf_printf(&b, " spf.helo=%s", spf_result_name(ma->helo.result));
    if (ma->dv != NULL) {
        const struct dkim_result *r = dkim_verify_results(ma->dv, &n);

        if (n == 0)
            (void)buf_puts(&b, " dkim=none");
        for (size_t i = 0; i < n; i++)
            (void)buf_printf(&b, " dkim=%s(%s)", dkim_status_name(r[i].status), r[i].d);
    }
    if (ma->dm_done)
        (void)buf_printf(&b, " dmarc=%s(p=%s)", dmarc_result_name(ma->dmo.result),
                         dmarc_policy_name(ma->dmo.policy));
    msg_info("%s: authentication:%s from=%s action=%s", ma->s->qid, buf_str(&b),
             ma->from.len ? buf_str(&ma->from) : "-", action);
    buf_free(&b);
}

/* finish_reply - a refusal after the content: reply, count, forget */
static void finish_reply(struct mailauth *ma, const char *full)
{
    struct session *s = ma->s;
    enum smtpd_verb v = ma->verb;
    char enh[16];
    const char *text;
    char *copy = xstrdup(full);
    int code = split_reply(copy, enh, sizeof(enh), &text);

    session_log_reject(s, "END-OF-MESSAGE", copy);
    reply(s, code, enh, "%s", text);
    session_count_verb(s, v, code);
    free(copy);
    session_reset_transaction(s); /* removes the file, frees ma */
}

/* verdict - every answer is in: refuse, hold or write and commit */
static void verdict(struct mailauth *ma)
{
    struct session *s = ma->s;
    bool async = !ma->in_end;
    enum smtpd_verb v = ma->verb;
    enum dmarc_action act = DMARC_ACTION_ACCEPT;
    struct buf trace = BUF_INIT, rep = BUF_INIT;

    ma->decided = true;
    s->wait &= ~SW_COMMIT;
    if (!ma->ours) {
        if (ma->dm_done)
            act = dmarc_action(&ma->dmo, &ma_conf.dmarc_set, &rep);
        log_results(ma, act == DMARC_ACTION_REJECT  ? "reject"
                        : act == DMARC_ACTION_DEFER ? "defer"
                        : act == DMARC_ACTION_HOLD  ? "hold"
                                                    : "accept");
        trace_fields(ma, &trace);
    }
    if (act == DMARC_ACTION_HOLD) {
        buf_reset(&rep);
        (void)buf_printf(&rep, "DMARC quarantine policy of %s", buf_str(&ma->from));
    }
    /* a failure below removes the file wherever it is (incoming/ or hold/) */
    if (act == DMARC_ACTION_REJECT || act == DMARC_ACTION_DEFER) {
        finish_reply(ma, buf_str(&rep));
    } else if ((act == DMARC_ACTION_HOLD && !data_hold(s, buf_str(&rep)))
               || !copy_out(ma, &trace)) {
        finish_reply(ma, "451 4.3.0 Error: queue file write error");
    } else {
        ma->phase = MA_OFF;
        ma->ended = false;
        data_finish(s, v); /* qfw_finish and the group commit */
    }
    buf_free(&trace);
    buf_free(&rep);
    if (async)
        session_resume(s);
}

/* dmarc_done - the DMARC policy was found and applied */
static void dmarc_done(void *ctx, const struct dmarc_outcome *o)
{
    struct mailauth *ma = ctx;
    bool sync = ma->dm == NULL && !ma->dm_started;

    ma->dm = NULL;
    ma->dm_done = true;
    ma->dmo = *o;
    ma->dm_policy_domain = xstrdup(o->policy_domain ? o->policy_domain : "");
    ma->dm_problem = xstrdup(o->problem ? o->problem : "");
    ma->dmo.policy_domain = ma->dm_policy_domain;
    ma->dmo.problem = ma->dm_problem;
    ma->dmo.from_domain = buf_str(&ma->from);
    if (!sync)
        ma_progress(ma);
}

/* dmarc_start - SPF and DKIM are known: look the policy up */
static void dmarc_start(struct mailauth *ma)
{
    struct dmarc_dkim_sig *sigs = NULL;
    size_t n = 0;
    const struct dkim_result *r = ma->dv ? dkim_verify_results(ma->dv, &n) : NULL;
    struct dmarc_eval *ev;

    if (ma->from_st != DMARC_FROM_OK) {
        /* no usable From: none or permerror without a lookup */
        memset(&ma->dmo, 0, sizeof(ma->dmo));
        ma->dmo.result =
            ma->from_st == DMARC_FROM_BAD ? DMARC_RESULT_PERMERROR : DMARC_RESULT_NONE;
        ma->dmo.from_domain = buf_str(&ma->from);
        ma->dmo.policy_domain = "";
        ma->dmo.problem = "";
        ma->dm_started = ma->dm_done = true;
        return;
    }
    if (n > 0)
        sigs = xcalloc(n, sizeof(*sigs));
    for (size_t i = 0; i < n; i++) {
        sigs[i].domain = r[i].d;
        sigs[i].pass = r[i].status == DKIM_PASS;
    }
    struct dmarc_input in = {
        .from_domain = buf_str(&ma->from),
        .spf_domain = ma->spf.done ? ma->spf.domain : "",
        .spf = ma->spf.done ? ma->spf.result : SPF_NONE,
        .dkim = sigs,
        .ndkim = n,
        .sample = -1,
    };
    ev =
        dmarc_eval_start(spf_dns_real(MA_DNS_TIMEOUT_MS), ma_conf.psl, &in, dmarc_done, ma);
    ma->dm_started = true;
    if (!ma->dm_done)
        ma->dm = ev;
    free(sigs);
}

/* ma_progress - after any answer: go on when everything needed is known */
static void ma_progress(struct mailauth *ma)
{
    if (!ma->ended || ma->decided)
        return;
    if ((ma->spf.started && !ma->spf.done) || (ma->helo.started && !ma->helo.done))
        return;
    if (ma->dv != NULL && !dkim_verify_ready(ma->dv))
        return;
    if (!ma->ours && ma_conf.dmarc && !ma->dm_started) {
        dmarc_start(ma);
        if (!ma->dm_done)
            return;
    }
    if (ma->dm_started && !ma->dm_done)
        return;
    verdict(ma);
}

/* mailauth_end - end of data: true when mailauth replies later */
bool mailauth_end(struct session *s, enum smtpd_verb v)
{
    struct mailauth *ma = ma_find(s);

    if (ma == NULL || ma->phase == MA_OFF)
        return false;
    if (ma->phase == MA_HEADER) {
        header_end(ma);
        if (ma->phase == MA_OFF)
            return false; /* our mail without a key: already written */
    }
    if (ma->dv != NULL)
        dkim_verify_body_end(ma->dv);
    ma->ended = true;
    ma->verb = v;
    s->state = SS_QUEUE;
    s->wait |= SW_COMMIT;
    ma->in_end = true;
    ma_progress(ma);
    /* ma may be gone now (a refusal); in_end matters only while it lives */
    if ((ma = ma_find(s)) != NULL)
        ma->in_end = false;
    return true;
}
