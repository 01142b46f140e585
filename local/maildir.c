/*
 * maildir.c - delivery to a Maildir (home_mailbox ending in "/")
 *
 * In a child running as the user: create DIR and DIR/{tmp,new,cur}
 * (0700) when missing, write tmp/UNIQUE with O_EXCL, fsync it, rename it
 * into new/ and fsync new/. UNIQUE is "SECONDS.M<usec>P<pid>Q<count>.HOST"
 * (the Maildir convention; '/' and ':' in the host name are written as
 * \057 and \072). The copy starts with Return-Path, X-Original-To and
 * Delivered-To, as Postfix writes it; no From_ line, no quoting, lines
 * end in "\n" (Dovecot reads it as is).
 *
 * DIAGNOSTICS: "maildir delivery failed: REASON"; ENOSPC and other I/O
 * errors defer (4.2.0/4.3.0), a quota (EDQUOT/EFBIG) bounces (5.2.2).
 * SECURITY: runs as the user; the temporary file is removed on failure.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "local.h"

#define MAILDIR_DIR_MODE 0700
#define MAILDIR_FILE_MODE 0600

struct maildir_ctx {
    struct lmsg *m;
    const struct lrcpt *r;
    const char *dir;
    unsigned long count;
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

/* unique_host - the host name with '/' and ':' encoded */
static void unique_host(struct buf *out)
{
    for (const char *p = local_conf.myhostname; *p; p++) {
        if (*p == '/')
            buf_puts(out, "\\057");
        else if (*p == ':')
            buf_puts(out, "\\072");
        else
            buf_putc(out, *p);
    }
}

/* maildir_child - as the user: create, write, sync, rename */
static void maildir_child(void *vctx, struct dres *res)
{
    struct maildir_ctx *c = vctx;
    const char *subs[] = {"tmp", "new", "cur"};
    struct buf name = BUF_INIT, tmp = BUF_INIT, nw = BUF_INIT, sub = BUF_INIT;
    struct timeval tv;
    int fd = -1, dfd;

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
    gettimeofday(&tv, NULL);
    buf_printf(&name, "%lld.M%ldP%ldQ%lu.", (long long)tv.tv_sec, (long)tv.tv_usec,
               (long)getpid(), c->count);
    unique_host(&name);
    buf_printf(&tmp, "%s/tmp/%s", c->dir, name.data);
    buf_printf(&nw, "%s/new/%s", c->dir, name.data);
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, MAILDIR_FILE_MODE);
    if (fd < 0) {
        maildir_fail(res, "create", tmp.data, errno);
        goto out;
    }
    if (content_copy(c->m, c->r, fd, COPY_ORIG_TO, res) < 0 || fsync(fd) < 0) {
        maildir_fail(res, "write", tmp.data, errno);
        (void)unlink(tmp.data);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        maildir_fail(res, "write", tmp.data, errno);
        (void)unlink(tmp.data);
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, nw.data) < 0) {
        maildir_fail(res, "rename to", nw.data, errno);
        (void)unlink(tmp.data);
        goto out;
    }
    buf_reset(&sub);
    buf_printf(&sub, "%s/new", c->dir);
    dfd = open(sub.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        int e = errno;

        if (dfd >= 0)
            close(dfd);
        maildir_fail(res, "sync", sub.data, e);
        goto out;
    }
    close(dfd);
    dres_set(res, DELIVER_SENT, "2.0.0", "delivered to maildir");
out:
    if (fd >= 0)
        close(fd);
    buf_free(&name);
    buf_free(&tmp);
    buf_free(&nw);
    buf_free(&sub);
}

/* deliver_maildir - deliver into the Maildir dir as user */
void deliver_maildir(struct lmsg *m, const struct lrcpt *r, const struct privs *user,
                     const char *dir, struct dres *res)
{
    struct maildir_ctx c = {.m = m, .r = r, .count = ++maildir_count};
    char *d = xstrdup(dir);
    size_t n = strlen(d);

    /* "Maildir/" names the directory; drop the trailing slashes. */
    while (n > 1 && d[n - 1] == '/')
        d[--n] = 0;
    c.dir = d;
    privs_run(user, local_conf.command_time_limit, maildir_child, &c, res);
    free(d);
}
