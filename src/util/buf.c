/*
 * buf.c - the one growable, binary-safe buffer type
 *
 * SECURITY: all size arithmetic is checked; the hard maximum bounds what
 * outside input can make us allocate.
 */
#include "util/sys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define BUF_READ_CHUNK 8192    /* bytes per fread in buf_read_file */

static size_t buf_max(const struct buf *b)
{
    return b->max ? b->max : BUF_DEFAULT_MAX;
}

/* buf_init - empty buffer with a hard maximum (0: default) */
void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

/* buf_free - release the storage; the buffer stays usable and empty */
void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* buf_reset - empty the buffer, keeping its storage */
void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

/* buf_reserve - make room for n more bytes plus the terminator */
int buf_reserve(struct buf *b, size_t n)
{
    size_t need, cap;

    if (n > buf_max(b) || b->len > buf_max(b) - n)
        return -1;
    need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

/* buf_append - add n bytes */
int buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

/* buf_puts - add a C string */
int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* buf_putc - add one byte */
int buf_putc(struct buf *b, int c)
{
    char ch = (char)c;

    return buf_append(b, &ch, 1);
}

/* buf_vprintf - append formatted text */
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        msg_panic("buf_vprintf: bad format \"%s\"", fmt);
    if (buf_reserve(b, (size_t)n) < 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

/* buf_printf - append formatted text */
int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

/* buf_set - replace the contents with a copy of s */
int buf_set(struct buf *b, const char *s)
{
    buf_reset(b);
    return buf_puts(b, s);
}

/* buf_consume - drop the first n bytes */
void buf_consume(struct buf *b, size_t n)
{
    if (n > b->len)
        msg_panic("buf_consume: %zu > length %zu", n, b->len);
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

/* buf_truncate - shorten to n bytes */
void buf_truncate(struct buf *b, size_t n)
{
    if (n > b->len)
        msg_panic("buf_truncate: %zu > length %zu", n, b->len);
    b->len = n;
    if (b->data)
        b->data[n] = 0;
}

/* buf_steal - hand the storage to the caller */
char *buf_steal(struct buf *b)
{
    char *p = b->data ? b->data : xstrdup("");

    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* buf_read_file - the whole file, bounded; 0 or -1 + errno */
int buf_read_file(struct buf *b, const char *path, size_t max)
{
    FILE *fp = fopen(path, "re");
    char chunk[BUF_READ_CHUNK];
    size_t n;
    int saved;

    if (fp == NULL)
        return -1;
    buf_free(b);
    buf_init(b, max);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (buf_append(b, chunk, n) < 0) {
            fclose(fp);
            errno = EFBIG;
            return -1;
        }
    }
    saved = ferror(fp) ? errno : 0;
    fclose(fp);
    if (saved) {
        errno = saved;
        return -1;
    }
    return 0;
}
