/*
 * policy_access.c - the restrictions of smtpd's engine that consult
 * tables and servers: check_*_access (an access table's value: accept,
 * reject, defer, a restriction or class, or an action on the whole
 * message - HOLD, DISCARD, PREPEND, REDIRECT, BCC, FILTER; see actions.c),
 * check_policy_service (the server's action is applied the same way) and
 * reject_sender_login_mismatch (smtpd_sender_login_maps)
 *
 * DIAGNOSTICS: a table that fails defers the command (451 4.3.0); a
 * value that is no action, or an action without its argument, answers
 * 451 4.3.5 "Server configuration error" with a warning naming the table.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/dict.h"
#include "util/log.h"

#include "policy_client.h"
#include "policy_impl.h"

/* header_name_ok - text starts with a header field name and ':' (PREPEND) */
static bool header_name_ok(const char *text)
{
    size_t n = 0;

    while (text[n] > ' ' && text[n] < 0x7f && text[n] != ':')
        n++;
    return n > 0 && text[n] == ':';
}

/* one_word - a non-empty argument without white space or control characters */
static bool one_word(const char *text)
{
    if (*text == 0)
        return false;
    for (; *text; text++)
        if ((unsigned char)*text <= ' ' || *text == 0x7f)
            return false;
    return true;
}

/* set_action - *slot = "<name>: Class text" (or "triggers WHAT"), logged as kind */
static void set_action(struct eval *e, enum subject subj, char **slot, const char *kind,
                       const char *what, const char *text)
{
    struct buf tmp = BUF_INIT, why = BUF_INIT;

    (void)buf_printf(&why, "<%s>: %s ", subj_name(e, subj, &tmp), subj_class(subj));
    if (*text && slot != NULL)
        (void)buf_puts(&why, text);
    else
        (void)buf_printf(&why, "triggers %s", what);
    log_reject(e, kind, 0, "", buf_str(&why));
    if (slot != NULL) {
        free(*slot);
        *slot = xstrdup(buf_str(&why));
    }
    buf_free(&tmp);
    buf_free(&why);
}

/*
 * other_action - HOLD, DISCARD, PREPEND, REDIRECT, BCC, FILTER: remember
 * it for the message (actions.c) and go on; DISCARD also permits
 */
static enum rv other_action(struct eval *e, const struct restr *r, enum subject subj,
                            const struct access_result *ar, const char *value)
{
    struct smtpd_actions *a = &e->act;
    struct buf what = BUF_INIT;
    enum rv v = RV_DUNNO;

    switch (ar->kind) {
    case AK_HOLD:
        set_action(e, subj, &a->hold, "hold", "HOLD action", ar->text);
        break;
    case AK_DISCARD:
        set_action(e, subj, &a->discard, "discard", "DISCARD action", ar->text);
        v = RV_PERMIT;
        break;
    case AK_PREPEND:
        if (!header_name_ok(ar->text))
            goto bad;
        (void)buf_printf(&a->prepend, "%s\n", ar->text);
        break;
    case AK_REDIRECT:
    case AK_BCC:
    case AK_FILTER:
        if (!one_word(ar->text) || (ar->kind == AK_FILTER && ar->text[0] == ':')
            || (ar->kind == AK_FILTER && strchr(ar->text, ':') == NULL))
            goto bad;
        (void)buf_printf(&what, "%s %s", ar->kind == AK_REDIRECT ? "REDIRECT"
                                         : ar->kind == AK_BCC    ? "BCC"
                                                                 : "FILTER", ar->text);
        if (ar->kind == AK_BCC) {
            set_action(e, subj, NULL, "bcc", buf_str(&what), "");
            a->bcc = xreallocarray(a->bcc, a->nbcc + 1, sizeof(*a->bcc));
            a->bcc[a->nbcc++] = xstrdup(ar->text);
        } else {
            char **slot = ar->kind == AK_REDIRECT ? &a->redirect : &a->filter;

            set_action(e, subj, NULL, ar->kind == AK_REDIRECT ? "redirect" : "filter",
                       buf_str(&what), "");
            free(*slot);
            *slot = xstrdup(ar->text);
        }
        break;
    default:
        break;
    }
    buf_free(&what);
    return v;
bad:
    buf_free(&what);
    msg_warn("access table %s: bad action argument: \"%s\"", r->arg, value);
    return config_error(e, subj);
}

/* access_action - act on a table's value for subject subj */
static enum rv access_action(struct eval *e, const struct restr *r, enum subject subj,
                             const char *value)
{
    struct access_result ar;
    struct buf tmp = BUF_INIT;
    const char *name;
    enum rv v = RV_DUNNO;

    access_parse(value, &pc.rc.classes, &ar);
    name = subj_name(e, subj, &tmp);
    switch (ar.kind) {
    case AK_OK:
        v = RV_PERMIT;
        break;
    case AK_DUNNO:
        break;
    case AK_REJECT:
    case AK_DEFER:
        if (ar.numeric)
            v = decide(e, ar.code, ar.enh[0] ? ar.enh : "5.7.1", "%s",
                       *ar.text ? ar.text : "Error");
        else if (ar.kind == AK_REJECT)
            v = decide(e, pc.access_reject_code, "5.7.1", "<%s>: %s rejected: %s", name,
                       subj_class(subj), *ar.text ? ar.text : "Access denied");
        else
            v = decide(e, pc.access_defer_code, "4.7.1", "<%s>: %s rejected: %s", name,
                       subj_class(subj), *ar.text ? ar.text : "Access denied");
        break;
    case AK_DEFER_IF_PERMIT:
        v = defer_if_permit(e, pc.defer_code, "4.7.1", "<%s>: %s rejected: %s", name,
                            subj_class(subj), *ar.text ? ar.text : "Service unavailable");
        break;
    case AK_DEFER_IF_REJECT:
        e->defer_if_reject = true;
        break;
    case AK_WARN:
        log_reject(e, "warn", 0, "", ar.text);
        break;
    case AK_INFO:
        log_reject(e, "info", 0, "", ar.text);
        break;
    case AK_HOLD:
    case AK_DISCARD:
    case AK_PREPEND:
    case AK_REDIRECT:
    case AK_BCC:
    case AK_FILTER:
        v = other_action(e, r, subj, &ar, value);
        break;
    case AK_RESTRICTION:
        if (ar.op == R_CLASS) {
            if (e->depth >= CLASS_DEPTH_MAX) {
                msg_warn("restriction class %s: nested too deeply", pc.rc.classes.names[ar.class_idx]);
                v = config_error(e, subj);
            } else {
                struct restr cls = {.op = R_CLASS, .class_idx = ar.class_idx};

                v = run_restriction(e, &cls, subj);
            }
        } else {
            struct restr sub = {.op = (enum restr_op)ar.op};

            v = run_restriction(e, &sub, subj);
        }
        break;
    case AK_BAD:
        msg_warn("access table %s: unknown action: \"%s\"", r->arg, value);
        v = config_error(e, subj);
        break;
    }
    buf_free(&tmp);
    return v;
}

/* check_access - look the keys up in order; the first found decides */
enum rv check_access(struct eval *e, const struct restr *r, enum subject subj,
                     enum subject keys_of)
{
    const char *keys[RESTR_KEYS_MAX];
    char *store = NULL;
    size_t n = 0;
    enum rv v = RV_DUNNO;

    switch (keys_of) {
    case SUBJ_CLIENT:
        n = restr_client_keys(e->s->name, e->s->addr, pc.access_parents, &store, keys);
        break;
    case SUBJ_HELO:
        if (e->helo == NULL)
            return RV_DUNNO;
        n = restr_domain_keys(e->helo, pc.access_parents, &store, keys);
        break;
    case SUBJ_SENDER:
    case SUBJ_RCPT: {
        const char *a = keys_of == SUBJ_SENDER ? e->sender : e->rcpt;

        if (a == NULL)
            return RV_DUNNO;
        if (*a == 0) {
            keys[0] = pc.null_key;
            n = 1;
        } else {
            n = restr_addr_keys(a, pc.access_parents, &store, keys);
        }
        break;
    }
    case SUBJ_DATA:
    case SUBJ_EOD:
        return RV_DUNNO;
    }
    for (size_t i = 0; i < n; i++) {
        const char *value;
        enum dict_result dr = dict_lookup(r->table, keys[i], &value);

        if (dr == DICT_NOTFOUND)
            continue;
        if (dr == DICT_TEMPFAIL) {
            msg_warn("%s: table lookup problem for \"%s\"", r->arg, keys[i]);
            v = tempfail(e, subj);
            break;
        }
        {
            char *copy = xstrdup(value);   /* valid until the next lookup only */

            v = access_action(e, r, keys_of, copy);
            free(copy);
        }
        break;
    }
    free(store);
    return v;
}

/* ---------- check_policy_service ---------- */

/* policy_cb - the policy server's action (or the default action) arrived */
static void policy_cb(void *ctx, const char *action)
{
    struct eval *e = ctx;

    e->pol_have = true;
    buf_reset(&e->pol_action);
    (void)buf_puts(&e->pol_action, action);
    eval_resume(e);
}

/* check_policy - ask the policy server, suspend; then act on its action as an access value */
enum rv check_policy(struct eval *e, const struct restr *r, enum subject subj)
{
    enum rv v;

    if (!e->pol_have) {
        struct buf req = BUF_INIT;

        /* protocol_state is the command judged (RCPT for every list with delay_reject) */
        policy_request_build(&req, e->s, e->verb_name, e->helo, e->sender, e->rcpt,
                             pol_service_spec(r->service)->policy_context);
        pol_request(r->service, &req, policy_cb, e);
        buf_free(&req);
        return RV_SUSPEND;
    }
    /* kept while a restriction named by the action waits for DNS */
    v = access_action(e, r, subj, buf_str(&e->pol_action));
    if (v != RV_SUSPEND)
        e->pol_have = false;
    return v;
}

/* ---------- sender login maps ---------- */

/* login_owners - the SASL logins that own addr (malloc'ed, NULL: none); *fail on tempfail */
static char *login_owners(const char *addr, bool *fail)
{
    const char *at = strrchr(addr, '@');
    char *keys[3] = {xstrdup(addr), NULL, NULL};
    char *owners = NULL;

    *fail = false;
    if (at != NULL) {
        keys[1] = xasprintf("%s", at);                                 /* @domain */
        if (is_local_domain(at + 1) == MATCH_YES)
            keys[2] = xstrndup(addr, (size_t)(at - addr));             /* user */
    }
    for (size_t k = 0; k < 3 && owners == NULL && !*fail; k++) {
        if (keys[k] == NULL)
            continue;
        for (size_t i = 0; i < pc.nlogin_maps; i++) {
            const char *value;
            enum dict_result dr = dict_lookup(pc.login_maps[i], keys[k], &value);

            if (dr == DICT_TEMPFAIL) {
                *fail = true;
                break;
            }
            if (dr == DICT_FOUND) {
                owners = xstrdup(value);
                break;
            }
        }
    }
    for (size_t k = 0; k < 3; k++)
        free(keys[k]);
    return owners;
}

/* owner_listed - is user in the comma/space separated owners? */
static bool owner_listed(const char *owners, const char *user)
{
    const char *p = owners;

    while (*p) {
        size_t n;

        p += strspn(p, ", \t");
        n = strcspn(p, ", \t");
        if (n > 0 && n == strlen(user) && strncasecmp(p, user, n) == 0)
            return true;
        p += n;
    }
    return false;
}

/* sender_login_mismatch - reject_sender_login_mismatch */
enum rv sender_login_mismatch(struct eval *e)
{
    struct session *s = e->s;
    const char *user = session_authenticated(s) ? s->sasl_username : NULL;
    bool fail;
    char *owners;
    enum rv v = RV_DUNNO;

    if (e->sender == NULL || *e->sender == 0 || pc.nlogin_maps == 0)
        return RV_DUNNO;
    owners = login_owners(e->sender, &fail);
    if (fail)
        v = tempfail(e, SUBJ_SENDER);
    else if (user == NULL && owners != NULL)
        v = decide(e, 553, "5.7.1", "<%s>: Sender address rejected: not logged in", e->sender);
    else if (user != NULL && (owners == NULL || !owner_listed(owners, user)))
        v = decide(e, 553, "5.7.1", "<%s>: Sender address rejected: not owned by user %s",
                   e->sender, user);
    free(owners);
    return v;
}

