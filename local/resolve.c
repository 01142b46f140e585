/*
 * resolve.c - what a local recipient is: alias, .forward, or a mailbox
 *
 * As Postfix's local(8): all decisions use the address local part folded
 * to lower case. With recipient_delimiter set, "name+ext" is looked up
 * as "name+ext" first, then as "name". Order: the Delivered-To: loop
 * check, alias_maps, the passwd entry (unknown: bounced 5.1.1
 * "unknown user"), the user's forward_path files (read as the user),
 * then mailbox_transport(_maps) (pass.c), mailbox_command or the
 * mailbox. A user without a passwd entry goes to mailbox_transport(_maps),
 * else fallback_transport(_maps), else luser_relay when one is set. A
 * name already being expanded on this path ("name: name, other") goes
 * straight to the user's mailbox. With require_home_directory a home
 * directory the user cannot reach (an unmounted file system) defers the
 * delivery to that user (4.3.0) before any of it.
 *
 * DIAGNOSTICS: a lookup table or passwd failure defers (4.3.0); an
 * insecure .forward (not owned by the user or root, or group/world
 * writable) is ignored with a warning.
 * SECURITY: .forward files are opened with the user's privileges
 * (privs_open_as); commands and files run as the user, or as
 * default_privs for root and for aliases.
 */
#include "util/sys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mail/aliasfile.h"
#include "mail/config.h"
#include "mail/matchlist.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"
#include "util/macro.h"

#include "local.h"

#define FORWARD_INSECURE_BITS 022
/* An expanded luser_relay is one address: no list, no header syntax. */
#define LUSER_RELAY_BAD_CHARS " \t\r\n,<>()[];:\\\""

/* split_address - local part and domain (both malloc'ed; domain may be "") */
void split_address(const char *addr, char **local, char **domain)
{
    const char *at = strrchr(addr, '@');

    if (at) {
        *local = xstrndup(addr, (size_t)(at - addr));
        *domain = xstrdup(at + 1);
    } else {
        *local = xstrdup(addr);
        *domain = xstrdup("");
    }
    /* A quoted local part: "joe smith"@host -> joe smith */
    size_t n = strlen(*local);

    if (n >= 2 && (*local)[0] == '"' && (*local)[n - 1] == '"') {
        struct buf b = BUF_INIT;

        for (size_t i = 1; i + 1 < n; i++) {
            if ((*local)[i] == '\\' && i + 2 < n)
                i++;
            buf_putc(&b, (*local)[i]);
        }
        free(*local);
        *local = b.data ? buf_steal(&b) : xstrdup("");
    }
}

/* resolve_is_local_domain - empty, or in mydestination */
bool resolve_is_local_domain(const char *domain)
{
    if (*domain == 0)
        return true;
    return matchlist_match_domain(local_conf.mydestination, domain) == MATCH_YES;
}

/* lower - a lower-cased copy */
static char *lower(const char *s)
{
    char *c = xstrdup(s);

    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return c;
}

/* resolve_seen - per-recipient duplicate filter for final deliveries */
bool resolve_seen(struct lmsg *m, const char *kind, const char *what)
{
    char *key = xasprintf("%s:%s", kind, what);

    for (size_t i = 0; i < m->nseen; i++)
        if (strcmp(m->seen[i], key) == 0) {
            free(key);
            return true;
        }
    m->seen = xreallocarray(m->seen, m->nseen + 1, sizeof(char *));
    m->seen[m->nseen++] = key;
    return false;
}

/* in_chain - name is being expanded already on this path */
static bool in_chain(const struct lrcpt *r, const char *name)
{
    for (size_t i = 0; i < r->nchain; i++)
        if (strcmp(r->chain[i], name) == 0)
            return true;
    return false;
}

/* with_chain - a copy of r with name appended to the chain (free ->chain) */
static struct lrcpt with_chain(const struct lrcpt *r, const char *name)
{
    struct lrcpt c = *r;
    const char **chain = xcalloc(r->nchain + 1, sizeof(char *));

    for (size_t i = 0; i < r->nchain; i++)
        chain[i] = r->chain[i];
    chain[r->nchain] = name;
    c.chain = chain;
    c.nchain = r->nchain + 1;
    return c;
}

/* alias_lookup - DICT_FOUND with *value (malloc'ed), NOTFOUND or TEMPFAIL */
static enum dict_result alias_lookup(const char *key, char **value, const char **table)
{
    for (size_t i = 0; i < local_conf.nalias_maps; i++) {
        const char *v = NULL;
        enum dict_result dr;

        if (local_conf.alias_maps[i] == NULL) {
            *table = "alias_maps";   /* failed to open: see the warning */
            return DICT_TEMPFAIL;
        }
        dr = dict_lookup(local_conf.alias_maps[i], key, &v);
        if (dr == DICT_NOTFOUND && strcmp(dict_type(local_conf.alias_maps[i]), "texthash") == 0) {
            /* A texthash: over aliases(5) syntax ("name: value") keys "name:". */
            char *colon = xasprintf("%s:", key);

            dr = dict_lookup(local_conf.alias_maps[i], colon, &v);
            free(colon);
        }

        if (dr == DICT_FOUND) {
            *value = xstrdup(v);
            *table = dict_spec(local_conf.alias_maps[i]);
            return DICT_FOUND;
        }
        if (dr == DICT_TEMPFAIL) {
            *table = dict_spec(local_conf.alias_maps[i]);
            return DICT_TEMPFAIL;
        }
    }
    return DICT_NOTFOUND;
}

struct fwd_vars {
    const struct privs *u;
    const char *extension, *recipient, *domain, *local;
};

/* fwd_var - the value of a forward_path variable, or NULL (macro_lookup_fn) */
static const char *fwd_var(void *ctx, const char *name, size_t len)
{
    static const char *names[] = {"home", "user", "shell", "extension", "recipient",
                                  "domain", "local", "recipient_delimiter"};
    const struct fwd_vars *v = ctx;
    const char *vals[] = {v->u->home, v->u->user, v->u->shell, v->extension, v->recipient,
                          v->domain, v->local, local_conf.recipient_delimiter};

    for (size_t i = 0; i < POSTA_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
            return vals[i];
    return NULL;
}

/* fwd_expand - forward_path's $name, ${name}, ${name?text}, ${name:text} */
static char *fwd_expand(const char *text, const struct fwd_vars *v)
{
    struct buf out = BUF_INIT;

    macro_expand(text, fwd_var, (void *)v, &out);
    return out.data ? buf_steal(&out) : xstrdup("");
}

/*
 * path_tried - an earlier forward_path entry expanded to path already (the
 * default "$home/.forward${recipient_delimiter}${extension}, $home/.forward"
 * names the same file twice when there is no extension): it was not usable
 */
static bool path_tried(char **paths, size_t i, const char *path, const struct fwd_vars *v)
{
    for (size_t k = 0; k < i; k++) {
        char *earlier = fwd_expand(paths[k], v);
        bool same = strcmp(earlier, path) == 0;

        free(earlier);
        if (same)
            return true;
    }
    return false;
}

/* try_forward - deliver through the user's first forward_path file; false if none */
static bool try_forward(struct lmsg *m, const struct lrcpt *r, const struct privs *u,
                        const char *lname, const char *ext, struct dres *res)
{
    char **paths;
    size_t npaths;
    bool done = false;
    char *local = NULL, *domain = NULL;
    struct fwd_vars v = {.u = u, .extension = ext, .recipient = r->address};

    if (!*local_conf.forward_path)
        return false;
    split_address(r->address, &local, &domain);
    v.domain = domain;
    v.local = local;
    paths = cfg_split_list(local_conf.forward_path, &npaths);
    for (size_t i = 0; i < npaths && !done; i++) {
        char *path = fwd_expand(paths[i], &v);
        struct stat st;
        struct buf text = BUF_INIT;
        int fd;

        if (path[0] != '/' || path_tried(paths, i, path, &v)) {
            free(path);
            continue;
        }
        fd = privs_open_as(u, path);
        if (fd < 0) {
            if (errno != ENOENT && errno != ENOTDIR)
                msg_warn("cannot open %s as user %s: %m; ignoring it", path, u->user);
            free(path);
            continue;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
            || (st.st_uid != u->uid && st.st_uid != 0)
            || (st.st_mode & FORWARD_INSECURE_BITS)) {
            msg_warn("%s: not a regular file owned by %s or root, or writable by others: "
                     "ignoring it", path, u->user);
            close(fd);
            free(path);
            continue;
        }
        buf_init(&text, ALIASFILE_TEXT_MAX);
        for (;;) {
            char chunk[LOCAL_READ_CHUNK];
            ssize_t n = read(fd, chunk, sizeof(chunk));

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (buf_append(&text, chunk, (size_t)n) < 0)
                break;
        }
        close(fd);
        {
            struct lrcpt c = with_chain(r, lname);
            struct privs def;
            bool root = u->uid == 0;

            if (root)
                privs_default(&def);
            c.origin = LOCAL_ORIGIN_FORWARD;
            c.owner = root ? &def : u;
            c.depth = r->depth + 1;
            alias_deliver_list(m, &c, buf_str(&text), text.len, path, res);
            free((void *)c.chain);
            if (root)
                privs_free(&def);
        }
        done = true;
        buf_free(&text);
        free(path);
    }
    cfg_list_free(paths, npaths);
    free(local);
    free(domain);
    return done;
}

/* deliver_user - a known user: .forward, mailbox_command or mailbox */
static void deliver_user(struct lmsg *m, const struct lrcpt *r, const struct privs *u,
                         const char *lname, const char *ext, bool use_forward,
                         struct dres *res)
{
    struct stat st;

    /* require_home_directory: a home not there (an unmounted file system) defers */
    if (local_conf.require_home && privs_stat_as(u, u->home, &st) < 0) {
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "cannot access home directory %s: %s",
                 u->home, strerror(errno));
        local_log(m, r, res);
        return;
    }
    if (use_forward && !in_chain(r, lname) && try_forward(m, r, u, lname, ext, res))
        return;
    if (pass_deliver(m, r, PASS_MAILBOX, u->user, res))
        return;
    if (*local_conf.mailbox_command) {
        struct privs def;
        bool root = u->uid == 0;

        if (resolve_seen(m, "command", u->user)) {
            dres_set(res, DELIVER_SENT, "2.0.0", "duplicate delivery to %s suppressed",
                     u->user);
            return;
        }
        if (root)
            privs_default(&def);
        /* The command sees the user's identity (HOME, USER), as Postfix. */
        {
            struct privs run = root ? def : *u;

            if (root) {
                run.home = u->home;
                run.user = u->user;
                run.shell = u->shell;
            }
            deliver_command(m, r, &run, local_conf.mailbox_command, res);
        }
        if (root)
            privs_free(&def);
        local_log(m, r, res);
        return;
    }
    if (resolve_seen(m, "mailbox", u->user)) {
        dres_set(res, DELIVER_SENT, "2.0.0", "duplicate delivery to %s suppressed", u->user);
        return;
    }
    deliver_mailbox(m, r, u, res);
    local_log(m, r, res);
}

/*
 * luser_relay - an unknown user's mail to luser_relay ($user, $local,
 * $extension, $domain, $recipient expanded; one address, never a list,
 * file or command, as Postfix); false when it is not set, or when this
 * user came back to it (luser_relay names an unknown user: bounce)
 */
static bool luser_relay(struct lmsg *m, const struct lrcpt *r, const char *user,
                        const char *ext, struct dres *res)
{
    struct privs none = {.user = (char *)user};
    struct fwd_vars v = {.u = &none, .extension = ext, .recipient = r->address};
    char *local = NULL, *domain = NULL, *addr;

    if (!*local_conf.luser_relay || resolve_seen(m, "luser_relay", user))
        return false;
    split_address(r->address, &local, &domain);
    v.local = local;
    v.domain = domain;
    addr = fwd_expand(local_conf.luser_relay, &v);
    if (*addr == 0 || addr[strcspn(addr, LUSER_RELAY_BAD_CHARS)] != 0) {
        dres_set(res, DELIVER_BOUNCED, "5.1.3", "bad luser_relay address \"%s\" for %s", addr,
                 r->address);
        local_log(m, r, res);
    } else {
        alias_deliver_address(m, r, addr, res);
    }
    free(addr);
    free(local);
    free(domain);
    return true;
}

/*
 * deliver_unknown - no passwd entry (*res says so: bounced, or deferred
 * for a lookup error): mailbox_transport, then fallback_transport, take
 * the recipient as Postfix's local does; otherwise *res is logged
 */
static void deliver_unknown(struct lmsg *m, const struct lrcpt *r, const char *user,
                            const char *ext, struct dres *res)
{
    if (res->status == DELIVER_BOUNCED) {
        struct dres passed = {0};

        if (pass_deliver(m, r, PASS_MAILBOX, user, &passed)
            || pass_deliver(m, r, PASS_FALLBACK, user, &passed)
            || luser_relay(m, r, user, ext, &passed)) {
            *res = passed;
            return;
        }
    }
    local_log(m, r, res);
}

/* lookup_user - passwd entry of name, then of base; false + *res if none */
static bool lookup_user(const struct lrcpt *r, const char *lname, const char *base,
                        struct privs *u, struct dres *res)
{
    bool tempfail = false;

    if (privs_lookup(lname, u, &tempfail))
        return true;
    if (!tempfail && base && privs_lookup(base, u, &tempfail))
        return true;
    if (tempfail)
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "user lookup error for \"%s\"", lname);
    else
        dres_set(res, DELIVER_BOUNCED, "5.1.1", "unknown user: \"%s\"", lname);
    return false;
}

/* resolve_user - deliver to a user, skipping aliases */
void resolve_user(struct lmsg *m, const struct lrcpt *r, const char *name, bool use_forward,
                  struct dres *res)
{
    char *lname = lower(name);
    const char *delim = local_conf.recipient_delimiter;
    char *base = NULL;
    const char *ext = NULL;
    struct privs u;

    if (*delim) {
        size_t k = strcspn(lname, delim);

        if (lname[k] && k > 0) {
            base = xstrndup(lname, k);
            ext = lname + k + 1;
        }
    }
    if (!lookup_user(r, lname, base, &u, res)) {
        deliver_unknown(m, r, base ? base : lname, ext, res);
    } else {
        deliver_user(m, r, &u, u.user, ext, use_forward, res);
        privs_free(&u);
    }
    free(base);
    free(lname);
}

/* resolve_deliver - deliver to one local address (recursively expanded) */
void resolve_deliver(struct lmsg *m, const struct lrcpt *r, struct dres *res)
{
    char *local = NULL, *domain = NULL, *lname, *base = NULL, *value = NULL;
    const char *delim = local_conf.recipient_delimiter, *table = NULL, *ext = NULL;
    enum dict_result dr = DICT_NOTFOUND;
    const char *key = NULL;

    memset(res, 0, sizeof(*res));
    if (content_delivered_to(m, r->address)) {
        dres_set(res, DELIVER_BOUNCED, "5.4.6", "mail forwarding loop for %s", r->address);
        local_log(m, r, res);
        return;
    }
    if (r->depth > LOCAL_EXPAND_DEPTH) {
        dres_set(res, DELIVER_BOUNCED, "5.4.6",
                 "mail forwarding loop for %s (alias nesting deeper than %d)", r->address,
                 LOCAL_EXPAND_DEPTH);
        local_log(m, r, res);
        return;
    }
    split_address(r->address, &local, &domain);
    lname = lower(local);
    if (*lname == 0) {
        dres_set(res, DELIVER_BOUNCED, "5.1.3", "bad address syntax: \"%s\"", r->address);
        local_log(m, r, res);
        goto out;
    }
    if (*delim) {
        size_t k = strcspn(lname, delim);

        if (lname[k] && k > 0) {
            base = xstrndup(lname, k);
            ext = lname + k + 1;
        }
    }
    /* Aliases: the full name, then without the extension. */
    if (!in_chain(r, lname) && !(base && in_chain(r, base))) {
        key = lname;
        dr = alias_lookup(lname, &value, &table);
        if (dr == DICT_NOTFOUND && base) {
            key = base;
            dr = alias_lookup(base, &value, &table);
        }
    }
    if (dr == DICT_TEMPFAIL) {
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "alias database unavailable: %s", table);
        local_log(m, r, res);
        goto out;
    }
    if (dr == DICT_FOUND) {
        struct lrcpt c = with_chain(r, key);
        struct privs def;

        privs_default(&def);
        c.origin = LOCAL_ORIGIN_ALIAS;
        c.owner = &def;
        c.depth = r->depth + 1;
        alias_deliver_list(m, &c, value, strlen(value), table, res);
        privs_free(&def);
        free((void *)c.chain);
        goto out;
    }
    {
        struct privs u;

        if (!lookup_user(r, lname, base, &u, res)) {
            deliver_unknown(m, r, base ? base : lname, ext, res);
            goto out;
        }
        deliver_user(m, r, &u, u.user, ext, true, res);
        privs_free(&u);
    }
out:
    free(value);
    free(base);
    free(lname);
    free(local);
    free(domain);
}
