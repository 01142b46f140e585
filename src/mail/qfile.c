/*
 * qfile.c - queue file writer and reader (format: mail/qfile.h)
 *
 * The writer packs records into one 64 KiB buffer and hands it to write()
 * when full, so a small message costs one write() for the whole file plus
 * one pwrite() of the SIZE record. Message bytes are packed into CONTENT
 * records in place: a record is opened with room for the longest length
 * prefix and closed (prefix shortened, payload moved down a few bytes)
 * when the buffer or QFILE_CHUNK is full or another record follows.
 * Errors are sticky: the first failing write is remembered and reported
 * by qfw_finish, later calls do nothing. The writer never fsyncs: making
 * files durable (in groups) is qcommit's job.
 *
 * The reader checks the whole envelope before anyone acts on it (see the
 * list in qfile.h) and walks the CONTENT record headers without reading
 * their payload; message bytes are read on demand by qfile_read_content.
 *
 * DIAGNOSTICS
 *   Writer misuse (records out of order) is a panic. A malformed file is
 *   reported through *err as "offset N: problem" for the first problem.
 * SECURITY
 *   Queue files are trusted only after the reader has checked them: no
 *   length is used before it is checked against the file size and the
 *   limits in qfile.h, so a corrupt or hostile file costs at most those
 *   limits in memory and never crashes the reader.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "mail/qfile.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define QFW_BUFSIZE 65536
#define VARINT_MAX_BYTES 5
#define VARINT_LAST_MAX 0x07        /* 5th byte: keeps the value < 2^31 */
#define REC_HDR_MAX (1 + VARINT_MAX_BYTES)
#define CREC_MIN_ROOM 4096          /* flush rather than open a tiny CONTENT record */
#define SIZE_FIELD_WIDE 15
#define SIZE_FIELD_NARROW 8
#define SIZE_PAYLOAD_LEN (SIZE_FIELD_WIDE + 1 + SIZE_FIELD_WIDE + 1 + SIZE_FIELD_NARROW)
#define SIZE_RCPT_MAX 99999999LL    /* fits SIZE_FIELD_NARROW digits */
#define TIME_USEC_DIGITS_MAX 6
#define TIME_SEC_DIGITS_MAX 18
#define NOTIFY_ALL (QNOTIFY_NEVER | QNOTIFY_SUCCESS | QNOTIFY_FAILURE | QNOTIFY_DELAY)
#define RD_WANT_ENVELOPE (128 * 1024) /* read-ahead while parsing the envelope */
#define RD_WANT_HEADER 16             /* read-ahead for a CONTENT record header */
#define NO_RECORD SIZE_MAX
#define ERR_SHOW_MAX 40               /* bytes of file text quoted in errors */

/* ---------------------------------------------------------------- writer */

struct qfile_writer {
    int fd;
    int dirfd;
    char *qid;
    char *buf;              /* QFW_BUFSIZE bytes of pending output */
    size_t blen;
    off_t flushed;          /* file offset of buf[0] */
    int err;                /* sticky errno */
    bool in_content;        /* QREC_MESSAGE written */
    bool finished;
    bool seen_time;
    bool seen_sender;
    size_t crec_start;      /* buf index of the open CONTENT record, or NO_RECORD */
    size_t crec_len;        /* its payload so far */
    off_t size_payload;     /* file offset of the SIZE payload */
    off_t content_offset;   /* file offset after QREC_MESSAGE */
    uint64_t content_bytes;
    long long nrcpt;
};

/* varint_put - LEB128 encode v into p; returns the byte count */
static size_t varint_put(unsigned char *p, size_t v)
{
    size_t n = 0;

    do {
        unsigned char b = (unsigned char)(v & 0x7f);

        v >>= 7;
        if (v)
            b |= 0x80;
        p[n++] = b;
    } while (v);
    return n;
}

/* qfw_flush - hand the buffer to write(); errors become sticky */
static void qfw_flush(struct qfile_writer *w)
{
    size_t done = 0;

    if (w->crec_start != NO_RECORD)
        msg_panic("qfw_flush: CONTENT record still open");
    while (w->err == 0 && done < w->blen) {
        ssize_t n = write(w->fd, w->buf + done, w->blen - done);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            w->err = errno;
        } else if (n == 0) {
            w->err = EIO;
        } else {
            done += (size_t)n;
        }
    }
    w->flushed += (off_t)done;
    w->blen = 0;
}

/* qfw_put - append raw bytes to the buffer, flushing when it fills */
static void qfw_put(struct qfile_writer *w, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0 && w->err == 0) {
        size_t room = QFW_BUFSIZE - w->blen;
        size_t n = len < room ? len : room;

        if (room == 0) {
            qfw_flush(w);
            continue;
        }
        memcpy(w->buf + w->blen, p, n);
        w->blen += n;
        p += n;
        len -= n;
    }
}

/* qfw_put_record - append one complete record */
static void qfw_put_record(struct qfile_writer *w, int type, const void *data, size_t len)
{
    unsigned char hdr[REC_HDR_MAX];
    size_t hlen;

    hdr[0] = (unsigned char)type;
    hlen = 1 + varint_put(hdr + 1, len);
    qfw_put(w, hdr, hlen);
    qfw_put(w, data, len);
}

/* qfw_offset - logical file offset of the next byte written */
static off_t qfw_offset(const struct qfile_writer *w)
{
    return w->flushed + (off_t)w->blen;
}

/* crec_close - finish the open CONTENT record: shorten its length prefix */
static void crec_close(struct qfile_writer *w)
{
    unsigned char hdr[REC_HDR_MAX];
    size_t hlen;
    char *rec;

    if (w->crec_start == NO_RECORD)
        return;
    rec = w->buf + w->crec_start;
    hdr[0] = QREC_CONTENT;
    hlen = 1 + varint_put(hdr + 1, w->crec_len);
    memmove(rec + hlen, rec + REC_HDR_MAX, w->crec_len);
    memcpy(rec, hdr, hlen);
    w->blen = w->crec_start + hlen + w->crec_len;
    w->crec_start = NO_RECORD;
    w->crec_len = 0;
}

/* crec_open - start a CONTENT record in the buffer */
static void crec_open(struct qfile_writer *w)
{
    if (QFW_BUFSIZE - w->blen < REC_HDR_MAX + CREC_MIN_ROOM)
        qfw_flush(w);
    w->crec_start = w->blen;
    w->crec_len = 0;
    w->blen += REC_HDR_MAX;
}

/* qfw_start_message - write QREC_MESSAGE and note where content starts */
static void qfw_start_message(struct qfile_writer *w)
{
    qfw_put_record(w, QREC_MESSAGE, "", 0);
    w->content_offset = qfw_offset(w);
    w->in_content = true;
}

/* qfw_create - create dirfd/qid (O_EXCL, mode 0600) */
struct qfile_writer *qfw_create(int dirfd, const char *qid)
{
    struct qfile_writer *w;
    char zeros[SIZE_PAYLOAD_LEN + 1];
    int fd;

    if (qid == NULL || *qid == 0 || strchr(qid, '/') || strcmp(qid, ".") == 0
        || strcmp(qid, "..") == 0) {
        errno = EINVAL;
        return NULL;
    }
    fd = openat(dirfd, qid, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                QFILE_MODE_WRITING);
    if (fd < 0)
        return NULL;
    w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->dirfd = dirfd;
    w->qid = xstrdup(qid);
    w->buf = xmalloc(QFW_BUFSIZE);
    w->crec_start = NO_RECORD;
    qfw_put_record(w, QREC_VERSION, QFILE_VERSION, strlen(QFILE_VERSION));
    snprintf(zeros, sizeof(zeros), "%*d %*d %*d", SIZE_FIELD_WIDE, 0, SIZE_FIELD_WIDE, 0,
             SIZE_FIELD_NARROW, 0);
    w->size_payload = qfw_offset(w) + 2;   /* type byte, 1-byte length */
    qfw_put_record(w, QREC_SIZE, zeros, SIZE_PAYLOAD_LEN);
    return w;
}

/* qfw_check_open - panic on use after finish */
static void qfw_check_open(const struct qfile_writer *w, const char *fn)
{
    if (w->finished)
        msg_panic("%s: queue file %s already finished", fn, w->qid);
}

/* qfw_record - append an envelope record */
void qfw_record(struct qfile_writer *w, int type, const void *data, size_t len)
{
    qfw_check_open(w, "qfw_record");
    switch (type) {
    case QREC_CONTENT:
        qfw_content(w, data, len);
        return;
    case QREC_MESSAGE:
        if (w->in_content)
            msg_panic("qfw_record: %s: second MESSAGE record", w->qid);
        if (len != 0)
            msg_panic("qfw_record: %s: MESSAGE record with payload", w->qid);
        qfw_start_message(w);
        return;
    case QREC_TIME:
    case QREC_ATTR:
    case QREC_SENDER:
    case QREC_ORCPT:
    case QREC_NOTIFY:
    case QREC_RCPT:
    case QREC_DONE:
        break;
    default:
        msg_panic("qfw_record: %s: record type 0x%02x is not written by callers",
                  w->qid, (unsigned)type & 0xff);
    }
    if (w->in_content)
        msg_panic("qfw_record: %s: envelope record '%c' after MESSAGE", w->qid, type);
    if (w->err)
        return;
    if (len > QFILE_ENV_REC_MAX) {
        w->err = EMSGSIZE;
        return;
    }
    if (type == QREC_TIME)
        w->seen_time = true;
    else if (type == QREC_SENDER)
        w->seen_sender = true;
    else if (type == QREC_RCPT || type == QREC_DONE)
        w->nrcpt++;
    qfw_put_record(w, type, data, len);
}

/* qfw_recordf - append a formatted envelope record */
void qfw_recordf(struct qfile_writer *w, int type, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        if (w->err == 0)
            w->err = EMSGSIZE;
    } else {
        qfw_record(w, type, buf_str(&b), b.len);
    }
    buf_free(&b);
}

/* qfw_content - append message bytes, packed into CONTENT records */
void qfw_content(struct qfile_writer *w, const void *data, size_t len)
{
    const char *p = data;

    qfw_check_open(w, "qfw_content");
    if (!w->in_content)
        qfw_start_message(w);
    w->content_bytes += len;
    while (len > 0 && w->err == 0) {
        size_t room, n;

        if (w->crec_start == NO_RECORD) {
            crec_open(w);
            if (w->err)
                break;
        }
        room = QFW_BUFSIZE - w->blen;
        n = QFILE_CHUNK - w->crec_len;
        if (room < n)
            n = room;
        if (len < n)
            n = len;
        memcpy(w->buf + w->blen, p, n);
        w->blen += n;
        w->crec_len += n;
        p += n;
        len -= n;
        if (w->crec_len == QFILE_CHUNK || w->blen == QFW_BUFSIZE)
            crec_close(w);
    }
}

/* qfw_pwrite_all - pwrite everything or fail */
static int qfw_pwrite_all(int fd, const char *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* qfw_finish - end record, size record, flush, fchmod 0700 (no fsync) */
int qfw_finish(struct qfile_writer *w)
{
    char size[SIZE_PAYLOAD_LEN + 1];
    int n;

    qfw_check_open(w, "qfw_finish");
    if (w->err == 0 && (!w->seen_time || !w->seen_sender))
        msg_panic("qfw_finish: %s: no TIME or no SENDER record", w->qid);
    if (!w->in_content)
        qfw_start_message(w);
    crec_close(w);
    qfw_put_record(w, QREC_END, "", 0);
    qfw_flush(w);
    w->finished = true;
    free(w->buf);
    w->buf = NULL;
    if (w->err == 0 && (w->content_bytes > (uint64_t)LLONG_MAX || w->nrcpt > SIZE_RCPT_MAX))
        w->err = EFBIG;
    if (w->err == 0) {
        n = snprintf(size, sizeof(size), "%*lld %*lld %*lld", SIZE_FIELD_WIDE,
                     (long long)w->content_offset, SIZE_FIELD_WIDE,
                     (long long)w->content_bytes, SIZE_FIELD_NARROW, w->nrcpt);
        if (n != SIZE_PAYLOAD_LEN)
            w->err = EFBIG;
        else if (qfw_pwrite_all(w->fd, size, SIZE_PAYLOAD_LEN, w->size_payload) < 0)
            w->err = errno;
    }
    if (w->err == 0 && fchmod(w->fd, QFILE_MODE_DONE) < 0)
        w->err = errno;
    if (w->err) {
        errno = w->err;
        return -1;
    }
    return 0;
}

/* qfw_fd - the file descriptor (for a flush) */
int qfw_fd(const struct qfile_writer *w)
{
    return w->fd;
}

/* qfw_error - the sticky errno (0 if none) */
int qfw_error(const struct qfile_writer *w)
{
    return w->err;
}

/* qfw_content_bytes - message bytes written so far */
uint64_t qfw_content_bytes(const struct qfile_writer *w)
{
    return w->content_bytes;
}

/* qfw_id - the queue ID (file name) */
const char *qfw_id(const struct qfile_writer *w)
{
    return w->qid;
}

/* qfw_free - release memory and the descriptor */
static void qfw_free(struct qfile_writer *w)
{
    if (w->fd >= 0 && close(w->fd) < 0 && w->err == 0)
        msg_warn("%s: close queue file: %m", w->qid);
    free(w->buf);
    free(w->qid);
    free(w);
}

/* qfw_move - rename the unfinished file into dirfd and sync that directory */
int qfw_move(struct qfile_writer *w, int dirfd)
{
    if (renameat(w->dirfd, w->qid, dirfd, w->qid) < 0)
        return -1;
    w->dirfd = dirfd;
    if (fsync(dirfd) < 0)
        return -1;
    return 0;
}

/* qfw_abort - remove the file and free */
void qfw_abort(struct qfile_writer *w)
{
    int saved = errno;

    if (w == NULL)
        return;
    if (unlinkat(w->dirfd, w->qid, 0) < 0 && errno != ENOENT)
        msg_warn("%s: remove queue file: %m", w->qid);
    qfw_free(w);
    errno = saved;
}

/* qfw_close - close and free after a successful finish + sync */
void qfw_close(struct qfile_writer *w)
{
    if (w != NULL)
        qfw_free(w);
}

/* ---------------------------------------------------------------- reader */

/* A window of the file, refilled with pread. */
struct rd {
    int fd;
    off_t size;
    unsigned char *buf;
    size_t cap;
    off_t base;         /* file offset of buf[0] */
    size_t len;         /* valid bytes */
};

/* Parser state; the first problem found goes to err. */
struct parse {
    struct rd rd;
    struct qfile *q;
    struct buf err;
    bool failed;
    int sys_errno;      /* nonzero: I/O error rather than a malformed file */
    off_t at;           /* offset of the record being checked */
};

/* rec_name - printable name of a record type */
static const char *rec_name(int type)
{
    switch (type) {
    case QREC_VERSION:
        return "VERSION";
    case QREC_SIZE:
        return "SIZE";
    case QREC_TIME:
        return "TIME";
    case QREC_ATTR:
        return "ATTR";
    case QREC_SENDER:
        return "SENDER";
    case QREC_ORCPT:
        return "ORCPT";
    case QREC_NOTIFY:
        return "NOTIFY";
    case QREC_RCPT:
        return "RCPT";
    case QREC_DONE:
        return "DONE";
    case QREC_MESSAGE:
        return "MESSAGE";
    case QREC_CONTENT:
        return "CONTENT";
    case QREC_END:
        return "END";
    default:
        return NULL;
    }
}

/* perr - record the first problem as "offset N: text" */
static void perr(struct parse *ps, const char *fmt, ...) POSTA_PRINTF(2, 3);
static void perr(struct parse *ps, const char *fmt, ...)
{
    va_list ap;

    if (ps->failed)
        return;
    ps->failed = true;
    buf_printf(&ps->err, "offset %lld: ", (long long)ps->at);
    va_start(ap, fmt);
    buf_vprintf(&ps->err, fmt, ap);
    va_end(ap);
}

/* psys - record an I/O error */
static void psys(struct parse *ps, const char *what)
{
    int e = errno ? errno : EIO;

    if (ps->failed)
        return;
    ps->failed = true;
    ps->sys_errno = e;
    buf_printf(&ps->err, "%s: %s", what, strerror(e));
}

/* pread_all - read exactly len bytes at off; -1 with errno (EIO at EOF) */
static int pread_all(int fd, void *p, size_t len, off_t off)
{
    char *cp = p;

    while (len > 0) {
        ssize_t n = pread(fd, cp, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;   /* the file shrank under us */
            return -1;
        }
        cp += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* rd_fetch - bytes [off, off+n) of the file (n <= size - off), or NULL */
static const unsigned char *rd_fetch(struct rd *r, off_t off, size_t n, size_t want)
{
    size_t get;

    if (off >= r->base && (size_t)(off - r->base) + n <= r->len)
        return r->buf + (off - r->base);
    get = n > want ? n : want;
    if ((off_t)get > r->size - off)
        get = (size_t)(r->size - off);
    if (get > r->cap) {
        free(r->buf);
        r->buf = xmalloc(get);
        r->cap = get;
    }
    r->len = 0;
    if (pread_all(r->fd, r->buf, get, off) < 0)
        return NULL;
    r->base = off;
    r->len = get;
    return r->buf;
}

/* rec_decode - parse a record header; 0, or -1 with *why */
static int rec_decode(const unsigned char *p, size_t avail, int *type, size_t *len,
                      size_t *hlen, const char **why)
{
    size_t v = 0;

    if (avail < 2) {
        *why = "truncated record header";
        return -1;
    }
    *type = p[0];
    if (rec_name(*type) == NULL) {
        *why = "unknown record type";
        return -1;
    }
    for (size_t i = 0; i < VARINT_MAX_BYTES; i++) {
        unsigned b;

        if (1 + i >= avail) {
            *why = "truncated record length";
            return -1;
        }
        b = p[1 + i];
        if (i == VARINT_MAX_BYTES - 1 && b > VARINT_LAST_MAX) {
            *why = "record length exceeds 2^31-1 or uses more than 5 bytes";
            return -1;
        }
        v |= (size_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (i > 0 && b == 0) {
                *why = "non-minimal record length encoding";
                return -1;
            }
            *len = v;
            *hlen = 2 + i;
            return 0;
        }
    }
    *why = "record length exceeds 2^31-1 or uses more than 5 bytes";   /* not reached */
    return -1;
}

/* show_text - a printable, bounded rendering of file bytes for errors */
static void show_text(struct buf *out, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len && i < ERR_SHOW_MAX; i++)
        buf_putc(out, p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? p[i] : '?');
    if (len > ERR_SHOW_MAX)
        buf_puts(out, "...");
}

/* parse_decimal - all digits, at most maxdigits, no leading zero unless "0" */
static bool parse_decimal(const char *s, size_t len, size_t maxdigits, long long *out)
{
    long long v = 0;

    if (len == 0 || len > maxdigits || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* parse_padded - a right-aligned number in a fixed-width field */
static bool parse_padded(const char *s, size_t width, long long *out)
{
    size_t i = 0;

    while (i < width && s[i] == ' ')
        i++;
    return parse_decimal(s + i, width - i, width, out);
}

/* check_size - SIZE record "%15lld %15lld %8d" */
static void check_size(struct parse *ps, const char *p, size_t len, long long size[3])
{
    if (len != SIZE_PAYLOAD_LEN || p[SIZE_FIELD_WIDE] != ' '
        || p[2 * SIZE_FIELD_WIDE + 1] != ' '
        || !parse_padded(p, SIZE_FIELD_WIDE, &size[0])
        || !parse_padded(p + SIZE_FIELD_WIDE + 1, SIZE_FIELD_WIDE, &size[1])
        || !parse_padded(p + 2 * SIZE_FIELD_WIDE + 2, SIZE_FIELD_NARROW, &size[2]))
        perr(ps, "malformed SIZE record");
}

/* check_time - TIME record "SECONDS.MICROSECONDS" */
static void check_time(struct parse *ps, const char *p, size_t len)
{
    const char *dot = memchr(p, '.', len);
    long long sec, usec;

    if (dot == NULL
        || !parse_decimal(p, (size_t)(dot - p), TIME_SEC_DIGITS_MAX, &sec)
        || (size_t)(p + len - dot - 1) > TIME_USEC_DIGITS_MAX || p + len - dot - 1 < 1) {
        perr(ps, "malformed TIME record");
        return;
    }
    /* microseconds may have leading zeros ("%06ld") */
    usec = 0;
    for (const char *c = dot + 1; c < p + len; c++) {
        if (*c < '0' || *c > '9') {
            perr(ps, "malformed TIME record");
            return;
        }
        usec = usec * 10 + (*c - '0');
    }
    ps->q->arrival_sec = sec;
    ps->q->arrival_usec = (long)usec;
}

/* check_notify - NOTIFY record: decimal QNOTIFY_* mask */
static bool check_notify(struct parse *ps, const char *p, size_t len, unsigned *out)
{
    long long v;

    if (!parse_decimal(p, len, 2, &v) || v < 1 || v > NOTIFY_ALL) {
        perr(ps, "NOTIFY value out of range");
        return false;
    }
    if ((v & QNOTIFY_NEVER) && v != QNOTIFY_NEVER) {
        perr(ps, "NOTIFY combines NEVER with other conditions");
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* Envelope state carried between records. */
struct envstate {
    bool seen_time;
    bool seen_sender;
    char *orcpt;        /* pending for the next recipient */
    bool have_notify;
    unsigned notify;
    off_t env_bytes;
};

/* add_attr - store a "name=value" attribute */
static void add_attr(struct parse *ps, const char *p, size_t len)
{
    const char *eq = memchr(p, '=', len);
    struct qfile *q = ps->q;

    if (eq == NULL || eq == p) {
        perr(ps, "ATTR record is not name=value");
        return;
    }
    if (q->nattrs >= QFILE_ATTR_MAX) {
        perr(ps, "more than %d ATTR records", QFILE_ATTR_MAX);
        return;
    }
    q->attrs = xreallocarray(q->attrs, q->nattrs + 1, sizeof(*q->attrs));
    q->attrs[q->nattrs].name = xstrndup(p, (size_t)(eq - p));
    q->attrs[q->nattrs].value = xstrndup(eq + 1, len - (size_t)(eq - p) - 1);
    q->nattrs++;
}

/* add_rcpt - store a recipient with its pending ORCPT/NOTIFY */
static void add_rcpt(struct parse *ps, struct envstate *es, int type, const char *p,
                     size_t len)
{
    struct qfile *q = ps->q;
    struct qrcpt *r;

    if (len == 0) {
        perr(ps, "empty recipient address");
        return;
    }
    if (q->nrcpts >= QFILE_RCPT_MAX) {
        perr(ps, "more than %d recipients", QFILE_RCPT_MAX);
        return;
    }
    if ((q->nrcpts & (q->nrcpts - 1)) == 0)   /* grow at powers of two */
        q->rcpts = xreallocarray(q->rcpts, q->nrcpts ? q->nrcpts * 2 : 1, sizeof(*q->rcpts));
    r = &q->rcpts[q->nrcpts++];
    r->addr = xstrndup(p, len);
    r->orcpt = es->orcpt;
    r->notify = es->have_notify ? es->notify : 0;
    r->done = type == QREC_DONE;
    r->offset = ps->at;
    es->orcpt = NULL;
    es->have_notify = false;
}

/* envelope_record - check one record between SIZE and MESSAGE */
static void envelope_record(struct parse *ps, struct envstate *es, int type, const char *p,
                            size_t len)
{
    struct qfile *q = ps->q;

    if (es->orcpt && type != QREC_NOTIFY && type != QREC_RCPT && type != QREC_DONE) {
        perr(ps, "ORCPT record not directly followed by a recipient (found %s)",
             rec_name(type));
        return;
    }
    if (es->have_notify && type != QREC_RCPT && type != QREC_DONE) {
        perr(ps, "NOTIFY record not directly followed by a recipient (found %s)",
             rec_name(type));
        return;
    }
    if (type != QREC_MESSAGE && memchr(p, 0, len)) {
        perr(ps, "NUL byte in %s record", rec_name(type));
        return;
    }
    switch (type) {
    case QREC_TIME:
        if (es->seen_time)
            perr(ps, "second TIME record");
        else
            check_time(ps, p, len);
        es->seen_time = true;
        break;
    case QREC_ATTR:
        add_attr(ps, p, len);
        break;
    case QREC_SENDER:
        if (es->seen_sender)
            perr(ps, "second SENDER record");
        else if (!es->seen_time)
            perr(ps, "SENDER record before TIME record");
        else
            q->sender = xstrndup(p, len);
        es->seen_sender = true;
        break;
    case QREC_ORCPT:
    case QREC_NOTIFY:
    case QREC_RCPT:
    case QREC_DONE:
        if (!es->seen_sender) {
            perr(ps, "%s record before SENDER record", rec_name(type));
        } else if (type == QREC_ORCPT) {
            const char *semi = memchr(p, ';', len);

            if (es->orcpt)
                perr(ps, "second ORCPT record for one recipient");
            else if (es->have_notify)
                perr(ps, "ORCPT record after NOTIFY record");
            else if (semi == NULL || semi == p)
                perr(ps, "ORCPT record is not addr-type;address");
            else
                es->orcpt = xstrndup(p, len);
        } else if (type == QREC_NOTIFY) {
            if (es->have_notify)
                perr(ps, "second NOTIFY record for one recipient");
            else if (check_notify(ps, p, len, &es->notify))
                es->have_notify = true;
        } else {
            add_rcpt(ps, es, type, p, len);
        }
        break;
    default:
        perr(ps, "unexpected %s record in the envelope", rec_name(type));
        break;
    }
}

/* parse_file - walk and check every record */
static void parse_file(struct parse *ps)
{
    struct qfile *q = ps->q;
    struct envstate es = {0};
    long long size[3] = {0, 0, 0};
    uint64_t content_sum = 0;
    off_t off = 0, content_start = 0, size_at = 0;
    enum { P_VERSION, P_SIZE, P_ENVELOPE, P_CONTENT, P_DONE } state = P_VERSION;

    while (!ps->failed && state != P_DONE) {
        const unsigned char *h, *payload;
        size_t avail, len, hlen;
        const char *why;
        int type;

        ps->at = off;
        if (off >= q->file_size) {
            if (state == P_VERSION)
                perr(ps, "empty file");
            else if (state == P_CONTENT)
                perr(ps, "missing END record (file truncated?)");
            else
                perr(ps, "missing MESSAGE record (file truncated?)");
            break;
        }
        avail = (size_t)(q->file_size - off);
        if (avail > REC_HDR_MAX)
            avail = REC_HDR_MAX;
        h = rd_fetch(&ps->rd, off, avail, state == P_CONTENT ? RD_WANT_HEADER : RD_WANT_ENVELOPE);
        if (h == NULL) {
            psys(ps, "read");
            break;
        }
        if (rec_decode(h, avail, &type, &len, &hlen, &why) < 0) {
            if (avail >= 1 && rec_name(h[0]) == NULL)
                perr(ps, "%s 0x%02x", why, h[0]);
            else
                perr(ps, "%s", why);
            break;
        }
        if ((off_t)len > q->file_size - off - (off_t)hlen) {
            perr(ps, "%s record length %zu runs past the end of the file (size %lld)",
                 rec_name(type), len, (long long)q->file_size);
            break;
        }
        if (state == P_CONTENT) {
            if (type == QREC_CONTENT) {
                content_sum += len;
            } else if (type == QREC_END) {
                if (len != 0)
                    perr(ps, "END record with a payload");
                else if (off + (off_t)hlen != q->file_size)
                    perr(ps, "%lld trailing bytes after the END record",
                         (long long)(q->file_size - off - (off_t)hlen));
                state = P_DONE;
            } else {
                perr(ps, "unexpected %s record after MESSAGE", rec_name(type));
            }
            off += (off_t)(hlen + len);
            continue;
        }
        /* Envelope records are read whole: bound them first. */
        if (len > QFILE_ENV_REC_MAX) {
            perr(ps, "%s record of %zu bytes exceeds the limit of %d", rec_name(type), len,
                 QFILE_ENV_REC_MAX);
            break;
        }
        if (off + (off_t)(hlen + len) > QFILE_ENVELOPE_MAX) {
            perr(ps, "envelope exceeds %d bytes", QFILE_ENVELOPE_MAX);
            break;
        }
        h = rd_fetch(&ps->rd, off, hlen + len, RD_WANT_ENVELOPE);
        if (h == NULL) {
            psys(ps, "read");
            break;
        }
        payload = h + hlen;
        switch (state) {
        case P_VERSION:
            if (type != QREC_VERSION) {
                perr(ps, "first record is %s, not VERSION", rec_name(type));
            } else if (len != strlen(QFILE_VERSION)
                       || memcmp(payload, QFILE_VERSION, len) != 0) {
                perr(ps, "unsupported queue file version \"");
                show_text(&ps->err, payload, len);
                buf_putc(&ps->err, '"');
            }
            state = P_SIZE;
            break;
        case P_SIZE:
            size_at = off;
            if (type != QREC_SIZE)
                perr(ps, "second record is %s, not SIZE", rec_name(type));
            else
                check_size(ps, (const char *)payload, len, size);
            state = P_ENVELOPE;
            break;
        case P_ENVELOPE:
            if (type == QREC_MESSAGE) {
                if (len != 0)
                    perr(ps, "MESSAGE record with a payload");
                else if (es.orcpt || es.have_notify)
                    perr(ps, "%s record not directly followed by a recipient (found MESSAGE)",
                         es.orcpt ? "ORCPT" : "NOTIFY");
                else if (!es.seen_time)
                    perr(ps, "no TIME record before MESSAGE");
                else if (!es.seen_sender)
                    perr(ps, "no SENDER record before MESSAGE");
                content_start = off + (off_t)hlen;
                state = P_CONTENT;
            } else {
                envelope_record(ps, &es, type, (const char *)payload, len);
            }
            break;
        default:
            msg_panic("parse_file: bad state");
        }
        off += (off_t)(hlen + len);
    }
    free(es.orcpt);
    if (ps->failed)
        return;
    ps->at = size_at;
    q->content_offset = content_start;
    q->content_length = content_sum;
    if (size[0] != (long long)content_start)
        perr(ps, "SIZE record says content starts at %lld, but it starts at %lld", size[0],
             (long long)content_start);
    else if ((uint64_t)size[1] != content_sum)
        perr(ps, "SIZE record says %lld content bytes, but CONTENT records hold %llu",
             size[1], (unsigned long long)content_sum);
    else if ((size_t)size[2] != q->nrcpts)
        perr(ps, "SIZE record says %lld recipients, but there are %zu", size[2], q->nrcpts);
}

/* qfile_parse_fd - parse an open descriptor (takes ownership of fd) */
struct qfile *qfile_parse_fd(int fd, const char *qid, char **err)
{
    struct parse ps;
    struct stat st;
    struct qfile *q;

    memset(&ps, 0, sizeof(ps));
    if (err)
        *err = NULL;
    if (fstat(fd, &st) < 0) {
        int e = errno;

        if (err)
            *err = xasprintf("fstat: %s", strerror(e));
        close(fd);
        errno = e;
        return NULL;
    }
    q = xcalloc(1, sizeof(*q));
    q->fd = fd;
    q->qid = xstrdup(qid ? qid : "");
    q->file_size = st.st_size;
    ps.q = q;
    ps.rd.fd = fd;
    ps.rd.size = st.st_size;
    if (!S_ISREG(st.st_mode))
        perr(&ps, "not a regular file");
    else
        parse_file(&ps);
    free(ps.rd.buf);
    if (ps.failed) {
        int e = ps.sys_errno ? ps.sys_errno : EINVAL;

        if (err)
            *err = buf_steal(&ps.err);
        buf_free(&ps.err);
        qfile_close(q);
        errno = e;
        return NULL;
    }
    buf_free(&ps.err);
    return q;
}

/* qfile_open - open and parse dirfd/name */
struct qfile *qfile_open(int dirfd, const char *name, char **err)
{
    int fd;

    if (err)
        *err = NULL;
    if (name == NULL || *name == 0 || strchr(name, '/')) {
        if (err)
            *err = xstrdup("bad queue file name");
        errno = EINVAL;
        return NULL;
    }
    fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;

        if (err)
            *err = xasprintf("open %s: %s", name, strerror(e));
        errno = e;
        return NULL;
    }
    return qfile_parse_fd(fd, name, err);
}

/* qfile_attr - value of an attribute, or NULL */
const char *qfile_attr(const struct qfile *q, const char *name)
{
    for (size_t i = 0; i < q->nattrs; i++)
        if (strcmp(q->attrs[i].name, name) == 0)
            return q->attrs[i].value;
    return NULL;
}

/* qfile_content_begin - place c at the first message byte */
void qfile_content_begin(const struct qfile *q, struct qfile_cursor *c)
{
    c->off = q->content_offset;
    c->rec_left = 0;
    c->eof = false;
}

/* qfile_content_read - the next message bytes, record by record */
ssize_t qfile_content_read(const struct qfile *q, struct qfile_cursor *c, void *buf,
                           size_t max)
{
    size_t n;

    while (c->rec_left == 0) {
        unsigned char h[REC_HDR_MAX];
        size_t avail, len, hlen;
        const char *why;
        int type;

        if (c->eof)
            return 0;
        if (c->off >= q->file_size)
            goto corrupt;
        avail = (size_t)(q->file_size - c->off);
        if (avail > REC_HDR_MAX)
            avail = REC_HDR_MAX;
        if (pread_all(q->fd, h, avail, c->off) < 0)
            return -1;
        if (rec_decode(h, avail, &type, &len, &hlen, &why) < 0
            || (off_t)len > q->file_size - c->off - (off_t)hlen)
            goto corrupt;
        if (type == QREC_END) {
            c->eof = true;
            return 0;
        }
        if (type != QREC_CONTENT)
            goto corrupt;
        c->off += (off_t)hlen;
        c->rec_left = len;
    }
    n = max < c->rec_left ? max : c->rec_left;
    if (n == 0)
        return 0;
    if (pread_all(q->fd, buf, n, c->off) < 0)
        return -1;
    c->off += (off_t)n;
    c->rec_left -= n;
    return (ssize_t)n;
corrupt:
    errno = EINVAL;
    return -1;
}

/* qfile_read_content - append all message bytes to out; 0 or -1 */
int qfile_read_content(struct qfile *q, struct buf *out)
{
    size_t start_len = out->len;
    struct qfile_cursor c;

    qfile_content_begin(q, &c);
    for (;;) {
        ssize_t n;

        if (c.rec_left == 0) {
            /* Step onto the next record so that its size is known. */
            char probe;

            n = qfile_content_read(q, &c, &probe, 0);
            if (n < 0)
                goto fail;
            if (c.eof)
                return 0;
            if (c.rec_left == 0)
                continue;
        }
        if (buf_reserve(out, c.rec_left) < 0) {
            errno = EFBIG;
            goto fail;
        }
        n = qfile_content_read(q, &c, out->data + out->len, c.rec_left);
        if (n < 0)
            goto fail;
        out->len += (size_t)n;
        out->data[out->len] = 0;
    }
fail:
    {
        int e = errno;

        if (out->len > start_len)
            buf_truncate(out, start_len);
        errno = e;
        return -1;
    }
}

/* mark_done - write recipient i's done mark; fdatasync it when sync */
static int mark_done(struct qfile *q, size_t i, bool sync)
{
    static const char done = QREC_DONE;

    if (i >= q->nrcpts) {
        errno = EINVAL;
        return -1;
    }
    if (q->rcpts[i].done)
        return 0;
    if (qfw_pwrite_all(q->fd, &done, 1, q->rcpts[i].offset) < 0)
        return -1;
    if (sync && fdatasync(q->fd) < 0)
        return -1;
    q->rcpts[i].done = true;
    return 0;
}

/* qfile_mark_done - mark recipient i finished (in place) and fdatasync */
int qfile_mark_done(struct qfile *q, size_t i)
{
    return mark_done(q, i, true);
}

/* qfile_mark_done_nosync - mark recipient i finished, without fdatasync */
int qfile_mark_done_nosync(struct qfile *q, size_t i)
{
    return mark_done(q, i, false);
}

/* qfile_close - close and free */
void qfile_close(struct qfile *q)
{
    if (q == NULL)
        return;
    if (q->fd >= 0)
        close(q->fd);
    free(q->qid);
    free(q->sender);
    for (size_t i = 0; i < q->nattrs; i++) {
        free(q->attrs[i].name);
        free(q->attrs[i].value);
    }
    free(q->attrs);
    for (size_t i = 0; i < q->nrcpts; i++) {
        free(q->rcpts[i].addr);
        free(q->rcpts[i].orcpt);
    }
    free(q->rcpts);
    free(q);
}
