/*
 * attr.h - the one request format between posta processes
 *
 * A message is a sequence of attribute lines "name=value\n" closed by an
 * empty line. Names are [a-z0-9_]+ (at most ATTR_NAME_MAX bytes). In a
 * value, backslash is written "\\\\", newline "\\n", carriage return "\\r"
 * and NUL "\\0"; every other byte stands for itself, so values are
 * binary-safe. The first attribute of every message is "v=PROTOCOL/1"
 * naming the protocol and its version; a receiver refuses any other.
 *
 * Receivers are strict (habit 9): attr_msg_expect() checks that exactly
 * the expected names are present, in order, and nothing else; a malformed
 * message from a peer is fatal for that connection.
 */
#ifndef POSTA_ATTR_H
#define POSTA_ATTR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define ATTR_NAME_MAX 64
#define ATTR_LINE_MAX (1u << 20)     /* one attribute line, escaped */
#define ATTR_MSG_MAX_ATTRS 200000    /* attributes in one message */

struct attr {
    char *name;
    char *value;     /* unescaped, NUL-terminated */
    size_t len;      /* of value (may contain NUL bytes) */
};

struct attr_msg {
    struct attr *a;
    size_t n, cap;
    size_t pos;      /* read cursor for attr_next() */
};

/* attr_put - append one attribute, escaped */
void attr_put(struct buf *out, const char *name, const char *value);
void attr_put_len(struct buf *out, const char *name, const char *value, size_t len);
void attr_putf(struct buf *out, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* attr_end - close the message */
void attr_end(struct buf *out);

/*
 * attr_parse - parse one message from in[0..len). Returns 1 with *used set
 * when a whole message was parsed into out, 0 when more input is needed,
 * -1 with *err (static text) when the input is malformed.
 */
int attr_parse(const char *in, size_t len, struct attr_msg *out, size_t *used,
               const char **err);
void attr_msg_free(struct attr_msg *m);
/* attr_get - value of the first attribute named name, or NULL */
const char *attr_get(const struct attr_msg *m, const char *name);
/* attr_next - the next attribute in order; NULL at the end */
const struct attr *attr_next(struct attr_msg *m);
/* attr_next_named - the next attribute, which must be called name; NULL otherwise */
const char *attr_next_named(struct attr_msg *m, const char *name);
/* attr_next_long - the next attribute, named name, as a number in [min,max] */
bool attr_next_long(struct attr_msg *m, const char *name, long long min, long long max,
                    long long *out);

/* Blocking helpers for request/reply over a stream socket, with a deadline. */
/* attr_write_fd - write all of out; 0 or -1 (errno) */
int attr_write_fd(int fd, const struct buf *out, int timeout_ms);
/*
 * attr_read_fd - read one message into out, using inbuf for read-ahead;
 * 1 on success, 0 on a clean end-of-file before any byte, -1 on error or
 * timeout (errno), or on a malformed message (errno = EPROTO, *err set).
 */
int attr_read_fd(int fd, struct buf *inbuf, struct attr_msg *out, int timeout_ms,
                 const char **err);

#endif
