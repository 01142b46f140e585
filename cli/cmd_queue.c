/*
 * cmd_queue.c - "posta queue": the mail queue listing (mailq), postqueue
 *
 * -p and -j list the queue (below). -f asks the queue manager to retry
 * every deferred message (as "posta flush"); -s SITE makes the deferred
 * messages with a pending recipient in domain SITE due now, -i ID one
 * deferred message: their files' mtime (the next retry time, see
 * docs/QUEUE.md) is set to now and the queue manager is woken ('W'
 * trigger: it then moves every due deferred message to active/). A
 * message in incoming/ or active/ is already being worked on (-i only
 * wakes the queue manager); one on hold stays on hold (an error).
 *
 * Reads the queue files of incoming/, active/, deferred/ and hold/
 * directly and prints them the way Postfix's postqueue prints its long
 * queue IDs: with -p (the default) a header line, then per message
 *     QUEUEID[*!]  SIZE  ARRIVAL-TIME  SENDER
 * ('*' active, '!' on hold) and each pending recipient indented under the
 * sender, a blank line between messages, and "-- N Kbytes in M Requests."
 * (N from the queue file sizes) or "Mail queue is empty"; with -j one JSON
 * object per message and line with postqueue's field names. Files still
 * being written (mode 0600, see mail/qfile.h) are skipped, as are names
 * that are not queue IDs; within a queue, messages are listed oldest
 * first.
 *
 * Why a recipient waits comes from qmgr's defer log, defer/QUEUEID, lines
 * "recipient<TAB>dsn<TAB>reason" appended per attempt (the last line for a
 * recipient is its current reason). As postqueue: -p prints each distinct
 * reason once, "(reason)" right-aligned in 76 columns (or flush left when
 * longer), followed by the recipients it applies to, recipients without a
 * reason last (after "(reason unavailable)" when others had one); -j adds
 * "delay_reason" to the recipients that have one. Only the last
 * DEFER_READ_MAX bytes of a log are read; a missing, unreadable or
 * malformed log just means no reasons.
 *
 * DIAGNOSTICS
 *   A corrupt queue file is reported on stderr and skipped. A queue
 *   directory that cannot be read, or an output error, makes the exit
 *   status 1; bad options print the usage and exit 2.
 * SECURITY
 *   Runs with the invoking user's rights: whoever can read the spool can
 *   list it. Addresses are printed with control characters replaced.
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd_queue.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/trigger.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define EXIT_QUEUE_OK 0
#define EXIT_QUEUE_ERROR 1
#define EXIT_QUEUE_USAGE 2

#define COL_ID 17             /* postqueue's layout for long queue IDs */
#define COL_SIZE 8
#define COL_TIME 19
#define LINE_FORMAT "%-*s %*s %-*s %s\n"
#define EMPTY_SENDER "MAILER-DAEMON"
#define KBYTE 1024
#define JSON_CONTROL_MAX 0x1f
#define DEFER_DIR "defer"
#define DEFER_READ_MAX ((size_t)1 << 20) /* of a defer log's tail */
#define DEFER_CHUNK 8192
#define REASON_WIDTH 76        /* postqueue right-aligns "(reason)" to this */
#define REASON_UNAVAILABLE "reason unavailable"

enum queue_mode { MODE_LIST, MODE_JSON };

struct queue_dir {
    const char *name;
    char status;        /* after the ID in the -p listing */
};

static const struct queue_dir queue_dirs[] = {
    {"incoming", ' '},
    {"active", '*'},
    {"deferred", ' '},
    {"hold", '!'},
};

struct listing {
    enum queue_mode mode;
    int deferfd;                /* $queue_directory/defer, or -1 */
    unsigned long count;
    unsigned long long bytes;   /* queue file sizes, for the summary */
    int status;
};

/* usage - the option summary; exit status 2 */
static int usage(const char *cmd)
{
    fprintf(stderr, "usage: posta %s [-p | -j | -f | -s site | -i queue_id]\n"
                    "  -p       list the mail queue (default)\n"
                    "  -j       list the mail queue as JSON, one object per message\n"
                    "  -f       retry all deferred mail now\n"
                    "  -s site  retry deferred mail for recipients in domain site now\n"
                    "  -i id    retry the deferred message id now\n",
            cmd);
    return EXIT_QUEUE_USAGE;
}

/* printable - address text with control characters replaced by '?' */
static const char *printable(struct buf *b, const char *s)
{
    buf_reset(b);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        buf_putc(b, c < ' ' || c == 0x7f ? '?' : c);
    }
    return buf_str(b);
}

/* json_string - s as a JSON string literal */
static void json_string(struct buf *out, const char *s)
{
    buf_putc(out, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            buf_printf(out, "\\%c", c);
        else if (c <= JSON_CONTROL_MAX || c == 0x7f)
            buf_printf(out, "\\u%04X", c);
        else
            buf_putc(out, c);
    }
    buf_putc(out, '"');
}

/* arrival_text - asctime-style arrival time without the year */
static void arrival_text(long long sec, char *out, size_t len)
{
    time_t t = (time_t)sec;
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(out, len, "%a %b %e %H:%M:%S", &tm) == 0)
        snprintf(out, len, "??");
}

/* defer_entry - one parsed defer log line (pointers into the log text) */
struct defer_entry {
    const char *addr;
    const char *reason;
    size_t line;        /* position in the log: later lines win */
};

/* delay_reasons - the current reason of each recipient of one message */
struct delay_reasons {
    struct buf text;            /* the defer log tail, split in place */
    const char **reason;        /* per recipient of the qfile, or NULL */
};

/* defer_entry_cmp - qsort/bsearch: by address, then by log position */
static int defer_entry_cmp(const void *a, const void *b)
{
    const struct defer_entry *x = a, *y = b;
    int c = strcmp(x->addr, y->addr);

    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* defer_addr_cmp - bsearch: key address against an entry */
static int defer_addr_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct defer_entry *)elem)->addr);
}

/* defer_read_tail - the last DEFER_READ_MAX bytes of defer/QID; -1 if none */
static int defer_read_tail(int deferfd, const char *qid, struct buf *text)
{
    char chunk[DEFER_CHUNK];
    struct stat st;
    ssize_t n;
    int fd;

    if (deferfd < 0)
        return -1;
    fd = openat(deferfd, qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    /* the current reasons are at the end: skip what is older */
    if ((unsigned long long)st.st_size > DEFER_READ_MAX
        && lseek(fd, st.st_size - (off_t)DEFER_READ_MAX, SEEK_SET) < 0) {
        close(fd);
        return -1;
    }
    buf_init(text, DEFER_READ_MAX);
    while (text->len < DEFER_READ_MAX) {
        size_t want = DEFER_READ_MAX - text->len;

        n = read(fd, chunk, want < sizeof(chunk) ? want : sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || buf_append(text, chunk, (size_t)n) < 0)
            break;
    }
    close(fd);
    if ((unsigned long long)st.st_size > DEFER_READ_MAX) {
        /* began mid-line: drop that partial first line */
        const char *nl = memchr(text->data ? text->data : "", '\n', text->len);

        buf_consume(text, nl ? (size_t)(nl - text->data) + 1 : text->len);
    }
    return 0;
}

/* delay_reasons_load - match q's pending recipients with their last reason */
static void delay_reasons_load(struct delay_reasons *dr, int deferfd, const struct qfile *q)
{
    struct defer_entry *ent = NULL;
    size_t nent = 0, cap = 0;
    char *line, *next;

    dr->text = (struct buf)BUF_INIT;
    dr->reason = xcalloc(q->nrcpts ? q->nrcpts : 1, sizeof(*dr->reason));
    if (q->nrcpts == 0 || defer_read_tail(deferfd, q->qid, &dr->text) < 0
        || dr->text.len == 0)
        return;
    for (line = dr->text.data; line < dr->text.data + dr->text.len; line = next) {
        char *end = memchr(line, '\n', (size_t)(dr->text.data + dr->text.len - line));
        char *dsn, *reason;

        if (end == NULL)
            break;      /* a torn last line, being written right now */
        *end = 0;
        next = end + 1;
        if (strlen(line) != (size_t)(end - line))
            continue;   /* a NUL inside: not a line qmgr wrote */
        if ((dsn = strchr(line, '\t')) == NULL || (reason = strchr(dsn + 1, '\t')) == NULL)
            continue;
        *dsn = 0;
        reason++;
        if (*reason == 0)
            continue;
        if (nent == cap) {
            cap = cap ? 2 * cap : 16;
            ent = xreallocarray(ent, cap, sizeof(*ent));
        }
        ent[nent].addr = line;
        ent[nent].reason = reason;
        ent[nent].line = nent;
        nent++;
    }
    if (nent > 1)
        qsort(ent, nent, sizeof(*ent), defer_entry_cmp);
    for (size_t i = 0; i < q->nrcpts; i++) {
        const struct defer_entry *e;
        size_t k;

        if (q->rcpts[i].done || nent == 0)
            continue;
        e = bsearch(q->rcpts[i].addr, ent, nent, sizeof(*ent), defer_addr_cmp);
        if (e == NULL)
            continue;
        /* the last line for this address: step past equal addresses */
        for (k = (size_t)(e - ent); k + 1 < nent && strcmp(ent[k + 1].addr, e->addr) == 0; k++)
            ;
        dr->reason[i] = ent[k].reason;
    }
    free(ent);
}

/* delay_reasons_free - release what delay_reasons_load built */
static void delay_reasons_free(struct delay_reasons *dr)
{
    buf_free(&dr->text);
    free(dr->reason);
    dr->reason = NULL;
}

/* show_reason - a "(reason)" line, right-aligned as postqueue does */
static void show_reason(struct buf *b, const char *reason)
{
    const char *text = printable(b, reason);
    size_t len = strlen(text);
    int pad = len < REASON_WIDTH ? REASON_WIDTH - (int)len : 0;

    printf("%*s(%s)\n", pad, "", text);
}

/* show_list - one message in postqueue -p form */
static void show_list(struct listing *l, const struct queue_dir *qd, struct qfile *q)
{
    char id[QID_MAX + 2], size[32], when[64];
    struct buf b = BUF_INIT;
    struct delay_reasons dr;
    bool *shown;
    bool any_reason = false;

    if (l->count == 0)
        printf(LINE_FORMAT, COL_ID, "----Queue ID-----", COL_SIZE, "--Size--", COL_TIME,
               "---Arrival Time----", "--Sender/Recipient------");
    else
        putchar('\n');
    snprintf(id, sizeof(id), "%s%c", q->qid, qd->status);
    snprintf(size, sizeof(size), "%llu", (unsigned long long)q->content_length);
    arrival_text(q->arrival_sec, when, sizeof(when));
    printf(LINE_FORMAT, COL_ID, id, COL_SIZE, size, COL_TIME, when,
           *q->sender ? printable(&b, q->sender) : EMPTY_SENDER);
    delay_reasons_load(&dr, l->deferfd, q);
    shown = xcalloc(q->nrcpts ? q->nrcpts : 1, sizeof(*shown));
    /* each distinct reason once, then the recipients it applies to */
    for (size_t i = 0; i < q->nrcpts; i++) {
        if (q->rcpts[i].done || shown[i] || dr.reason[i] == NULL)
            continue;
        show_reason(&b, dr.reason[i]);
        any_reason = true;
        for (size_t j = i; j < q->nrcpts; j++) {
            if (q->rcpts[j].done || shown[j] || dr.reason[j] == NULL
                || strcmp(dr.reason[j], dr.reason[i]) != 0)
                continue;
            printf(LINE_FORMAT, COL_ID, "", COL_SIZE, "", COL_TIME, "",
                   printable(&b, q->rcpts[j].addr));
            shown[j] = true;
        }
    }
    /* then those without one */
    for (size_t i = 0; i < q->nrcpts; i++) {
        if (q->rcpts[i].done || shown[i])
            continue;
        if (any_reason) {
            show_reason(&b, REASON_UNAVAILABLE);
            any_reason = false;
        }
        printf(LINE_FORMAT, COL_ID, "", COL_SIZE, "", COL_TIME, "",
               printable(&b, q->rcpts[i].addr));
    }
    free(shown);
    delay_reasons_free(&dr);
    buf_free(&b);
}

/* show_json - one message as a postqueue -j object */
static void show_json(struct listing *l, const struct queue_dir *qd, struct qfile *q)
{
    struct buf b = BUF_INIT;
    struct delay_reasons dr;
    bool first = true;

    buf_puts(&b, "{\"queue_name\": ");
    json_string(&b, qd->name);
    buf_puts(&b, ", \"queue_id\": ");
    json_string(&b, q->qid);
    buf_printf(&b, ", \"arrival_time\": %lld, \"message_size\": %llu, \"forced_expire\": false",
               q->arrival_sec, (unsigned long long)q->content_length);
    buf_puts(&b, ", \"sender\": ");
    json_string(&b, q->sender);
    buf_puts(&b, ", \"recipients\": [");
    delay_reasons_load(&dr, l->deferfd, q);
    for (size_t i = 0; i < q->nrcpts; i++) {
        if (q->rcpts[i].done)
            continue;
        buf_puts(&b, first ? "{\"address\": " : ", {\"address\": ");
        json_string(&b, q->rcpts[i].addr);
        if (dr.reason[i] != NULL) {
            buf_puts(&b, ", \"delay_reason\": ");
            json_string(&b, dr.reason[i]);
        }
        buf_putc(&b, '}');
        first = false;
    }
    buf_puts(&b, "]}\n");
    fwrite(b.data, 1, b.len, stdout);
    delay_reasons_free(&dr);
    buf_free(&b);
}

/* name_cmp - qsort: oldest queue ID first */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* scan_queue - list the complete files of one queue directory */
static void scan_queue(struct listing *l, int topfd, const char *top, const struct queue_dir *qd)
{
    int dfd = openat(topfd, qd->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    DIR *d;

    if (dfd < 0) {
        if (errno != ENOENT) {
            msg_warn("open queue directory %s/%s: %m", top, qd->name);
            l->status = EXIT_QUEUE_ERROR;
        }
        return;
    }
    if ((d = fdopendir(dup(dfd))) == NULL) {
        msg_warn("read queue directory %s/%s: %m", top, qd->name);
        l->status = EXIT_QUEUE_ERROR;
        close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (!qid_valid(e->d_name))
            continue;
        names = xreallocarray(names, n + 1, sizeof(*names));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        struct qfile *q;
        char *err = NULL;

        /* complete files only: mode 0700, as Postfix marks them */
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)
            && (st.st_mode & S_IRWXU) == QFILE_MODE_DONE) {
            q = qfile_open(dfd, names[i], &err);
            if (q == NULL) {
                if (errno != ENOENT)   /* gone: delivered while we looked */
                    msg_warn("%s/%s/%s: %s", top, qd->name, names[i], err);
            } else {
                if (l->mode == MODE_JSON)
                    show_json(l, qd, q);
                else
                    show_list(l, qd, q);
                l->count++;
                l->bytes += (unsigned long long)st.st_size;
                qfile_close(q);
            }
            free(err);
        }
        free(names[i]);
    }
    free(names);
    close(dfd);
}

/* wake_qmgr - send a trigger; false after a message */
static bool wake_qmgr(struct cfg *cfg, char code)
{
    if (trigger_send_checked(cfg, TRIGGER_QMGR, code))
        return true;
    fprintf(stderr, "posta queue: cannot reach the queue manager at %s/%s: %s "
                    "(is the mail system running?)\n",
            cfg_str(cfg, "queue_directory"), TRIGGER_QMGR, strerror(errno));
    return false;
}

/* make_due - set dirfd/name's mtime (next retry) to now; false if gone */
static bool make_due(int dirfd, const char *name)
{
    if (utimensat(dirfd, name, NULL, AT_SYMLINK_NOFOLLOW) == 0)
        return true;
    if (errno != ENOENT)
        msg_warn("deferred/%s: set retry time: %m", name);
    return false;
}

/* rcpt_in_site - does q have a pending recipient in domain site? */
static bool rcpt_in_site(const struct qfile *q, const char *site)
{
    for (size_t i = 0; i < q->nrcpts; i++) {
        const char *at = strrchr(q->rcpts[i].addr, '@');

        if (!q->rcpts[i].done && at && strcasecmp(at + 1, site) == 0)
            return true;
    }
    return false;
}

/* flush_site - -s: make deferred mail for site due, wake qmgr */
static int flush_site(struct cfg *cfg, int topfd, const char *site)
{
    int dfd = openat(topfd, "deferred", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    unsigned long count = 0;
    struct dirent *e;
    DIR *d;

    if (*site == 0 || strpbrk(site, "@ \t/") != NULL) {
        fprintf(stderr, "posta queue: bad site name: \"%s\"\n", site);
        if (dfd >= 0)
            close(dfd);
        return EXIT_QUEUE_ERROR;
    }
    if (dfd < 0 || (d = fdopendir(dup(dfd))) == NULL) {
        msg_warn("open queue directory %s/deferred: %m", cfg_str(cfg, "queue_directory"));
        if (dfd >= 0)
            close(dfd);
        return EXIT_QUEUE_ERROR;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        struct qfile *q;
        char *err = NULL;

        if (!qid_valid(e->d_name) || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
            || !S_ISREG(st.st_mode) || (st.st_mode & S_IRWXU) != QFILE_MODE_DONE)
            continue;
        if ((q = qfile_open(dfd, e->d_name, &err)) == NULL) {
            if (errno != ENOENT)
                msg_warn("deferred/%s: %s", e->d_name, err);
            free(err);
            continue;
        }
        if (rcpt_in_site(q, site) && make_due(dfd, e->d_name))
            count++;
        qfile_close(q);
    }
    closedir(d);
    close(dfd);
    if (count > 0 && !wake_qmgr(cfg, TRIGGER_WAKEUP))
        return EXIT_QUEUE_ERROR;
    return EXIT_QUEUE_OK;
}

/* flush_id - -i: make one deferred message due now, wake qmgr */
static int flush_id(struct cfg *cfg, int topfd, const char *id)
{
    static const char *const busy[] = {"incoming", "active"};
    struct stat st;
    int dfd;

    if (!qid_valid(id)) {
        fprintf(stderr, "posta queue: bad queue ID: \"%s\"\n", id);
        return EXIT_QUEUE_ERROR;
    }
    dfd = openat(topfd, "deferred", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0 && make_due(dfd, id)) {
        close(dfd);
        return wake_qmgr(cfg, TRIGGER_WAKEUP) ? EXIT_QUEUE_OK : EXIT_QUEUE_ERROR;
    }
    if (dfd >= 0)
        close(dfd);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(busy); i++) {
        char *rel = xasprintf("%s/%s", busy[i], id);
        bool there = fstatat(topfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;

        free(rel);
        if (there)   /* already on its way: just make sure qmgr looks */
            return wake_qmgr(cfg, TRIGGER_SCAN) ? EXIT_QUEUE_OK : EXIT_QUEUE_ERROR;
    }
    {
        char *rel = xasprintf("hold/%s", id);
        bool held = fstatat(topfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;

        free(rel);
        if (held) {
            fprintf(stderr, "posta queue: %s: message is on hold "
                            "(release it with \"posta super -H %s\")\n", id, id);
            return EXIT_QUEUE_ERROR;
        }
    }
    fprintf(stderr, "posta queue: %s: no such message in the queue\n", id);
    return EXIT_QUEUE_ERROR;
}

/* cmd_queue - "posta queue [-p | -j | -f | -s site | -i id]" */
int cmd_queue(int argc, char **argv, struct cfg *cfg)
{
    const char *cmd = argc > 0 && argv[0] ? argv[0] : "queue";
    struct listing l = {MODE_LIST, -1, 0, 0, EXIT_QUEUE_OK};
    const char *top, *site = NULL, *id = NULL;
    bool flush = false;
    int topfd, actions = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0) {
            l.mode = MODE_LIST;
        } else if (strcmp(argv[i], "-j") == 0) {
            l.mode = MODE_JSON;
        } else if (strcmp(argv[i], "-f") == 0) {
            flush = true;
            actions++;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            site = argv[++i];
            actions++;
        } else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            id = argv[++i];
            actions++;
        } else {
            return usage(cmd);
        }
    }
    if (actions > 1)
        return usage(cmd);
    if (flush)
        return wake_qmgr(cfg, TRIGGER_FLUSH) ? EXIT_QUEUE_OK : EXIT_QUEUE_ERROR;
    top = cfg_str(cfg, "queue_directory");
    topfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (topfd < 0) {
        msg_warn("open queue directory %s: %m", top);
        return EXIT_QUEUE_ERROR;
    }
    if (site || id) {
        rc = site ? flush_site(cfg, topfd, site) : flush_id(cfg, topfd, id);
        close(topfd);
        return rc;
    }
    /* no defer logs (missing, or not ours to read): no reasons, no error */
    l.deferfd = openat(topfd, DEFER_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(queue_dirs); i++)
        scan_queue(&l, topfd, top, &queue_dirs[i]);
    if (l.deferfd >= 0)
        close(l.deferfd);
    close(topfd);
    if (l.mode == MODE_LIST) {
        if (l.count == 0)
            printf("Mail queue is empty\n");
        else
            printf("\n-- %llu Kbytes in %lu Request%s.\n", l.bytes / KBYTE, l.count,
                   l.count == 1 ? "" : "s");
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        msg_warn("output write error: %m");
        return EXIT_QUEUE_ERROR;
    }
    return l.status;
}
