/*
 * smtpreply.c - what an SMTP or LMTP server says: replies and EHLO features
 *
 * smtp_reply_parse scans the received bytes line by line: every line must
 * start with the same three-digit code (first digit 2-5) followed by "-"
 * (more lines follow), " " or the line end (the last line). The scan
 * validates and finds the reply's end before anything is copied, so an
 * incomplete reply (the usual case while bytes trickle in) costs no
 * allocation. A partial last line is checked as far as it goes, so a
 * server that sends garbage is refused without waiting for its line end.
 *
 * smtp_reply_oneline drops, on the second and later lines, an enhanced
 * status code equal to the first line's, so a reply that repeats "5.1.1"
 * on every line reads as one sentence.
 *
 * smtp_ehlo_features reads keywords only from a 2xx reply; unknown
 * keywords are ignored. AUTH mechanisms are kept only when they are
 * well-formed SASL names (RFC 4422: upper-case letters, digits, "-",
 * "_", at most 20 characters), upper-cased and without duplicates.
 *
 * DIAGNOSTICS
 *  smtp_reply_parse returns -1 with a static text; nothing is logged.
 *
 * SECURITY
 *  The input is the remote server's. Lines are bounded by
 *  SMTP_REPLY_LINE_MAX and replies by SMTP_REPLY_LINES_MAX; control
 *  characters in the kept text become "?", so it can be logged and put
 *  in a DSN as it is.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "mail/smtpreply.h"
#include "util/buf.h"
#include "util/log.h"

#define REPLY_CODE_LEN 3          /* "250" */
#define REPLY_PREFIX_LEN 4        /* "250-" or "250 " */
#define REPLY_TEXT_MAX ((size_t)SMTP_REPLY_LINE_MAX * SMTP_REPLY_LINES_MAX)
#define DSN_PART_DIGITS_MAX 3     /* RFC 3463: subject and detail are 1*3digit */
#define ASCII_DEL 0x7f
#define ASCII_FIRST_PRINT 0x20
#define DECIMAL_RADIX 10
#define REPLY_CLASS_DIV 100       /* 250 / 100 = 2: the reply's class */
#define REPLY_CLASS_OK 2          /* 2xx: positive completion */
#define SASL_MECH_MAX 20          /* RFC 4422 3.1 */
#define AUTH_KEYWORD "AUTH"
#define AUTH_KEYWORD_LEN 4

/* is_digit - ASCII decimal digit */
static inline bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* smtp_reply_init - an empty reply */
void smtp_reply_init(struct smtp_reply *r)
{
    r->code = 0;
    r->dsn[0] = 0;
    buf_init(&r->text, REPLY_TEXT_MAX);
}

/* smtp_reply_free - release the reply's text */
void smtp_reply_free(struct smtp_reply *r)
{
    buf_free(&r->text);
    r->code = 0;
    r->dsn[0] = 0;
}

/*
 * check_prefix - the first n bytes of a (possibly partial) line against
 * the reply syntax; code is the reply's code so far (0: first line).
 * Returns NULL when nothing is wrong yet, else the error text.
 */
static const char *check_prefix(const unsigned char *s, size_t n, int code)
{
    size_t i;
    int c = 0;

    for (i = 0; i < n && i < REPLY_CODE_LEN; i++) {
        if (!is_digit(s[i]) || (i == 0 && (s[i] < '2' || s[i] > '5')))
            return "malformed reply line";
        c = c * DECIMAL_RADIX + (s[i] - '0');
    }
    if (n >= REPLY_CODE_LEN && code != 0 && c != code)
        return "inconsistent reply codes";
    if (n > REPLY_CODE_LEN && s[REPLY_CODE_LEN] != '-' && s[REPLY_CODE_LEN] != ' '
        && s[REPLY_CODE_LEN] != '\r')
        return "malformed reply line";
    /* "250\r" may still become "250\r\n"; "250\rX" never is a reply line. */
    if (n > REPLY_PREFIX_LEN && s[REPLY_CODE_LEN] == '\r')
        return "malformed reply line";
    return NULL;
}

/* line_code - the code of a line that passed check_prefix */
static int line_code(const unsigned char *s)
{
    return ((s[0] - '0') * DECIMAL_RADIX + (s[1] - '0')) * DECIMAL_RADIX + (s[2] - '0');
}

/* parse_dsn - an RFC 3463 code of class cls at the start of s[0..n); its length or 0 */
static size_t parse_dsn(const char *s, size_t n, char cls)
{
    size_t i = 1, start;
    int part;

    if (n < 1 || s[0] != cls)
        return 0;
    for (part = 0; part < 2; part++) {
        if (i >= n || s[i] != '.')
            return 0;
        start = ++i;
        while (i < n && is_digit((unsigned char)s[i]) && i - start < DSN_PART_DIGITS_MAX)
            i++;
        if (i == start)
            return 0;
    }
    if (i < n && s[i] != ' ')
        return 0;
    return i;
}

/* append_clean - add text, control characters and DEL as "?" */
static void append_clean(struct buf *out, const char *s, size_t n)
{
    size_t i, run = 0;
    unsigned char c;

    for (i = 0; i < n; i++) {
        c = (unsigned char)s[i];
        if (c < ASCII_FIRST_PRINT || c == ASCII_DEL) {
            if (buf_append(out, s + run, i - run) < 0 || buf_putc(out, '?') < 0)
                msg_panic("smtp_reply: text buffer overflow");
            run = i + 1;
        }
    }
    if (buf_append(out, s + run, n - run) < 0)
        msg_panic("smtp_reply: text buffer overflow");
}

/* smtp_reply_parse - one complete reply from the start of in[0..len) */
int smtp_reply_parse(const char *in, size_t len, size_t *used, struct smtp_reply *r,
                     const char **err)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t pos = 0, lines = 0, avail, llen, end = 0;
    const char *lf, *why;
    int code = 0;
    bool last = false;

    /* Pass 1: validate and find the end; nothing is copied yet. */
    while (!last) {
        avail = len - pos;
        if (avail > SMTP_REPLY_LINE_MAX)
            avail = SMTP_REPLY_LINE_MAX;
        lf = memchr(in + pos, '\n', avail);
        if (lf == NULL) {
            if ((why = check_prefix(u + pos, len - pos, code)) != NULL) {
                *err = why;
                return -1;
            }
            if (len - pos >= SMTP_REPLY_LINE_MAX) {
                *err = "reply line too long";
                return -1;
            }
            return 0;
        }
        llen = (size_t)(lf - (in + pos));           /* without the LF */
        if (llen > 0 && in[pos + llen - 1] == '\r')
            llen--;
        if ((why = check_prefix(u + pos, llen, code)) != NULL) {
            *err = why;
            return -1;
        }
        if (llen < REPLY_CODE_LEN || (llen > REPLY_CODE_LEN && in[pos + REPLY_CODE_LEN] == '\r')) {
            *err = "malformed reply line";
            return -1;
        }
        code = line_code(u + pos);
        last = llen == REPLY_CODE_LEN || in[pos + REPLY_CODE_LEN] == ' ';
        if (++lines > SMTP_REPLY_LINES_MAX || (!last && lines == SMTP_REPLY_LINES_MAX)) {
            *err = "too many reply lines";
            return -1;
        }
        pos = (size_t)(lf - in) + 1;
    }
    end = pos;

    /* Pass 2: fill in the reply. */
    buf_reset(&r->text);
    r->code = code;
    r->dsn[0] = 0;
    for (pos = 0; pos < end; pos += llen + 1) {
        lf = memchr(in + pos, '\n', end - pos);
        llen = (size_t)(lf - (in + pos));
        if (pos > 0 && buf_putc(&r->text, '\n') < 0)
            msg_panic("smtp_reply_parse: text buffer overflow");
        append_clean(&r->text, in + pos,
                     llen > 0 && in[pos + llen - 1] == '\r' ? llen - 1 : llen);
        if (pos == 0) {
            size_t tl = llen > 0 && in[llen - 1] == '\r' ? llen - 1 : llen;
            size_t dl = tl > REPLY_PREFIX_LEN
                            ? parse_dsn(in + REPLY_PREFIX_LEN, tl - REPLY_PREFIX_LEN, in[0])
                            : 0;
            if (dl > 0 && dl < sizeof(r->dsn)) {
                memcpy(r->dsn, in + REPLY_PREFIX_LEN, dl);
                r->dsn[dl] = 0;
            }
        }
    }
    *used = end;
    return 1;
}

/* smtp_reply_oneline - the reply on one line, for logs and DSNs */
void smtp_reply_oneline(const struct smtp_reply *r, struct buf *out)
{
    const char *s = buf_str(&r->text), *nl, *t;
    size_t n, dl = strlen(r->dsn);
    bool first = true;

    buf_printf(out, "%d", r->code);
    for (;; s = nl + 1) {
        nl = strchr(s, '\n');
        n = nl ? (size_t)(nl - s) : strlen(s);
        if (n > REPLY_PREFIX_LEN) {
            t = s + REPLY_PREFIX_LEN;
            n -= REPLY_PREFIX_LEN;
            if (!first && dl > 0 && n >= dl && memcmp(t, r->dsn, dl) == 0
                && (n == dl || t[dl] == ' ')) {
                t += dl;
                n -= dl;
                while (n > 0 && *t == ' ') {
                    t++;
                    n--;
                }
            }
            if (n > 0) {
                buf_putc(out, ' ');
                buf_append(out, t, n);
            }
        }
        first = false;
        if (nl == NULL)
            break;
    }
}

/* word_is - the token s[0..n) equals kw, ignoring case */
static bool word_is(const char *s, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(s, kw, n) == 0;
}

/* add_mech - add one AUTH mechanism (upper-cased, checked, deduplicated) */
static void add_mech(struct smtp_features *f, const char *s, size_t n)
{
    char mech[SASL_MECH_MAX + 1];
    size_t i, have = strlen(f->auth_mechs);
    const char *p;

    if (n == 0 || n > SASL_MECH_MAX)
        return;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || is_digit((unsigned char)c) || c == '-' || c == '_'))
            return;
        mech[i] = c;
    }
    mech[n] = 0;
    for (p = f->auth_mechs; *p; p += strcspn(p, " "), p += *p == ' ') {
        if (strcspn(p, " ") == n && memcmp(p, mech, n) == 0)
            return;
    }
    if (have + (have > 0) + n + 1 > sizeof(f->auth_mechs))
        return;
    if (have > 0)
        f->auth_mechs[have++] = ' ';
    memcpy(f->auth_mechs + have, mech, n + 1);
}

/* add_mechs - the space-separated mechanisms in s[0..n) */
static void add_mechs(struct smtp_features *f, const char *s, size_t n)
{
    size_t i = 0, start;

    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        start = i;
        while (i < n && s[i] != ' ')
            i++;
        add_mech(f, s + start, i - start);
    }
}

/* parse_size - the SIZE argument (saturating; 0 when absent or malformed) */
static uint64_t parse_size(const char *s, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    unsigned d;

    while (i < n && s[i] == ' ')
        i++;
    if (i == n)
        return 0;
    for (; i < n && s[i] != ' '; i++) {
        if (!is_digit((unsigned char)s[i]))
            return 0;
        d = (unsigned)(s[i] - '0');
        v = v > (UINT64_MAX - d) / DECIMAL_RADIX ? UINT64_MAX : v * DECIMAL_RADIX + d;
    }
    return v;
}

/* feature_line - one keyword line's text (after "250-") */
static void feature_line(struct smtp_features *f, const char *s, size_t n)
{
    static const struct {
        const char *kw;
        unsigned flag;
    } simple[] = {
        {"PIPELINING", SMTP_FEAT_PIPELINING},
        {"8BITMIME", SMTP_FEAT_8BITMIME},
        {"DSN", SMTP_FEAT_DSN},
        {"SMTPUTF8", SMTP_FEAT_SMTPUTF8},
        {"STARTTLS", SMTP_FEAT_STARTTLS},
        {"ENHANCEDSTATUSCODES", SMTP_FEAT_ENHANCEDSTATUSCODES},
        {"CHUNKING", SMTP_FEAT_CHUNKING},
    };
    size_t kl = 0, i;

    while (kl < n && s[kl] != ' ')
        kl++;
    for (i = 0; i < POSTA_ARRAY_LEN(simple); i++) {
        if (word_is(s, kl, simple[i].kw)) {
            f->flags |= simple[i].flag;
            return;
        }
    }
    if (word_is(s, kl, "SIZE")) {
        f->flags |= SMTP_FEAT_SIZE;
        f->size_limit = parse_size(s + kl, n - kl);
    } else if (word_is(s, kl, AUTH_KEYWORD)) {
        f->flags |= SMTP_FEAT_AUTH;
        add_mechs(f, s + kl, n - kl);
    } else if (kl > AUTH_KEYWORD_LEN && strncasecmp(s, AUTH_KEYWORD "=", AUTH_KEYWORD_LEN + 1) == 0) {
        /* The pre-RFC 2554 form "AUTH=LOGIN PLAIN" of old servers. */
        f->flags |= SMTP_FEAT_AUTH;
        add_mechs(f, s + AUTH_KEYWORD_LEN + 1, n - AUTH_KEYWORD_LEN - 1);
    }
}

/* smtp_ehlo_features - parse the keyword lines (not the first) of an EHLO reply */
void smtp_ehlo_features(const struct smtp_reply *r, struct smtp_features *f)
{
    const char *s = buf_str(&r->text), *nl;
    size_t n;

    memset(f, 0, sizeof(*f));
    if (r->code / REPLY_CLASS_DIV != REPLY_CLASS_OK)
        return;
    while ((nl = strchr(s, '\n')) != NULL) {
        s = nl + 1;
        n = strcspn(s, "\n");
        if (n > REPLY_PREFIX_LEN)
            feature_line(f, s + REPLY_PREFIX_LEN, n - REPLY_PREFIX_LEN);
    }
}
