/*
 * qfile.h - the queue file: one message, typed records, one place
 *
 * LAYOUT of $queue_directory (created by master, see mail/spool.h):
 *   incoming/  new messages; a file here is complete only with mode 0700
 *              (written with 0600, fchmod'ed to 0700 when the end record is
 *              written, then fsync'ed) - as Postfix marks finished files.
 *   active/ deferred/ hold/ corrupt/   for the queue manager (next issue)
 *   maildrop/  sendmail submissions;  pid/  master.lock;
 *   private/ public/  daemon sockets.
 * The file name is the queue ID (mail/qid.h).
 *
 * RECORD FORMAT: each record is
 *     type (1 byte) | length (LEB128 varint, at most 5 bytes, <= 2^31-1) |
 *     payload (length bytes)
 * A file is, in order:
 *   QREC_VERSION  "posta-queue 1"                      (always first)
 *   QREC_SIZE     fixed-width text "%15lld %15lld %8d": content offset,
 *                 content length, recipient count; written as zeros and
 *                 overwritten in place by qfw_finish
 *   QREC_TIME     arrival time "SECONDS.MICROSECONDS"
 *   QREC_ATTR*    "name=value": client_name, client_address, client_port,
 *                 helo_name, protocol (SMTP/ESMTP), encoding (7bit/8bitmime),
 *                 smtputf8 (yes), envid, ret (FULL/HDRS), log_ident,
 *                 size (declared SIZE=), rewrite_context, dkim_sign
 *                 ("pending": smtpd wrote a DKIM signature field with
 *                 placeholders as the content's second field, for the
 *                 queue manager to complete; see mail/dkim.h),
 *                 content_filter ("transport:nexthop": every recipient
 *                 goes there; set by smtpd and pickup) ...
 *                 (open-ended)
 *   QREC_SENDER   envelope sender ("" for the null sender <>)
 *   per recipient: optional QREC_ORCPT "addr-type;xtext-decoded address",
 *                  optional QREC_NOTIFY decimal bit mask (QNOTIFY_*),
 *                  then QREC_RCPT address. The queue manager marks a
 *                  recipient finished by overwriting the type byte of its
 *                  QREC_RCPT record in place with QREC_DONE (one byte
 *                  pwrite: crash-safe).
 *   QREC_MESSAGE  (empty) start of content
 *   QREC_CONTENT* message bytes: header and body, lines ending in "\n"
 *                 (SMTP CRLF converted, dot-stuffing removed), split into
 *                 records of at most QFILE_CHUNK bytes
 *   QREC_END      (empty) the message is complete
 *
 * Addresses are stored as received in the SMTP path without the angle
 * brackets (quoted local parts kept quoted).
 *
 * WHAT THE READER CHECKS (any violation: the file is corrupt, *err says
 * where and why; docs/QUEUE.md has the full list):
 *   - VERSION first with exactly QFILE_VERSION, SIZE second (40 bytes);
 *   - record types known, varint lengths minimal and at most 5 bytes, every
 *     record inside the file, envelope records at most QFILE_ENV_REC_MAX
 *     bytes without NUL bytes, the envelope at most QFILE_ENVELOPE_MAX
 *     bytes, at most QFILE_RCPT_MAX recipients and QFILE_ATTR_MAX attributes;
 *   - exactly one TIME ("SECONDS.MICROSECONDS", 1-6 digits of
 *     microseconds), before the one SENDER; ATTR "name=value" anywhere in
 *     the envelope except between ORCPT/NOTIFY and their RCPT;
 *   - every ORCPT/NOTIFY/RCPT/DONE after SENDER; at most one ORCPT then at
 *     most one NOTIFY directly before each RCPT or DONE; NOTIFY in 1..15
 *     and NEVER not combined with other bits; recipient addresses not empty;
 *   - MESSAGE (empty), then only CONTENT records, then an empty END that
 *     ends exactly at the end of the file;
 *   - SIZE agrees: content offset = offset after MESSAGE, content length =
 *     sum of CONTENT payloads, recipient count = RCPT + DONE records.
 * The writer produces exactly this; it panics on misuse (records out of
 * order) and reports I/O errors and oversized records (EMSGSIZE) through
 * its sticky error.
 */
#ifndef POSTA_QFILE_H
#define POSTA_QFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

enum qrec_type {
    QREC_VERSION = 'V',
    QREC_SIZE = 'S',
    QREC_TIME = 'T',
    QREC_ATTR = 'A',
    QREC_SENDER = 'F',
    QREC_ORCPT = 'O',
    QREC_NOTIFY = 'N',
    QREC_RCPT = 'R',
    QREC_DONE = 'D',
    QREC_MESSAGE = 'M',
    QREC_CONTENT = 'C',
    QREC_END = 'E',
};

#define QFILE_VERSION "posta-queue 1"
#define QATTR_DKIM_SIGN "dkim_sign"
#define QATTR_DKIM_SIGN_PENDING "pending"
#define QATTR_CONTENT_FILTER "content_filter"
#define QFILE_CHUNK 65536
#define QFILE_REC_MAX ((((size_t)1) << 31) - 1)
#define QFILE_ENV_REC_MAX 65536               /* one envelope record's payload */
#define QFILE_ENVELOPE_MAX (16 * 1024 * 1024) /* bytes before QREC_MESSAGE */
#define QFILE_RCPT_MAX 100000
#define QFILE_ATTR_MAX 1024
#define QFILE_MODE_WRITING 0600
#define QFILE_MODE_DONE 0700

/* DSN NOTIFY bits (RFC 3461); 0 means "not given" (default behaviour) */
#define QNOTIFY_NEVER 1u
#define QNOTIFY_SUCCESS 2u
#define QNOTIFY_FAILURE 4u
#define QNOTIFY_DELAY 8u

/* Writer. All output is buffered; errors are sticky and reported by
 * qfw_finish (and qfw_error), with errno kept. */
struct qfile_writer;

/*
 * qfw_create - create dirfd/qid (O_EXCL, mode 0600) and write the VERSION
 * and SIZE records; NULL + errno on failure. dirfd must stay open until
 * the writer is closed or aborted (qfw_abort unlinks relative to it).
 */
struct qfile_writer *qfw_create(int dirfd, const char *qid);
/*
 * qfw_record - append an envelope record (TIME, ATTR, SENDER, ORCPT, NOTIFY,
 * RCPT, DONE, MESSAGE); QREC_CONTENT is passed to qfw_content. VERSION,
 * SIZE and END are written by the writer itself.
 */
void qfw_record(struct qfile_writer *w, int type, const void *data, size_t len);
void qfw_recordf(struct qfile_writer *w, int type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * qfw_content - append message bytes; successive calls are packed into
 * QREC_CONTENT records of at most QFILE_CHUNK bytes. The first call writes
 * QREC_MESSAGE if the caller has not.
 */
void qfw_content(struct qfile_writer *w, const void *data, size_t len);
/*
 * qfw_move - rename the unfinished file into the directory dirfd (same
 * file system; HOLD), fsync that directory, and remove it from there on
 * a later abort; 0, or -1 with errno (the file stays where it was)
 */
int qfw_move(struct qfile_writer *w, int dirfd);
/* qfw_finish - end record, size record, flush, fchmod 0700 (no fsync): 0 or -1 */
int qfw_finish(struct qfile_writer *w);
int qfw_fd(const struct qfile_writer *w);
/* qfw_error - the sticky errno (0 if none) */
int qfw_error(const struct qfile_writer *w);
/* qfw_content_bytes - message bytes written so far */
uint64_t qfw_content_bytes(const struct qfile_writer *w);
/* qfw_abort - remove the file and free (a dropped client, a write error) */
void qfw_abort(struct qfile_writer *w);
/* qfw_close - close and free after a successful finish + sync */
void qfw_close(struct qfile_writer *w);
const char *qfw_id(const struct qfile_writer *w);

/* Reader: the whole envelope is parsed and checked; content is read lazily. */
struct qrcpt {
    char *addr;
    char *orcpt;        /* NULL if none */
    unsigned notify;    /* QNOTIFY_* or 0 */
    bool done;
    off_t offset;       /* file offset of the QREC_RCPT type byte */
};

struct qattr {
    char *name;
    char *value;
};

struct qfile {
    int fd;
    char *qid;
    long long arrival_sec;
    long arrival_usec;
    char *sender;
    struct qattr *attrs;
    size_t nattrs;
    struct qrcpt *rcpts;
    size_t nrcpts;
    off_t content_offset;     /* of the first QREC_CONTENT (or QREC_END) */
    uint64_t content_length;  /* message bytes */
    off_t file_size;
};

/*
 * qfile_open - open and parse dirfd/name; on a malformed file returns NULL
 * with *err describing the first problem (and errno = EINVAL), or NULL with
 * errno from the system for I/O errors (*err then describes it too).
 * *err is malloc'ed (free it) and set whenever NULL is returned. The file
 * is opened read-write when permitted (for qfile_mark_done), else read-only.
 */
struct qfile *qfile_open(int dirfd, const char *name, char **err);
/* qfile_parse_fd - parse an open descriptor (takes ownership of fd) */
struct qfile *qfile_parse_fd(int fd, const char *qid, char **err);
/* qfile_attr - value of an attribute, or NULL */
const char *qfile_attr(const struct qfile *q, const char *name);
/* A position in the message bytes, for reading them piece by piece. */
struct qfile_cursor {
    off_t off;          /* next byte of the file to read */
    size_t rec_left;    /* payload bytes left in the current record */
    bool eof;           /* QREC_END seen */
};

/* qfile_content_begin - place c at the first message byte */
void qfile_content_begin(const struct qfile *q, struct qfile_cursor *c);
/*
 * qfile_content_read - up to max message bytes into buf: the count, 0 at
 * the end of the message, or -1 with errno (EINVAL: a record that does
 * not fit the file).
 */
ssize_t qfile_content_read(const struct qfile *q, struct qfile_cursor *c, void *buf,
                           size_t max);
/* qfile_read_content - append all message bytes to out; 0 or -1 */
int qfile_read_content(struct qfile *q, struct buf *out);
/* qfile_mark_done - mark recipient i finished (in place) and fdatasync */
int qfile_mark_done(struct qfile *q, size_t i);
/*
 * qfile_mark_done_nosync - the same mark, left to the page cache: only for
 * a file about to be removed anyway (a crash before the removal may then
 * deliver that recipient again, as a crash before any mark would)
 */
int qfile_mark_done_nosync(struct qfile *q, size_t i);
void qfile_close(struct qfile *q);

#endif
