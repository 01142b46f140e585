/*
 * bounce.c - delivery status notifications (RFC 3464) as new queue files
 *
 * bounce_notify() composes one multipart/report message about some
 * recipients of an open queue file and writes it as a new, complete and
 * durable queue file in $queue_directory/incoming (see bounce.h for the
 * rules). The whole notice is built in memory first: the part that
 * carries the original is at most bounce_size_limit bytes (larger
 * messages are returned as headers only, as Postfix 2.5 and later do), so
 * the notice stays small.
 *
 * WHO GETS WHAT
 *   sender not <>           the notice goes to the sender, envelope sender
 *                           <>, recipients filtered by their NOTIFY;
 *   sender <>, kind FAILED  a bounce that bounced: when notify_classes has
 *                           2bounce (or bounce) a "postmaster copy" goes to
 *                           2bounce_notice_recipient from
 *                           double_bounce_sender, for every recipient and
 *                           with the full original (NOTIFY and RET do not
 *                           apply), else it is dropped - as Postfix does;
 *   sender <>, other kinds  nothing (no one to tell);
 *   sender double_bounce_sender (bare, @$myorigin, @$myhostname or
 *                           @$mydomain): nothing, a warning is logged (a
 *                           postmaster notice that failed: never a third
 *                           bounce).
 * Unqualified notice addresses get "@$myorigin" (no cleanup daemon
 * rewrites them later). double_bounce_sender and bounce_size_limit are
 * read from the settings table when it has them, else Postfix's defaults
 * ("double-bounce", 50000) apply.
 *
 * THE NOTICE (lines end in "\n", as all queue file content):
 *   Date, From: MAILER-DAEMON@$myhostname (Mail Delivery System), To,
 *   Subject, Message-Id <NEWQID.SECONDS@$myhostname>, Auto-Submitted:
 *   auto-replied, MIME-Version, Content-Type: multipart/report;
 *   report-type=delivery-status; boundary="NEWQID.SECONDS/$myhostname"
 *   (made longer if the original happens to contain it), then
 *   1. text/plain: what happened, one line per recipient;
 *   2. message/delivery-status: per-message fields in RFC 3464 order
 *      (Original-Envelope-Id, Reporting-MTA, Arrival-Date, then the
 *      X-Posta-Queue-ID and X-Posta-Sender extensions); per recipient
 *      Original-Recipient (ORCPT, else the original address when an alias
 *      changed it), Final-Recipient, Action, Status,
 *      Remote-MTA, Diagnostic-Code ("smtp;" when a remote MTA said it,
 *      else "X-Posta;"), Last-Attempt-Date, Will-Retry-Until (delay
 *      notices);
 *   3. message/rfc822 (the whole original: failures with RET=FULL or no
 *      RET, and postmaster copies) or text/rfc822-headers (RET=HDRS,
 *      delay and success notices, originals over bounce_size_limit).
 * The text and report parts are 7-bit: control characters and non-ASCII
 * bytes in diagnostics and addresses become '?', long fields are folded.
 * Only the returned original (or an SMTPUTF8 address in To:) may carry
 * 8-bit bytes; then the part and the message are labelled 8bit and the
 * queue file gets encoding=8bitmime.
 *
 * DIAGNOSTICS
 *   "QID: sender non-delivery notification: NEWQID" (also "sender delay
 *   notification", "sender delivery status notification", "postmaster
 *   non-delivery notification"); "QID: undeliverable postmaster
 *   notification discarded" (warning); write errors are logged with the
 *   queue ID and returned as -1 with errno, leaving no file behind.
 *
 * SECURITY
 *   The original message is copied verbatim into a MIME part whose
 *   boundary is checked not to occur in it, so a crafted message cannot
 *   forge parts of the report. Envelope text from the queue file is
 *   sanitised before it goes into header fields.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/bounce.h"
#include "mail/maildate.h"
#include "mail/config.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define DEFAULT_DOUBLE_BOUNCE_SENDER "double-bounce"
#define DEFAULT_BOUNCE_SIZE_LIMIT 50000LL
#define FOLD_WIDTH 78                        /* fold report fields and text lines here */
#define FOLD_TOKEN_MAX 900                   /* hard split of one unbreakable word */
#define DIAG_TEXT_MAX 4096                   /* diagnostic text kept per recipient */
#define BOUNDARY_MAX 70                      /* RFC 2046 */
#define BOUNDARY_BASE_MAX (BOUNDARY_MAX - 8) /* room for a "/NNN" suffix */
#define BOUNDARY_TRIES 1000
#define CREATE_TRIES 3
#define NPARTS 3 /* text, report, original */
#define SECS_PER_MIN 60LL
#define SECS_PER_HOUR 3600LL
#define SECS_PER_DAY 86400LL
#define TEXT_INDENT "    "
#define SIGNATURE_INDENT 20

/* One notice being composed. */
struct notice {
    struct cfg *cfg;
    struct qfile *q;
    enum bounce_kind kind;
    bool pmcopy;      /* postmaster copy of a failed bounce */
    const char *host; /* $myhostname */
    char *env_sender; /* envelope sender of the notice */
    char *to;         /* its one recipient */
    time_t now;
    const struct bounce_rcpt **rc; /* recipients the notice is about */
    size_t nrc;
    bool headers_only;
    bool no_original; /* content unreadable: no third part */
    struct buf orig;  /* the original (or its headers) */
    char qid[QID_MAX];
    struct buf boundary;
};

/* param_str_or - a settings-table string, or def when the table lacks it */
static const char *param_str_or(struct cfg *cfg, const char *name, const char *def)
{
    return param_find(name) ? cfg_str(cfg, name) : def;
}

/* clean_char - c if printable ASCII, else '?' (space for white space) */
static int clean_char(unsigned char c)
{
    if (c == '\t' || c == '\r' || c == '\n')
        return ' ';
    return c >= 0x20 && c < 0x7f ? c : '?';
}

/* clean_text - a printable-ASCII copy of s, at most max bytes */
static char *clean_text(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *out = xmalloc(n + 1);

    for (size_t i = 0; i < n; i++)
        out[i] = (char)clean_char((unsigned char)s[i]);
    out[n] = 0;
    return out;
}

/*
 * put_folded - "first" then the words of text, folded at FOLD_WIDTH with
 * cont before each continuation line; a word longer than FOLD_TOKEN_MAX is
 * split so no line passes the RFC 5322 limit. Ends with "\n".
 */
static void put_folded(struct buf *b, const char *first, const char *text, const char *cont)
{
    size_t col = strlen(first);
    const char *p = text;
    bool at_start = true;

    buf_puts(b, first);
    for (;;) {
        size_t wlen;

        while (*p == ' ')
            p++;
        if (*p == 0)
            break;
        wlen = strcspn(p, " ");
        if (wlen > FOLD_TOKEN_MAX)
            wlen = FOLD_TOKEN_MAX;
        if (!at_start && col + 1 + wlen > FOLD_WIDTH) {
            buf_printf(b, "\n%s", cont);
            col = strlen(cont);
        } else if (!at_start) {
            buf_putc(b, ' ');
            col++;
        }
        buf_append(b, p, wlen);
        col += wlen;
        p += wlen;
        at_start = false;
    }
    buf_putc(b, '\n');
}

/* put_duration - "5 days", "4 hours", ... in the largest exact unit */
static void put_duration(struct buf *b, long long secs)
{
    static const struct {
        long long size;
        const char *name;
    } units[] = {{SECS_PER_DAY, "day"}, {SECS_PER_HOUR, "hour"}, {SECS_PER_MIN, "minute"}};

    for (size_t i = 0; i < POSTA_ARRAY_LEN(units); i++) {
        if (secs >= units[i].size && secs % units[i].size == 0) {
            long long n = secs / units[i].size;

            buf_printf(b, "%lld %s%s", n, units[i].name, n == 1 ? "" : "s");
            return;
        }
    }
    buf_printf(b, "%lld second%s", secs, secs == 1 ? "" : "s");
}

/* qualify - addr, with "@$myorigin" appended when it has no domain */
static char *qualify(struct cfg *cfg, const char *addr)
{
    if (strchr(addr, '@') != NULL)
        return xstrdup(addr);
    return xasprintf("%s@%s", addr, cfg_str(cfg, "myorigin"));
}

/* is_double_bounce - sender is double_bounce_sender (bare or in one of our domains) */
static bool is_double_bounce(struct cfg *cfg, const char *sender)
{
    const char *dbs =
        param_str_or(cfg, "double_bounce_sender", DEFAULT_DOUBLE_BOUNCE_SENDER);
    const char *domains[] = {cfg_str(cfg, "myorigin"), cfg_str(cfg, "myhostname"),
                             cfg_str(cfg, "mydomain")};
    const char *at;
    size_t llen;

    if (*dbs == 0 || *sender == 0)
        return false;
    if (strcasecmp(sender, dbs) == 0)
        return true;
    if (strchr(dbs, '@') != NULL)
        return false;
    at = strrchr(sender, '@');
    llen = at ? (size_t)(at - sender) : strlen(sender);
    if (llen != strlen(dbs) || strncasecmp(sender, dbs, llen) != 0)
        return false;
    if (at == NULL)
        return true;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(domains); i++)
        if (strcasecmp(at + 1, domains[i]) == 0)
            return true;
    return false;
}

/* twobounce_enabled - notify_classes asks for undeliverable bounces */
static bool twobounce_enabled(struct cfg *cfg)
{
    size_t n;
    char **classes = cfg_list(cfg, "notify_classes", &n);
    bool on = false;

    for (size_t i = 0; i < n; i++)
        if (strcasecmp(classes[i], "2bounce") == 0 || strcasecmp(classes[i], "bounce") == 0)
            on = true;
    cfg_list_free(classes, n);
    return on;
}

/* wanted - does a recipient with these NOTIFY bits get this kind of notice */
static bool wanted(enum bounce_kind kind, unsigned notify)
{
    if (notify & QNOTIFY_NEVER)
        return false;
    switch (kind) {
    case BOUNCE_FAILED:
        return notify == 0 || (notify & QNOTIFY_FAILURE);
    case BOUNCE_DELAYED:
        return notify == 0 || (notify & QNOTIFY_DELAY);
    case BOUNCE_DELIVERED:
    case BOUNCE_RELAYED:
        return (notify & QNOTIFY_SUCCESS) != 0;
    }
    return false;
}

/* kind_action - the RFC 3464 Action value */
static const char *kind_action(enum bounce_kind kind)
{
    switch (kind) {
    case BOUNCE_FAILED:
        return "failed";
    case BOUNCE_DELAYED:
        return "delayed";
    case BOUNCE_DELIVERED:
        return "delivered";
    case BOUNCE_RELAYED:
        return "relayed";
    }
    msg_panic("bounce: unknown notice kind %d", (int)kind);
}

/* status_ok - "C.S.D" with C in 2,4,5 and 1-3 digit subject and detail */
static bool status_ok(const char *s)
{
    size_t n;

    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    s += 2;
    for (int part = 0; part < 2; part++) {
        n = strspn(s, "0123456789");
        if (n < 1 || n > 3)
            return false;
        s += n;
        if (part == 0 && *s++ != '.')
            return false;
    }
    return *s == 0;
}

/*
 * put_status - the Status value: the caller's when well-formed, with the
 * class the Action requires (delayed: 4; delivered, relayed: 2; failed: 4
 * or 5, as expired mail keeps its temporary status)
 */
static void put_status(struct buf *b, enum bounce_kind kind, const char *dsn)
{
    char cls = status_ok(dsn) ? dsn[0] : 0;

    switch (kind) {
    case BOUNCE_FAILED:
        if (cls == '4' || cls == '5')
            buf_puts(b, dsn);
        else
            buf_puts(b, "5.0.0");
        return;
    case BOUNCE_DELAYED:
        if (cls == '4' || cls == '5')
            buf_printf(b, "4%s", dsn + 1);
        else
            buf_puts(b, "4.0.0");
        return;
    case BOUNCE_DELIVERED:
    case BOUNCE_RELAYED:
        buf_puts(b, cls == '2' ? dsn : "2.0.0");
        return;
    }
}

/* notice_subject - the Subject: text */
static const char *notice_subject(const struct notice *nt)
{
    if (nt->pmcopy)
        return "Postmaster Copy: Undelivered Mail";
    switch (nt->kind) {
    case BOUNCE_FAILED:
        return "Undelivered Mail Returned to Sender";
    case BOUNCE_DELAYED:
        return "Delayed Mail (still being retried)";
    case BOUNCE_DELIVERED:
    case BOUNCE_RELAYED:
        return "Successful Mail Delivery Report";
    }
    return "Mail Delivery Status Report";
}

/* log_what - the log wording for this notice */
static const char *log_what(const struct notice *nt)
{
    if (nt->pmcopy)
        return "postmaster non-delivery notification";
    switch (nt->kind) {
    case BOUNCE_FAILED:
        return "sender non-delivery notification";
    case BOUNCE_DELAYED:
        return "sender delay notification";
    case BOUNCE_DELIVERED:
    case BOUNCE_RELAYED:
        return "sender delivery status notification";
    }
    return "delivery status notification";
}

/* load_original - the original content, cut to its headers when required */
static int load_original(struct notice *nt, long long size_limit)
{
    const char *ret = qfile_attr(nt->q, "ret");
    struct buf *o = &nt->orig;
    const char *end;
    size_t hlen;

    nt->headers_only = nt->kind != BOUNCE_FAILED ||
                       (!nt->pmcopy && ret != NULL && strcasecmp(ret, "HDRS") == 0) ||
                       (size_limit > 0 && nt->q->content_length > (uint64_t)size_limit);
    if (qfile_read_content(nt->q, o) < 0)
        return -1;
    if (!nt->headers_only) {
        if (o->len > 0 && o->data[o->len - 1] != '\n')
            buf_putc(o, '\n');
        return 0;
    }
    if (o->len > 0 && o->data[0] == '\n')
        hlen = 0;
    else if (o->len > 0 && (end = memmem(o->data, o->len, "\n\n", 2)) != NULL)
        hlen = (size_t)(end - o->data) + 1;
    else
        hlen = o->len;
    /* Headers alone over the limit: keep whole lines up to the limit. */
    if (size_limit > 0 && hlen > (size_t)size_limit) {
        const char *nl = memrchr(o->data, '\n', (size_t)size_limit);

        hlen = nl ? (size_t)(nl - o->data) + 1 : 0;
    }
    buf_truncate(o, hlen);
    if (o->len > 0 && o->data[o->len - 1] != '\n')
        buf_putc(o, '\n');
    return 0;
}

/* absent - the boundary does not occur in part */
static bool absent(const struct buf *boundary, const struct buf *part)
{
    return part->len == 0 ||
           memmem(part->data, part->len, boundary->data, boundary->len) == NULL;
}

/*
 * choose_boundary - NEWQID.SECONDS/HOST (only boundary characters, at most
 * BOUNDARY_MAX), with a counter appended until no part contains it
 */
static void choose_boundary(struct notice *nt, const struct buf *parts, size_t nparts)
{
    struct buf base = BUF_INIT;
    struct buf *b = &nt->boundary;

    buf_printf(&base, "%s.%lld/%s", nt->qid, (long long)nt->now, nt->host);
    for (size_t k = 0; k < base.len; k++)
        if (!strchr("'()+_,-./:=?abcdefghijklmnopqrstuvwxyz"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                    base.data[k]))
            base.data[k] = '_';
    if (base.len > BOUNDARY_BASE_MAX)
        buf_truncate(&base, BOUNDARY_BASE_MAX);
    for (int i = 0; i < BOUNDARY_TRIES; i++) {
        bool ok = true;

        buf_set(b, buf_str(&base));
        if (i > 0)
            buf_printf(b, "/%d", i);
        for (size_t k = 0; k < nparts && ok; k++)
            ok = absent(b, &parts[k]);
        if (ok) {
            buf_free(&base);
            return;
        }
    }
    msg_panic("%s: cannot find a MIME boundary absent from the message", nt->q->qid);
}

/* attached_text - the sentence about the third part */
static const char *attached_text(const struct notice *nt)
{
    if (nt->no_original)
        return "Your message could not be read back to be attached.";
    if (nt->pmcopy)
        return nt->headers_only ? "The headers of the notice that failed are attached."
                                : "The notice that failed is attached.";
    return nt->headers_only ? "The headers of your message are attached."
                            : "Your message is attached.";
}

/* human_intro - the explanation at the top of the text part, as folded paragraphs */
static void human_intro(struct notice *nt, struct buf *b)
{
    const char *name = cfg_str(nt->cfg, "mail_name");
    struct buf t = BUF_INIT;

    buf_printf(&t, "This is the %s mail system at host %s.", name, nt->host);
    put_folded(b, "", buf_str(&t), "");
    buf_reset(&t);
    if (nt->pmcopy) {
        buf_puts(&t, "A delivery status notification could not be delivered, and as it "
                     "has no sender address it cannot be returned either. It is passed on "
                     "to you, the postmaster, with the reasons below.");
    } else if (nt->kind == BOUNCE_FAILED) {
        buf_puts(&t, "Your message could not be delivered to one or more of its "
                     "recipients, and the mail system has stopped trying. The reasons are "
                     "listed below.");
    } else if (nt->kind == BOUNCE_DELAYED) {
        buf_puts(&t, "Your message has not been delivered yet to the recipients listed "
                     "below: the attempts so far met temporary problems. This is only a "
                     "warning; there is no need to send the message again. Delivery will "
                     "be retried until the message is ");
        put_duration(&t, cfg_time(nt->cfg, "maximal_queue_lifetime"));
        buf_puts(&t, " old, and you will be told if it has to be given up.");
    } else if (nt->kind == BOUNCE_DELIVERED) {
        buf_puts(&t, "You asked to be told when your message reached the recipients "
                     "listed below. It has been delivered to them.");
    } else {
        buf_puts(&t, "You asked to be told when your message reached the recipients "
                     "listed below. It has been handed on to a mail system that does not "
                     "send such reports, so you may hear nothing more about it.");
    }
    buf_printf(&t, " %s", attached_text(nt));
    buf_putc(b, '\n');
    put_folded(b, "", buf_str(&t), "");
    if (!nt->pmcopy && nt->kind == BOUNCE_FAILED) {
        buf_reset(&t);
        buf_printf(&t,
                   "Should you need help, write to the postmaster of %s and include "
                   "this report (the copy of your message may be left out).",
                   nt->host);
        buf_putc(b, '\n');
        put_folded(b, "", buf_str(&t), "");
    }
    buf_printf(b, "\n%*s The %s mail system\n", SIGNATURE_INDENT, "", name);
    buf_free(&t);
}

/* human_part - the text/plain part: explanation, then one entry per recipient */
static void human_part(struct notice *nt, struct buf *b)
{
    struct buf line = BUF_INIT;

    buf_puts(b, "Content-Description: Notification\n"
                "Content-Type: text/plain; charset=us-ascii\n\n");
    human_intro(nt, b);
    for (size_t i = 0; i < nt->nrc; i++) {
        const struct bounce_rcpt *r = nt->rc[i];
        char *addr = clean_text(r->address, DIAG_TEXT_MAX);
        char *text = clean_text(r->text ? r->text : "", DIAG_TEXT_MAX);

        buf_reset(&line);
        buf_printf(&line, "<%s>", addr);
        if (r->orig != NULL && *r->orig && strcmp(r->orig, r->address) != 0) {
            char *orig = clean_text(r->orig, DIAG_TEXT_MAX);

            buf_printf(&line, " (expanded from <%s>)", orig);
            free(orig);
        }
        buf_printf(&line, ": %s", *text ? text : kind_action(nt->kind));
        buf_putc(b, '\n');
        put_folded(b, "", buf_str(&line), TEXT_INDENT);
        free(addr);
        free(text);
    }
    buf_free(&line);
}

/* status_field - "Name: value" folded into the report part */
static void status_field(struct buf *b, const char *name, const char *value)
{
    char *first = xasprintf("%s: ", name);

    put_folded(b, first, value, " ");
    free(first);
}

/* date_field - "Name: DATE" */
static void date_field(struct buf *b, const char *name, time_t t)
{
    buf_printf(b, "%s: ", name);
    mail_date(b, t);
    buf_putc(b, '\n');
}

/* status_part - the message/delivery-status part */
static void status_part(struct notice *nt, struct buf *b)
{
    const char *envid = qfile_attr(nt->q, "envid");
    struct buf v = BUF_INIT;
    char *s;

    buf_puts(b, "Content-Description: Delivery report\n"
                "Content-Type: message/delivery-status\n\n");
    if (envid != NULL && *envid) {
        s = clean_text(envid, DIAG_TEXT_MAX);
        status_field(b, "Original-Envelope-Id", s);
        free(s);
    }
    buf_printf(b, "Reporting-MTA: dns; %s\n", nt->host);
    date_field(b, "Arrival-Date", (time_t)nt->q->arrival_sec);
    buf_printf(b, "X-Posta-Queue-ID: %s\n", nt->q->qid);
    s = clean_text(nt->q->sender, DIAG_TEXT_MAX);
    buf_printf(&v, "rfc822; %s", s);
    status_field(b, "X-Posta-Sender", buf_str(&v));
    free(s);

    for (size_t i = 0; i < nt->nrc; i++) {
        const struct bounce_rcpt *r = nt->rc[i];

        buf_putc(b, '\n');
        if (r->orcpt != NULL && *r->orcpt && strchr(r->orcpt, ';') != NULL) {
            s = clean_text(r->orcpt, DIAG_TEXT_MAX);
            status_field(b, "Original-Recipient", s);
            free(s);
        } else if (r->orig != NULL && *r->orig && strcasecmp(r->orig, r->address) != 0) {
            /* No ORCPT, but an alias changed the address: name the original. */
            s = clean_text(r->orig, DIAG_TEXT_MAX);
            buf_reset(&v);
            buf_printf(&v, "rfc822; %s", s);
            status_field(b, "Original-Recipient", buf_str(&v));
            free(s);
        }
        s = clean_text(r->address, DIAG_TEXT_MAX);
        buf_reset(&v);
        buf_printf(&v, "rfc822; %s", s);
        status_field(b, "Final-Recipient", buf_str(&v));
        free(s);
        buf_printf(b, "Action: %s\n", kind_action(nt->kind));
        buf_puts(b, "Status: ");
        put_status(b, nt->kind, r->dsn);
        buf_putc(b, '\n');
        if (r->remote_mta != NULL && *r->remote_mta) {
            s = clean_text(r->remote_mta, DIAG_TEXT_MAX);
            buf_printf(b, "Remote-MTA: dns; %s\n", s);
            free(s);
        }
        if ((r->diag != NULL && *r->diag) || (r->text != NULL && *r->text)) {
            bool smtp = r->diag != NULL && *r->diag;

            s = clean_text(smtp ? r->diag : r->text, DIAG_TEXT_MAX);
            buf_reset(&v);
            buf_printf(&v, "%s; %s", smtp ? "smtp" : "X-Posta", s);
            status_field(b, "Diagnostic-Code", buf_str(&v));
            free(s);
        }
        date_field(b, "Last-Attempt-Date",
                   r->last_attempt > 0 ? (time_t)r->last_attempt : nt->now);
        if (nt->kind == BOUNCE_DELAYED)
            date_field(
                b, "Will-Retry-Until",
                (time_t)(nt->q->arrival_sec + cfg_time(nt->cfg, "maximal_queue_lifetime")));
    }
    buf_free(&v);
}

/* has_8bit - any byte with the high bit set */
static bool has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] & 0x80)
            return true;
    return false;
}

/* original_part - the returned message or its headers */
static void original_part(struct notice *nt, struct buf *b)
{
    const char *what;

    if (nt->pmcopy)
        what = "Undelivered Message";
    else if (nt->kind == BOUNCE_FAILED)
        what = nt->headers_only ? "Undelivered Message Headers" : "Undelivered Message";
    else if (nt->kind == BOUNCE_DELAYED)
        what = "Delayed Message Headers";
    else
        what = "Delivered Message Headers";
    buf_printf(b, "Content-Description: %s\n", what);
    buf_printf(b, "Content-Type: %s\n",
               nt->headers_only ? "text/rfc822-headers" : "message/rfc822");
    if (has_8bit(nt->orig.data, nt->orig.len))
        buf_puts(b, "Content-Transfer-Encoding: 8bit\n");
    buf_putc(b, '\n');
    buf_append(b, nt->orig.data, nt->orig.len);
}

/*
 * assemble - preamble and the parts between delimiters. Every part ends
 * with a complete line; the newline before each "--boundary" belongs to
 * the delimiter (RFC 2046), hence the empty line that precedes it.
 */
static void assemble(const struct notice *nt, struct buf *body, const struct buf *parts,
                     size_t nparts)
{
    const char *bd = buf_str(&nt->boundary);

    buf_puts(body, "This is a MIME-formatted delivery status notification.\n");
    for (size_t i = 0; i < nparts; i++) {
        buf_printf(body, "\n--%s\n", bd);
        buf_append(body, parts[i].data, parts[i].len);
    }
    buf_printf(body, "\n--%s--\n", bd);
}

/* top_headers - the notice's own header section */
static void top_headers(struct notice *nt, struct buf *h, bool eight_bit)
{
    buf_puts(h, "Date: ");
    mail_date(h, nt->now);
    buf_printf(h, "\nFrom: MAILER-DAEMON@%s (Mail Delivery System)\n", nt->host);
    /* The address is kept as is (an SMTPUTF8 one may be 8-bit); only controls go. */
    buf_puts(h, "To: ");
    for (const char *p = nt->to; *p; p++)
        buf_putc(h, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
    buf_printf(h, "\nSubject: %s\n", notice_subject(nt));
    buf_printf(h, "Message-Id: <%s.%lld@%s>\n", nt->qid, (long long)nt->now, nt->host);
    buf_puts(h, "Auto-Submitted: auto-replied\n"
                "MIME-Version: 1.0\n"
                "Content-Type: multipart/report; report-type=delivery-status;\n");
    buf_printf(h, "\tboundary=\"%s\"\n", buf_str(&nt->boundary));
    if (eight_bit)
        buf_puts(h, "Content-Transfer-Encoding: 8bit\n");
    buf_puts(h, "\n");
}

/* sync_file - make the finished file and its directory entry durable */
static int sync_file(struct qfile_writer *w, int dirfd)
{
    if (fdatasync(qfw_fd(w)) < 0) {
        msg_warn("%s: fdatasync queue file: %m", qfw_id(w));
        return -1;
    }
    if (fsync(dirfd) < 0) {
        msg_warn("%s: fsync incoming directory: %m", qfw_id(w));
        return -1;
    }
    return 0;
}

/* write_notice - create, fill, finish and sync the new queue file */
static int write_notice(struct notice *nt, const struct buf *hdr, const struct buf *body,
                        bool eight_bit)
{
    const char *qdir = cfg_str(nt->cfg, "queue_directory");
    char *path = xasprintf("%s/incoming", qdir);
    struct qfile_writer *w = NULL;
    const char *utf8 = qfile_attr(nt->q, "smtputf8");
    struct timespec ts;
    int dirfd, e;

    dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        e = errno;
        msg_warn("%s: open %s: %m", nt->q->qid, path);
        free(path);
        errno = e;
        return -1;
    }
    free(path);
    for (int i = 0; i < CREATE_TRIES && w == NULL; i++) {
        if (i > 0)
            qid_new(nt->qid);
        w = qfw_create(dirfd, nt->qid);
        if (w == NULL && errno != EEXIST)
            break;
    }
    if (w == NULL) {
        e = errno;
        msg_warn("%s: create notice queue file %s: %m", nt->q->qid, nt->qid);
        close(dirfd);
        errno = e;
        return -1;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    qfw_recordf(w, QREC_TIME, "%lld.%06ld", (long long)ts.tv_sec, ts.tv_nsec / 1000);
    qfw_recordf(w, QREC_ATTR, "encoding=%s", eight_bit ? "8bitmime" : "7bit");
    if (utf8 != NULL && strcmp(utf8, "yes") == 0)
        qfw_recordf(w, QREC_ATTR, "smtputf8=yes");
    qfw_recordf(w, QREC_ATTR, "protocol=local");
    qfw_recordf(w, QREC_ATTR, "log_ident=%s", nt->qid);
    qfw_recordf(w, QREC_ATTR, "rewrite_context=local");
    qfw_record(w, QREC_SENDER, nt->env_sender, strlen(nt->env_sender));
    qfw_record(w, QREC_RCPT, nt->to, strlen(nt->to));
    qfw_content(w, hdr->data, hdr->len);
    qfw_content(w, body->data, body->len);
    if (qfw_finish(w) < 0 || sync_file(w, dirfd) < 0) {
        e = errno;
        if (qfw_error(w))
            msg_warn("%s: write notice queue file %s: %s", nt->q->qid, nt->qid,
                     strerror(e));
        qfw_abort(w);
        close(dirfd);
        errno = e;
        return -1;
    }
    qfw_close(w);
    close(dirfd);
    return 0;
}

/* select_recipients - who the notice is about; false if no notice */
static bool select_recipients(struct notice *nt, const struct bounce_rcpt *r, size_t n)
{
    nt->rc = xcalloc(n ? n : 1, sizeof(*nt->rc));
    for (size_t i = 0; i < n; i++)
        if (r[i].address != NULL && (nt->pmcopy || wanted(nt->kind, r[i].notify)))
            nt->rc[nt->nrc++] = &r[i];
    return nt->nrc > 0;
}

/* decide_route - envelope of the notice; false when no notice is due */
static bool decide_route(struct notice *nt)
{
    const char *sender = nt->q->sender ? nt->q->sender : "";

    if (*sender == 0) {
        if (nt->kind != BOUNCE_FAILED) {
            msg_verbose("%s: no %s for the null sender", nt->q->qid, kind_action(nt->kind));
            return false;
        }
        if (!twobounce_enabled(nt->cfg)) {
            msg_info("%s: undeliverable bounce dropped (notify_classes lacks 2bounce)",
                     nt->q->qid);
            return false;
        }
        nt->pmcopy = true;
        nt->env_sender = qualify(nt->cfg, param_str_or(nt->cfg, "double_bounce_sender",
                                                       DEFAULT_DOUBLE_BOUNCE_SENDER));
        nt->to = qualify(nt->cfg, cfg_str(nt->cfg, "2bounce_notice_recipient"));
        return true;
    }
    if (is_double_bounce(nt->cfg, sender)) {
        msg_warn("%s: undeliverable postmaster notification discarded", nt->q->qid);
        return false;
    }
    nt->env_sender = xstrdup("");
    nt->to = xstrdup(sender);
    return true;
}

/* notice_free - release a notice */
static void notice_free(struct notice *nt)
{
    free(nt->env_sender);
    free(nt->to);
    free(nt->rc);
    buf_free(&nt->orig);
    buf_free(&nt->boundary);
}

/* bounce_notify - write one notice about recipients r[0..n) of message q */
int bounce_notify(struct cfg *cfg, struct qfile *q, enum bounce_kind kind,
                  const struct bounce_rcpt *r, size_t n, char *new_qid)
{
    struct notice nt = {0};
    struct buf hdr = BUF_INIT, body = BUF_INIT;
    struct buf parts[NPARTS] = {BUF_INIT, BUF_INIT, BUF_INIT};
    long long limit = DEFAULT_BOUNCE_SIZE_LIMIT;
    bool eight_bit;
    int rc = -1, e = 0;

    new_qid[0] = 0;
    kind_action(kind); /* panics on a bad kind */
    nt.cfg = cfg;
    nt.q = q;
    nt.kind = kind;
    nt.host = cfg_str(cfg, "myhostname");
    nt.now = time(NULL);
    if (!decide_route(&nt) || !select_recipients(&nt, r, n)) {
        notice_free(&nt);
        return 0;
    }
    if (param_find("bounce_size_limit"))
        limit = cfg_int(cfg, "bounce_size_limit");
    if (load_original(&nt, limit) < 0) {
        /* A notice without the original beats none (qmgr would retry forever). */
        msg_warn("%s: read message content for the notice: %m", q->qid);
        nt.no_original = true;
    }
    qid_new(nt.qid);
    human_part(&nt, &parts[0]);
    status_part(&nt, &parts[1]);
    if (!nt.no_original)
        original_part(&nt, &parts[2]);
    choose_boundary(&nt, parts, NPARTS);
    assemble(&nt, &body, parts, nt.no_original ? NPARTS - 1 : NPARTS);
    eight_bit = has_8bit(body.data, body.len) || has_8bit(nt.to, strlen(nt.to));
    top_headers(&nt, &hdr, eight_bit);
    if (write_notice(&nt, &hdr, &body, eight_bit) < 0) {
        e = errno;
        goto out;
    }
    msg_info("%s: %s: %s", q->qid, log_what(&nt), nt.qid);
    memcpy(new_qid, nt.qid, QID_MAX);
    rc = 0;
out:
    for (size_t i = 0; i < NPARTS; i++)
        buf_free(&parts[i]);
    buf_free(&hdr);
    buf_free(&body);
    notice_free(&nt);
    if (rc < 0)
        errno = e;
    return rc;
}
