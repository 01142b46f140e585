/*
 * spool.c - create the queue directory tree with its owners and modes
 *
 * spool_create makes $queue_directory and its subdirectories (the table
 * below) when missing and sets their modes; when running as root it also
 * sets their owners: mail_owner (and its primary group), setgid_group for
 * maildrop/ and public/, root for the top directory and pid/. An
 * unprivileged instance (make run, the tests) owns everything itself; the
 * modes are applied all the same.
 *
 * DIAGNOSTICS
 *   Fatal, naming the path, when a directory cannot be created, opened or
 *   changed, when a path is not a directory (or is a symbolic link), or
 *   when mail_owner or setgid_group does not exist.
 * SECURITY
 *   Directories are opened with O_NOFOLLOW and changed through their
 *   descriptors (fchown/fchmod), so a symbolic link planted in the spool
 *   cannot redirect the changes elsewhere.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>

#include "mail/config.h"
#include "mail/spool.h"
#include "util/log.h"

#define TOP_MODE 0755
#define MODE_BITS 07777

enum spool_owner { OWN_ROOT, OWN_MAIL, OWN_MAIL_SETGID };

struct spool_dir {
    const char *name;
    enum spool_owner owner;
    mode_t mode;
};

static const struct spool_dir spool_dirs[] = {
    {"incoming", OWN_MAIL, 0700},
    {"active", OWN_MAIL, 0700},
    {"deferred", OWN_MAIL, 0700},
    {"hold", OWN_MAIL, 0700},
    {"corrupt", OWN_MAIL, 0700},
    {"defer", OWN_MAIL, 0700},
    {"bounce", OWN_MAIL, 0700},
    {"maildrop", OWN_MAIL_SETGID, 0730},
    {"public", OWN_MAIL_SETGID, 0710},
    {"private", OWN_MAIL, 0700},
    {"pid", OWN_ROOT, 0755},
};

/* Resolved owners. */
struct owners {
    bool privileged;
    uid_t mail_uid;
    gid_t mail_gid;
    gid_t setgid_gid;
};

/* resolve_owners - look up mail_owner and setgid_group when root */
static void resolve_owners(struct cfg *cfg, struct owners *o)
{
    const char *user, *group;
    struct passwd *pw;
    struct group *gr;

    o->privileged = geteuid() == 0;
    if (!o->privileged)
        return;
    user = cfg_str(cfg, "mail_owner");
    group = cfg_str(cfg, "setgid_group");
    errno = 0;
    if ((pw = getpwnam(user)) == NULL)
        msg_fatal("mail_owner: unknown user \"%s\"%s%s", user, errno ? ": " : "",
                  errno ? strerror(errno) : "");
    if (pw->pw_uid == 0)
        msg_fatal("mail_owner \"%s\" must not be the super-user", user);
    o->mail_uid = pw->pw_uid;
    o->mail_gid = pw->pw_gid;
    errno = 0;
    if ((gr = getgrnam(group)) == NULL)
        msg_fatal("setgid_group: unknown group \"%s\"%s%s", group, errno ? ": " : "",
                  errno ? strerror(errno) : "");
    if (gr->gr_gid == 0)
        msg_fatal("setgid_group \"%s\" must not be the super-user group", group);
    o->setgid_gid = gr->gr_gid;
}

/*
 * fix_dir - create path (relative to at) if missing, then set owner and mode;
 * follow: a symbolic link is acceptable (the top directory only)
 */
static void fix_dir(int at, const char *name, const char *path, bool follow, bool chown_it,
                    uid_t uid, gid_t gid, mode_t mode)
{
    struct stat st;
    int fd;

    if (mkdirat(at, name, mode & 0777) < 0 && errno != EEXIST)
        msg_fatal("create directory %s: %m", path);
    fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        if (errno == ENOTDIR || errno == ELOOP)
            msg_fatal("%s: not a directory (or a symbolic link)", path);
        msg_fatal("open directory %s: %m", path);
    }
    if (fstat(fd, &st) < 0)
        msg_fatal("stat %s: %m", path);
    if (chown_it && (st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
        msg_fatal("change owner of %s to %ld:%ld: %m", path, (long)uid, (long)gid);
    /* chown clears set-id bits, so set the mode after it */
    if (((st.st_mode & MODE_BITS) != mode || chown_it) && fchmod(fd, mode) < 0)
        msg_fatal("change mode of %s to %04o: %m", path, (unsigned)mode);
    close(fd);
}

/* spool_create - create missing directories; fix owner/mode */
void spool_create(struct cfg *cfg)
{
    const char *top = cfg_str(cfg, "queue_directory");
    struct owners o = {0};
    char path[PATH_MAX];
    int topfd;

    if (top == NULL || *top != '/')
        msg_fatal("queue_directory \"%s\" is not an absolute path", top ? top : "");
    resolve_owners(cfg, &o);
    fix_dir(AT_FDCWD, top, top, true, o.privileged, 0, 0, TOP_MODE);
    topfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (topfd < 0)
        msg_fatal("open directory %s: %m", top);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(spool_dirs); i++) {
        const struct spool_dir *d = &spool_dirs[i];
        uid_t uid = 0;
        gid_t gid = 0;

        if (d->owner != OWN_ROOT) {
            uid = o.mail_uid;
            gid = d->owner == OWN_MAIL_SETGID ? o.setgid_gid : o.mail_gid;
        }
        snprintf(path, sizeof(path), "%s/%s", top, d->name);
        fix_dir(topfd, d->name, path, false, o.privileged, uid, gid, d->mode);
    }
    close(topfd);
}

/* spool_dir_fd - open $queue_directory/name as a directory descriptor */
int spool_dir_fd(struct cfg *cfg, const char *name)
{
    const char *top = cfg_str(cfg, "queue_directory");
    char path[PATH_MAX];
    int fd;

    if (snprintf(path, sizeof(path), "%s/%s", top, name) >= (int)sizeof(path))
        msg_fatal("queue directory path too long: %s/%s", top, name);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        msg_fatal("open queue directory %s: %m", path);
    return fd;
}
