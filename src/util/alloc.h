/*
 * alloc.h - allocation wrappers that never return NULL
 *
 * Out of memory is fatal (msg_fatal): callers never test for NULL.
 * Size multiplications are checked for overflow (a panic: the caller
 * asked for something impossible).
 */
#ifndef POSTA_ALLOC_H
#define POSTA_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* xasprintf - formatted string in fresh memory */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
