/*
 * cmd_queue.c - "posta queue -p|-j": the mail queue listing (mailq)
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
 * first. Delivery delay reasons are not shown yet (there is no defer log).
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
#include <sys/stat.h>
#include <time.h>

#include "cmd_queue.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/qid.h"
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
    unsigned long count;
    unsigned long long bytes;   /* queue file sizes, for the summary */
    int status;
};

/* usage - the option summary; exit status 2 */
static int usage(const char *cmd)
{
    fprintf(stderr, "usage: posta %s [-p | -j]\n"
                    "  -p  list the mail queue (default)\n"
                    "  -j  list the mail queue as JSON, one object per message\n",
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

/* show_list - one message in postqueue -p form */
static void show_list(struct listing *l, const struct queue_dir *qd, struct qfile *q)
{
    char id[QID_MAX + 2], size[32], when[64];
    struct buf b = BUF_INIT;

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
    for (size_t i = 0; i < q->nrcpts; i++)
        if (!q->rcpts[i].done)
            printf(LINE_FORMAT, COL_ID, "", COL_SIZE, "", COL_TIME, "",
                   printable(&b, q->rcpts[i].addr));
    buf_free(&b);
}

/* show_json - one message as a postqueue -j object */
static void show_json(const struct queue_dir *qd, struct qfile *q)
{
    struct buf b = BUF_INIT;
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
    for (size_t i = 0; i < q->nrcpts; i++) {
        if (q->rcpts[i].done)
            continue;
        buf_puts(&b, first ? "{\"address\": " : ", {\"address\": ");
        json_string(&b, q->rcpts[i].addr);
        buf_putc(&b, '}');
        first = false;
    }
    buf_puts(&b, "]}\n");
    fwrite(b.data, 1, b.len, stdout);
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
                    show_json(qd, q);
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

/* cmd_queue - "posta queue [-p | -j]" */
int cmd_queue(int argc, char **argv, struct cfg *cfg)
{
    const char *cmd = argc > 0 && argv[0] ? argv[0] : "queue";
    struct listing l = {MODE_LIST, 0, 0, EXIT_QUEUE_OK};
    const char *top;
    int topfd;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0)
            l.mode = MODE_LIST;
        else if (strcmp(argv[i], "-j") == 0)
            l.mode = MODE_JSON;
        else
            return usage(cmd);
    }
    top = cfg_str(cfg, "queue_directory");
    topfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (topfd < 0) {
        msg_warn("open queue directory %s: %m", top);
        return EXIT_QUEUE_ERROR;
    }
    for (size_t i = 0; i < POSTA_ARRAY_LEN(queue_dirs); i++)
        scan_queue(&l, topfd, top, &queue_dirs[i]);
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
