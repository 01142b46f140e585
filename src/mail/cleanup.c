/*
 * cleanup.c - header clean-up for locally submitted mail
 *
 * See cleanup.h for what is done to a message. The header is split into
 * fields (a "name:" line plus its continuation lines) and classified in a
 * first pass (is there a From:, a Date:, a Message-ID:, any Resent-
 * field?), then written out in a second pass with the changes applied.
 * Address lists are scanned once by cleanup_addr_list, which both finds
 * the addr-specs (for sendmail -t) and inserts "@$myorigin" after the bare
 * ones while keeping the rest of the text (phrases, comments, folding)
 * byte for byte.
 *
 * DIAGNOSTICS: none; the callers log. cleanup_local fails only when the
 * output passes its buffer maximum.
 * SECURITY: the message comes from an untrusted local user. Text that
 * cleanup itself puts into headers (full name, sender) has its control
 * characters replaced by spaces, so that it cannot add header lines.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/maildate.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define MSGID_TIME_MAX 32
#define ASCII_DEL 0x7f
#define BASE64_GROUP 3
#define MBOX_FROM "From "

/* Header fields cleanup treats specially. */
enum hdr_kind {
    HDR_OTHER,
    HDR_FROM,          /* From: */
    HDR_ORIGINATOR,    /* Sender:, Reply-To:, Resent-From/Sender/Reply-To: */
    HDR_DATE,
    HDR_MSGID,
    HDR_TO,            /* To:, Cc: */
    HDR_BCC,
    HDR_RESENT_TO,     /* Resent-To:, Resent-Cc: */
    HDR_RESENT_BCC,
    HDR_RETURN_PATH,
};

static const struct {
    const char *name;
    enum hdr_kind kind;
} hdr_table[] = {
    {"from", HDR_FROM},
    {"sender", HDR_ORIGINATOR},
    {"reply-to", HDR_ORIGINATOR},
    {"resent-from", HDR_ORIGINATOR},
    {"resent-sender", HDR_ORIGINATOR},
    {"resent-reply-to", HDR_ORIGINATOR},
    {"date", HDR_DATE},
    {"message-id", HDR_MSGID},
    {"to", HDR_TO},
    {"cc", HDR_TO},
    {"bcc", HDR_BCC},
    {"resent-to", HDR_RESENT_TO},
    {"resent-cc", HDR_RESENT_TO},
    {"resent-bcc", HDR_RESENT_BCC},
    {"return-path", HDR_RETURN_PATH},
};

struct field {
    size_t start;      /* offset of the name */
    size_t len;        /* whole field, continuation lines and last "\n" included */
    size_t name_len;   /* name without trailing blanks */
    size_t colon;      /* offset of the ':' */
    enum hdr_kind kind;
};

/* is_blank - SP or TAB */
static bool is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* has_bare_at - an '@' outside quoted strings */
static bool has_bare_at(const char *s)
{
    bool quoted = false;

    for (; *s; s++) {
        if (quoted && *s == '\\' && s[1]) {
            s++;
            continue;
        }
        if (*s == '"')
            quoted = !quoted;
        else if (*s == '@' && !quoted)
            return true;
    }
    return false;
}

/* cleanup_qualify - "@origin" appended to a bare address */
char *cleanup_qualify(const char *addr, const char *origin)
{
    if (addr[0] == 0 || has_bare_at(addr) || origin == NULL || origin[0] == 0)
        return xstrdup(addr);
    return xasprintf("%s@%s", addr, origin);
}

/* Address-list scanner state: one mailbox at a time. */
struct mbox {
    struct buf bare;       /* addr-spec text outside <> */
    struct buf angle;      /* text inside <> */
    bool in_angle;
    bool angle_done;
    size_t bare_end;       /* offset just after the last bare addr character */
    size_t angle_end;      /* offset of the '>' */
};

struct inserts {
    size_t *at;
    size_t n;
    size_t cap;
};

/* mbox_reset - start the next mailbox */
static void mbox_reset(struct mbox *m)
{
    buf_reset(&m->bare);
    buf_reset(&m->angle);
    m->in_angle = m->angle_done = false;
    m->bare_end = m->angle_end = 0;
}

/* mbox_finish - report the mailbox's address and note an insertion point */
static size_t mbox_finish(struct mbox *m, const char *origin, struct inserts *ins,
                          void (*fn)(void *ctx, const char *addr), void *ctx)
{
    const struct buf *b = m->angle_done || m->in_angle ? &m->angle : &m->bare;
    size_t at = m->angle_done ? m->angle_end : m->bare_end;
    size_t found = 0;

    if (b->len > 0) {
        const char *addr = buf_str(b);
        bool bare = !has_bare_at(addr) && origin != NULL && origin[0] != 0;

        if (bare && (m->angle_done || !m->in_angle)) {
            if (ins->n == ins->cap) {
                ins->cap = ins->cap ? ins->cap * 2 : 8;
                ins->at = xreallocarray(ins->at, ins->cap, sizeof(size_t));
            }
            ins->at[ins->n++] = at;
        }
        if (fn != NULL) {
            char *q = cleanup_qualify(addr, origin);
            fn(ctx, q);
            free(q);
        }
        found = 1;
    }
    mbox_reset(m);
    return found;
}

/* skip_comment - from the '(' at v[i], past the matching ')' */
static size_t skip_comment(const char *v, size_t len, size_t i)
{
    int depth = 0;

    for (; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len) {
            i++;
        } else if (v[i] == '(') {
            depth++;
        } else if (v[i] == ')' && --depth == 0) {
            return i + 1;
        }
    }
    return len;
}

/* cleanup_addr_list - find the addresses in a header value; rewrite bare ones */
size_t cleanup_addr_list(const char *v, size_t len, const char *origin,
                         struct buf *rewritten,
                         void (*fn)(void *ctx, const char *addr), void *ctx)
{
    struct mbox m = {BUF_INIT, BUF_INIT, false, false, 0, 0};
    struct inserts ins = {NULL, 0, 0};
    size_t found = 0, i = 0;

    while (i < len) {
        char c = v[i];
        struct buf *cur = m.in_angle ? &m.angle : &m.bare;

        if (c == '"') {
            size_t j = i + 1;
            while (j < len && v[j] != '"') {
                if (v[j] == '\\' && j + 1 < len)
                    j++;
                j++;
            }
            j = j < len ? j + 1 : len;
            (void)buf_append(cur, v + i, j - i);
            if (!m.in_angle)
                m.bare_end = j;
            i = j;
            continue;
        }
        if (c == '(') {
            i = skip_comment(v, len, i);
            continue;
        }
        if (c == '<' && !m.in_angle) {
            m.in_angle = true;
            m.angle_done = false;
            buf_reset(&m.angle);
        } else if (c == '>' && m.in_angle) {
            m.in_angle = false;
            m.angle_done = true;
            m.angle_end = i;
        } else if (c == ':') {
            /* a group's display name, or the end of an obsolete route */
            buf_reset(cur);
        } else if ((c == ',' || c == ';') && !m.in_angle) {
            found += mbox_finish(&m, origin, &ins, fn, ctx);
        } else if ((unsigned char)c > ' ' && c != ASCII_DEL) {
            /* white space and control characters are not part of an address */
            if (!m.angle_done || m.in_angle)
                (void)buf_putc(cur, (unsigned char)c);
            if (!m.in_angle && !m.angle_done)
                m.bare_end = i + 1;
        }
        i++;
    }
    found += mbox_finish(&m, origin, &ins, fn, ctx);
    if (rewritten != NULL) {
        size_t from = 0;
        for (size_t k = 0; k < ins.n; k++) {
            (void)buf_append(rewritten, v + from, ins.at[k] - from);
            (void)buf_printf(rewritten, "@%s", origin);
            from = ins.at[k];
        }
        (void)buf_append(rewritten, v + from, len - from);
    }
    free(ins.at);
    buf_free(&m.bare);
    buf_free(&m.angle);
    return found;
}

/* put_safe - append text with control characters replaced by spaces */
static void put_safe(struct buf *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        (void)buf_putc(out, c < ' ' || c == ASCII_DEL ? ' ' : c);
    }
}

/* is_atext_phrase - letters, digits, atext specials and spaces only */
static bool is_atext_phrase(const char *s)
{
    static const char specials[] = "!#$%&'*+-/=?^_`{|}~ ";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(specials, c) != NULL))
            return false;
    }
    return true;
}

/* put_base64 - RFC 2045 base64 of s */
static void put_base64(struct buf *out, const unsigned char *s, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += BASE64_GROUP) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        (void)buf_putc(out, tab[(v >> 18) & 63]);
        (void)buf_putc(out, tab[(v >> 12) & 63]);
        (void)buf_putc(out, i + 1 < n ? tab[(v >> 6) & 63] : '=');
        (void)buf_putc(out, i + 2 < n ? tab[v & 63] : '=');
    }
}

/* put_phrase - the full name as an atom phrase, quoted string or encoded word */
static void put_phrase(struct buf *out, const char *name)
{
    struct buf clean = BUF_INIT;
    bool eight = false;

    put_safe(&clean, name);
    for (const char *p = buf_str(&clean); *p; p++)
        if ((unsigned char)*p >= 0x80)
            eight = true;
    if (eight) {
        (void)buf_puts(out, "=?UTF-8?B?");
        put_base64(out, (const unsigned char *)buf_str(&clean), clean.len);
        (void)buf_puts(out, "?=");
    } else if (is_atext_phrase(buf_str(&clean))) {
        (void)buf_puts(out, buf_str(&clean));
    } else {
        (void)buf_putc(out, '"');
        for (const char *p = buf_str(&clean); *p; p++) {
            if (*p == '"' || *p == '\\')
                (void)buf_putc(out, '\\');
            (void)buf_putc(out, (unsigned char)*p);
        }
        (void)buf_putc(out, '"');
    }
    buf_free(&clean);
}

/* hdr_classify - the kind of a field name */
static enum hdr_kind hdr_classify(const char *name, size_t n)
{
    for (size_t i = 0; i < POSTA_ARRAY_LEN(hdr_table); i++)
        if (strlen(hdr_table[i].name) == n && strncasecmp(hdr_table[i].name, name, n) == 0)
            return hdr_table[i].kind;
    return HDR_OTHER;
}

/* field_start - a "name:" line: printable name characters, blanks, ':' */
static bool field_start(const char *s, size_t n, size_t *name_len, size_t *colon)
{
    size_t i = 0;

    while (i < n && (unsigned char)s[i] > ' ' && (unsigned char)s[i] < ASCII_DEL && s[i] != ':')
        i++;
    if (i == 0)
        return false;
    *name_len = i;
    while (i < n && is_blank(s[i]))
        i++;
    if (i >= n || s[i] != ':')
        return false;
    *colon = i;
    return true;
}

/* line_len - bytes up to and including the next "\n" (or the end) */
static size_t line_len(const char *s, size_t pos, size_t len)
{
    const char *nl = memchr(s + pos, '\n', len - pos);
    return nl ? (size_t)(nl - s) + 1 - pos : len - pos;
}

/* rcpt_add - collect an extracted recipient */
static void rcpt_add(void *ctx, const char *addr)
{
    struct cleanup_out *out = ctx;

    out->rcpts = xreallocarray(out->rcpts, out->nrcpts + 1, sizeof(char *));
    out->rcpts[out->nrcpts++] = xstrdup(addr);
}

/* cleanup_out_init - empty result; max bounds the message size (0: default) */
void cleanup_out_init(struct cleanup_out *out, size_t max)
{
    memset(out, 0, sizeof(*out));
    buf_init(&out->msg, max);
}

/* cleanup_out_free - release the result */
void cleanup_out_free(struct cleanup_out *out)
{
    buf_free(&out->msg);
    for (size_t i = 0; i < out->nrcpts; i++)
        free(out->rcpts[i]);
    free(out->rcpts);
    out->rcpts = NULL;
    out->nrcpts = 0;
}

/* split_header - the fields; *body is where the body starts, *blank if an empty line ended the header */
static struct field *split_header(const struct cleanup_info *ci, const char *msg, size_t len,
                                  size_t *pos, size_t *nfields, bool *blank)
{
    struct field *f = NULL;
    size_t n = 0, p = *pos;

    *blank = false;
    while (p < len) {
        size_t ll = line_len(msg, p, len), name_len, colon;

        if (ll == 1 || (ll == 2 && msg[p] == '\r')) {
            p += ll;
            *blank = true;
            break;
        }
        if (!field_start(msg + p, ll, &name_len, &colon))
            break;
        size_t end = p + ll;
        while (end < len && is_blank(msg[end]))
            end += line_len(msg, end, len);
        if (ci->header_size_limit > 0 && end - p > ci->header_size_limit)
            break;
        f = xreallocarray(f, n + 1, sizeof(*f));
        f[n].start = p;
        f[n].len = end - p;
        f[n].name_len = name_len;
        f[n].colon = p + colon;
        f[n].kind = hdr_classify(msg + p, name_len);
        n++;
        p = end;
    }
    *pos = p;
    *nfields = n;
    return f;
}

/* put_field - one field, with bare addresses qualified where that applies */
static void put_field(const struct cleanup_info *ci, struct buf *out, const char *msg,
                      const struct field *f, bool collect, struct cleanup_out *res)
{
    size_t vstart = f->colon + 1, vlen = f->start + f->len - vstart;
    bool addr_hdr = f->kind == HDR_FROM || f->kind == HDR_ORIGINATOR || f->kind == HDR_TO ||
                    f->kind == HDR_BCC || f->kind == HDR_RESENT_TO || f->kind == HDR_RESENT_BCC;
    bool drop = f->kind == HDR_RETURN_PATH || f->kind == HDR_BCC || f->kind == HDR_RESENT_BCC;

    if (!addr_hdr) {
        if (drop)
            return;
        if (buf_append(out, msg + f->start, f->len) < 0)
            res->overflow = true;
        if (msg[f->start + f->len - 1] != '\n' && buf_putc(out, '\n') < 0)
            res->overflow = true;   /* the last line of a message without "\n" */
        return;
    }
    struct buf value = BUF_INIT;
    cleanup_addr_list(msg + vstart, vlen, ci->myorigin, &value, collect ? rcpt_add : NULL, res);
    if (!drop) {
        if (buf_append(out, msg + f->start, vstart - f->start) < 0 ||
            buf_append(out, buf_str(&value), value.len) < 0)
            res->overflow = true;
        if (value.len == 0 || value.data[value.len - 1] != '\n')
            (void)buf_putc(out, '\n');
    }
    buf_free(&value);
}

/* put_added - the Message-ID:, Date: and From: headers the message lacks */
static void put_added(const struct cleanup_info *ci, struct buf *out, bool has_msgid,
                      bool has_date, bool has_from)
{
    if (!has_msgid) {
        struct tm tm;
        char stamp[MSGID_TIME_MAX];

        gmtime_r(&ci->arrival, &tm);
        if (strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
            stamp[0] = 0;
        (void)buf_printf(out, "Message-ID: <%s.", stamp);
        put_safe(out, ci->qid);
        (void)buf_putc(out, '@');
        put_safe(out, ci->myhostname);
        (void)buf_puts(out, ">\n");
    }
    if (!has_date) {
        (void)buf_puts(out, "Date: ");
        mail_date(out, ci->arrival);
        (void)buf_putc(out, '\n');
    }
    if (!has_from) {
        (void)buf_puts(out, "From: ");
        if (ci->full_name != NULL && ci->full_name[0] != 0) {
            put_phrase(out, ci->full_name);
            (void)buf_puts(out, " <");
        }
        if (ci->sender[0] != 0) {
            put_safe(out, ci->sender);
        } else {
            (void)buf_puts(out, "MAILER-DAEMON@");
            put_safe(out, ci->myhostname);
        }
        if (ci->full_name != NULL && ci->full_name[0] != 0)
            (void)buf_putc(out, '>');
        (void)buf_putc(out, '\n');
    }
}

/* cleanup_local - see cleanup.h */
int cleanup_local(const struct cleanup_info *ci, const char *msg, size_t len,
                  struct cleanup_out *out)
{
    struct buf *b = &out->msg;
    size_t pos = 0, nfields;
    bool blank, has_from = false, has_date = false, has_msgid = false, has_resent = false;

    if (len >= strlen(MBOX_FROM) && memcmp(msg, MBOX_FROM, strlen(MBOX_FROM)) == 0)
        pos = line_len(msg, 0, len);
    struct field *f = split_header(ci, msg, len, &pos, &nfields, &blank);
    for (size_t i = 0; i < nfields; i++) {
        has_from |= f[i].kind == HDR_FROM;
        has_date |= f[i].kind == HDR_DATE;
        has_msgid |= f[i].kind == HDR_MSGID;
        has_resent |= f[i].name_len > strlen("resent-") &&
                      strncasecmp(msg + f[i].start, "resent-", strlen("resent-")) == 0;
    }
    (void)buf_puts(b, "Received: by ");
    put_safe(b, ci->myhostname);
    (void)buf_printf(b, " (posta, from userid %lld)\n\tid ", ci->uid);
    put_safe(b, ci->qid);
    (void)buf_puts(b, "; ");
    mail_date(b, ci->arrival);
    (void)buf_putc(b, '\n');
    for (size_t i = 0; i < nfields; i++) {
        bool collect = ci->extract &&
                       (has_resent ? (f[i].kind == HDR_RESENT_TO || f[i].kind == HDR_RESENT_BCC)
                                   : (f[i].kind == HDR_TO || f[i].kind == HDR_BCC));
        put_field(ci, b, msg, &f[i], collect, out);
    }
    free(f);
    put_added(ci, b, has_msgid, has_date, has_from);
    (void)buf_putc(b, '\n');
    if (pos < len) {
        if (buf_append(b, msg + pos, len - pos) < 0)
            out->overflow = true;
        if (msg[len - 1] != '\n' && buf_putc(b, '\n') < 0)
            out->overflow = true;
    }
    /* small appends above cannot fail unless the buffer is (nearly) full */
    if (b->len + 1 >= (b->max ? b->max : BUF_DEFAULT_MAX))
        out->overflow = true;
    return out->overflow ? -1 : 0;
}

/* cleanup_receive_overrides - the RECEIVE_* bits of receive_override_options */
unsigned cleanup_receive_overrides(struct cfg *cfg)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {
        {"no_unknown_recipient_checks", RECEIVE_NO_UNKNOWN_RCPT},
        {"no_address_mappings", RECEIVE_NO_ADDRESS_MAPPINGS},
        {"no_header_body_checks", RECEIVE_NO_HEADER_BODY},
        {"no_milters", RECEIVE_NO_MILTERS},
    };
    size_t n;
    char **list = cfg_list(cfg, "receive_override_options", &n);
    unsigned bits = 0;

    for (size_t i = 0; i < n; i++) {
        size_t k;

        for (k = 0; k < POSTA_ARRAY_LEN(words); k++)
            if (strcasecmp(list[i], words[k].word) == 0)
                break;
        if (k == POSTA_ARRAY_LEN(words))
            msg_fatal("receive_override_options: unknown option \"%s\"", list[i]);
        bits |= words[k].bit;
    }
    cfg_list_free(list, n);
    return bits;
}
