/*
 * cmd_cat.c - "posta cat": show the envelope and content of a queue file (postcat)
 *
 *   posta cat [-behq] [file ... | queue_id ...]
 *
 * The sections, as postcat prints them (the markers only when the
 * envelope is shown):
 *   *** ENVELOPE RECORDS LABEL ***
 *   message_size:   CONTENT-LENGTH  CONTENT-OFFSET  RECIPIENTS
 *   message_arrival_time: Sun Nov 22 21:05:22 2026
 *   named_attribute: NAME=VALUE          (client_name, helo_name, ...)
 *   sender: ADDRESS                      (empty for the null sender)
 *   dsn_orig_rcpt: TYPE;ADDRESS          (DSN ORCPT, before its recipient)
 *   dsn_notify: MASK                     (DSN NOTIFY bits, before its recipient)
 *   recipient: ADDRESS                   (done_recipient: when delivered)
 *   *** MESSAGE CONTENTS LABEL ***
 *   the message: header lines, the empty line, the body
 *   *** HEADER EXTRACTED LABEL ***       (posta extracts nothing: empty)
 *   *** MESSAGE FILE END LABEL ***
 * LABEL is "QUEUE/ID" with -q, else the file name. -e shows the envelope,
 * -h the header (from the start of the message up to, not including, the
 * first line that is not a header line), -b the body (from that line to
 * the end); default -beh. -bh shows just the message.
 *
 * DIAGNOSTICS
 *   A missing or corrupt file: "posta cat: fatal: LABEL: REASON" (the
 *   reader's reason, e.g. "offset 57: record type 'Z' is unknown") and
 *   exit status 1, after the other files have been shown.
 * SECURITY
 *   Opens files read-only; -q accepts only valid queue IDs (plain file
 *   names) and does not follow symbolic links in the queue.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd_cat.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define EXIT_CAT_OK 0
#define EXIT_CAT_ERROR 1
#define EXIT_CAT_USAGE 2

#define CAT_PROG "posta cat"
#define CAT_CHUNK 65536
#define CAT_LINE_MAX ((size_t)16 << 20)   /* one header line, buffered */
#define CAT_TIME_MAX 64

enum { SHOW_ENV = 1, SHOW_HEADER = 2, SHOW_BODY = 4 };

/* Where -q looks, in this order. */
static const char *const cat_queues[] = {"incoming", "active", "deferred", "hold", "maildrop",
                                         "corrupt"};

/* usage - the option summary; exit status 2 */
static int usage(void)
{
    fprintf(stderr, "usage: posta [-c config_dir] cat [-behq] [file ... | queue_id ...]\n"
                    "  -e  show the envelope    -h  show the header    -b  show the body\n"
                    "  -q  the arguments are queue IDs: look in the queue directories\n");
    return EXIT_CAT_USAGE;
}

/* show_envelope - the envelope records */
static void show_envelope(const struct qfile *q)
{
    char when[CAT_TIME_MAX];
    time_t t = (time_t)q->arrival_sec;
    struct tm tm;

    printf("message_size: %15llu %15lld %15zu\n", (unsigned long long)q->content_length,
           (long long)q->content_offset, q->nrcpts);
    if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        snprintf(when, sizeof(when), "%lld", q->arrival_sec);
    printf("message_arrival_time: %s\n", when);
    for (size_t i = 0; i < q->nattrs; i++)
        printf("named_attribute: %s=%s\n", q->attrs[i].name, q->attrs[i].value);
    printf("sender: %s\n", q->sender);
    for (size_t i = 0; i < q->nrcpts; i++) {
        const struct qrcpt *r = &q->rcpts[i];

        if (r->orcpt)
            printf("dsn_orig_rcpt: %s\n", r->orcpt);
        if (r->notify)
            printf("dsn_notify: %u\n", r->notify);
        printf("%s: %s\n", r->done ? "done_recipient" : "recipient", r->addr);
    }
}

/* is_header_line - a header field line, or the continuation of one */
static bool is_header_line(const char *line, size_t len, bool after_header)
{
    size_t i;

    if (len > 0 && (line[0] == ' ' || line[0] == '\t'))
        return after_header;
    for (i = 0; i < len && line[i] != ':'; i++) {
        unsigned char c = (unsigned char)line[i];

        if (c <= ' ' || c > '~')
            return false;
    }
    return i > 0 && i < len;
}

/* Where the content stream is: header lines are judged whole. */
struct splitter {
    int show;
    bool in_header;
    bool seen_header;
    struct buf line;
};

/* emit - print bytes */
static void emit(const char *p, size_t n)
{
    if (n)
        fwrite(p, 1, n, stdout);
}

/* end_header_line - judge one complete (or final) header-part line */
static void end_header_line(struct splitter *sp)
{
    const char *l = buf_str(&sp->line);
    size_t n = sp->line.len;
    size_t textlen = n > 0 && l[n - 1] == '\n' ? n - 1 : n;

    if (sp->in_header && is_header_line(l, textlen, sp->seen_header)) {
        sp->seen_header = true;
        if (sp->show & SHOW_HEADER)
            emit(l, n);
    } else {
        sp->in_header = false;
        if (sp->show & SHOW_BODY)
            emit(l, n);
    }
    buf_reset(&sp->line);
}

/* feed - content bytes through the header/body split */
static bool feed(struct splitter *sp, const char *p, size_t n)
{
    while (n > 0 && sp->in_header) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) + 1 : n;

        if (buf_append(&sp->line, p, take) < 0)
            return false;
        p += take;
        n -= take;
        if (nl)
            end_header_line(sp);
    }
    if (n > 0 && (sp->show & SHOW_BODY))
        emit(p, n);
    return true;
}

/* show_content - the message bytes, split into header and body as asked */
static bool show_content(const struct qfile *q, int show, char **err)
{
    struct splitter sp = {show, true, false, BUF_INIT};
    struct qfile_cursor cur;
    char *chunk = xmalloc(CAT_CHUNK);
    ssize_t n;
    bool ok = true;

    buf_init(&sp.line, CAT_LINE_MAX);
    qfile_content_begin(q, &cur);
    while ((n = qfile_content_read(q, &cur, chunk, CAT_CHUNK)) > 0) {
        if (!feed(&sp, chunk, (size_t)n)) {
            *err = xasprintf("a header line longer than %zu bytes", CAT_LINE_MAX);
            ok = false;
            break;
        }
        if (!sp.in_header && !(show & SHOW_BODY))
            break;
    }
    if (ok && n < 0) {
        *err = xasprintf("read content: %s", strerror(errno));
        ok = false;
    }
    if (ok && sp.line.len > 0)
        end_header_line(&sp);
    buf_free(&sp.line);
    free(chunk);
    return ok;
}

/* cat_one - show one parsed file; false after a message */
static bool cat_one(struct qfile *q, const char *label, int show)
{
    char *err = NULL;
    bool ok = true;

    if (show & SHOW_ENV) {
        printf("*** ENVELOPE RECORDS %s ***\n", label);
        show_envelope(q);
    }
    if (show & (SHOW_HEADER | SHOW_BODY)) {
        if (show & SHOW_ENV)
            printf("*** MESSAGE CONTENTS %s ***\n", label);
        ok = show_content(q, show, &err);
    }
    if (ok && (show & SHOW_ENV)) {
        printf("*** HEADER EXTRACTED %s ***\n", label);
        printf("*** MESSAGE FILE END %s ***\n", label);
    }
    fflush(stdout);
    if (!ok) {
        fprintf(stderr, "%s: fatal: %s: %s\n", CAT_PROG, label, err);
        free(err);
    }
    return ok;
}

/* cat_fd - parse fd (taken over) and show it; false after a message */
static bool cat_fd(int fd, const char *name, const char *label, int show)
{
    char *err = NULL;
    struct qfile *q = qfile_parse_fd(fd, name, &err);
    bool ok;

    if (q == NULL) {
        fflush(stdout);
        fprintf(stderr, "%s: fatal: %s: %s\n", CAT_PROG, label,
                err ? err : "cannot read the queue file");
        free(err);
        return false;
    }
    ok = cat_one(q, label, show);
    qfile_close(q);
    return ok;
}

/* cat_queue_id - -q: find the ID in the queue directories */
static bool cat_queue_id(struct cfg *cfg, const char *id, int show)
{
    const char *top = cfg_str(cfg, "queue_directory");
    int topfd;

    if (!qid_valid(id)) {
        fprintf(stderr, "%s: fatal: invalid queue ID: \"%s\"\n", CAT_PROG, id);
        return false;
    }
    if ((topfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "%s: fatal: open queue directory %s: %s\n", CAT_PROG, top,
                strerror(errno));
        return false;
    }
    for (size_t i = 0; i < POSTA_ARRAY_LEN(cat_queues); i++) {
        char *rel = xasprintf("%s/%s", cat_queues[i], id);
        int fd = openat(topfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        bool ok;

        if (fd < 0) {
            int e = errno;

            free(rel);
            if (e == ENOENT || e == ENOTDIR)
                continue;
            fprintf(stderr, "%s: fatal: open %s/%s/%s: %s\n", CAT_PROG, top, cat_queues[i], id,
                    strerror(e));
            close(topfd);
            return false;
        }
        close(topfd);
        ok = cat_fd(fd, id, rel, show);
        free(rel);
        return ok;
    }
    close(topfd);
    fprintf(stderr, "%s: fatal: %s: no such message in the queue\n", CAT_PROG, id);
    return false;
}

/* cat_path - a file named on the command line */
static bool cat_path(const char *path, int show)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const char *slash = strrchr(path, '/');

    if (fd < 0) {
        fprintf(stderr, "%s: fatal: open %s: %s\n", CAT_PROG, path, strerror(errno));
        return false;
    }
    return cat_fd(fd, slash ? slash + 1 : path, path, show);
}

/* cmd_cat - "posta cat" */
int cmd_cat(int argc, char **argv, struct cfg *cfg)
{
    bool by_id = false, ok = true;
    int show = 0, c;
    struct stat st;

    optind = 0;
    opterr = 0;
    while ((c = getopt(argc, argv, "+behqv")) != -1) {
        switch (c) {
        case 'b':
            show |= SHOW_BODY;
            break;
        case 'e':
            show |= SHOW_ENV;
            break;
        case 'h':
            show |= SHOW_HEADER;
            break;
        case 'q':
            by_id = true;
            break;
        case 'v':
            break;
        default:
            return usage();
        }
    }
    if (show == 0)
        show = SHOW_ENV | SHOW_HEADER | SHOW_BODY;
    argc -= optind;
    argv += optind;
    if (argc == 0) {
        int fd;

        /* postcat reads standard input: it must be a file (we seek) */
        if (by_id || fstat(STDIN_FILENO, &st) < 0 || !S_ISREG(st.st_mode))
            return usage();
        if ((fd = dup(STDIN_FILENO)) < 0) {
            fprintf(stderr, "%s: fatal: dup: %s\n", CAT_PROG, strerror(errno));
            return EXIT_CAT_ERROR;
        }
        return cat_fd(fd, "stdin", "stdin", show) ? EXIT_CAT_OK : EXIT_CAT_ERROR;
    }
    for (int i = 0; i < argc; i++)
        ok &= by_id ? cat_queue_id(cfg, argv[i], show) : cat_path(argv[i], show);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: fatal: output write error: %s\n", CAT_PROG, strerror(errno));
        return EXIT_CAT_ERROR;
    }
    return ok ? EXIT_CAT_OK : EXIT_CAT_ERROR;
}
