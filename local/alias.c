/*
 * alias.c - deliver to a list of destinations (alias value, .forward,
 * :include: file)
 *
 * Each destination of the list (mail/aliasfile.h) is delivered in turn:
 * local addresses recursively through resolve.c (the same request),
 * addresses in other domains together in one new queue file
 * (forward.c), files and commands with the list owner's privileges when
 * allow_mail_to_files / allow_mail_to_commands permit the list's origin
 * (alias, forward, include), :include: files read as the list owner.
 * The results are combined into one (result.c).
 *
 * DIAGNOSTICS: a list that does not parse is a deferral (4.3.5, a
 * configuration error the owner can fix); a restricted file or command
 * destination is bounced 5.7.1 ("mail to file is restricted", as
 * Postfix).
 * SECURITY: :include: files must be regular files, not writable by group
 * or others; their owner (unless root) becomes the owner of what they
 * list.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mail/aliasfile.h"
#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "local.h"

#define INCLUDE_INSECURE_BITS 022

/* full_address - addr with @myorigin when it has no domain */
static char *full_address(const char *addr)
{
    if (strchr(addr, '@'))
        return xstrdup(addr);
    return xasprintf("%s@%s", addr, cfg_str(local_conf.cfg, "myorigin"));
}

/* is_local_address - full (with a domain) is in a local domain */
static bool is_local_address(const char *full)
{
    char *lp = NULL, *dom = NULL;
    bool local;

    split_address(full, &lp, &dom);
    local = resolve_is_local_domain(dom);
    free(lp);
    free(dom);
    return local;
}

/* alias_deliver_address - one address, no list syntax: local, or forwarded */
void alias_deliver_address(struct lmsg *m, const struct lrcpt *r, const char *addr,
                           struct dres *res)
{
    char *full = full_address(addr);

    memset(res, 0, sizeof(*res));
    if (is_local_address(full)) {
        struct lrcpt c = *r;

        c.address = full;
        c.depth = r->depth + 1;
        resolve_deliver(m, &c, res);
    } else {
        forward_queue(m, r, &full, 1, res);
        local_log(m, r, res);
    }
    free(full);
}

/* read_include - the text of an :include: file, read as owner */
static bool read_include(const struct privs *owner, const char *path, struct buf *text,
                         uid_t *file_uid, struct dres *res)
{
    struct stat st;
    int fd;

    if (path[0] != '/') {
        dres_set(res, DELIVER_BOUNCED, "5.3.5", ":include: %s: not an absolute path", path);
        return false;
    }
    fd = privs_open_as(owner, path);
    if (fd < 0) {
        dres_set(res, errno == ENOENT || errno == EACCES ? DELIVER_BOUNCED : DELIVER_DEFERRED,
                 errno == ENOENT || errno == EACCES ? "5.3.5" : "4.3.5",
                 "cannot open include file %s: %s", path, strerror(errno));
        return false;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & INCLUDE_INSECURE_BITS)) {
        close(fd);
        dres_set(res, DELIVER_BOUNCED, "5.3.5",
                 "include file %s is not a regular file or is writable by others", path);
        return false;
    }
    *file_uid = st.st_uid;
    buf_init(text, ALIASFILE_TEXT_MAX);
    for (;;) {
        char chunk[LOCAL_READ_CHUNK];
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dres_set(res, DELIVER_DEFERRED, "4.3.5", "read include file %s: %s", path,
                     strerror(errno));
            close(fd);
            return false;
        }
        if (n == 0)
            break;
        if (buf_append(text, chunk, (size_t)n) < 0) {
            dres_set(res, DELIVER_BOUNCED, "5.3.5", "include file %s is too large", path);
            close(fd);
            return false;
        }
    }
    close(fd);
    return true;
}

/* deliver_include - expand an :include: file */
static void deliver_include(struct lmsg *m, const struct lrcpt *r, const char *path,
                            struct dres *res)
{
    struct buf text = BUF_INIT;
    struct privs fowner = {0};
    bool own = false;
    uid_t uid = 0;
    struct lrcpt c = *r;

    if (r->depth > LOCAL_EXPAND_DEPTH) {
        dres_set(res, DELIVER_BOUNCED, "5.4.6", "mail forwarding loop for %s (:include: %s)",
                 r->address, path);
        local_log(m, r, res);
        return;
    }
    if (!read_include(r->owner, path, &text, &uid, res)) {
        local_log(m, r, res);
        buf_free(&text);
        return;
    }
    if (uid != 0 && uid != r->owner->uid) {
        bool tempfail = false;

        /* The owner of the file answers for what it lists. */
        if (!privs_lookup_uid(uid, &fowner, &tempfail)) {
            dres_set(res, DELIVER_DEFERRED, "4.3.5", "include file %s: owner %ld unknown",
                     path, (long)uid);
            local_log(m, r, res);
            buf_free(&text);
            return;
        }
        own = true;
    }
    c.origin = LOCAL_ORIGIN_INCLUDE;
    c.owner = own ? &fowner : r->owner;
    c.depth = r->depth + 1;
    alias_deliver_list(m, &c, buf_str(&text), text.len, path, res);
    if (own)
        privs_free(&fowner);
    buf_free(&text);
}

/* allowed - is a file/command destination allowed for this origin */
static bool allowed(unsigned mask, const struct lrcpt *r)
{
    return (mask & r->origin) != 0;
}

/* alias_deliver_list - deliver to every destination of text */
void alias_deliver_list(struct lmsg *m, const struct lrcpt *r, const char *text, size_t len,
                        const char *what, struct dres *res)
{
    struct alias_list list = {0};
    char *err = NULL;
    char **remote = NULL;
    size_t nremote = 0;
    const struct privs *owner = r->owner;

    memset(res, 0, sizeof(*res));
    if (!aliasfile_parse(text, len, &list, &err)) {
        dres_set(res, DELIVER_DEFERRED, "4.3.5", "%s: bad destination list for %s: %s", what,
                 r->address, err);
        msg_warn("%s: %s", what, err);
        local_log(m, r, res);
        free(err);
        alias_list_free(&list);
        return;
    }
    if (list.n == 0) {
        dres_set(res, DELIVER_BOUNCED, "5.3.5", "%s: empty destination list for %s", what,
                 r->address);
        local_log(m, r, res);
        return;
    }
    for (size_t i = 0; i < list.n; i++) {
        const struct alias_item *it = &list.items[i];
        struct dres one = {0};

        switch (it->type) {
        case ALIAS_ADDR: {
            char *full = full_address(it->value);

            if (is_local_address(full)) {
                struct lrcpt c = *r;

                c.address = full;
                c.depth = r->depth + 1;
                resolve_deliver(m, &c, &one);
                free(full);
            } else {
                remote = xreallocarray(remote, nremote + 1, sizeof(char *));
                remote[nremote++] = full;
            }
            break;
        }
        case ALIAS_NOALIAS: {
            char *full = full_address(it->value);
            char *lp = NULL, *dom = NULL;
            struct lrcpt c = *r;

            split_address(full, &lp, &dom);
            c.address = full;
            c.depth = r->depth + 1;
            resolve_user(m, &c, lp, false, &one);
            free(lp);
            free(dom);
            free(full);
            break;
        }
        case ALIAS_FILE:
            if (!allowed(local_conf.allow_files, r)) {
                dres_set(&one, DELIVER_BOUNCED, "5.7.1", "mail to file is restricted");
            } else if (resolve_seen(m, "file", it->value)) {
                break;
            } else {
                deliver_file(m, r, owner, it->value, &one);
            }
            local_log(m, r, &one);
            break;
        case ALIAS_COMMAND:
            if (!allowed(local_conf.allow_commands, r)) {
                dres_set(&one, DELIVER_BOUNCED, "5.7.1", "mail to command is restricted");
            } else if (resolve_seen(m, "command", it->value)) {
                break;
            } else {
                deliver_command(m, r, owner, it->value, &one);
            }
            local_log(m, r, &one);
            break;
        case ALIAS_INCLUDE:
            deliver_include(m, r, it->value, &one);
            break;
        }
        dres_merge(res, &one);
    }
    if (nremote > 0) {
        struct dres one = {0};

        forward_queue(m, r, remote, nremote, &one);
        local_log(m, r, &one);
        dres_merge(res, &one);
        for (size_t i = 0; i < nremote; i++)
            free(remote[i]);
        free(remote);
    }
    if (!res->set)
        dres_set(res, DELIVER_SENT, "2.0.0", "delivered to %s", what);
    alias_list_free(&list);
}
