/*
 * mbox.c - delivery to UNIX mailboxes (mail_spool_directory or home)
 *
 * The mailbox is mail_spool_directory/USER, or $HOME/$home_mailbox when
 * home_mailbox is set (a home_mailbox ending in "/" is a Maildir, see
 * maildir.c; so is a mail_spool_directory ending in "/"). The copy is in
 * the format Postfix writes: "From SENDER  DATE" line, Return-Path,
 * X-Original-To, Delivered-To, the message with ">From " quoting, and
 * one empty line.
 *
 * Spool mailboxes: the spool directory belongs to root (0755 in an
 * instance, root:mail 2775 or 1777 on real systems), so the parent,
 * still root, creates the dotlock and a missing mailbox (O_EXCL, owned
 * by the user, mode 0600) and the child - the user - appends. Home
 * mailboxes are created and dotlocked by the child itself.
 *
 * DIAGNOSTICS (as Postfix): "cannot update mailbox PATH for user USER.
 * REASON"; a mailbox that is a symlink, not a regular file, has several
 * hard links or another owner is bounced (5.2.0); a lock that cannot be
 * obtained defers (4.2.0); mailbox_size_limit bounces (5.2.2); write
 * errors truncate the mailbox back to its old size and defer, except a
 * full quota (5.2.2).
 * SECURITY: the append runs as the user, through O_NOFOLLOW, and checks
 * the opened file (fstat) against the path (lstat).
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/log.h"

#include "local.h"

#define MAILBOX_MODE 0600
#define MAILDIR_SPOOL_MODE 0700
#define DEV_NULL "/dev/null"
#define SEC_MARGIN 60

struct append_ctx {
    struct lmsg *m;
    const struct lrcpt *r;
    const char *path;
    const char *user;        /* for messages */
    const char *ok_text;
    bool create;
    bool child_dotlock;
    bool dotlock_may_fail;
    bool check_owner;
    bool is_mailbox;
};

/* write_error - DSN and status for a write error, as Postfix classifies it */
static void write_error(struct dres *res, const struct append_ctx *a, int e)
{
    const char *what = a->is_mailbox ? "mailbox" : "file";

    if (e == EDQUOT || e == EFBIG)
        dres_set(res, DELIVER_BOUNCED, "5.2.2", "cannot update %s %s for user %s. "
                 "error writing message: %s", what, a->path, a->user, strerror(e));
    else
        dres_set(res, DELIVER_DEFERRED, e == ENOSPC ? "4.3.0" : "4.2.0",
                 "cannot update %s %s for user %s. error writing message: %s", what,
                 a->path, a->user, strerror(e));
}

/* append_child - in the child, as the user: lock, append, sync */
static void append_child(void *ctx, struct dres *res)
{
    struct append_ctx *a = ctx;
    const char *what = a->is_mailbox ? "mailbox" : "file";
    struct mbox_lock lk = {0};
    struct stat st, lst;
    off_t orig;
    int fd, e;

    if (local_conf.lock_dotlock && a->child_dotlock) {
        struct dres lr = {0};

        if (!lock_dot_acquire(a->path, &lk, &lr) && !a->dotlock_may_fail) {
            *res = lr;
            return;
        }
    }
    fd = open(a->path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK
                           | (a->create ? O_CREAT : 0), MAILBOX_MODE);
    if (fd < 0) {
        e = errno;
        if (e == ELOOP)
            dres_set(res, DELIVER_BOUNCED, "5.2.0", "cannot update %s %s for user %s. "
                     "destination %s is a symbolic link", what, a->path, a->user, a->path);
        else if (e == EACCES || e == EPERM || e == ENOENT || e == EISDIR)
            dres_set(res, DELIVER_BOUNCED, "5.2.0", "cannot update %s %s for user %s. "
                     "cannot open file: %s", what, a->path, a->user, strerror(e));
        else
            dres_set(res, DELIVER_DEFERRED, "4.2.0", "cannot update %s %s for user %s. "
                     "cannot open file: %s", what, a->path, a->user, strerror(e));
        goto out;
    }
    if (fstat(fd, &st) < 0 || lstat(a->path, &lst) < 0) {
        dres_set(res, DELIVER_DEFERRED, "4.2.0", "cannot update %s %s for user %s. "
                 "cannot stat: %s", what, a->path, a->user, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        dres_set(res, DELIVER_BOUNCED, "5.2.0", "cannot update %s %s for user %s. "
                 "destination %s is not a regular file", what, a->path, a->user, a->path);
        goto out_close;
    }
    if (st.st_nlink != 1) {
        dres_set(res, DELIVER_BOUNCED, "5.2.0", "cannot update %s %s for user %s. "
                 "destination %s has %lu hard links", what, a->path, a->user, a->path,
                 (unsigned long)st.st_nlink);
        goto out_close;
    }
    if (st.st_dev != lst.st_dev || st.st_ino != lst.st_ino) {
        dres_set(res, DELIVER_DEFERRED, "4.2.0", "cannot update %s %s for user %s. "
                 "file %s changed while it was opened", what, a->path, a->user, a->path);
        goto out_close;
    }
    if (a->check_owner && st.st_uid != getuid()) {
        dres_set(res, DELIVER_BOUNCED, "5.2.0", "cannot update %s %s for user %s. "
                 "destination %s is not owned by the recipient", what, a->path, a->user,
                 a->path);
        goto out_close;
    }
    /* Blocking writes from here on. */
    (void)fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
    if (!lock_fd(fd, res, a->path)) {
        char reason[LOCAL_TEXT_MAX];

        snprintf(reason, sizeof(reason), "%s", res->text);
        dres_set(res, DELIVER_DEFERRED, "4.2.0", "cannot update %s %s for user %s. %s", what,
                 a->path, a->user, reason);
        goto out_close;
    }
    if (fstat(fd, &st) < 0) {
        write_error(res, a, errno);
        goto out_close;
    }
    orig = st.st_size;
    if (a->is_mailbox && local_conf.mailbox_size_limit > 0
        && (long long)orig + (long long)a->m->q->content_length > local_conf.mailbox_size_limit) {
        dres_set(res, DELIVER_BOUNCED, "5.2.2", "cannot update mailbox %s for user %s. "
                 "mailbox full (mailbox_size_limit %lld bytes)", a->path, a->user,
                 local_conf.mailbox_size_limit);
        goto out_close;
    }
    if (content_copy(a->m, a->r, fd, COPY_FROM_LINE | COPY_QUOTE | COPY_BLANK | COPY_ORIG_TO,
                     res) < 0 || fsync(fd) < 0) {
        e = errno;
        if (ftruncate(fd, orig) < 0)
            msg_warn("truncate %s back to %lld bytes: %m", a->path, (long long)orig);
        write_error(res, a, e);
        goto out_close;
    }
    if (a->is_mailbox && local_conf.mailbox_size_limit > 0 && fstat(fd, &st) == 0
        && (long long)st.st_size > local_conf.mailbox_size_limit) {
        if (ftruncate(fd, orig) < 0 || fsync(fd) < 0)
            msg_warn("truncate %s back to %lld bytes: %m", a->path, (long long)orig);
        dres_set(res, DELIVER_BOUNCED, "5.2.2", "cannot update mailbox %s for user %s. "
                 "mailbox full (mailbox_size_limit %lld bytes)", a->path, a->user,
                 local_conf.mailbox_size_limit);
        goto out_close;
    }
    dres_set(res, DELIVER_SENT, "2.0.0", "%s", a->ok_text);
out_close:
    close(fd);
out:
    lock_dot_release(&lk);
}

/* mbox_append_as - append the message to a->path as p, in a child */
static void mbox_append_as(struct lmsg *m, const struct lrcpt *r, const struct privs *p,
                           struct append_ctx *a, struct dres *res)
{
    long long timeout = local_conf.lock_attempts * local_conf.lock_delay * 2
                        + local_conf.command_time_limit + SEC_MARGIN;

    a->m = m;
    a->r = r;
    privs_run(p, timeout, append_child, a, res);
}

/* spool_prepare - as root: dotlock and create a missing spool mailbox */
static bool spool_prepare(const char *path, const struct privs *user, struct mbox_lock *lk,
                          struct dres *res)
{
    int fd;

    if (local_conf.lock_dotlock && !lock_dot_acquire(path, lk, res)) {
        char reason[LOCAL_TEXT_MAX];

        snprintf(reason, sizeof(reason), "%s", res->text);
        dres_set(res, DELIVER_DEFERRED, "4.2.0", "cannot update mailbox %s for user %s. %s",
                 path, user->user, reason);
        return false;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, MAILBOX_MODE);
    if (fd >= 0) {
        if (fchown(fd, user->uid, (gid_t)-1) < 0 && geteuid() == 0) {
            int e = errno;

            close(fd);
            (void)unlink(path);
            lock_dot_release(lk);
            dres_set(res, DELIVER_DEFERRED, "4.2.0", "cannot update mailbox %s for user %s. "
                     "cannot set owner: %s", path, user->user, strerror(e));
            return false;
        }
        close(fd);
    } else if (errno != EEXIST) {
        int e = errno;

        lock_dot_release(lk);
        dres_set(res, DELIVER_DEFERRED, "4.2.0", "cannot update mailbox %s for user %s. "
                 "cannot create file: %s", path, user->user, strerror(e));
        return false;
    }
    return true;
}

/* deliver_mailbox - the user's mailbox (mbox or Maildir) */
void deliver_mailbox(struct lmsg *m, const struct lrcpt *r, const struct privs *user,
                     struct dres *res)
{
    const char *hm = local_conf.home_mailbox;
    size_t hl = strlen(hm), sl = strlen(local_conf.spool_dir);
    struct append_ctx a = {.user = user->user, .ok_text = "delivered to mailbox",
                           .check_owner = true, .is_mailbox = true};

    memset(res, 0, sizeof(*res));
    if (hl > 0) {
        char *path = xasprintf("%s/%s", user->home, hm);

        if (hm[hl - 1] == '/') {
            deliver_maildir(m, r, user, path, res);
        } else {
            a.path = path;
            a.create = true;
            a.child_dotlock = true;
            mbox_append_as(m, r, user, &a, res);
        }
        free(path);
        return;
    }
    if (sl > 0 && local_conf.spool_dir[sl - 1] == '/') {
        char *path = xasprintf("%s%s", local_conf.spool_dir, user->user);

        /* The spool belongs to root: make the user's Maildir there first. */
        if (mkdir(path, MAILDIR_SPOOL_MODE) == 0 && chown(path, user->uid, user->gid) < 0)
            msg_warn("chown %s: %m", path);
        deliver_maildir(m, r, user, path, res);
        free(path);
        return;
    }
    {
        char *path = xasprintf("%s/%s", local_conf.spool_dir, user->user);
        struct mbox_lock lk = {0};

        a.path = path;
        if (spool_prepare(path, user, &lk, res))
            mbox_append_as(m, r, user, &a, res);
        lock_dot_release(&lk);
        free(path);
    }
}

/* deliver_file - append to a file named in an alias, .forward or :include: */
void deliver_file(struct lmsg *m, const struct lrcpt *r, const struct privs *p,
                  const char *path, struct dres *res)
{
    struct append_ctx a = {.path = path, .user = p->user, .create = true,
                           .child_dotlock = true, .dotlock_may_fail = true};
    char *ok = xasprintf("delivered to file: %s", path);

    a.ok_text = ok;
    memset(res, 0, sizeof(*res));
    if (strcmp(path, DEV_NULL) == 0)   /* "devnull: /dev/null", as Postfix */
        dres_set(res, DELIVER_SENT, "2.0.0", "%s", ok);
    else
        mbox_append_as(m, r, p, &a, res);
    free(ok);
}
