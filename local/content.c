/*
 * content.c - stream the message out of the queue file
 *
 * The message is never held in memory: content_stream reads it piece by
 * piece (qfile_content_read, mail/qfile.h) and hands
 * out lines, or pieces of very long lines, with a flag saying whether the
 * piece starts a line. content_copy writes a delivery copy through a
 * caller's output function: optional "From " envelope line, Return-Path,
 * X-Original-To, Delivered-To, the message with optional ">From "
 * quoting, and an optional blank line (the mbox format Postfix writes).
 * content_scan_headers collects the Delivered-To: values of the message
 * header for mail loop detection.
 *
 * DIAGNOSTICS: a record that does not fit the file is an I/O error
 * (errno EINVAL) reported to the caller.
 */
#include "util/sys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/alloc.h"
#include "util/log.h"

#include "local.h"

#define STREAM_BUF (64 * 1024)         /* read-ahead and longest line piece */
#define DELIVERED_TO_MAX 1000          /* Delivered-To headers remembered */
#define HEADER_LINE_MAX 4096           /* of one (unfolded) header kept */
#define MAILER_DAEMON "MAILER-DAEMON"
#define ASCTIME_LEN 24
#define ASCTIME_BUF 64                 /* asctime_r needs at least 26 */

struct stream {
    const struct qfile *q;
    struct qfile_cursor cur;
    bool eof;
    char *buf;
    size_t len, pos;
};

/* stream_fill - read more message bytes into the buffer; 0, or -1 with errno */
static int stream_fill(struct stream *s)
{
    if (s->pos > 0) {
        memmove(s->buf, s->buf + s->pos, s->len - s->pos);
        s->len -= s->pos;
        s->pos = 0;
    }
    while (!s->eof && s->len < STREAM_BUF) {
        ssize_t n = qfile_content_read(s->q, &s->cur, s->buf + s->len, STREAM_BUF - s->len);

        if (n < 0)
            return -1;
        if (n == 0 && s->cur.eof)
            s->eof = true;
        s->len += (size_t)n;
    }
    return 0;
}

/* content_stream - call fn for each line (or piece) of the message */
int content_stream(const struct qfile *q,
                   int (*fn)(void *ctx, const char *p, size_t n, bool bol), void *ctx)
{
    struct stream s = {.q = q};
    bool bol = true;
    int ret = 0;

    qfile_content_begin(q, &s.cur);
    s.buf = xmalloc(STREAM_BUF);
    for (;;) {
        char *nl = s.len > s.pos ? memchr(s.buf + s.pos, '\n', s.len - s.pos) : NULL;
        size_t n;

        if (nl == NULL && !s.eof && (s.pos > 0 || s.len < STREAM_BUF)) {
            if (stream_fill(&s) < 0) {
                ret = -1;
                break;
            }
            continue;
        }
        if (nl)
            n = (size_t)(nl - (s.buf + s.pos)) + 1;
        else
            n = s.len - s.pos;   /* a full buffer without newline, or the tail */
        if (n == 0)
            break;
        if (fn(ctx, s.buf + s.pos, n, bol) < 0) {
            ret = -1;
            break;
        }
        bol = nl != NULL;
        s.pos += n;
    }
    free(s.buf);
    return ret;
}

struct scan {
    struct lmsg *m;
    struct buf hdr;          /* the current (unfolded) header */
    bool done;
};

/* scan_finish_header - remember a complete Delivered-To: value */
static void scan_finish_header(struct scan *sc)
{
    const char *h = buf_str(&sc->hdr);
    static const char name[] = "delivered-to:";
    size_t len;
    char *v;

    if (strncasecmp(h, name, sizeof(name) - 1) != 0 || sc->m->ndelivered >= DELIVERED_TO_MAX) {
        buf_reset(&sc->hdr);
        return;
    }
    h += sizeof(name) - 1;
    while (*h == ' ' || *h == '\t')
        h++;
    len = strlen(h);
    while (len > 0 && isspace((unsigned char)h[len - 1]))
        len--;
    v = xstrndup(h, len);
    for (char *p = v; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    sc->m->delivered_to = xreallocarray(sc->m->delivered_to, sc->m->ndelivered + 1,
                                        sizeof(char *));
    sc->m->delivered_to[sc->m->ndelivered++] = v;
    buf_reset(&sc->hdr);
}

/* scan_line - header lines until the empty line */
static int scan_line(void *ctx, const char *p, size_t n, bool bol)
{
    struct scan *sc = ctx;

    if (sc->done)
        return -1;   /* stop the walk: the body is not needed */
    if (bol && (n == 1 || (n == 2 && p[0] == '\r'))) {
        scan_finish_header(sc);
        sc->done = true;
        return -1;
    }
    if (bol && p[0] != ' ' && p[0] != '\t')
        scan_finish_header(sc);
    if (sc->hdr.len + n < HEADER_LINE_MAX) {
        /* Unfold: drop the line end, keep the continuation's white space. */
        size_t k = n;

        while (k > 0 && (p[k - 1] == '\n' || p[k - 1] == '\r'))
            k--;
        buf_append(&sc->hdr, p, k);
    }
    return 0;
}

/* content_scan_headers - collect Delivered-To: values for loop detection */
void content_scan_headers(struct lmsg *m)
{
    struct scan sc = {.m = m};

    buf_init(&sc.hdr, HEADER_LINE_MAX * 2);
    (void)content_stream(m->q, scan_line, &sc);
    if (!sc.done)
        scan_finish_header(&sc);
    buf_free(&sc.hdr);
}

/* content_delivered_to - the message already went through address */
bool content_delivered_to(const struct lmsg *m, const char *address)
{
    for (size_t i = 0; i < m->ndelivered; i++) {
        const char *v = m->delivered_to[i];
        size_t n = strlen(v);

        /* Accept both "addr" and "<addr>". */
        if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
            if (strlen(address) == n - 2 && strncasecmp(v + 1, address, n - 2) == 0)
                return true;
        } else if (strcasecmp(v, address) == 0) {
            return true;
        }
    }
    return false;
}

struct copy {
    int (*out)(void *ctx, const char *p, size_t n);
    void *out_ctx;
    unsigned flags;
    struct buf ob;
    uint64_t bytes;
    char last;               /* last byte of the message copied */
};

/* copy_flush - hand the output buffer to the writer */
static int copy_flush(struct copy *c)
{
    int ret = 0;

    if (c->ob.len > 0)
        ret = c->out(c->out_ctx, c->ob.data, c->ob.len);
    c->bytes += c->ob.len;
    buf_reset(&c->ob);
    return ret;
}

/* copy_put - buffered output */
static int copy_put(struct copy *c, const char *p, size_t n)
{
    if (n > 0)
        c->last = p[n - 1];
    if (c->ob.len + n > STREAM_BUF && copy_flush(c) < 0)
        return -1;
    if (n >= STREAM_BUF) {
        c->bytes += n;
        return c->out(c->out_ctx, p, n);
    }
    buf_append(&c->ob, p, n);
    return 0;
}

/* copy_line - one message line, ">From " quoted when asked */
static int copy_line(void *ctx, const char *p, size_t n, bool bol)
{
    struct copy *c = ctx;

    if ((c->flags & COPY_QUOTE) && bol && n >= 5 && memcmp(p, "From ", 5) == 0
        && copy_put(c, ">", 1) < 0)
        return -1;
    return copy_put(c, p, n);
}

/* content_copy_to - write one delivery copy through out() */
int content_copy_to(const struct lmsg *m, const struct lrcpt *r, unsigned flags,
                    int (*out)(void *ctx, const char *p, size_t n), void *out_ctx,
                    uint64_t *written)
{
    struct copy c = {.out = out, .out_ctx = out_ctx, .flags = flags};
    struct buf hb = BUF_INIT;
    const char *sender = m->sender;
    int ret = 0;

    buf_init(&c.ob, STREAM_BUF * 2);
    if (flags & COPY_FROM_LINE) {
        time_t now = time(NULL);
        struct tm tm;
        char date[ASCTIME_BUF];

        localtime_r(&now, &tm);
        if (asctime_r(&tm, date) == NULL)
            snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
        buf_printf(&hb, "From %s  %.*s\n", *sender ? sender : MAILER_DAEMON, ASCTIME_LEN,
                   date);
    }
    buf_printf(&hb, "Return-Path: <%s>\n", sender);
    if ((flags & COPY_ORIG_TO) && r->orig && *r->orig)
        buf_printf(&hb, "X-Original-To: %s\n", r->orig);
    /* As Postfix: the address this request delivers, not the expansion. */
    buf_printf(&hb, "Delivered-To: %s\n", r->top ? r->top : r->address);
    if (copy_put(&c, hb.data, hb.len) < 0 || content_stream(m->q, copy_line, &c) < 0)
        ret = -1;
    /* A message without a final newline still ends its last line. */
    if (ret == 0 && c.last != '\n' && copy_put(&c, "\n", 1) < 0)
        ret = -1;
    if (ret == 0 && (flags & COPY_BLANK) && copy_put(&c, "\n", 1) < 0)
        ret = -1;
    if (ret == 0 && copy_flush(&c) < 0)
        ret = -1;
    if (written)
        *written = c.bytes;
    buf_free(&c.ob);
    buf_free(&hb);
    return ret;
}

/* fd_out - write everything to a blocking descriptor */
static int fd_out(void *ctx, const char *p, size_t n)
{
    int fd = *(int *)ctx;

    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* content_copy - one delivery copy to fd; -1 + errno on error */
int content_copy(const struct lmsg *m, const struct lrcpt *r, int fd, unsigned flags,
                 struct dres *res)
{
    (void)res;
    return content_copy_to(m, r, flags, fd_out, &fd, NULL);
}
