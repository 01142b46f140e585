/*
 * maildir.c - delivery to a Maildir (home_mailbox ending in "/")
 *
 * In a child running as the user: create DIR and DIR/{tmp,new,cur}
 * (0700) when missing, then deliver idempotently. The file name is
 * derived from the delivery itself, not from the clock:
 *
 *     SECONDS.PQUEUEIDROFFSET[HHASH].HOST
 *
 * SECONDS is the message's arrival time, QUEUEID its queue ID, OFFSET
 * the queue file offset of the request recipient's record, HASH (16 hex
 * digits) a hash of the final address when it differs from the request
 * recipient (an alias or .forward that expanded to several users), HOST
 * myhostname ('/' and ':' written as \057 and \072, as the Maildir
 * convention asks). A retry of the same delivery after a crash therefore
 * computes the same NAME, and:
 *
 *   1. tmp/NAME is opened (created if missing) and locked (flock); the
 *      lock is held to the end, so two attempts of one delivery (an
 *      orphaned child of a killed local, and the retry) run one after
 *      the other. A tmp/NAME that exists already is the leftover of a
 *      killed attempt and is reused.
 *   2. If new/NAME exists, or tmp/NAME has a second link, or cur/NAME
 *      with one of a few common flag suffixes exists, an earlier attempt
 *      completed (it was killed after the link, before qmgr recorded the
 *      result): tmp/NAME is removed and the delivery is reported as done,
 *      without a second copy.
 *   3. Otherwise tmp/NAME is truncated, written, fsynced, linked to
 *      new/NAME (EEXIST means "done already", as in 2), removed from
 *      tmp/, and new/ is fsynced; only then is success reported.
 *
 * When the request recipient cannot be identified (it always can) the
 * old unique name "SECONDS.M<usec>P<pid>Q<count>.HOST" is used instead.
 * The copy starts with Return-Path, X-Original-To and Delivered-To, as
 * Postfix writes it; no From_ line, no quoting, lines end in "\n"
 * (Dovecot and Python's mailbox.Maildir read it as is).
 *
 * Known gap: a message that a mail reader moved into cur/ with flags
 * other than those checked (see CUR_SUFFIXES) between a killed attempt
 * and its retry is delivered a second time; a scan of cur/ on every
 * delivery would cost too much in big mailboxes.
 *
 * DIAGNOSTICS: "maildir delivery failed: REASON"; ENOSPC and other I/O
 * errors defer (4.2.0/4.3.0), a quota (EDQUOT/EFBIG) bounces (5.2.2).
 * An attempt that finds its delivery done logs "QID: maildir DIR: NAME
 * delivered by an earlier attempt".
 * SECURITY: runs as the user; tmp/NAME is opened with O_NOFOLLOW and
 * must be a regular file; the temporary file is removed on failure.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "local.h"

#define MAILDIR_DIR_MODE 0700
#define MAILDIR_FILE_MODE 0600
#define MAILDIR_CLAIM_TRIES 10        /* tmp/NAME replaced under us: start over */
#define US_PER_SEC 1000000LL
#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME 0x100000001b3ULL

/* cur/NAME:2,FLAGS names a mail reader commonly gives a seen message */
static const char *const CUR_SUFFIXES[] = {"", ":2,", ":2,S", ":2,RS", ":2,FS", ":2,FRS"};

struct maildir_ctx {
    struct lmsg *m;
    const struct lrcpt *r;
    const char *dir;
    const char *name;          /* base file name in tmp/ and new/ */
};

static unsigned long maildir_count;

/* maildir_fail - a failed step, classified by errno */
static void maildir_fail(struct dres *res, const char *what, const char *path, int e)
{
    if (e == EDQUOT || e == EFBIG)
        dres_set(res, DELIVER_BOUNCED, "5.2.2", "maildir delivery failed: %s %s: %s", what,
                 path, strerror(e));
    else
        dres_set(res, DELIVER_DEFERRED, e == ENOSPC ? "4.3.0" : "4.2.0",
                 "maildir delivery failed: %s %s: %s", what, path, strerror(e));
}

/* make_dir - mkdir unless it exists as a directory */
static int make_dir(const char *path)
{
    struct stat st;

    if (mkdir(path, MAILDIR_DIR_MODE) == 0)
        return 0;
    if (errno == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -1;
}

/* name_put - text for a file name: '/' and ':' as \057 and \072 */
static void name_put(struct buf *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '/' || *p == ':')
            buf_printf(out, "\\%03o", *p);
        else
            buf_putc(out, *p);
    }
}

/* fnv64 - FNV-1a hash of a string (stable across runs and hosts) */
static unsigned long long fnv64(const char *s)
{
    unsigned long long h = FNV64_OFFSET;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= FNV64_PRIME;
    }
    return h;
}

/* request_offset - the record offset of r's request recipient; false if unknown */
static bool request_offset(const struct lmsg *m, const struct lrcpt *r, long long *offset)
{
    const struct deliver_request *q = m->req;
    const char *top = r->top ? r->top : r->address;

    if (q == NULL || top == NULL)
        return false;
    /* The expansion carries the request's own string: match it first. */
    for (size_t i = 0; i < q->nrcpts; i++)
        if (q->rcpts[i].address == top) {
            *offset = q->rcpts[i].offset;
            return true;
        }
    for (size_t i = 0; i < q->nrcpts; i++)
        if (strcmp(q->rcpts[i].address, top) == 0) {
            *offset = q->rcpts[i].offset;
            return true;
        }
    return false;
}

/* maildir_name - the delivery's file name (stable across retries if possible) */
static void maildir_name(const struct lmsg *m, const struct lrcpt *r, struct buf *name)
{
    const char *top = r->top ? r->top : r->address;
    long long offset;

    if (m->req != NULL && m->req->queue_id != NULL && request_offset(m, r, &offset)) {
        buf_printf(name, "%lld.P", m->req->arrival_us / US_PER_SEC);
        name_put(name, m->req->queue_id);
        buf_printf(name, "R%lld", offset);
        if (r->address != NULL && strcmp(r->address, top) != 0)
            buf_printf(name, "H%016llx", fnv64(r->address));
    } else {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        buf_printf(name, "%lld.M%ldP%ldQ%lu", (long long)tv.tv_sec, (long)tv.tv_usec,
                   (long)getpid(), ++maildir_count);
    }
    buf_putc(name, '.');
    name_put(name, local_conf.myhostname);
}

/*
 * tmp_claim - open tmp/NAME (a leftover is reused) and hold its lock;
 * the descriptor, or -1 with errno set
 */
static int tmp_claim(const char *path, struct stat *st)
{
    for (int i = 0; i < MAILDIR_CLAIM_TRIES; i++) {
        struct stat pst;
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, MAILDIR_FILE_MODE);

        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX) < 0 || fstat(fd, st) < 0) {
            int e = errno;

            close(fd);
            errno = e;
            return -1;
        }
        if (!S_ISREG(st->st_mode)) {
            close(fd);
            errno = EEXIST;     /* something else by that name */
            return -1;
        }
        /* Still the file at that name (not removed by the attempt we waited for)? */
        if (lstat(path, &pst) == 0 && pst.st_dev == st->st_dev && pst.st_ino == st->st_ino)
            return fd;
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

/* exists - lstat says the path exists; -1 (errno) when it cannot tell */
static int exists(const char *path)
{
    struct stat st;

    if (lstat(path, &st) == 0)
        return 1;
    return errno == ENOENT ? 0 : -1;
}

/* delivered_before - an earlier attempt of this delivery completed; -1 on error */
static int delivered_before(const struct maildir_ctx *c, const struct stat *tmp_st,
                            struct buf *path)
{
    int r;

    /* A second link: the killed attempt linked it (new/ or, moved, cur/). */
    if (tmp_st->st_nlink > 1)
        return 1;
    buf_reset(path);
    buf_printf(path, "%s/new/%s", c->dir, c->name);
    if ((r = exists(path->data)) != 0)
        return r;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(CUR_SUFFIXES); i++) {
        buf_reset(path);
        buf_printf(path, "%s/cur/%s%s", c->dir, c->name, CUR_SUFFIXES[i]);
        if ((r = exists(path->data)) != 0)
            return r;
    }
    return 0;
}

/* sync_dir - fsync a directory */
static int sync_dir(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e;

    if (dfd < 0)
        return -1;
    if (fsync(dfd) < 0) {
        e = errno;
        close(dfd);
        errno = e;
        return -1;
    }
    close(dfd);
    return 0;
}

/* already_done - report an earlier attempt's delivery and drop tmp/NAME */
static void already_done(const struct maildir_ctx *c, const char *tmp, struct dres *res)
{
    if (unlink(tmp) < 0 && errno != ENOENT)
        msg_warn("%s: remove %s: %m", c->m->req ? c->m->req->queue_id : "?", tmp);
    msg_info("%s: maildir %s: %s delivered by an earlier attempt",
             c->m->req ? c->m->req->queue_id : "?", c->dir, c->name);
    dres_set(res, DELIVER_SENT, "2.0.0", "delivered to maildir");
}

/* maildir_write - write tmp/NAME, link it into new/, sync; tmp/NAME is locked */
static void maildir_write(struct maildir_ctx *c, int fd, const char *tmp, const char *nw,
                          struct buf *scratch, struct dres *res)
{
    bool renamed = false;

    if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        maildir_fail(res, "write", tmp, errno);
        (void)unlink(tmp);
        return;
    }
    if (content_copy(c->m, c->r, fd, COPY_ORIG_TO, res) < 0 || fsync(fd) < 0) {
        maildir_fail(res, "write", tmp, errno);
        (void)unlink(tmp);
        return;
    }
    if (link(tmp, nw) < 0) {
        if (errno == EEXIST) {
            already_done(c, tmp, res);
            return;
        }
        /* File systems without hard links: rename is safe under the lock. */
        if ((errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) || rename(tmp, nw) < 0) {
            maildir_fail(res, "link to", nw, errno);
            (void)unlink(tmp);
            return;
        }
        renamed = true;
    }
    if (!renamed && unlink(tmp) < 0)
        msg_warn("%s: remove %s: %m", c->m->req ? c->m->req->queue_id : "?", tmp);
    buf_reset(scratch);
    buf_printf(scratch, "%s/new", c->dir);
    if (sync_dir(scratch->data) < 0) {
        maildir_fail(res, "sync", scratch->data, errno);
        return;
    }
    dres_set(res, DELIVER_SENT, "2.0.0", "delivered to maildir");
}

/* maildir_child - as the user: create, claim, check, write, link, sync */
static void maildir_child(void *vctx, struct dres *res)
{
    struct maildir_ctx *c = vctx;
    const char *subs[] = {"tmp", "new", "cur"};
    struct buf tmp = BUF_INIT, nw = BUF_INIT, sub = BUF_INIT;
    struct stat st;
    int fd = -1, done;

    if (make_dir(c->dir) < 0) {
        maildir_fail(res, "create", c->dir, errno);
        goto out;
    }
    for (size_t i = 0; i < POSTA_ARRAY_LEN(subs); i++) {
        buf_reset(&sub);
        buf_printf(&sub, "%s/%s", c->dir, subs[i]);
        if (make_dir(sub.data) < 0) {
            maildir_fail(res, "create", sub.data, errno);
            goto out;
        }
    }
    buf_printf(&tmp, "%s/tmp/%s", c->dir, c->name);
    buf_printf(&nw, "%s/new/%s", c->dir, c->name);
    fd = tmp_claim(tmp.data, &st);
    if (fd < 0) {
        maildir_fail(res, "create", tmp.data, errno);
        goto out;
    }
    done = delivered_before(c, &st, &sub);
    if (done < 0) {
        maildir_fail(res, "check", sub.data, errno);
        goto out;
    }
    if (done > 0)
        already_done(c, tmp.data, res);
    else
        maildir_write(c, fd, tmp.data, nw.data, &sub, res);
out:
    if (fd >= 0)
        close(fd);        /* releases the lock, after tmp/NAME is gone */
    buf_free(&tmp);
    buf_free(&nw);
    buf_free(&sub);
}

/* deliver_maildir - deliver into the Maildir dir as user */
void deliver_maildir(struct lmsg *m, const struct lrcpt *r, const struct privs *user,
                     const char *dir, struct dres *res)
{
    struct maildir_ctx c = {.m = m, .r = r};
    struct buf name = BUF_INIT;
    char *d = xstrdup(dir);
    size_t n = strlen(d);

    /* "Maildir/" names the directory; drop the trailing slashes. */
    while (n > 1 && d[n - 1] == '/')
        d[--n] = 0;
    c.dir = d;
    maildir_name(m, r, &name);
    c.name = name.data;
    privs_run(user, local_conf.command_time_limit, maildir_child, &c, res);
    buf_free(&name);
    free(d);
}
