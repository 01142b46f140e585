/*
 * pickup.c - move locally submitted mail from maildrop/ into the queue
 *
 * USAGE: started by master (see mail/server.h), as in master.cf
 *     pickup unix n - n 60 1 pickup
 * (socket public/pickup, one process, a wakeup every 60 seconds). A
 * connection to the socket (postdrop's trigger, master's wakeup) makes
 * pickup scan $queue_directory/maildrop; it also scans when it starts.
 *
 * For each file named by a queue ID, oldest first, pickup:
 *   - opens it without following links and checks it: a regular file
 *     with one link, complete (mode 0744 as postdrop leaves it), not
 *     larger than message_size_limit plus the envelope maximum;
 *   - parses it with the queue-file reader (every record checked) and
 *     checks what postdrop writes: ATTR uid (once, equal to the file's
 *     owner), full_name, rewrite only; no ORCPT, NOTIFY or DONE records;
 *     the sender and each recipient valid (addr_parse_path) once
 *     qualified with $myorigin;
 *   - cleans the header (mail/cleanup.h: Received:, missing From:, Date:,
 *     Message-ID:, bare addresses, -t recipients, Bcc: removed);
 *   - expands each recipient through virtual_alias_maps (mail/valias.h)
 *     and adds the BCC copies (mail/bcc.h), unless receive_override_options
 *     says no_address_mappings; a table failure leaves the maildrop file
 *     for the next scan;
 *   - applies header_checks and body_checks (mail/msgcheck.h), when
 *     configured, to the cleaned message: REJECT (and 5NN) bounces it to
 *     the sender as Postfix does for local submissions (a non-delivery
 *     notice for every recipient; the message is not queued), DISCARD
 *     drops it, HOLD queues it into hold/; a temporary refusal (4NN,
 *     DEFER, REJECT 4.x.x) and a table lookup failure leave the file in
 *     maildrop for the next scan, as Postfix never bounces those;
 *   - writes a new queue file into incoming/ (fresh queue ID), makes it
 *     durable (fdatasync, directory fsync), removes the maildrop file,
 *     and logs "QID: uid=UID from=<sender>" as Postfix's pickup does,
 *     then "QID: message-id=<...>" (Postfix's cleanup logs that line;
 *     log readers use it to follow a message).
 * After a scan that queued mail, qmgr is triggered ('A').
 *
 * A file that fails a check is moved to corrupt/ (kept for the
 * administrator, logged as a warning): the maildrop is written by
 * untrusted users, so pickup never guesses. A message larger than
 * message_size_limit (possible only when the limit was lowered after
 * submission: postdrop refuses larger ones) also goes to corrupt/. A
 * -t recipient with bad syntax is dropped with a warning; a message
 * without any valid recipient goes to corrupt/. Unfinished files
 * (tmp.QID) older than MAILDROP_STALE_SEC are removed.
 *
 * DIAGNOSTICS: warnings name the maildrop file and the reason. A write
 * error on incoming/ leaves the maildrop file in place for the next scan.
 * SECURITY: runs as mail_owner (unpriv column "-"); the directories are
 * opened once before privileges are dropped; every maildrop file is
 * treated as hostile input.
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mail/addr.h"
#include "mail/bcc.h"
#include "mail/bounce.h"
#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/msgcheck.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/server.h"
#include "mail/trigger.h"
#include "mail/valias.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "pickup_dkim.h"

#define MAILDROP_MODE_DONE 0744
#define MAILDROP_TMP_PREFIX "tmp."
#define MAILDROP_STALE_SEC (24 * 60 * 60)
#define TRIGGER_READ_MAX 64
#define USEC_DIGITS 6
#define MSGID_HEADER "message-id:"
#define MSGID_LOG_MAX 256  /* longest Message-ID value logged */

static struct cfg *pk_cfg;
static struct valias *pk_valias;     /* virtual_alias_maps */
static struct bcc *pk_bcc;           /* always_bcc, sender/recipient_bcc_maps */
static int maildrop_fd = -1, incoming_fd = -1, corrupt_fd = -1, hold_fd = -1;
static struct msgcheck_conf *checks;    /* NULL: no header/body checks */
static long long size_limit;
static size_t header_limit;

/* What header/body checks decided for one message. */
enum pk_fate {
    PK_QUEUE,       /* into incoming/ */
    PK_HOLD,        /* into hold/ */
    PK_GONE,        /* discarded, or bounced: remove the maildrop file */
    PK_RETRY,       /* leave the maildrop file for the next scan */
    PK_BAD,         /* the checked content could not be kept: to corrupt/ */
};

/* log_message_id - log the Message-ID header value of the cleaned message */
static void log_message_id(const char *qid, const struct buf *msg)
{
    const char *p = msg->data, *end;
    const size_t name_len = strlen(MSGID_HEADER);

    if (p == NULL)
        return;
    end = p + msg->len;
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((eol ? eol : end) - p);

        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            return; /* end of the header */
        if (n > name_len && strncasecmp(p, MSGID_HEADER, name_len) == 0) {
            const char *v = p + name_len;
            size_t vn = n - name_len;

            while (vn > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vn--;
            }
            if (vn > MSGID_LOG_MAX)
                vn = MSGID_LOG_MAX;
            if (vn > 0)
                msg_info("%s: message-id=%.*s", qid, (int)vn, v);
            return;
        }
        p = eol ? eol + 1 : NULL;
    }
}

/* open_dir - $queue_directory/name as a directory descriptor */
static int open_dir(struct cfg *cfg, const char *name)
{
    char *path = xasprintf("%s/%s", cfg_str(cfg, "queue_directory"), name);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        msg_fatal("open queue directory %s: %m", path);
    free(path);
    return fd;
}

/* to_corrupt - keep a bad maildrop file for the administrator */
static void to_corrupt(const char *name, const char *why)
{
    msg_warn("maildrop/%s: %s: moved to corrupt/", name, why);
    if (renameat(maildrop_fd, name, corrupt_fd, name) < 0) {
        msg_warn("maildrop/%s: rename to corrupt/: %m; removing it", name);
        if (unlinkat(maildrop_fd, name, 0) < 0)
            msg_warn("maildrop/%s: remove: %m", name);
    }
}

/* addr_valid - qualified address passes the SMTP path parser */
static bool addr_valid(const char *addr)
{
    struct addr a;
    size_t end, len = strlen(addr);
    bool ok = addr_parse_path(addr, len, ADDR_LAX | ADDR_UTF8, &a, &end, NULL) == ADDR_OK &&
              end == len;

    addr_free(&a);
    return ok;
}

/* str_cmp - qsort on strings */
static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parsed and checked maildrop envelope. */
struct drop {
    long long uid;
    const char *full_name;
    bool rewrite;
    char *sender;          /* qualified */
    char **rcpts;          /* qualified, sorted, unique */
    size_t nrcpts;
};

/* check_attrs - uid/full_name/rewrite only; NULL or the reason */
static const char *check_attrs(const struct qfile *q, const struct stat *st, struct drop *d)
{
    bool have_uid = false;

    for (size_t i = 0; i < q->nattrs; i++) {
        const struct qattr *a = &q->attrs[i];

        if (strcmp(a->name, "uid") == 0 && !have_uid) {
            char *end;
            errno = 0;
            d->uid = strtoll(a->value, &end, 10);
            if (errno || *end || end == a->value || d->uid < 0)
                return "bad uid attribute";
            have_uid = true;
        } else if (strcmp(a->name, "full_name") == 0 && d->full_name == NULL) {
            d->full_name = a->value;
        } else if (strcmp(a->name, "rewrite") == 0 && strcmp(a->value, "yes") == 0) {
            d->rewrite = true;
        } else {
            return "unexpected attribute";
        }
    }
    if (!have_uid)
        return "no uid attribute";
    if ((uid_t)d->uid != st->st_uid)
        return "uid attribute does not match the file owner";
    return NULL;
}

/* add_rcpt - append a qualified recipient */
static void add_rcpt(struct drop *d, const char *addr)
{
    d->rcpts = xreallocarray(d->rcpts, d->nrcpts + 1, sizeof(char *));
    d->rcpts[d->nrcpts++] = xstrdup(addr);
}

/* uniq_rcpts - sort and drop duplicates */
static void uniq_rcpts(struct drop *d)
{
    size_t out = 0;

    if (d->nrcpts == 0)
        return;
    qsort(d->rcpts, d->nrcpts, sizeof(char *), str_cmp);
    for (size_t i = 0; i < d->nrcpts; i++) {
        if (out > 0 && strcmp(d->rcpts[out - 1], d->rcpts[i]) == 0)
            free(d->rcpts[i]);
        else
            d->rcpts[out++] = d->rcpts[i];
    }
    d->nrcpts = out;
}

/* drop_free - release the envelope */
static void drop_free(struct drop *d)
{
    free(d->sender);
    for (size_t i = 0; i < d->nrcpts; i++)
        free(d->rcpts[i]);
    free(d->rcpts);
}

/*
 * write_recipients - each recipient through virtual_alias_maps, then the
 * BCC copies (NOTIFY=NEVER); false (logged) when a table failed: the
 * maildrop file stays for the next scan
 */
static bool write_recipients(struct qfile_writer *w, const struct drop *d, const char *qid)
{
    struct valias_list copies = {0};
    const char *why = "BCC table lookup failure";
    bool ok = bcc_message(pk_bcc, d->sender, &copies);

    for (size_t i = 0; ok && i < d->nrcpts; i++)
        ok = valias_write_rcpt(pk_valias, w, qid, d->rcpts[i], NULL, 0, &why) == VALIAS_OK
             && bcc_recipient(pk_bcc, d->rcpts[i], &copies);
    for (size_t i = 0; ok && i < copies.n; i++)
        ok = valias_write_rcpt(pk_valias, w, qid, copies.addr[i], NULL, QNOTIFY_NEVER, &why)
             == VALIAS_OK;
    valias_list_free(&copies);
    if (!ok)
        msg_warn("%s: %s: message left in maildrop for the next scan", qid, why);
    return ok;
}

/* write_queue_file - the cleaned message into dir/qid (incoming/, hold/), durable; false on error */
static bool write_queue_file(const struct qfile *q, const struct drop *d,
                             const struct buf *msg, const char *qid, int dirfd)
{
    struct qfile_writer *w = qfw_create(dirfd, qid);

    if (w == NULL) {
        msg_warn("create %s/%s: %m", dirfd == hold_fd ? "hold" : "incoming", qid);
        return false;
    }
    qfw_recordf(w, QREC_TIME, "%lld.%0*ld", q->arrival_sec, USEC_DIGITS, q->arrival_usec);
    qfw_recordf(w, QREC_ATTR, "log_ident=%s", qid);
    qfw_recordf(w, QREC_ATTR, "rewrite_context=local");
    qfw_recordf(w, QREC_ATTR, "uid=%lld", d->uid);
    if (*cfg_str(pk_cfg, "content_filter"))
        qfw_recordf(w, QREC_ATTR, "%s=%s", QATTR_CONTENT_FILTER, cfg_str(pk_cfg, "content_filter"));
    qfw_record(w, QREC_SENDER, d->sender, strlen(d->sender));
    if (!write_recipients(w, d, qid)) {
        qfw_abort(w);
        return false;
    }
    qfw_record(w, QREC_MESSAGE, "", 0);
    qfw_content(w, buf_str(msg), msg->len);
    if (qfw_finish(w) < 0 || fdatasync(qfw_fd(w)) < 0 || fsync(dirfd) < 0) {
        errno = qfw_error(w) ? qfw_error(w) : errno;
        msg_warn("%s: write queue file: %m", qid);
        qfw_abort(w);
        return false;
    }
    qfw_close(w);
    return true;
}

/* Header/body checks of one message: the new content and the log origin. */
struct pk_check {
    const char *qid;
    struct buf origin;     /* "from local; from=<s> to=<r>" */
    struct buf out;
    bool overflow;         /* out could not hold it all */
};

/* check_out - the checked content */
static void check_out(void *ctx, const char *p, size_t n)
{
    struct pk_check *pc = ctx;

    if (!pc->overflow && buf_append(&pc->out, p, n) < 0)
        pc->overflow = true;
}

/* check_log - Postfix's "QID: reject: header ... from local; from=<s> to=<r>: text" */
static void check_log(void *ctx, const struct msgcheck_event *ev)
{
    struct pk_check *pc = ctx;
    struct buf line = BUF_INIT;

    msgcheck_log_line(&line, pc->qid, ev, buf_str(&pc->origin));
    msg_info("%s", buf_str(&line));
    buf_free(&line);
}

/* bounce_rejected - return a rejected submission to its sender; false on a write error */
static bool bounce_rejected(struct qfile *q, const struct drop *d, const char *qid,
                            const struct msgcheck_verdict *v)
{
    struct bounce_rcpt *br = xcalloc(d->nrcpts, sizeof(*br));
    char dsn[MSGCHECK_ENH_MAX], new_qid[QID_MAX];
    char *saved_sender = q->sender, *saved_qid = q->qid;
    bool ok;

    /* a notice is about a failure: class 5 even for a 4NN action */
    snprintf(dsn, sizeof(dsn), "5%s", v->enh + 1);
    for (size_t i = 0; i < d->nrcpts; i++) {
        br[i].address = d->rcpts[i];
        br[i].orig = d->rcpts[i];
        br[i].dsn = dsn;
        br[i].text = v->text;
    }
    /* the notice is about the message as queued: its qualified sender and queue ID */
    q->sender = d->sender;
    q->qid = (char *)qid;
    ok = bounce_notify(pk_cfg, q, BOUNCE_FAILED, br, d->nrcpts, new_qid) == 0;
    q->sender = saved_sender;
    q->qid = saved_qid;
    if (!ok)
        msg_warn("%s: write the non-delivery notice: %m (will retry)", qid);
    for (size_t i = 0; ok && i < d->nrcpts; i++)
        msg_info("%s: to=<%s>, relay=none, delay=0, dsn=%s, status=bounced (%s)", qid,
                 d->rcpts[i], dsn, v->text);
    free(br);
    return ok;
}

/* check_content - header_checks and body_checks on the cleaned message in msg */
static enum pk_fate check_content(struct qfile *q, const struct drop *d, const char *qid,
                                  struct buf *msg)
{
    struct pk_check pc = {qid, BUF_INIT, BUF_INIT, false};
    struct msgcheck *m;
    const struct msgcheck_verdict *v;
    enum pk_fate fate = PK_QUEUE;

    if (!msgcheck_active(checks))
        return PK_QUEUE;
    buf_printf(&pc.origin, "from local; from=<%s>", d->sender);
    if (d->nrcpts > 0)
        buf_printf(&pc.origin, " to=<%s>", d->rcpts[0]);
    m = msgcheck_new(checks, qid, check_out, check_log, &pc);
    msgcheck_feed(m, buf_str(msg), msg->len);
    v = msgcheck_end(m);
    if (v->unsupported)
        msg_warn("%s: header/body checks action %s is not supported: ignored", qid,
                 v->unsupported);
    switch (v->kind) {
    case MSGCHECK_ACCEPT:
        if (pc.overflow) {
            fate = PK_BAD;
            break;
        }
        fate = v->hold ? PK_HOLD : PK_QUEUE;
        buf_free(msg);
        *msg = pc.out;
        pc.out = (struct buf)BUF_INIT;
        break;
    case MSGCHECK_DISCARD:
        fate = PK_GONE;
        break;
    case MSGCHECK_DEFER:
        if (!v->tempfail)
            msg_info("%s: %d %s %s: left in maildrop, tried again at the next scan", qid,
                     v->code, v->enh, v->text);
        fate = PK_RETRY;
        break;
    case MSGCHECK_REJECT:
        fate = bounce_rejected(q, d, qid, v) ? PK_GONE : PK_RETRY;
        break;
    }
    msgcheck_free(m);
    buf_free(&pc.origin);
    buf_free(&pc.out);
    return fate;
}

/* pickup_file - one maildrop file; true if a message was queued */
static bool pickup_file(const char *name)
{
    struct drop d;
    struct stat st;
    struct qfile *q;
    struct buf content = BUF_INIT;
    struct cleanup_out co;
    char *err = NULL, qid[QID_MAX];
    const char *why;
    bool queued = false;
    int fd = openat(maildrop_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    memset(&d, 0, sizeof(d));
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EINTR)
            msg_warn("maildrop/%s: open: %m (will retry)", name);
        else if (errno != ENOENT)
            to_corrupt(name, strerror(errno));
        return false;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        (st.st_mode & 07777) != MAILDROP_MODE_DONE) {
        close(fd);
        to_corrupt(name, "not a complete maildrop file (type, links or mode)");
        return false;
    }
    if (size_limit > 0 && st.st_size > size_limit + (off_t)QFILE_ENVELOPE_MAX) {
        close(fd);
        to_corrupt(name, "file larger than message_size_limit");
        return false;
    }
    if ((q = qfile_parse_fd(fd, name, &err)) == NULL) {
        struct buf b = BUF_INIT;
        buf_printf(&b, "malformed: %s", err ? err : "?");
        to_corrupt(name, buf_str(&b));
        buf_free(&b);
        free(err);
        return false;
    }
    if ((why = check_attrs(q, &st, &d)) != NULL)
        goto bad;
    for (size_t i = 0; i < q->nrcpts; i++)
        if (q->rcpts[i].done || q->rcpts[i].orcpt || q->rcpts[i].notify) {
            why = "unexpected recipient record";
            goto bad;
        }
    if (size_limit > 0 && q->content_length > (uint64_t)size_limit) {
        why = "message larger than message_size_limit";
        goto bad;
    }
    const char *origin = cfg_str(pk_cfg, "myorigin");
    d.sender = cleanup_qualify(q->sender, origin);
    if (d.sender[0] && !addr_valid(d.sender)) {
        why = "bad sender address syntax";
        goto bad;
    }
    for (size_t i = 0; i < q->nrcpts; i++) {
        char *r = cleanup_qualify(q->rcpts[i].addr, origin);
        bool ok = addr_valid(r);
        if (ok)
            add_rcpt(&d, r);
        free(r);
        if (!ok) {
            why = "bad recipient address syntax";
            goto bad;
        }
    }
    if (qfile_read_content(q, &content) < 0) {
        msg_warn("maildrop/%s: read: %m (will retry)", name);
        goto out;
    }
    qid_new(qid);
    struct cleanup_info ci = {qid, (time_t)q->arrival_sec, cfg_str(pk_cfg, "myhostname"),
                              origin, d.uid, d.sender, d.full_name, d.rewrite, header_limit};
    cleanup_out_init(&co, 0);
    if (cleanup_local(&ci, buf_str(&content), content.len, &co) < 0) {
        cleanup_out_free(&co);
        why = "message too large after clean-up";
        goto bad;
    }
    for (size_t i = 0; i < co.nrcpts; i++) {
        if (addr_valid(co.rcpts[i]))
            add_rcpt(&d, co.rcpts[i]);
        else
            msg_warn("maildrop/%s: header recipient \"%s\": bad address syntax: dropped",
                     name, co.rcpts[i]);
    }
    uniq_rcpts(&d);
    if (d.nrcpts == 0) {
        cleanup_out_free(&co);
        why = "no recipients";
        goto bad;
    }
    enum pk_fate fate = check_content(q, &d, qid, &co.msg);

    if (fate == PK_BAD) {
        cleanup_out_free(&co);
        why = "content too large after header/body checks";
        goto bad;
    }
    if (fate == PK_RETRY || fate == PK_GONE) {
        if (fate == PK_GONE) {
            msg_info("%s: uid=%lld from=<%s>", qid, d.uid, q->sender);
            if (unlinkat(maildrop_fd, name, 0) < 0)
                msg_warn("maildrop/%s: remove: %m", name);
            queued = true;  /* a notice may wait in incoming/ */
        }
        cleanup_out_free(&co);
        goto out;
    }
    pickup_dkim_sign(qid, &co.msg);     /* our mail: signed once, when queued */
    if (write_queue_file(q, &d, &co.msg, qid, fate == PK_HOLD ? hold_fd : incoming_fd)) {
        msg_info("%s: uid=%lld from=<%s>", qid, d.uid, q->sender);
        log_message_id(qid, &co.msg);
        if (unlinkat(maildrop_fd, name, 0) < 0)
            msg_warn("maildrop/%s: remove: %m", name);
        queued = true;
    }
    cleanup_out_free(&co);
    goto out;

bad:
    to_corrupt(name, why);
out:
    qfile_close(q);
    buf_free(&content);
    drop_free(&d);
    return queued;
}

/* remove_stale - an unfinished or foreign file older than a day */
static void remove_stale(const char *name)
{
    struct stat st;

    if (fstatat(maildrop_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (time(NULL) - st.st_mtime < MAILDROP_STALE_SEC)
        return;
    msg_warn("maildrop/%s: removing %s file", name,
             strncmp(name, MAILDROP_TMP_PREFIX, strlen(MAILDROP_TMP_PREFIX)) == 0
                 ? "abandoned unfinished" : "unknown");
    if (unlinkat(maildrop_fd, name, 0) < 0)
        msg_warn("maildrop/%s: remove: %m", name);
}

/* scan - every maildrop file, oldest (smallest queue ID) first */
static void scan(void)
{
    int fd = openat(maildrop_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0, queued = 0;
    struct dirent *de;
    DIR *dir;

    if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
        msg_warn("open maildrop directory: %m");
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (!qid_valid(de->d_name)) {
            remove_stale(de->d_name);
            continue;
        }
        names = xreallocarray(names, n + 1, sizeof(char *));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(dir);
    if (n > 0)
        qsort(names, n, sizeof(char *), str_cmp);
    for (size_t i = 0; i < n; i++) {
        if (server_draining())
            break;
        queued += pickup_file(names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (queued > 0)
        trigger_send(pk_cfg, TRIGGER_QMGR, TRIGGER_SCAN);
}

/* pickup_accept - a trigger: read the request byte(s), close, scan */
static void pickup_accept(struct server_ctx *ctx, int fd, const struct sockaddr *peer,
                          socklen_t peerlen, const struct sockaddr *local, socklen_t locallen)
{
    char req[TRIGGER_READ_MAX];

    /* the byte's value does not matter: every trigger means "scan" */
    if (read(fd, req, sizeof(req)) < 0 && errno != EAGAIN)
        msg_verbose("read trigger: %m");
    close(fd);
    scan();
}

/* pickup_pre_jail - open the directories while we still can */
static void pickup_pre_jail(struct server_ctx *ctx)
{
    unsigned overrides;

    maildrop_fd = open_dir(ctx->cfg, "maildrop");
    incoming_fd = open_dir(ctx->cfg, "incoming");
    corrupt_fd = open_dir(ctx->cfg, "corrupt");
    hold_fd = open_dir(ctx->cfg, "hold");
    overrides = cleanup_receive_overrides(ctx->cfg);
    if (!(overrides & RECEIVE_NO_HEADER_BODY))
        checks = msgcheck_conf_load(ctx->cfg);  /* tables may be readable by root only */
    pickup_dkim_pre_jail(ctx->cfg);     /* DKIM keys are readable by root */
    if (!(overrides & RECEIVE_NO_ADDRESS_MAPPINGS)) {
        pk_valias = valias_open(ctx->cfg);
        pk_bcc = bcc_open(ctx->cfg);
    }
}

/* pickup_post_jail - settings, then the scan at start */
static void pickup_post_jail(struct server_ctx *ctx)
{
    pk_cfg = ctx->cfg;
    size_limit = cfg_int(pk_cfg, "message_size_limit");
    header_limit = (size_t)cfg_int(pk_cfg, "header_size_limit");
    scan();
}

/* main - the skeleton runs pickup */
int main(int argc, char **argv)
{
    static const struct event_server_hooks hooks = {
        .program = "pickup",
        .pre_jail = pickup_pre_jail,
        .post_jail = pickup_post_jail,
        .accept = pickup_accept,
    };

    return event_server_main(argc, argv, &hooks);
}
