/*
 * cmd_check.c - "posta check" and "posta set-permissions"
 *
 * check loads main.cf and master.cf (every value checked against the
 * settings table), looks for each program master.cf runs in
 * daemon_directory, and compares the spool with what master creates
 * (mail/spool.h, docs/QUEUE.md):
 *   $queue_directory         root, 0755
 *   incoming active deferred hold corrupt defer bounce private
 *                            mail_owner (its group), 0700
 *   maildrop                 mail_owner:setgid_group, 0730
 *   public                   mail_owner:setgid_group, 0710
 *   pid                      root, 0755
 * the files in the queue and log directories (regular files of
 * mail_owner, no symbolic links), main.cf and master.cf (not writable by
 * group or others; root's when the spool is root's), and postdrop in
 * command_directory (set-group-ID setgid_group). When $queue_directory
 * does not belong to root the instance is an unprivileged one (make run,
 * the tests): everything must then belong to the owner of
 * $queue_directory, with the same modes.
 *
 * set-permissions makes it so: spool_create() for the directories (as
 * master does at start), then the files, configuration files and
 * postdrop; then it checks again.
 *
 * DIAGNOSTICS
 *   One line per problem on stderr: "posta check: error: ..." for a
 *   configuration that does not load or a program that is missing,
 *   "posta check: warning: ..." for owners and modes; either makes the
 *   exit status 1. A spool directory that does not exist yet is only a
 *   note, shown with -v (master creates it at start).
 * SECURITY
 *   Files are examined and changed without following symbolic links
 *   (fstatat/fchownat with AT_SYMLINK_NOFOLLOW, directories opened with
 *   O_NOFOLLOW); a symbolic link in the spool is reported, never followed.
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>

#include "../smtpd/policy.h"
#include "cmd_check.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "mail/spool.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define EXIT_CHECK_OK 0
#define EXIT_CHECK_PROBLEM 1
#define EXIT_CHECK_USAGE 2

#define CHECK_PROG "posta check"
#define SETPERM_PROG "posta set-permissions"
#define CHECK_FILE_MAX ((size_t)4 << 20)
#define MODE_BITS 07777
#define TOP_MODE 0755
#define POSTDROP_NAME "postdrop"
#define POSTDROP_MODE 02755
#define CONFIG_NOT_WRITABLE 022   /* group and others must not write */

enum owner_kind { OWN_ROOT, OWN_MAIL, OWN_MAIL_SETGID };

/* What master creates (mail/spool.c); contents: files to check inside. */
static const struct check_dir {
    const char *name;
    enum owner_kind owner;
    mode_t mode;
    bool contents;
} check_dirs[] = {
    {"incoming", OWN_MAIL, 0700, true},  {"active", OWN_MAIL, 0700, true},
    {"deferred", OWN_MAIL, 0700, true},  {"hold", OWN_MAIL, 0700, true},
    {"corrupt", OWN_MAIL, 0700, true},   {"defer", OWN_MAIL, 0700, true},
    {"bounce", OWN_MAIL, 0700, true},    {"maildrop", OWN_MAIL_SETGID, 0730, false},
    {"public", OWN_MAIL_SETGID, 0710, false}, {"private", OWN_MAIL, 0700, false},
    {"pid", OWN_ROOT, 0755, false},
};

struct checker {
    const char *prog;
    struct cfg *cfg;
    bool privileged;     /* the spool is root's: real owners */
    bool repair;         /* set-permissions */
    uid_t mail_uid;
    gid_t mail_gid;
    gid_t setgid_gid;
    bool have_setgid;
    int verbose;         /* notes are shown with -v only */
    int problems;
};

/* report - "PROG: LEVEL: text" on stderr; counts the problem */
static void POSTA_PRINTF(3, 4) report(struct checker *c, const char *level, const char *fmt, ...)
{
    va_list ap;

    if (strcmp(level, "note") == 0 && !c->verbose)
        return;
    fflush(stdout);
    fprintf(stderr, "%s: %s: ", c->prog, level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (strcmp(level, "note") != 0)
        c->problems++;
}

/* user_name - a uid as "name" or the number */
static void user_name(uid_t uid, char *out, size_t len)
{
    struct passwd *pw = getpwuid(uid);

    if (pw)
        snprintf(out, len, "%s", pw->pw_name);
    else
        snprintf(out, len, "%ld", (long)uid);
}

/* group_name - a gid as "name" or the number */
static void group_name(gid_t gid, char *out, size_t len)
{
    struct group *gr = getgrgid(gid);

    if (gr)
        snprintf(out, len, "%s", gr->gr_name);
    else
        snprintf(out, len, "%ld", (long)gid);
}

/* expected_owner - uid and gid (gid -1: any) a spool entry should have */
static void expected_owner(const struct checker *c, enum owner_kind k, uid_t top_uid, uid_t *uid,
                           gid_t *gid)
{
    if (!c->privileged) {
        *uid = top_uid;
        *gid = (gid_t)-1;
    } else if (k == OWN_ROOT) {
        *uid = 0;
        *gid = 0;
    } else {
        *uid = c->mail_uid;
        *gid = k == OWN_MAIL_SETGID ? c->setgid_gid : c->mail_gid;
    }
}

/* check_owner_mode - compare st with uid/gid/mode (mode 0: any); report */
static void check_owner_mode(struct checker *c, const char *path, const struct stat *st,
                             uid_t uid, gid_t gid, mode_t mode)
{
    char have[64], want[64];

    if (st->st_uid != uid) {
        user_name(st->st_uid, have, sizeof(have));
        user_name(uid, want, sizeof(want));
        report(c, "warning", "%s: owner is %s, should be %s", path, have, want);
    }
    if (gid != (gid_t)-1 && st->st_gid != gid) {
        group_name(st->st_gid, have, sizeof(have));
        group_name(gid, want, sizeof(want));
        report(c, "warning", "%s: group is %s, should be %s", path, have, want);
    }
    if (mode && (st->st_mode & MODE_BITS) != mode)
        report(c, "warning", "%s: mode is %04o, should be %04o", path,
               (unsigned)(st->st_mode & MODE_BITS), (unsigned)mode);
}

/* check_contents - the files in one queue or log directory */
static void check_contents(struct checker *c, int dfd, const char *path, uid_t uid, gid_t gid)
{
    struct dirent *e;
    DIR *d = fdopendir(dup(dfd));

    if (d == NULL) {
        report(c, "warning", "%s: cannot read: %s", path, strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char *file;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;   /* delivered meanwhile */
        file = xasprintf("%s/%s", path, e->d_name);
        if (!S_ISREG(st.st_mode)) {
            report(c, "warning", "%s: not a regular file (posta super -s moves it away)", file);
        } else if (st.st_uid != uid || (gid != (gid_t)-1 && st.st_gid != gid)) {
            if (c->repair && fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0)
                printf("%s: %s: owner fixed\n", c->prog, file);
            else
                check_owner_mode(c, file, &st, uid, gid, 0);
        }
        free(file);
    }
    closedir(d);
}

/* check_spool - the queue directory tree */
static void check_spool(struct checker *c)
{
    const char *top = cfg_str(c->cfg, "queue_directory");
    struct stat st;
    int topfd;

    if (*top != '/') {
        report(c, "error", "queue_directory = %s: not an absolute path", top);
        return;
    }
    if ((topfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(topfd, &st) < 0) {
        if (errno == ENOENT)
            report(c, "note", "queue_directory = %s: does not exist yet (created at start)", top);
        else
            report(c, "error", "queue_directory = %s: %s", top, strerror(errno));
        if (topfd >= 0)
            close(topfd);
        return;
    }
    c->privileged = st.st_uid == 0;
    if (c->privileged)
        check_owner_mode(c, top, &st, 0, 0, TOP_MODE);
    else if ((st.st_mode & MODE_BITS) != TOP_MODE)
        report(c, "warning", "%s: mode is %04o, should be %04o", top,
               (unsigned)(st.st_mode & MODE_BITS), (unsigned)TOP_MODE);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(check_dirs); i++) {
        const struct check_dir *d = &check_dirs[i];
        char *path = xasprintf("%s/%s", top, d->name);
        struct stat ds;
        uid_t uid;
        gid_t gid;
        int dfd;

        expected_owner(c, d->owner, st.st_uid, &uid, &gid);
        if (fstatat(topfd, d->name, &ds, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                report(c, "note", "%s: does not exist yet (created at start)", path);
            else
                report(c, "warning", "%s: %s", path, strerror(errno));
        } else if (!S_ISDIR(ds.st_mode)) {
            report(c, "warning", "%s: not a directory (or a symbolic link)", path);
        } else {
            check_owner_mode(c, path, &ds, uid, gid, d->mode);
            if (d->contents
                && (dfd = openat(topfd, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
                       >= 0) {
                expected_owner(c, OWN_MAIL, st.st_uid, &uid, &gid);
                check_contents(c, dfd, path, uid, gid);
                close(dfd);
            }
        }
        free(path);
    }
    close(topfd);
}

/* check_config_file - main.cf/master.cf: not writable by group/others */
static void check_config_file(struct checker *c, const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return;   /* reported by the loader */
    if ((st.st_mode & CONFIG_NOT_WRITABLE) != 0) {
        if (c->repair && chmod(path, st.st_mode & MODE_BITS & ~(mode_t)CONFIG_NOT_WRITABLE) == 0)
            printf("%s: %s: mode fixed\n", c->prog, path);
        else
            report(c, "warning", "%s: writable by group or others (mode %04o)", path,
                   (unsigned)(st.st_mode & MODE_BITS));
    }
    if (c->privileged && st.st_uid != 0) {
        if (c->repair && lchown(path, 0, (gid_t)-1) == 0)
            printf("%s: %s: owner fixed\n", c->prog, path);
        else
            check_owner_mode(c, path, &st, 0, (gid_t)-1, 0);
    }
}

/* check_postdrop - command_directory/postdrop: set-group-ID setgid_group */
static void check_postdrop(struct checker *c)
{
    char *path = xasprintf("%s/%s", cfg_str(c->cfg, "command_directory"), POSTDROP_NAME);
    struct stat st;

    if (c->privileged && c->have_setgid && lstat(path, &st) == 0 && S_ISREG(st.st_mode)
        && (st.st_gid != c->setgid_gid || (st.st_mode & MODE_BITS) != POSTDROP_MODE)) {
        /* chown clears the set-group-ID bit: mode after owner */
        if (c->repair && chown(path, 0, c->setgid_gid) == 0 && chmod(path, POSTDROP_MODE) == 0)
            printf("%s: %s: owner and mode fixed\n", c->prog, path);
        else
            check_owner_mode(c, path, &st, st.st_uid, c->setgid_gid, POSTDROP_MODE);
    }
    free(path);
}

/* resolve_owners - mail_owner and setgid_group; errors reported */
static void resolve_owners(struct checker *c)
{
    const char *user = cfg_str(c->cfg, "mail_owner");
    const char *group = cfg_str(c->cfg, "setgid_group");
    struct passwd *pw = getpwnam(user);
    struct group *gr = getgrnam(group);

    if (pw == NULL) {
        report(c, "error", "mail_owner = %s: no such user", user);
        c->mail_uid = (uid_t)-1;
        c->mail_gid = (gid_t)-1;
    } else {
        if (pw->pw_uid == 0)
            report(c, "error", "mail_owner = %s: must not be the super-user", user);
        c->mail_uid = pw->pw_uid;
        c->mail_gid = pw->pw_gid;
    }
    if (gr == NULL) {
        report(c, "error", "setgid_group = %s: no such group", group);
        c->setgid_gid = (gid_t)-1;
    } else {
        c->setgid_gid = gr->gr_gid;
        c->have_setgid = true;
    }
}

/* check_dir_param - an absolute directory that exists */
static void check_dir_param(struct checker *c, const char *param, bool must_exist)
{
    const char *dir = cfg_str(c->cfg, param);
    struct stat st;

    if (dir[0] != '/')
        report(c, "error", "%s = %s: not an absolute path", param, dir);
    else if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        report(c, must_exist ? "error" : "note", "%s = %s: %s", param, dir,
               must_exist ? "not an existing directory" : "does not exist yet (created at start)");
}

/* check_master - master.cf parses and its programs exist */
static void check_master(struct checker *c, const char *config_dir)
{
    char *path = xasprintf("%s/master.cf", config_dir);
    struct master_cf m = {NULL, 0};
    char *err = NULL;

    if (!master_cf_load(path, &m, &err)) {
        report(c, "error", "%s", err ? err : "master.cf cannot be loaded");
        free(err);
        free(path);
        return;
    }
    for (size_t i = 0; c->cfg && i < m.n; i++) {
        char *prog = xasprintf("%s/%s", cfg_str(c->cfg, "daemon_directory"), m.svc[i].command);

        if (access(prog, X_OK) < 0 && master_cf_postfix_only(m.svc[i].command))
            report(c, "warning", "%s, line %d: service %s: program %s is not part of posta "
                   "(its work is done elsewhere): ignored",
                   m.svc[i].file ? m.svc[i].file : path, m.svc[i].line, m.svc[i].name,
                   m.svc[i].command);
        else if (access(prog, X_OK) < 0)
            report(c, "error", "%s, line %d: service %s/%s: cannot execute %s: %s",
                   m.svc[i].file ? m.svc[i].file : path, m.svc[i].line, m.svc[i].name,
                   m.svc[i].type, prog, strerror(errno));
        free(prog);
    }
    master_cf_free(&m);
    free(path);
}

/* load_main - main.cf with every value checked; NULL after a report */
static struct cfg *load_main(struct checker *c, const char *config_dir)
{
    char *path = xasprintf("%s/main.cf", config_dir);
    struct buf text = BUF_INIT;
    struct cfg *cfg = NULL;
    char *err = NULL;

    if (!cfg_read_file(path, CHECK_FILE_MAX, &text, &err)) {
        report(c, "error", "%s", err);
    } else if ((cfg = cfg_load_string(buf_str(&text), text.len, path, &err)) == NULL) {
        report(c, "error", "%s", err ? err : "main.cf cannot be loaded");
    }
    free(err);
    buf_free(&text);
    free(path);
    return cfg;
}

/* check_restrictions - smtpd's restriction lists parse and their tables open */
static void check_restrictions(struct checker *c)
{
    struct restr_config rc;
    char *err = NULL;

    if (restr_config_load(c->cfg, true, &rc, &err)) {
        restr_config_free(&rc);
        return;
    }
    report(c, "fatal", "%s", err);
    free(err);
}

/* run_check - every check; the exit status */
static int run_check(struct checker *c, const char *config_dir, int verbose)
{
    char *main_cf = xasprintf("%s/main.cf", config_dir);
    char *master_cf = xasprintf("%s/master.cf", config_dir);

    c->problems = 0;
    c->verbose = verbose;
    c->cfg = load_main(c, config_dir);
    check_master(c, config_dir);
    if (c->cfg) {
        check_restrictions(c);
        check_dir_param(c, "daemon_directory", true);
        check_dir_param(c, "data_directory", false);
        resolve_owners(c);
        check_spool(c);
        check_config_file(c, main_cf);
        check_config_file(c, master_cf);
        check_postdrop(c);
        cfg_free(c->cfg);
        c->cfg = NULL;
    }
    if (c->problems == 0 && verbose)
        printf("%s: configuration %s: no problems found\n", c->prog, config_dir);
    free(main_cf);
    free(master_cf);
    fflush(stdout);
    return c->problems ? EXIT_CHECK_PROBLEM : EXIT_CHECK_OK;
}

/* cmd_check - "posta check" */
int cmd_check(int argc, char **argv, const char *config_dir, int verbose)
{
    struct checker c;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: posta [-c config_dir] [-v] check\n");
        return EXIT_CHECK_USAGE;
    }
    memset(&c, 0, sizeof(c));
    c.prog = CHECK_PROG;
    return run_check(&c, config_dir, verbose);
}

/* cmd_set_permissions - "posta set-permissions" */
int cmd_set_permissions(int argc, char **argv, const char *config_dir, int verbose)
{
    struct checker c;
    struct cfg *cfg;
    struct stat st;
    const char *top;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: posta [-c config_dir] set-permissions\n");
        return EXIT_CHECK_USAGE;
    }
    memset(&c, 0, sizeof(c));
    c.prog = SETPERM_PROG;
    if ((cfg = load_main(&c, config_dir)) == NULL)
        return EXIT_CHECK_PROBLEM;
    top = cfg_str(cfg, "queue_directory");
    /* root, or the owner of an unprivileged instance */
    if (geteuid() != 0 && (stat(top, &st) < 0 || st.st_uid != geteuid())) {
        report(&c, "fatal", "only root (or the owner of %s) may do this", top);
        cfg_free(cfg);
        return EXIT_CHECK_PROBLEM;
    }
    if (geteuid() == 0 && stat(top, &st) == 0 && st.st_uid != 0) {
        /* an unprivileged instance stays its owner's: owners, then modes as the owner */
        int topfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        for (size_t i = 0; topfd >= 0 && i < POSTA_ARRAY_LEN(check_dirs); i++) {
            struct stat ds;

            if (fstatat(topfd, check_dirs[i].name, &ds, AT_SYMLINK_NOFOLLOW) == 0
                && S_ISDIR(ds.st_mode) && ds.st_uid != st.st_uid
                && fchownat(topfd, check_dirs[i].name, st.st_uid, st.st_gid,
                            AT_SYMLINK_NOFOLLOW) < 0)
                report(&c, "warning", "%s/%s: change owner: %s", top, check_dirs[i].name,
                       strerror(errno));
        }
        if (topfd >= 0)
            close(topfd);
        if (seteuid(st.st_uid) < 0) {
            report(&c, "fatal", "become the owner of %s: %s", top, strerror(errno));
            cfg_free(cfg);
            return EXIT_CHECK_PROBLEM;
        }
        spool_create(cfg);
        if (seteuid(0) < 0)
            msg_fatal("seteuid(0): %m");
    } else {
        spool_create(cfg);   /* directories: owners and modes, as master */
    }
    cfg_free(cfg);
    /* then the files, and a final report of what is left */
    c.repair = true;
    return run_check(&c, config_dir, verbose);
}
