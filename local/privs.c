/*
 * privs.c - run each delivery with the recipient's privileges
 *
 * local runs as root. Every write into a user's mailbox, file or command
 * happens in a child process that first becomes the user for good
 * (setgid, initgroups, setuid, verified: setuid(0) must fail) and sends
 * its result (struct dres) back through a pipe. The parent waits with a
 * deadline and kills a child that overstays it. Files a user controls
 * (.forward, :include:) are opened with the user's effective IDs
 * (privs_open_as), so the kernel applies the user's permissions.
 *
 * DIAGNOSTICS: a failure to change IDs in the child is reported as a
 * deferral (4.3.0) and logged as a warning; a child that dies without a
 * result is a deferral too.
 * SECURITY: a child never returns to the request loop; it _exit()s.
 * Supplementary groups are set from the user's, never inherited.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "util/alloc.h"
#include "util/log.h"

#include "local.h"

#define PW_BUF_MAX (1024 * 1024)
#define PW_BUF_START 4096
#define MS_PER_SEC 1000LL
#define NS_PER_MS 1000000L
#define CHILD_EXIT_OK 0
#define CHILD_EXIT_FAIL 1
#define PRIVS_GROUPS_MAX 1024

/* privs_fill - copy a passwd entry */
static void privs_fill(struct privs *p, const struct passwd *pw)
{
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    p->user = xstrdup(pw->pw_name);
    p->home = xstrdup(pw->pw_dir ? pw->pw_dir : "/");
    p->shell = xstrdup(pw->pw_shell ? pw->pw_shell : "");
}

/* privs_getpw - passwd entry of name, or of uid if name is NULL; false if none */
static bool privs_getpw(const char *name, uid_t uid, struct privs *p, bool *tempfail)
{
    size_t size = PW_BUF_START;
    char *buf = NULL;
    struct passwd pw, *res = NULL;
    int e;

    memset(p, 0, sizeof(*p));
    *tempfail = false;
    for (;;) {
        buf = xrealloc(buf, size);
        if (name != NULL)
            e = getpwnam_r(name, &pw, buf, size, &res);
        else
            e = getpwuid_r(uid, &pw, buf, size, &res);
        if (e == ERANGE && size < PW_BUF_MAX) {
            size *= 2;
            continue;
        }
        break;
    }
    if (res == NULL) {
        /* ENOENT, ESRCH, EBADF, EPERM and 0 mean "no such user". */
        if (e != 0 && e != ENOENT && e != ESRCH && e != EBADF && e != EPERM)
            *tempfail = true;
        free(buf);
        return false;
    }
    privs_fill(p, res);
    free(buf);
    return true;
}

/* privs_lookup - the passwd entry of name; false if none (or *tempfail) */
bool privs_lookup(const char *name, struct privs *p, bool *tempfail)
{
    return privs_getpw(name, 0, p, tempfail);
}

/* privs_lookup_uid - the passwd entry of uid; false if none (or *tempfail) */
bool privs_lookup_uid(uid_t uid, struct privs *p, bool *tempfail)
{
    return privs_getpw(NULL, uid, p, tempfail);
}

/* privs_default - the default_privs identity */
void privs_default(struct privs *p)
{
    memset(p, 0, sizeof(*p));
    p->uid = local_conf.default_uid;
    p->gid = local_conf.default_gid;
    p->user = xstrdup(local_conf.default_user);
    p->home = xstrdup("/");
    p->shell = xstrdup("");
}

/* privs_free - release the strings */
void privs_free(struct privs *p)
{
    free(p->user);
    free(p->home);
    free(p->shell);
    memset(p, 0, sizeof(*p));
}

/* become - permanently take p's identity (in a child); false on failure */
static bool become(const struct privs *p)
{
    if (setgid(p->gid) < 0) {
        msg_warn("setgid %ld: %m", (long)p->gid);
        return false;
    }
    if (initgroups(p->user, p->gid) < 0) {
        gid_t g = p->gid;

        /* A user unknown to the group database still gets its own group. */
        if (setgroups(1, &g) < 0) {
            msg_warn("setgroups for %s: %m", p->user);
            return false;
        }
    }
    if (setuid(p->uid) < 0) {
        msg_warn("setuid %ld: %m", (long)p->uid);
        return false;
    }
    if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid
        || getegid() != p->gid) {
        msg_warn("privilege change to %s did not take effect", p->user);
        return false;
    }
    if (p->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        msg_warn("privilege change to %s is reversible", p->user);
        return false;
    }
    return true;
}

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * MS_PER_SEC + ts.tv_nsec / NS_PER_MS;
}

/* privs_run - run fn as p in a child; its result arrives in *r */
void privs_run(const struct privs *p, long long timeout, void (*fn)(void *ctx, struct dres *r),
               void *ctx, struct dres *r)
{
    int pfd[2];
    pid_t pid;
    struct dres got;
    size_t have = 0;
    long long deadline = now_ms() + timeout * MS_PER_SEC;
    int status;
    bool killed = false;

    memset(r, 0, sizeof(*r));
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        dres_set(r, DELIVER_DEFERRED, "4.3.0", "cannot create pipe: %s", strerror(errno));
        return;
    }
    pid = fork();
    if (pid < 0) {
        dres_set(r, DELIVER_DEFERRED, "4.3.0", "cannot fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return;
    }
    if (pid == 0) {
        struct dres out;

        close(pfd[0]);
        memset(&out, 0, sizeof(out));
        (void)signal(SIGTERM, SIG_DFL);
        (void)signal(SIGPIPE, SIG_IGN);
        if (geteuid() != 0 && p->uid != geteuid())
            dres_set(&out, DELIVER_DEFERRED, "4.3.0",
                     "cannot deliver as user %s: local runs without root privileges", p->user);
        else if (geteuid() == 0 && !become(p))
            dres_set(&out, DELIVER_DEFERRED, "4.3.0",
                     "cannot change privileges to user %s", p->user);
        else
            fn(ctx, &out);
        if (!out.set)
            dres_set(&out, DELIVER_DEFERRED, "4.3.0", "delivery produced no result");
        if (write(pfd[1], &out, sizeof(out)) != (ssize_t)sizeof(out))
            _exit(CHILD_EXIT_FAIL);
        _exit(CHILD_EXIT_OK);
    }
    close(pfd[1]);
    while (have < sizeof(got)) {
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        long long left = deadline - now_ms();
        ssize_t n;
        int pr;

        if (left <= 0) {
            msg_warn("delivery process %ld for user %s timed out: killing it", (long)pid,
                     p->user);
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        pr = poll(&pf, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        n = read(pfd[0], (char *)&got + have, sizeof(got) - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    if (have == sizeof(got) && got.set && deliver_dsn_valid(got.dsn, got.status)) {
        got.text[sizeof(got.text) - 1] = 0;
        *r = got;
    } else if (killed) {
        dres_set(r, DELIVER_DEFERRED, "4.3.0", "delivery time limit exceeded");
    } else {
        if (WIFSIGNALED(status))
            msg_warn("delivery process %ld killed by signal %d", (long)pid, WTERMSIG(status));
        dres_set(r, DELIVER_DEFERRED, "4.3.0", "delivery process died unexpectedly");
    }
}

/* open_ro - open path read-only for privs_as */
static int open_ro(const char *path, void *unused)
{
    (void)unused;
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
}

/* stat_to - stat path into *(struct stat *)st for privs_as */
static int stat_to(const char *path, void *st)
{
    return stat(path, st);
}

/*
 * privs_as - fn(path, ctx) with p's effective IDs (when root: switched to
 * and back, so the kernel applies the user's permissions); its result,
 * with its errno
 */
static int privs_as(const struct privs *p, int (*fn)(const char *path, void *ctx),
                    const char *path, void *ctx)
{
    gid_t saved[PRIVS_GROUPS_MAX];
    int nsaved, rc, e;
    gid_t g = p->gid;

    if (geteuid() != 0)
        return fn(path, ctx);
    nsaved = getgroups(PRIVS_GROUPS_MAX, saved);
    if (nsaved < 0)
        nsaved = 0;
    if (setgroups(1, &g) < 0 || setegid(p->gid) < 0 || seteuid(p->uid) < 0) {
        e = errno;
        if (seteuid(0) < 0 || setegid(0) < 0 || setgroups((size_t)nsaved, saved) < 0)
            msg_fatal("cannot restore root privileges: %m");
        errno = e;
        return -1;
    }
    rc = fn(path, ctx);
    e = errno;
    if (seteuid(0) < 0 || setegid(0) < 0 || setgroups((size_t)nsaved, saved) < 0)
        msg_fatal("cannot restore root privileges: %m");
    errno = e;
    return rc;
}

/* privs_open_as - open path read-only with p's effective IDs; fd or -1 */
int privs_open_as(const struct privs *p, const char *path)
{
    return privs_as(p, open_ro, path, NULL);
}

/* privs_stat_as - stat path (following links) with p's effective IDs; 0 or -1 */
int privs_stat_as(const struct privs *p, const char *path, struct stat *st)
{
    return privs_as(p, stat_to, path, st);
}
