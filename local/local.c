/*
 * local.c - posta's local delivery agent: settings, requests, results
 *
 * USAGE: started by master as root (master.cf: local unix - n n - - local),
 * several processes; each serves one connection from qmgr at a time. A
 * connection carries deliver/1 requests (mail/deliver.h): for each, the
 * agent re-checks the queue ID and the recipients against
 * $queue_directory/active/QID, delivers each recipient (resolve.c) and
 * answers with one result per recipient, then reads the next request
 * until qmgr closes the connection.
 *
 * Each final delivery is logged in Postfix's format:
 *   QID: to=<rcpt>, orig_to=<orig>, relay=local, delay=D,
 *        delays=a/b/c/d, dsn=X.Y.Z, status=sent (delivered to mailbox)
 * (orig_to only when it differs; a = queue wait before active, b = in
 * qmgr, c = 0, d = this delivery).
 *
 * DIAGNOSTICS: a malformed request closes the connection with a warning;
 * bad settings are fatal (master restarts the daemon). See man/local.8.
 * SECURITY: keeps root to become each recipient (privs.c); never writes
 * a user's file as root. Requests come only from qmgr (private/ socket).
 */
#include "util/sys.h"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "mail/attr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/matchlist.h"
#include "mail/qid.h"
#include "mail/server.h"
#include "mail/spool.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#include "local.h"

#define MS_PER_SEC 1000LL
#define US_PER_SEC 1000000.0
#define ATTR_IN_MAX ((size_t)64 << 20)
#define IDLE_SLICE_MS 1000            /* how often an idle connection checks signals */
#define NSS_PRELOAD_GROUPS 64         /* room for the throw-away group list */

struct local_conf local_conf;
static char **alias_specs;
static size_t nalias_specs;

/* origin_mask - allow_mail_to_* list -> LOCAL_ORIGIN_* bits */
static unsigned origin_mask(struct cfg *cfg, const char *name)
{
    size_t n;
    char **list = cfg_list(cfg, name, &n);
    unsigned mask = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(list[i], "alias") == 0)
            mask |= LOCAL_ORIGIN_ALIAS;
        else if (strcasecmp(list[i], "forward") == 0)
            mask |= LOCAL_ORIGIN_FORWARD;
        else if (strcasecmp(list[i], "include") == 0)
            mask |= LOCAL_ORIGIN_INCLUDE;
        else
            msg_fatal("%s: unknown class \"%s\" (alias, forward or include)", name, list[i]);
    }
    cfg_list_free(list, n);
    return mask;
}

/* lock_methods - mailbox_delivery_lock */
static void lock_methods(struct cfg *cfg)
{
    size_t n;
    char **list = cfg_list(cfg, "mailbox_delivery_lock", &n);

    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(list[i], "fcntl") == 0)
            local_conf.lock_fcntl = true;
        else if (strcasecmp(list[i], "flock") == 0)
            local_conf.lock_flock = true;
        else if (strcasecmp(list[i], "dotlock") == 0)
            local_conf.lock_dotlock = true;
        else
            msg_fatal("mailbox_delivery_lock: unknown method \"%s\" (fcntl, flock, dotlock)",
                      list[i]);
    }
    cfg_list_free(list, n);
}

/* open_aliases - (re)open alias_maps; a table that fails stays NULL */
static void open_aliases(void)
{
    for (size_t i = 0; i < local_conf.nalias_maps; i++) {
        struct dict *d = local_conf.alias_maps[i];
        char *err = NULL;

        if (d != NULL && !dict_changed(d))
            continue;
        if (d != NULL)
            dict_close(d);
        local_conf.alias_maps[i] = dict_open(alias_specs[i], 0, &err);
        if (local_conf.alias_maps[i] == NULL) {
            msg_warn("alias_maps: %s: %s", alias_specs[i], err ? err : "cannot open");
            free(err);
        }
    }
}

/*
 * nss_preload - load the group database modules (e.g. libnss_systemd) once
 * in this process, so that the initgroups() of every delivery child finds
 * them loaded instead of opening and mapping them again after each fork;
 * the answer itself is thrown away (each child still asks for its user)
 */
static void nss_preload(void)
{
    gid_t groups[NSS_PRELOAD_GROUPS];
    int n = NSS_PRELOAD_GROUPS;

    (void)getgrouplist(local_conf.default_user, local_conf.default_gid, groups, &n);
}

/* local_post_jail - read the settings (still root: local keeps it) */
static void local_post_jail(struct server_ctx *ctx)
{
    struct cfg *cfg = ctx->cfg;
    struct local_conf *c = &local_conf;
    struct passwd *pw;

    c->cfg = cfg;
    c->myhostname = cfg_str(cfg, "myhostname");
    c->home_mailbox = xstrdup(cfg_str(cfg, "home_mailbox"));
    c->require_home = cfg_bool(cfg, "require_home_directory");
    c->spool_dir = xstrdup(cfg_str(cfg, "mail_spool_directory"));
    c->mailbox_command = xstrdup(cfg_str(cfg, "mailbox_command"));
    c->forward_path = xstrdup(cfg_str(cfg, "forward_path"));
    c->luser_relay = xstrdup(cfg_str(cfg, "luser_relay"));
    c->recipient_delimiter = xstrdup(cfg_str(cfg, "recipient_delimiter"));
    c->command_shell = xstrdup(cfg_str(cfg, "local_command_shell"));
    c->expansion_filter = xstrdup(cfg_str(cfg, "command_expansion_filter"));
    c->mailbox_size_limit = cfg_int(cfg, "mailbox_size_limit");
    c->message_size_limit = cfg_int(cfg, "message_size_limit");
    c->command_time_limit = cfg_time(cfg, "command_time_limit");
    c->stale_lock_time = cfg_time(cfg, "stale_lock_time");
    c->lock_attempts = cfg_int(cfg, "deliver_lock_attempts");
    c->lock_delay = cfg_time(cfg, "deliver_lock_delay");
    lock_methods(cfg);
    c->allow_commands = origin_mask(cfg, "allow_mail_to_commands");
    c->allow_files = origin_mask(cfg, "allow_mail_to_files");
    c->default_user = xstrdup(cfg_str(cfg, "default_privs"));
    errno = 0;
    pw = getpwnam(c->default_user);
    if (pw == NULL)
        msg_fatal("default_privs %s: %s", c->default_user,
                  errno ? strerror(errno) : "no such user");
    if (pw->pw_uid == 0)
        msg_fatal("default_privs %s has user ID 0: refusing", c->default_user);
    c->default_uid = pw->pw_uid;
    c->default_gid = pw->pw_gid;
    nss_preload();
    c->mydestination = matchlist_domains(cfg, "mydestination");
    alias_specs = cfg_list(cfg, "alias_maps", &nalias_specs);
    c->nalias_maps = nalias_specs;
    c->alias_maps = xcalloc(nalias_specs + 1, sizeof(struct dict *));
    open_aliases();
    pass_init(cfg);
    c->active_fd = spool_dir_fd(cfg, "active");
    c->incoming_fd = spool_dir_fd(cfg, "incoming");
    if (geteuid() != 0)
        msg_warn("not running as root: only mail for user ID %ld can be delivered",
                 (long)geteuid());
}

/* now_us - wall clock microseconds */
static long long now_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * (long long)US_PER_SEC + tv.tv_usec;
}

/* local_log - one result line in Postfix's format */
void local_log(const struct lmsg *m, const struct lrcpt *r, struct dres *res)
{
    const struct deliver_request *q = m->req;
    long long now = now_us();
    struct buf delays = BUF_INIT;
    bool show_orig = r->orig && *r->orig && strcasecmp(r->orig, r->address) != 0;

    if (!res->set)
        return;
    if (res->final[0] == 0)
        snprintf(res->final, sizeof(res->final), "%s", r->address);
    deliver_format_delays(q, 0, now, &delays);
    msg_info("%s: to=<%s>%s%s%s, relay=local, %s, dsn=%s, status=%s (%s)", q->queue_id,
             r->address, show_orig ? ", orig_to=<" : "", show_orig ? r->orig : "",
             show_orig ? ">" : "", buf_str(&delays), res->dsn,
             deliver_status_name(res->status), res->text);
    buf_free(&delays);
}

/* all_results - the same result for every recipient (logged) */
static void all_results(struct lmsg *m, struct dres *res, size_t n, const struct dres *one)
{
    for (size_t i = 0; i < n; i++) {
        struct lrcpt r = {.address = m->req->rcpts[i].address, .orig = m->req->rcpts[i].orig};

        res[i] = *one;
        r.top = r.address;
        local_log(m, &r, &res[i]);
    }
}

/* find_rcpt - the queue file recipient the request names, or NULL */
static const struct qrcpt *find_rcpt(const struct qfile *q, const struct deliver_rcpt *rc)
{
    for (size_t i = 0; i < q->nrcpts; i++)
        if (q->rcpts[i].offset == (off_t)rc->offset && strcmp(q->rcpts[i].addr, rc->address) == 0)
            return &q->rcpts[i];
    return NULL;
}

/* lmsg_reset_seen - forget the duplicate filter (per request recipient) */
static void lmsg_reset_seen(struct lmsg *m)
{
    for (size_t i = 0; i < m->nseen; i++)
        free(m->seen[i]);
    free(m->seen);
    m->seen = NULL;
    m->nseen = 0;
}

/* handle_request - deliver every recipient of one request */
static void handle_request(const struct deliver_request *req, struct dres *res)
{
    struct lmsg m = {.req = req, .sender = req->sender};
    char *err = NULL;

    open_aliases();
    m.q = qfile_open(local_conf.active_fd, req->queue_id, &err);
    if (m.q == NULL) {
        struct dres one = {0};

        msg_warn("%s: %s", req->queue_id, err ? err : "cannot open queue file");
        dres_set(&one, DELIVER_DEFERRED, "4.3.0", "cannot open queue file: %s",
                 err ? err : strerror(errno));
        all_results(&m, res, req->nrcpts, &one);
        free(err);
        return;
    }
    if (strcmp(m.q->sender, req->sender) != 0) {
        struct dres one = {0};

        msg_warn("%s: request sender <%s> differs from queue file sender <%s>",
                 req->queue_id, req->sender, m.q->sender);
        dres_set(&one, DELIVER_DEFERRED, "4.3.0", "queue file and request disagree");
        all_results(&m, res, req->nrcpts, &one);
        qfile_close(m.q);
        return;
    }
    if (local_conf.message_size_limit > 0
        && m.q->content_length > (uint64_t)local_conf.message_size_limit) {
        struct dres one = {0};

        dres_set(&one, DELIVER_BOUNCED, "5.3.4", "message too big for system: %llu bytes "
                 "exceeds message_size_limit %lld", (unsigned long long)m.q->content_length,
                 local_conf.message_size_limit);
        all_results(&m, res, req->nrcpts, &one);
        qfile_close(m.q);
        return;
    }
    content_scan_headers(&m);
    for (size_t i = 0; i < req->nrcpts; i++) {
        const struct deliver_rcpt *rc = &req->rcpts[i];
        const struct qrcpt *qr = find_rcpt(m.q, rc);
        struct lrcpt r = {.address = rc->address, .orig = rc->orig, .top = rc->address,
                          .rc = rc};

        memset(&res[i], 0, sizeof(res[i]));
        if (qr == NULL) {
            msg_warn("%s: recipient <%s> at offset %lld is not in the queue file",
                     req->queue_id, rc->address, rc->offset);
            dres_set(&res[i], DELIVER_DEFERRED, "4.3.0", "recipient not in queue file");
            local_log(&m, &r, &res[i]);
            continue;
        }
        if (qr->done) {
            dres_set(&res[i], DELIVER_SENT, "2.0.0", "already delivered");
            continue;
        }
        resolve_deliver(&m, &r, &res[i]);
        if (!res[i].set) {
            dres_set(&res[i], DELIVER_DEFERRED, "4.3.0", "delivery produced no result");
            local_log(&m, &r, &res[i]);
        }
        lmsg_reset_seen(&m);
    }
    for (size_t i = 0; i < m.ndelivered; i++)
        free(m.delivered_to[i]);
    free(m.delivered_to);
    qfile_close(m.q);
}

/* stop_pending - SIGTERM or SIGUSR1 waits for the event loop */
static bool stop_pending(void)
{
    sigset_t set;

    if (sigpending(&set) < 0)
        return false;
    return sigismember(&set, SIGTERM) == 1 || sigismember(&set, SIGUSR1) == 1
           || sigismember(&set, SIGINT) == 1;
}

/*
 * wait_request - wait until the next request starts to arrive; false when
 * the connection stays idle past timeout_ms or master asks us to stop
 * (the signals are blocked for the event loop, so look at them here)
 */
static bool wait_request(int fd, const struct buf *in, int timeout_ms)
{
    long long waited = 0;

    if (in->len > 0)
        return true;
    while (waited < timeout_ms) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr;

        if (stop_pending())
            return false;
        pr = poll(&pf, 1, IDLE_SLICE_MS);
        if (pr > 0)
            return true;
        if (pr < 0 && errno != EINTR)
            return true;   /* let attr_read_fd report it */
        waited += IDLE_SLICE_MS;
    }
    return false;
}

/* local_accept - serve one qmgr connection, one request at a time */
static void local_accept(struct server_ctx *ctx, int fd, const struct sockaddr *peer,
                         socklen_t peerlen, const struct sockaddr *local, socklen_t locallen)
{
    struct buf in = BUF_INIT, out = BUF_INIT;
    int timeout_ms = (int)(cfg_time(ctx->cfg, "ipc_timeout") * MS_PER_SEC);

    (void)peer;
    (void)peerlen;
    (void)local;
    (void)locallen;
    buf_init(&in, ATTR_IN_MAX);
    for (;;) {
        struct attr_msg msg = {0};
        struct deliver_request req;
        struct deliver_result *rr;
        struct dres *res;
        const char *err = NULL;
        int rc;

        if (!wait_request(fd, &in, timeout_ms))
            break;
        rc = attr_read_fd(fd, &in, &msg, timeout_ms, &err);

        if (rc == 0) {
            attr_msg_free(&msg);
            break;
        }
        if (rc < 0) {
            if (errno == EPROTO)
                msg_warn("malformed request from qmgr: %s", err ? err : "?");
            else
                msg_warn("read request: %m");
            attr_msg_free(&msg);
            break;
        }
        if (!deliver_request_decode(&msg, &req, &err)) {
            msg_warn("malformed delivery request: %s", err);
            attr_msg_free(&msg);
            break;
        }
        attr_msg_free(&msg);
        res = xcalloc(req.nrcpts, sizeof(*res));
        rr = xcalloc(req.nrcpts, sizeof(*rr));
        handle_request(&req, res);
        for (size_t i = 0; i < req.nrcpts; i++) {
            rr[i].status = res[i].status;
            snprintf(rr[i].dsn, sizeof(rr[i].dsn), "%s", res[i].dsn);
            /* A delivery passed to mailbox_transport: that agent's relay. */
            rr[i].relay = res[i].relay[0] ? res[i].relay : (char *)"local";
            rr[i].remote_mta = res[i].remote_mta;
            rr[i].diag = res[i].diag;
            rr[i].relayed = res[i].relayed;
            rr[i].text = res[i].text;
            /* An alias expansion: the address a bounce notice must name. */
            rr[i].final = strcmp(res[i].final, req.rcpts[i].address) != 0 ? res[i].final
                                                                           : (char *)"";
        }
        buf_reset(&out);
        deliver_reply_encode(rr, req.nrcpts, &out);
        free(rr);
        free(res);
        deliver_request_free(&req);
        if (attr_write_fd(fd, &out, timeout_ms) < 0) {
            msg_warn("write reply: %m");
            break;
        }
    }
    buf_free(&in);
    buf_free(&out);
    close(fd);
}

/* main - hand the hooks to the server skeleton */
int main(int argc, char **argv)
{
    static const struct event_server_hooks hooks = {
        .program = "local",
        .post_jail = local_post_jail,
        .accept = local_accept,
    };

    return event_server_main(argc, argv, &hooks);
}
