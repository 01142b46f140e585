/*
 * lock.c - mailbox locks: dotlock files and fcntl/flock locks
 *
 * mailbox_delivery_lock (Postfix default on Linux: "fcntl, dotlock")
 * selects the methods. A dotlock is FILE.lock created with O_EXCL next to
 * the mailbox; one older than stale_lock_time is removed as stale (its
 * owner died). Both kinds are retried deliver_lock_attempts times,
 * deliver_lock_delay apart; giving up is a deferral (4.2.0, as Postfix:
 * "unable to lock for exclusive access").
 *
 * SECURITY: the dotlock is created with O_EXCL|O_NOFOLLOW and removed
 * only by whoever created it (lk->dotlock is set only on success).
 */
#include "util/sys.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "util/alloc.h"
#include "util/log.h"

#include "local.h"

#define DOTLOCK_MODE 0600
#define DOTLOCK_SUFFIX ".lock"

/* lock_sleep - wait deliver_lock_delay between attempts */
static void lock_sleep(void)
{
    struct timespec ts = {.tv_sec = local_conf.lock_delay > 0 ? local_conf.lock_delay : 1};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        continue;
}

/* lock_dot_acquire - create PATH.lock exclusively; false + *r on failure */
bool lock_dot_acquire(const char *path, struct mbox_lock *lk, struct dres *r)
{
    char *lock = xasprintf("%s%s", path, DOTLOCK_SUFFIX);
    int e = 0;

    lk->dotlock = NULL;
    for (long long i = 0; i < local_conf.lock_attempts; i++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, DOTLOCK_MODE);
        struct stat st;

        if (fd >= 0) {
            close(fd);
            lk->dotlock = lock;
            return true;
        }
        e = errno;
        if (e != EEXIST)
            break;
        if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > local_conf.stale_lock_time) {
            if (unlink(lock) == 0)
                msg_warn("%s: removed stale lock file", lock);
            continue;
        }
        if (i + 1 < local_conf.lock_attempts)
            lock_sleep();
    }
    dres_set(r, DELIVER_DEFERRED, "4.2.0",
             "unable to lock for exclusive access: %s: %s", lock,
             e == EEXIST ? "file exists (mailbox locked)" : strerror(e));
    free(lock);
    return false;
}

/* lock_dot_release - remove our dotlock */
void lock_dot_release(struct mbox_lock *lk)
{
    if (lk->dotlock == NULL)
        return;
    if (unlink(lk->dotlock) < 0 && errno != ENOENT)
        msg_warn("remove lock file %s: %m", lk->dotlock);
    free(lk->dotlock);
    lk->dotlock = NULL;
}

/* lock_fd - fcntl and/or flock lock on an open mailbox */
bool lock_fd(int fd, struct dres *r, const char *path)
{
    int e = 0;

    for (long long i = 0; i < local_conf.lock_attempts; i++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        bool ok = true;

        if (local_conf.lock_fcntl && fcntl(fd, F_SETLK, &fl) < 0) {
            ok = false;
            e = errno;
        }
        if (ok && local_conf.lock_flock && flock(fd, LOCK_EX | LOCK_NB) < 0) {
            ok = false;
            e = errno;
            if (local_conf.lock_fcntl) {
                fl.l_type = F_UNLCK;
                (void)fcntl(fd, F_SETLK, &fl);
            }
        }
        if (ok)
            return true;
        if (e != EAGAIN && e != EACCES && e != EWOULDBLOCK)
            break;
        if (i + 1 < local_conf.lock_attempts)
            lock_sleep();
    }
    dres_set(r, DELIVER_DEFERRED, "4.2.0", "unable to lock for exclusive access: %s: %s", path,
             strerror(e));
    return false;
}
