/*
 * xsasl_cyrus.c - the Cyrus libsasl2 backend of xsasl
 *
 * libsasl2 is initialised once per process with smtpd_sasl_path as the
 * application name: it reads NAME.conf from cyrus_sasl_config_path (or
 * its compiled-in directories) and loads its plug-ins then, so open runs
 * before privileges are dropped. Each SMTP session gets its own
 * sasl_conn_t for service smtpd_sasl_service with the user realm
 * smtpd_sasl_local_domain, the local and remote "ip;port", and security
 * properties from the options; with TLS an external SSF is declared as
 * Postfix does. A step is synchronous (sasldb is a local file, saslauthd
 * a local socket); the result still reaches the caller from the event
 * loop (xsasl_finish).
 *
 * DIAGNOSTICS
 *	libsasl2's own log goes through msg_warn (errors) and msg_verbose.
 *	SASL_TRYAGAIN, SASL_UNAVAIL and SASL_NOMEM are temporary failures;
 *	an unknown user reads like a wrong password (privacy).
 * SECURITY
 *	Decoded client data is wiped after each call into libsasl2.
 */
#include "util/sys.h"

#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <string.h>

#include "mail/xsasl.h"
#include "mail/xsasl_impl.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define XSASL_TLS_SSF 256 /* external SSF declared for a TLS session */
#define XSASL_BADAUTH_TEXT "authentication failure"

struct cyrus_sess {
    sasl_conn_t *conn;
    bool used; /* an exchange ran on conn: the next AUTH gets a new one */
};

static int cyrus_users;        /* open servers: sasl_server_done at 0 */
static char *cyrus_config_dir; /* kept alive: libsasl2 keeps the pointer */

/* cyrus_log - libsasl2's log callback */
static int cyrus_log(void *context, int level, const char *message)
{
    switch (level) {
    case SASL_LOG_ERR:
    case SASL_LOG_FAIL:
        msg_warn("SASL authentication problem: %s", message ? message : "");
        break;
    case SASL_LOG_WARN:
    case SASL_LOG_NOTE:
        msg_verbose("SASL authentication info: %s", message ? message : "");
        break;
    default:
        break;
    }
    return SASL_OK;
}

/* cyrus_open - initialise libsasl2 once for the application name */
static int cyrus_open(struct xsasl_server *srv, char **err)
{
    static sasl_callback_t callbacks[] = {
        /* libsasl2 takes callbacks as int (*)(void); void (*)(void) casts cleanly. */
        {SASL_CB_LOG, (int (*)(void))(void (*)(void))cyrus_log, NULL},
        {SASL_CB_LIST_END, NULL, NULL},
    };
    int rc;

    if (cyrus_users > 0) {
        cyrus_users++;
        return 0;
    }
    if (xsasl_cyrus_config_path) {
        free(cyrus_config_dir);
        cyrus_config_dir = xstrdup(xsasl_cyrus_config_path);
        rc = sasl_set_path(SASL_PATH_TYPE_CONFIG, cyrus_config_dir);
        if (rc != SASL_OK) {
            *err = xasprintf("SASL per-process initialization failed: cannot set "
                             "cyrus_sasl_config_path %s: %s",
                             cyrus_config_dir, sasl_errstring(rc, NULL, NULL));
            return -1;
        }
    }
    rc = sasl_server_init(callbacks, srv->path);
    if (rc != SASL_OK) {
        *err = xasprintf("SASL per-process initialization failed: %s",
                         sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    cyrus_users = 1;
    return 0;
}

/* cyrus_close - release libsasl2 with the last server */
static void cyrus_close(struct xsasl_server *srv)
{
    if (cyrus_users > 0 && --cyrus_users == 0)
        sasl_server_done();
}

/* cyrus_secprops - the security properties of a session */
static int cyrus_secprops(struct xsasl_sess *s, sasl_conn_t *conn)
{
    sasl_security_properties_t sec;
    sasl_ssf_t ssf = XSASL_TLS_SSF;
    int rc;

    memset(&sec, 0, sizeof(sec));
    sec.min_ssf = 0;
    sec.max_ssf = 0; /* no SASL security layer in SMTP */
    sec.maxbufsize = 0;
    if (s->opts.noanonymous)
        sec.security_flags |= SASL_SEC_NOANONYMOUS;
    if (s->opts.noplaintext)
        sec.security_flags |= SASL_SEC_NOPLAINTEXT;
    if (s->opts.noactive)
        sec.security_flags |= SASL_SEC_NOACTIVE;
    if (s->opts.nodictionary)
        sec.security_flags |= SASL_SEC_NODICTIONARY;
    if (s->opts.forward_secrecy)
        sec.security_flags |= SASL_SEC_FORWARD_SECRECY;
    if (s->opts.mutual_auth)
        sec.security_flags |= SASL_SEC_MUTUAL_AUTH;
    if (s->tls_active && (rc = sasl_setprop(conn, SASL_SSF_EXTERNAL, &ssf)) != SASL_OK)
        return rc;
    return sasl_setprop(conn, SASL_SEC_PROPS, &sec);
}

/* cyrus_conn_new - a fresh sasl_conn_t for the session (NULL on failure) */
static void cyrus_conn_new(struct xsasl_sess *s, struct cyrus_sess *cs)
{
    const char *lip = *s->local_port ? s->local_ipport : NULL;
    const char *rip = *s->remote_port ? s->remote_ipport : NULL;
    int rc;

    if (cs->conn)
        sasl_dispose(&cs->conn);
    cs->conn = NULL;
    cs->used = false;
    rc = sasl_server_new(s->srv->service, NULL, xsasl_local_domain, lip, rip, NULL, 0,
                         &cs->conn);
    if (rc == SASL_BADPARAM && (lip || rip)) {
        /* An address libsasl2 cannot parse: go on without addresses. */
        msg_verbose("SASL: addresses %s %s refused; continuing without", s->local_ipport,
                    s->remote_ipport);
        rc = sasl_server_new(s->srv->service, NULL, xsasl_local_domain, NULL, NULL, NULL, 0,
                             &cs->conn);
    }
    if (rc == SASL_OK)
        rc = cyrus_secprops(s, cs->conn);
    if (rc != SASL_OK) {
        msg_warn("SASL per-connection initialization failed: %s",
                 sasl_errstring(rc, NULL, NULL));
        if (cs->conn)
            sasl_dispose(&cs->conn);
        cs->conn = NULL;
    }
}

/* cyrus_sess_init - a sasl_conn_t for the session */
static void cyrus_sess_init(struct xsasl_sess *s)
{
    struct cyrus_sess *cs = xcalloc(1, sizeof(*cs));

    s->impl = cs;
    cyrus_conn_new(s, cs);
}

/* cyrus_mechs - libsasl2's list, filtered once more by the known properties */
static void cyrus_mechs(struct xsasl_sess *s)
{
    struct cyrus_sess *cs = s->impl;
    const char *list = NULL, *p;
    unsigned len = 0, props;
    int count = 0;
    struct xsasl_mech *mechs = NULL;
    size_t n = 0, w;
    char *name;

    buf_reset(&s->mechs);
    if (cs->conn == NULL)
        cyrus_conn_new(s, cs);
    if (cs->conn == NULL ||
        sasl_listmech(cs->conn, NULL, "", " ", "", &list, &len, &count) != SASL_OK ||
        list == NULL)
        return;
    for (p = list; *p;) {
        p += strspn(p, " ");
        w = strcspn(p, " ");
        if (w == 0)
            break;
        name = xstrndup(p, w);
        /* Unknown mechanisms: libsasl2 applied the options already. */
        if (!xsasl_mech_props(name, &props))
            props = 0;
        /* EXTERNAL needs a client certificate identity that smtpd does not pass. */
        if (strcmp(name, "EXTERNAL") == 0)
            props |= XSASL_SEC_PRIVATE;
        xsasl_mechs_add(&mechs, &n, name, props);
        p += w;
    }
    xsasl_mechs_filter(mechs, n, &s->opts, &s->mechs);
    xsasl_mechs_free(mechs, n);
}

/* cyrus_result - turn a libsasl2 answer into the session's result */
static void cyrus_result(struct xsasl_sess *s, int rc, const char *out, unsigned outlen)
{
    struct cyrus_sess *cs = s->impl;
    struct buf b64 = BUF_INIT;
    const void *user = NULL;

    switch (rc) {
    case SASL_CONTINUE:
        if (xsasl_base64_encode(out ? out : "", out ? outlen : 0, &b64) < 0) {
            xsasl_finish(s, XSASL_FAIL, "challenge too long");
        } else {
            xsasl_finish(s, XSASL_CONTINUE, buf_str(&b64));
        }
        xsasl_wipe(&b64);
        return;
    case SASL_OK:
        if (sasl_getprop(cs->conn, SASL_USERNAME, &user) != SASL_OK || user == NULL ||
            *(const char *)user == 0) {
            xsasl_finish(s, XSASL_TEMP, "cannot look up the authenticated user name");
            return;
        }
        xsasl_finish(s, XSASL_OK, user);
        return;
    case SASL_TRYAGAIN:
    case SASL_UNAVAIL:
    case SASL_NOMEM:
        msg_verbose("SASL %s: %s", s->mech, sasl_errdetail(cs->conn));
        xsasl_finish(s, XSASL_TEMP, sasl_errstring(rc, NULL, NULL));
        return;
    case SASL_BADAUTH:
    case SASL_NOUSER:
        msg_verbose("SASL %s: %s", s->mech, sasl_errdetail(cs->conn));
        xsasl_finish(s, XSASL_FAIL, XSASL_BADAUTH_TEXT);
        return;
    default:
        msg_verbose("SASL %s: %s", s->mech, sasl_errdetail(cs->conn));
        xsasl_finish(s, XSASL_FAIL, sasl_errstring(rc, NULL, NULL));
        return;
    }
}

/* decode - base64 client data (checked already) into out; NULL data stays NULL */
static bool decode(struct xsasl_sess *s, const char *in, struct buf *out)
{
    buf_init(out, XSASL_DATA_MAX);
    if (in != NULL && xsasl_base64_decode(in, strlen(in), out) < 0) {
        xsasl_finish(s, XSASL_FAIL, "malformed client response");
        return false;
    }
    return true;
}

/* cyrus_start - sasl_server_start */
static void cyrus_start(struct xsasl_sess *s, const char *mech, const char *initial)
{
    struct cyrus_sess *cs = s->impl;
    struct buf in;
    const char *out = NULL;
    unsigned outlen = 0;
    int rc;

    /* libsasl2 does not restart a finished exchange on the same connection. */
    if (cs->conn == NULL || cs->used)
        cyrus_conn_new(s, cs);
    if (cs->conn == NULL) {
        xsasl_finish(s, XSASL_TEMP, "SASL per-connection initialization failed");
        return;
    }
    if (!decode(s, initial, &in))
        return;
    cs->used = true;
    rc = sasl_server_start(cs->conn, mech, initial ? buf_str(&in) : NULL,
                           initial ? (unsigned)in.len : 0, &out, &outlen);
    xsasl_wipe(&in);
    cyrus_result(s, rc, out, outlen);
}

/* cyrus_step - sasl_server_step */
static void cyrus_step(struct xsasl_sess *s, const char *response)
{
    struct cyrus_sess *cs = s->impl;
    struct buf in;
    const char *out = NULL;
    unsigned outlen = 0;
    int rc;

    if (cs->conn == NULL) {
        xsasl_finish(s, XSASL_TEMP, "SASL per-connection initialization failed");
        return;
    }
    if (!decode(s, response, &in))
        return;
    rc = sasl_server_step(cs->conn, buf_str(&in), (unsigned)in.len, &out, &outlen);
    xsasl_wipe(&in);
    cyrus_result(s, rc, out, outlen);
}

/* cyrus_sess_done - dispose of the session's sasl_conn_t */
static void cyrus_sess_done(struct xsasl_sess *s)
{
    struct cyrus_sess *cs = s->impl;

    if (cs == NULL)
        return;
    if (cs->conn)
        sasl_dispose(&cs->conn);
    free(cs);
    s->impl = NULL;
}

const struct xsasl_ops xsasl_cyrus_ops = {
    .type = "cyrus",
    .open = cyrus_open,
    .close = cyrus_close,
    .sess_init = cyrus_sess_init,
    .mechs = cyrus_mechs,
    .start = cyrus_start,
    .step = cyrus_step,
    .sess_done = cyrus_sess_done,
};
