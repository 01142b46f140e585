/*
 * buf.h - the one growable, binary-safe buffer type
 *
 * A struct buf tracks its length, is always NUL-terminated (data[len] ==
 * 0, so text can be passed to C string functions), grows with checked
 * arithmetic and never beyond its hard maximum. Exceeding the maximum is
 * reported to the caller (buf_* return -1) so that input from outside can
 * be refused cleanly; it is never a crash.
 *
 * A zero-initialised struct buf (BUF_INIT) is an empty, valid buffer with
 * the default maximum.
 */
#ifndef POSTA_BUF_H
#define POSTA_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define BUF_DEFAULT_MAX ((size_t)1 << 30) /* 1 GiB: no buffer grows past */

struct buf {
    char *data;  /* NUL-terminated storage, or NULL while empty */
    size_t len;  /* bytes in use, excluding the terminator */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard limit on len; 0 means BUF_DEFAULT_MAX */
};

#define BUF_INIT {0, 0, 0, 0}

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* buf_reserve - make room for n more bytes; -1 if that passes max */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, int c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* buf_set - replace the contents with a copy of s */
int buf_set(struct buf *b, const char *s);
/*
 * buf_read_file - replace b's content with the whole file at path, at most
 * max bytes (b's own maximum is set to max); 0, or -1 with errno (EFBIG:
 * the file is larger)
 */
int buf_read_file(struct buf *b, const char *path, size_t max);
/* buf_consume - drop the first n bytes */
void buf_consume(struct buf *b, size_t n);
/* buf_truncate - shorten to n bytes (n <= len) */
void buf_truncate(struct buf *b, size_t n);
/* buf_str - the contents as a C string ("" while empty) */
static inline const char *buf_str(const struct buf *b)
{
    return b->data ? b->data : "";
}
/* buf_steal - hand the storage to the caller (free with free()) */
char *buf_steal(struct buf *b);

#endif
