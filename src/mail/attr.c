/*
 * attr.c - the one request format between posta processes
 *
 * DIAGNOSTICS: parse errors are returned as static text; callers decide
 * (a malformed message from a peer ends that connection).
 * SECURITY: every length is bounded (ATTR_LINE_MAX, ATTR_MSG_MAX_ATTRS);
 * values are unescaped into fresh memory, never trusted as C strings
 * where they may hold NUL (len is kept).
 */
#include "util/sys.h"

#include <poll.h>
#include <string.h>
#include <time.h>

#include "mail/attr.h"
#include "util/alloc.h"
#include "util/log.h"

/* attr_put_len - append one attribute with an explicit value length */
void attr_put_len(struct buf *out, const char *name, const char *value, size_t len)
{
    buf_puts(out, name);
    buf_putc(out, '=');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];

        switch (c) {
        case '\\':
            buf_append(out, "\\\\", 2);
            break;
        case '\n':
            buf_append(out, "\\n", 2);
            break;
        case '\r':
            buf_append(out, "\\r", 2);
            break;
        case 0:
            buf_append(out, "\\0", 2);
            break;
        default:
            buf_putc(out, c);
        }
    }
    buf_putc(out, '\n');
}

/* attr_put - append one attribute, escaped */
void attr_put(struct buf *out, const char *name, const char *value)
{
    attr_put_len(out, name, value ? value : "", value ? strlen(value) : 0);
}

/* attr_putf - append one attribute with a formatted value */
void attr_putf(struct buf *out, const char *name, const char *fmt, ...)
{
    struct buf v = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&v, fmt, ap);
    va_end(ap);
    attr_put_len(out, name, buf_str(&v), v.len);
    buf_free(&v);
}

/* attr_end - close the message */
void attr_end(struct buf *out)
{
    buf_putc(out, '\n');
}

/* attr_msg_free - release a parsed message */
void attr_msg_free(struct attr_msg *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->a[i].name);
        free(m->a[i].value);
    }
    free(m->a);
    memset(m, 0, sizeof(*m));
}

/* attr_add - store one parsed attribute */
static int attr_add(struct attr_msg *m, const char *line, size_t len, const char **err)
{
    const char *eq = memchr(line, '=', len);
    size_t nlen;
    char *v;
    size_t vlen = 0;

    if (eq == NULL) {
        *err = "attribute without '='";
        return -1;
    }
    nlen = (size_t)(eq - line);
    if (nlen == 0 || nlen > ATTR_NAME_MAX) {
        *err = "bad attribute name length";
        return -1;
    }
    for (size_t i = 0; i < nlen; i++) {
        char c = line[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            *err = "bad character in attribute name";
            return -1;
        }
    }
    if (m->n >= ATTR_MSG_MAX_ATTRS) {
        *err = "too many attributes";
        return -1;
    }
    v = xmalloc(len - nlen);
    for (size_t i = nlen + 1; i < len; i++) {
        char c = line[i];

        if (c == '\\') {
            if (++i >= len) {
                free(v);
                *err = "backslash at end of value";
                return -1;
            }
            switch (line[i]) {
            case '\\': c = '\\'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case '0': c = 0; break;
            default:
                free(v);
                *err = "bad escape in value";
                return -1;
            }
        } else if (c == '\r' || c == 0) {
            free(v);
            *err = "unescaped control character in value";
            return -1;
        }
        v[vlen++] = c;
    }
    v[vlen] = 0;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->a = xreallocarray(m->a, m->cap, sizeof(*m->a));
    }
    m->a[m->n].name = xstrndup(line, nlen);
    m->a[m->n].value = v;
    m->a[m->n].len = vlen;
    m->n++;
    return 0;
}

/* attr_parse - parse one message from a buffer */
int attr_parse(const char *in, size_t len, struct attr_msg *out, size_t *used,
               const char **err)
{
    size_t pos = 0;

    attr_msg_free(out);
    for (;;) {
        const char *nl = memchr(in + pos, '\n', len - pos);
        size_t llen;

        if (nl == NULL) {
            if (len - pos > ATTR_LINE_MAX) {
                *err = "attribute line too long";
                attr_msg_free(out);
                return -1;
            }
            attr_msg_free(out);
            return 0;
        }
        llen = (size_t)(nl - (in + pos));
        if (llen > ATTR_LINE_MAX) {
            *err = "attribute line too long";
            attr_msg_free(out);
            return -1;
        }
        if (llen == 0) {
            if (out->n == 0) {
                *err = "empty message";
                return -1;
            }
            *used = pos + 1;
            return 1;
        }
        if (attr_add(out, in + pos, llen, err) < 0) {
            attr_msg_free(out);
            return -1;
        }
        pos += llen + 1;
    }
}

/* attr_get - value of the first attribute named name */
const char *attr_get(const struct attr_msg *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->a[i].name, name) == 0)
            return m->a[i].value;
    return NULL;
}

/* attr_next - the next attribute in order */
const struct attr *attr_next(struct attr_msg *m)
{
    return m->pos < m->n ? &m->a[m->pos++] : NULL;
}

/* attr_next_named - the next attribute, which must be called name */
const char *attr_next_named(struct attr_msg *m, const char *name)
{
    if (m->pos >= m->n || strcmp(m->a[m->pos].name, name) != 0)
        return NULL;
    return m->a[m->pos++].value;
}

/* attr_next_long - the next attribute as a bounded number */
bool attr_next_long(struct attr_msg *m, const char *name, long long min, long long max,
                    long long *out)
{
    const char *v = attr_next_named(m, name);
    char *end;
    long long n;

    if (v == NULL || *v == 0)
        return false;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || *end || n < min || n > max)
        return false;
    *out = n;
    return true;
}

/* attr_deadline_left - milliseconds left until deadline (monotonic ms) */
static int attr_deadline_left(long long deadline)
{
    struct timespec ts;
    long long now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* attr_deadline - monotonic ms timeout_ms from now */
static long long attr_deadline(int timeout_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

/* attr_wait - poll fd for events until the deadline; 0 or -1 (ETIMEDOUT) */
static int attr_wait(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int left = attr_deadline_left(deadline);
        int n;

        if (left == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        n = poll(&p, 1, left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* attr_write_fd - write all of out with a deadline */
int attr_write_fd(int fd, const struct buf *out, int timeout_ms)
{
    long long deadline = attr_deadline(timeout_ms);
    size_t off = 0;

    while (off < out->len) {
        ssize_t n = write(fd, out->data + off, out->len - off);

        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (attr_wait(fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

/* attr_read_fd - read one message with a deadline */
int attr_read_fd(int fd, struct buf *inbuf, struct attr_msg *out, int timeout_ms,
                 const char **err)
{
    long long deadline = attr_deadline(timeout_ms);
    char chunk[8192];

    *err = NULL;
    for (;;) {
        size_t used = 0;
        int r = attr_parse(buf_str(inbuf), inbuf->len, out, &used, err);
        ssize_t n;

        if (r == 1) {
            buf_consume(inbuf, used);
            return 1;
        }
        if (r < 0) {
            errno = EPROTO;
            return -1;
        }
        n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            if (buf_append(inbuf, chunk, (size_t)n) < 0) {
                *err = "message too large";
                errno = EPROTO;
                return -1;
            }
            continue;
        }
        if (n == 0) {
            if (inbuf->len == 0)
                return 0;
            *err = "end of file inside a message";
            errno = EPROTO;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (attr_wait(fd, POLLIN, deadline) < 0)
                return -1;
            continue;
        }
        return -1;
    }
}
