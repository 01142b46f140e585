/*
 * dkim_canon.c - DKIM canonicalisation (RFC 6376 section 3.4)
 *
 * Headers one field at a time (simple: as is; relaxed: name in lower
 * case, folding removed, white space runs to one space, none around the
 * colon or at the end) and the body as a stream (simple: trailing empty
 * lines removed, an empty body is one CRLF; relaxed: white space runs to
 * one space, none at line ends, trailing empty lines removed, an empty
 * body stays empty). Bare LF counts as a line end, hashed as CRLF.
 *
 * The body canonicaliser keeps its state between chunks (a held-back CR,
 * white space, empty lines), so chunk boundaries never change the output.
 */
#include "util/sys.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail/dkim.h"
#include "mail/dkim_impl.h"
#include "util/alloc.h"
#include "util/buf.h"

/* is_wsp - SP or HTAB */
static bool is_wsp(int c)
{
    return c == ' ' || c == '\t';
}

/* dkim_canon_header - one field, canonicalised, with its CRLF */
void dkim_canon_header(enum dkim_canon c, const char *field, size_t len, struct buf *out)
{
    size_t i, colon;
    bool space = false, started = false;

    if (c == DKIM_CANON_SIMPLE) {
        for (i = 0; i < len; i++) {
            if (field[i] == '\n' && (i == 0 || field[i - 1] != '\r'))
                buf_putc(out, '\r');
            buf_putc(out, field[i]);
        }
        buf_append(out, "\r\n", 2);
        return;
    }
    for (colon = 0; colon < len && field[colon] != ':'; colon++)
        ;
    size_t nend = colon;
    while (nend > 0 && (is_wsp((unsigned char)field[nend - 1]) || field[nend - 1] == '\r'
                        || field[nend - 1] == '\n'))
        nend--;
    for (i = 0; i < nend; i++)
        buf_putc(out, tolower((unsigned char)field[i]));
    buf_putc(out, ':');
    for (i = colon + 1; i < len; i++) {
        unsigned char ch = (unsigned char)field[i];
        if (ch == '\n' || (ch == '\r' && i + 1 < len && field[i + 1] == '\n'))
            continue;              /* unfold: line ends go, a lone CR stays */
        if (is_wsp(ch)) {
            space = true;
            continue;
        }
        if (space && started)
            buf_putc(out, ' ');
        space = false;
        started = true;
        buf_putc(out, ch);
    }
    buf_append(out, "\r\n", 2);
}

/* flush - hand the collected output to the consumer */
static void flush(struct dkim_body *b)
{
    if (b->outlen > 0)
        b->fn(b->ctx, b->out, b->outlen);
    b->outlen = 0;
}

/* emit - one canonical byte */
static inline void emit(struct dkim_body *b, unsigned char c)
{
    if (b->outlen == sizeof(b->out))
        flush(b);
    b->out[b->outlen++] = c;
}

/* dkim_body_init - a fresh body canonicaliser feeding fn */
void dkim_body_init(struct dkim_body *b, enum dkim_canon c, dkim_body_fn *fn, void *ctx)
{
    memset(b, 0, sizeof(*b));
    b->canon = c;
    b->fn = fn;
    b->ctx = ctx;
}

/* data_byte - a byte of line content: release held-back lines and space first */
static inline void data_byte(struct dkim_body *b, unsigned char c)
{
    if (!b->line_data) {
        for (; b->empty_lines > 0; b->empty_lines--) {
            emit(b, '\r');
            emit(b, '\n');
        }
        b->line_data = true;
        b->any = true;
    }
    if (b->wsp) {
        emit(b, ' ');
        b->wsp = false;
    }
    emit(b, c);
}

/* line_end - the end of a line: empty lines are held back */
static inline void line_end(struct dkim_body *b)
{
    b->wsp = false;   /* relaxed: no white space at line ends */
    if (b->line_data) {
        emit(b, '\r');
        emit(b, '\n');
        b->line_data = false;
    } else {
        b->empty_lines++;
    }
}

/* emit_run - canonical bytes that need no decision, in bulk */
static void emit_run(struct dkim_body *b, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t room = sizeof(b->out) - b->outlen;

        if (room == 0) {
            flush(b);
            continue;
        }
        size_t k = n < room ? n : room;
        memcpy(b->out + b->outlen, p, k);
        b->outlen += k;
        p += k;
        n -= k;
    }
}

/* plain - a byte that is line content as it stands (not CR, LF, nor relaxed's WSP) */
static inline bool plain(unsigned char c, bool relaxed)
{
    return c != '\r' && c != '\n' && !(relaxed && is_wsp(c));
}

/* dkim_body_update - canonicalise a chunk of body text */
void dkim_body_update(struct dkim_body *b, const void *p, size_t n)
{
    const unsigned char *s = p;
    bool relaxed = b->canon == DKIM_CANON_RELAXED;

    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (b->cr) {
            b->cr = false;
            if (c == '\n') {
                line_end(b);
                i++;
                continue;
            }
            data_byte(b, '\r');   /* a lone CR is line content */
        }
        if (c == '\r') {
            b->cr = true;
            i++;
        } else if (c == '\n') {
            line_end(b);
            i++;
        } else if (relaxed && is_wsp(c)) {
            b->wsp = true;   /* emitted as one space if content follows */
            i++;
        } else {
            /* the first byte releases what is held back; the rest of the run follows */
            size_t j = i + 1;
            while (j < n && plain(s[j], relaxed))
                j++;
            data_byte(b, c);
            emit_run(b, s + i + 1, j - i - 1);
            i = j;
        }
    }
}

/* dkim_body_final - end of body: finish a last unterminated line */
void dkim_body_final(struct dkim_body *b)
{
    if (b->cr) {
        b->cr = false;
        data_byte(b, '\r');
    }
    if (b->line_data) {
        emit(b, '\r');
        emit(b, '\n');
        b->line_data = false;
    }
    if (!b->any && b->canon == DKIM_CANON_SIMPLE) {
        emit(b, '\r');
        emit(b, '\n');
    }
    flush(b);
}

/* dkim_header_split - call fn for each field of a header block */
void dkim_header_split(const char *hdr, size_t len, dkim_field_fn *fn, void *ctx)
{
    size_t i = 0, start = 0, end = 0;
    bool open = false;

    while (i < len) {
        size_t ls = i;
        const char *nl = memchr(hdr + i, '\n', len - i);
        size_t le = nl ? (size_t)(nl - hdr) : len;   /* line end (at '\n') */
        size_t content = le;
        if (content > ls && hdr[content - 1] == '\r')
            content--;
        i = nl ? le + 1 : len;
        if (content == ls) {                      /* empty line: end of headers */
            break;
        }
        if (is_wsp((unsigned char)hdr[ls])) {
            if (open)
                end = content;
            else
                continue;
        } else {
            if (open)
                fn(ctx, hdr + start, end - start);
            open = memchr(hdr + ls, ':', content - ls) != NULL;
            start = ls;
            end = content;
        }
    }
    if (open)
        fn(ctx, hdr + start, end - start);
}

/* collect_fn - dkim_header_split callback: append one field */
static void collect_fn(void *ctx, const char *field, size_t len)
{
    struct dkim_fields *fs = ctx;
    struct dkim_field *f;
    size_t nl = 0;

    fs->f = xreallocarray(fs->f, fs->n + 1, sizeof(*fs->f));
    f = &fs->f[fs->n++];
    f->text = xmemdup(field, len);
    f->len = len;
    while (nl < len && field[nl] != ':')
        nl++;
    while (nl > 0 && is_wsp((unsigned char)field[nl - 1]))
        nl--;
    f->name = xstrndup(field, nl);
    for (char *p = f->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* dkim_fields_collect - the fields of a header block, in order */
void dkim_fields_collect(struct dkim_fields *fs, const char *hdr, size_t len)
{
    fs->f = NULL;
    fs->n = 0;
    dkim_header_split(hdr, len, collect_fn, fs);
}

/* dkim_fields_free - release the list */
void dkim_fields_free(struct dkim_fields *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        free(fs->f[i].text);
        free(fs->f[i].name);
    }
    free(fs->f);
    fs->f = NULL;
    fs->n = 0;
}

/* dkim_hash_headers - each h name takes the lowest unused instance from the bottom */
void dkim_hash_headers(const struct dkim_fields *fs, char *const *h, size_t nh,
                       enum dkim_canon c, struct buf *out)
{
    bool *used = xcalloc(fs->n ? fs->n : 1, sizeof(*used));

    for (size_t k = 0; k < nh; k++) {
        for (size_t j = fs->n; j-- > 0;) {
            if (!used[j] && strcasecmp(fs->f[j].name, h[k]) == 0) {
                used[j] = true;
                dkim_canon_header(c, fs->f[j].text, fs->f[j].len, out);
                break;
            }
        }
        /* no instance left: the name hashes as nothing (oversigning) */
    }
    free(used);
}

/* dkim_b64 - base64 of p, appended to out */
void dkim_b64(const unsigned char *p, size_t n, struct buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        buf_putc(out, tab[p[i] >> 2]);
        buf_putc(out, tab[((p[i] & 0x03) << 4) | (p[i + 1] >> 4)]);
        buf_putc(out, tab[((p[i + 1] & 0x0f) << 2) | (p[i + 2] >> 6)]);
        buf_putc(out, tab[p[i + 2] & 0x3f]);
    }
    if (n - i == 1) {
        buf_putc(out, tab[p[i] >> 2]);
        buf_putc(out, tab[(p[i] & 0x03) << 4]);
        buf_puts(out, "==");
    } else if (n - i == 2) {
        buf_putc(out, tab[p[i] >> 2]);
        buf_putc(out, tab[((p[i] & 0x03) << 4) | (p[i + 1] >> 4)]);
        buf_putc(out, tab[(p[i + 1] & 0x0f) << 2]);
        buf_putc(out, '=');
    }
}
