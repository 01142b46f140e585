/*
 * alloc.c - allocation wrappers that never return NULL
 *
 * DIAGNOSTICS: out of memory is fatal; an overflowing size is a panic.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"

/* xmalloc - malloc or die */
void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        msg_fatal("out of memory allocating %zu bytes", size);
    return p;
}

/* xcalloc - zeroed, overflow-checked array allocation */
void *xcalloc(size_t n, size_t size)
{
    void *p;

    if (size && n > SIZE_MAX / size)
        msg_panic("xcalloc: %zu x %zu overflows", n, size);
    p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        msg_fatal("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

/* xrealloc - realloc or die */
void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);

    if (p == NULL)
        msg_fatal("out of memory reallocating %zu bytes", size);
    return p;
}

/* xreallocarray - overflow-checked array reallocation */
void *xreallocarray(void *ptr, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        msg_panic("xreallocarray: %zu x %zu overflows", n, size);
    return xrealloc(ptr, n * size);
}

/* xstrdup - copy a string */
char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

/* xstrndup - copy at most n bytes of a string, NUL-terminated */
char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

/* xmemdup - copy a memory block */
void *xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);

    memcpy(q, p, n);
    return q;
}

/* xasprintf - formatted string in fresh memory */
char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg_fatal("out of memory formatting a string");
    return s;
}
