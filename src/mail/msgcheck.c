/*
 * msgcheck.c - header_checks, mime_header_checks, nested_header_checks,
 * body_checks: a streaming inspector of message content
 *
 * A small state machine over the bytes as they arrive (msgcheck.h says
 * what is inspected with which tables):
 *   ST_BOL    at the start of a header line: "\n" ends the header, white
 *             space continues the current field, anything else completes
 *             the current field (it is inspected and written out) and
 *             starts a new one;
 *   ST_NAME   reading a field name up to its ":"; a line that is not a
 *             field (no name, bad characters) ends the header: its bytes
 *             so far are body;
 *   ST_FIELD  the rest of a field line;
 *   ST_BODY   body lines, in pieces of at most line_length_limit bytes;
 *             boundary lines of the enclosing multiparts start the next
 *             part's header (or close the multipart).
 * MIME structure: the Content-Type of each header decides what follows
 * (multipart with a boundary: preamble, parts, epilogue; message/rfc822:
 * an attached message's header; anything else: body). Nesting is followed
 * MC_DEPTH_MAX levels deep (Postfix's mime_nesting_limit); deeper content
 * is plain body. disable_mime_input_processing turns it all off.
 *
 * A header field longer than header_size_limit keeps its first
 * header_size_limit bytes; the excess is discarded (Postfix does the
 * same). A body line longer than line_length_limit is inspected piece by
 * piece, as Postfix's cleanup sees the record pieces of a long line.
 *
 * DIAGNOSTICS: an unknown action, or a PREPEND/REPLACE text that is not a
 * header field where one is needed, is a warning naming the table
 * parameter; the action is ignored. A table lookup failure is a warning
 * and makes the verdict 451 4.3.0 (never "not found").
 *
 * SECURITY: every byte is outside input. Memory is bounded by
 * header_size_limit (one field), line_length_limit (one line piece) and
 * MC_DEPTH_MAX boundaries of at most MC_BOUNDARY_MAX bytes.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/msgcheck.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#define MC_DEPTH_MAX 100      /* MIME levels followed (Postfix's mime_nesting_limit) */
#define MC_BOUNDARY_MAX 200   /* longest boundary followed (RFC 2046 allows 70) */
#define MC_LOG_TEXT_MAX 200   /* inspected text shown in a log line, as Postfix */
#define MC_REPLY_DIGITS 3
#define MC_ASCII_DEL 0x7f

#define MC_REJECT_CODE 550
#define MC_REJECT_ENH "5.7.1"
#define MC_REJECT_TEXT "message content rejected"
#define MC_DEFER_CODE 450
#define MC_DEFER_ENH "4.7.1"
#define MC_DEFER_TEXT "Try again later"
#define MC_TEMPFAIL_CODE 451
#define MC_TEMPFAIL_ENH "4.3.0"
#define MC_TEMPFAIL_TEXT "Temporary lookup failure"

/* the table classes, in the order of mc_param */
enum { MC_HDR, MC_MIME, MC_NESTED, MC_BODY, MC_NCLASS };
static const char *const mc_param[MC_NCLASS] = {
    "header_checks", "mime_header_checks", "nested_header_checks", "body_checks"};

struct mc_list {
    struct dict **d;
    size_t n;
};

struct msgcheck_conf {
    struct mc_list list[MC_NCLASS];
    struct dict **all;       /* every table once (lists may share them) */
    char **specs;            /* their "type:name" */
    size_t nall;
    size_t header_limit;
    size_t line_limit;
    unsigned long long body_limit;
    bool mime;
};

enum mc_state { ST_BOL, ST_NAME, ST_FIELD, ST_BODY };
enum mc_hclass { HC_PRIMARY, HC_PART, HC_NESTED };
enum mc_ctype { CT_OTHER, CT_MULTIPART, CT_MESSAGE };
enum mc_edit_kind { ED_KEEP, ED_DROP, ED_REPLACE, ED_PREPEND };

struct mc_edit {
    enum mc_edit_kind kind;
    char *text;              /* REPLACE/PREPEND text (owned) */
};

struct mc_level {
    char *boundary;
    size_t nested;           /* attached-message levels outside this multipart */
};

struct msgcheck {
    const struct msgcheck_conf *c;
    char *id;
    msgcheck_out_fn *out;
    msgcheck_log_fn *log;
    void *ctx;
    enum mc_state st;
    enum mc_hclass hclass;
    struct buf field;        /* the current header field, or a name being read */
    bool have_field;         /* field holds a field (its name and ":" seen) */
    bool name_ws;            /* white space after the name */
    enum mc_ctype ctype;     /* Content-Type of the header being read */
    char boundary[MC_BOUNDARY_MAX + 1];
    struct buf line;         /* the current body line piece */
    bool line_cont;          /* the piece continues a line */
    bool line_out;           /* some piece of the current line was written */
    unsigned long long part_bytes;   /* body bytes of this part so far */
    struct mc_level stack[MC_DEPTH_MAX];
    size_t depth;
    size_t nested;
    bool done;               /* inspection over: content passes unchanged */
    struct msgcheck_verdict v;
    char *vtext, *htext;     /* strings the verdict points to */
    struct buf logtext, logopt;
};

/* ---- configuration ------------------------------------------------------ */

/* mc_open - a table, opened once however many lists name it */
static struct dict *mc_open(struct msgcheck_conf *c, const char *spec)
{
    char *err = NULL;
    struct dict *d;

    for (size_t i = 0; i < c->nall; i++)
        if (strcmp(c->specs[i], spec) == 0)
            return c->all[i];
    if ((d = dict_open(spec, 0, &err)) == NULL)
        msg_fatal("open table %s: %s", spec, err ? err : "unknown error");
    c->all = xreallocarray(c->all, c->nall + 1, sizeof(*c->all));
    c->specs = xreallocarray(c->specs, c->nall + 1, sizeof(*c->specs));
    c->all[c->nall] = d;
    c->specs[c->nall++] = xstrdup(spec);
    return d;
}

/* msgcheck_conf_load - open the four table lists; NULL when all are empty */
struct msgcheck_conf *msgcheck_conf_load(struct cfg *cfg)
{
    struct msgcheck_conf *c = xcalloc(1, sizeof(*c));

    for (int k = 0; k < MC_NCLASS; k++) {
        size_t n = 0;
        char **specs = cfg_list(cfg, mc_param[k], &n);

        c->list[k].d = xcalloc(n ? n : 1, sizeof(struct dict *));
        for (size_t i = 0; i < n; i++)
            c->list[k].d[c->list[k].n++] = mc_open(c, specs[i]);
        cfg_list_free(specs, n);
    }
    if (c->nall == 0) {
        msgcheck_conf_free(c);
        return NULL;
    }
    c->header_limit = (size_t)cfg_int(cfg, "header_size_limit");
    c->line_limit = (size_t)cfg_int(cfg, "line_length_limit");
    c->body_limit = (unsigned long long)cfg_int(cfg, "body_checks_size_limit");
    c->mime = !cfg_bool(cfg, "disable_mime_input_processing");
    return c;
}

/* msgcheck_conf_free - close the tables */
void msgcheck_conf_free(struct msgcheck_conf *c)
{
    if (c == NULL)
        return;
    for (int k = 0; k < MC_NCLASS; k++)
        free(c->list[k].d);
    for (size_t i = 0; i < c->nall; i++) {
        dict_close(c->all[i]);
        free(c->specs[i]);
    }
    free(c->all);
    free(c->specs);
    free(c);
}

/* msgcheck_active - some table is configured */
bool msgcheck_active(const struct msgcheck_conf *c)
{
    return c != NULL && c->nall > 0;
}

/* ---- small parsers -------------------------------------------------------- */

/* is_name_char - RFC 5322 ftext: printable ASCII except ":" */
static bool is_name_char(int c)
{
    return c > ' ' && c < MC_ASCII_DEL && c != ':';
}

/* field_name_len - length of "name" in "name [WSP]:" at s[0..n), or 0 */
static size_t field_name_len(const char *s, size_t n)
{
    size_t i = 0, name;

    while (i < n && is_name_char((unsigned char)s[i]))
        i++;
    name = i;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return name > 0 && i < n && s[i] == ':' ? name : 0;
}

/* is_mime_field - the MIME fields that go to mime_header_checks (Postfix's set) */
static bool is_mime_field(const char *s, size_t n)
{
    static const char *const names[] = {
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
        "Content-Description", "Content-ID", "MIME-Version",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && strncasecmp(s, names[i], n) == 0)
            return true;
    return false;
}

/* ct_skip_ws - past white space (continuation "\n" included) and comments */
static const char *ct_skip_ws(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != '(')
            return p;
        for (int level = 0; *p; p++) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '(')
                level++;
            else if (*p == ')' && --level == 0) {
                p++;
                break;
            }
        }
    }
}

/* ct_token_len - an RFC 2045 token at p */
static size_t ct_token_len(const char *p)
{
    return strcspn(p, " \t\r\n()<>@,;:\\\"/[]?=");
}

/* parse_ctype - the type and boundary of a Content-Type field value */
static void parse_ctype(struct msgcheck *m, const char *v)
{
    size_t n;
    const char *type, *sub;
    size_t tlen, slen;

    m->ctype = CT_OTHER;
    m->boundary[0] = 0;
    v = ct_skip_ws(v);
    type = v;
    tlen = ct_token_len(v);
    v = ct_skip_ws(v + tlen);
    if (*v != '/')
        return;
    v = ct_skip_ws(v + 1);
    sub = v;
    slen = ct_token_len(v);
    v += slen;
    if (tlen == strlen("multipart") && strncasecmp(type, "multipart", tlen) == 0)
        m->ctype = CT_MULTIPART;
    else if (tlen == strlen("message") && strncasecmp(type, "message", tlen) == 0 &&
             slen == strlen("rfc822") && strncasecmp(sub, "rfc822", slen) == 0)
        m->ctype = CT_MESSAGE;
    while ((v = strchr(v, ';')) != NULL) {
        const char *name = ct_skip_ws(v + 1);
        size_t nlen = ct_token_len(name);
        struct buf val = BUF_INIT;

        v = ct_skip_ws(name + nlen);
        if (*v != '=')
            continue;
        v = ct_skip_ws(v + 1);
        if (*v == '"') {
            for (v++; *v && *v != '"'; v++) {
                if (*v == '\\' && v[1])
                    v++;
                (void)buf_putc(&val, *v);
            }
        } else {
            n = ct_token_len(v);
            (void)buf_append(&val, v, n);
            v += n;
        }
        if (nlen == strlen("boundary") && strncasecmp(name, "boundary", nlen) == 0 &&
            val.len > 0 && val.len <= MC_BOUNDARY_MAX && strlen(buf_str(&val)) == val.len)
            memcpy(m->boundary, buf_str(&val), val.len + 1);
        buf_free(&val);
    }
}

/* dsn_prefix - "x.y.z" at the start of text with class c: its length, or 0 */
static size_t dsn_prefix(const char *text, char c)
{
    char dsn[MSGCHECK_ENH_MAX];
    size_t n = strcspn(text, " \t");

    if (n == 0 || n >= sizeof(dsn))
        return 0;
    memcpy(dsn, text, n);
    dsn[n] = 0;
    return deliver_dsn_valid(dsn, c == '4' ? DELIVER_DEFERRED : DELIVER_BOUNCED) ? n : 0;
}

/* ---- actions ------------------------------------------------------------- */

/* printable - at most max bytes of text, control characters shown as "?" (as Postfix logs) */
static void printable(struct buf *out, const char *text, size_t max)
{
    size_t n = strlen(text);

    buf_reset(out);
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)text[i];

        (void)buf_putc(out, ch < ' ' || ch == MC_ASCII_DEL ? '?' : ch);
    }
}

/* log_event - tell the caller about an action */
static void log_event(struct msgcheck *m, const char *action, const char *where,
                      const char *text, const char *opt)
{
    struct msgcheck_event ev = {action, where, NULL, NULL};

    printable(&m->logtext, text, MC_LOG_TEXT_MAX);
    printable(&m->logopt, opt ? opt : "", strlen(opt ? opt : ""));
    ev.text = buf_str(&m->logtext);
    ev.opt = buf_str(&m->logopt);
    if (m->log)
        m->log(m->ctx, &ev);
}

/* refuse - REJECT, DEFER, 4NN/5NN or a table failure: the verdict, end inspection */
static void refuse(struct msgcheck *m, int code, const char *text, const char *dflt_enh,
                   const char *dflt_text)
{
    size_t e;

    m->v.kind = code / 100 == 4 ? MSGCHECK_DEFER : MSGCHECK_REJECT;
    m->v.code = code;
    if (text == NULL || *text == 0)
        text = dflt_text;
    if ((e = dsn_prefix(text, (char)('0' + code / 100))) > 0) {
        memcpy(m->v.enh, text, e);
        m->v.enh[e] = 0;
        text += e;
        text += strspn(text, " \t");
        if (*text == 0)
            text = dflt_text;
    } else {
        snprintf(m->v.enh, sizeof(m->v.enh), "%s", dflt_enh);
    }
    free(m->vtext);
    m->v.text = m->vtext = xstrdup(text);
    m->done = true;
}

/* reply_code - "4NN"/"5NN" followed by white space or the end: the code, else 0 */
static int reply_code(const char *w, size_t wlen)
{
    if (wlen != MC_REPLY_DIGITS || (w[0] != '4' && w[0] != '5'))
        return 0;
    for (size_t i = 1; i < MC_REPLY_DIGITS; i++)
        if (w[i] < '0' || w[i] > '9')
            return 0;
    return (w[0] - '0') * 100 + (w[1] - '0') * 10 + (w[2] - '0');
}

/* word_is - the action word w (wlen bytes) is name, any case */
static bool word_is(const char *w, size_t wlen, const char *name)
{
    return wlen == strlen(name) && strncasecmp(w, name, wlen) == 0;
}

/* apply - carry out a table's answer for text (a field or a body line piece) */
static void apply(struct msgcheck *m, int cls, const char *value, const char *text,
                  bool header, struct mc_edit *ed)
{
    const char *where = header ? "header" : "body";
    size_t wlen = strcspn(value, " \t");
    const char *rest = value + wlen;
    struct buf opt = BUF_INIT;
    int code = reply_code(value, wlen);

    rest += strspn(rest, " \t");
    /* as Postfix: "REJECT 4.x.x text" is a temporary refusal */
    if (word_is(value, wlen, "REJECT"))
        code = dsn_prefix(rest, '4') > 0 ? MC_DEFER_CODE : MC_REJECT_CODE;
    else if (word_is(value, wlen, "DEFER"))
        code = MC_DEFER_CODE;
    if (code != 0) {
        bool temp = code / 100 == 4;

        refuse(m, code, rest, temp ? MC_DEFER_ENH : MC_REJECT_ENH,
               temp ? MC_DEFER_TEXT : MC_REJECT_TEXT);
        (void)buf_printf(&opt, "%s %s", m->v.enh, m->v.text);
        log_event(m, "reject", where, text, buf_str(&opt));
    } else if (word_is(value, wlen, "DISCARD")) {
        m->v.kind = MSGCHECK_DISCARD;
        free(m->vtext);
        m->v.text = m->vtext = xstrdup(rest);
        m->done = true;
        log_event(m, "discard", where, text, rest);
    } else if (word_is(value, wlen, "HOLD")) {
        /* the first HOLD counts (and is logged), as in Postfix */
        if (!m->v.hold) {
            m->v.hold_text = m->htext = xstrdup(rest);
            m->v.hold = true;
            log_event(m, "hold", where, text, rest);
        }
    } else if (word_is(value, wlen, "WARN")) {
        log_event(m, "warning", where, text, rest);
    } else if (word_is(value, wlen, "INFO")) {
        log_event(m, "info", where, text, rest);
    } else if (word_is(value, wlen, "IGNORE")) {
        ed->kind = ED_DROP;
    } else if (word_is(value, wlen, "STRIP")) {
        ed->kind = ED_DROP;
        log_event(m, "strip", where, text, rest);
    } else if (word_is(value, wlen, "REPLACE") || word_is(value, wlen, "PREPEND")) {
        bool replace = word_is(value, wlen, "REPLACE");

        if (*rest == 0 || (header && field_name_len(rest, strlen(rest)) == 0)) {
            msg_warn("%s: %s: %s needs %s -- ignored", m->id, mc_param[cls],
                     replace ? "REPLACE" : "PREPEND",
                     header ? "a header field (name: value)" : "text");
        } else {
            ed->kind = replace ? ED_REPLACE : ED_PREPEND;
            ed->text = xstrdup(rest);
            log_event(m, replace ? "replace" : "prepend", where, text, rest);
        }
    } else if (word_is(value, wlen, "PASS")) {
        m->done = true;
        log_event(m, "pass", where, text, rest);
    } else if (word_is(value, wlen, "REDIRECT") || word_is(value, wlen, "BCC") ||
               word_is(value, wlen, "FILTER")) {
        if (m->v.unsupported == NULL)
            m->v.unsupported = word_is(value, wlen, "REDIRECT") ? "REDIRECT"
                               : word_is(value, wlen, "BCC") ? "BCC" : "FILTER";
    } else if (!word_is(value, wlen, "DUNNO") && !word_is(value, wlen, "OK")) {
        msg_warn("%s: %s: unknown action \"%.*s\" -- ignored", m->id, mc_param[cls],
                 (int)wlen, value);
    }
    buf_free(&opt);
}

/* inspect - look text up in the tables of class cls and act on the answer */
static void inspect(struct msgcheck *m, int cls, const char *text, bool header,
                    struct mc_edit *ed)
{
    const struct mc_list *l = &m->c->list[cls];

    ed->kind = ED_KEEP;
    ed->text = NULL;
    if (m->done)
        return;
    for (size_t i = 0; i < l->n; i++) {
        const char *value = NULL;
        enum dict_result r = dict_lookup(l->d[i], text, &value);

        if (r == DICT_TEMPFAIL) {
            msg_warn("%s: %s map lookup problem -- message not accepted, try again later",
                     m->id, mc_param[cls]);
            refuse(m, MC_TEMPFAIL_CODE, NULL, MC_TEMPFAIL_ENH, MC_TEMPFAIL_TEXT);
            m->v.tempfail = true;
            return;
        }
        if (r == DICT_FOUND) {
            char *copy = xstrdup(value ? value : "");

            apply(m, cls, copy, text, header, ed);
            free(copy);
            return;
        }
    }
}

/* ---- output ---------------------------------------------------------------- */

/* emit - bytes to the caller */
static void emit(struct msgcheck *m, const char *p, size_t n)
{
    if (n > 0)
        m->out(m->ctx, p, n);
}

/* emit_edited - the text, changed as ed says; true when something was written */
static bool emit_edited(struct msgcheck *m, const struct mc_edit *ed, const char *p, size_t n)
{
    switch (ed->kind) {
    case ED_DROP:
        return false;
    case ED_REPLACE:
        emit(m, ed->text, strlen(ed->text));
        return true;
    case ED_PREPEND:
        emit(m, ed->text, strlen(ed->text));
        emit(m, "\n", 1);
        break;
    case ED_KEEP:
        break;
    }
    emit(m, p, n);
    return true;
}

/* ---- header ----------------------------------------------------------------- */

/* field_add - append to the current field, dropping what passes header_size_limit */
static void field_add(struct msgcheck *m, const char *p, size_t n)
{
    size_t room = m->field.len < m->c->header_limit ? m->c->header_limit - m->field.len : 0;

    (void)buf_append(&m->field, p, n < room ? n : room);
}

/* flush_field - the current field is complete: inspect, write out */
static void flush_field(struct msgcheck *m, bool eol)
{
    const char *f = buf_str(&m->field);
    size_t name = field_name_len(f, m->field.len);
    struct mc_edit ed;
    int cls;

    if (!m->have_field)
        return;
    m->have_field = false;
    if (is_mime_field(f, name))
        cls = MC_MIME;
    else
        cls = m->hclass == HC_PRIMARY ? MC_HDR : m->hclass == HC_PART ? MC_MIME : MC_NESTED;
    if (m->c->mime && name == strlen("Content-Type") && strncasecmp(f, "Content-Type", name) == 0)
        parse_ctype(m, strchr(f, ':') + 1);
    inspect(m, cls, f, true, &ed);
    if (emit_edited(m, &ed, f, m->field.len) && eol)
        emit(m, "\n", 1);
    free(ed.text);
    buf_reset(&m->field);
}

/* push - a multipart with its boundary: its preamble follows */
static void push(struct msgcheck *m, const char *boundary)
{
    m->stack[m->depth].boundary = xstrdup(boundary);
    m->stack[m->depth].nested = m->nested;
    m->depth++;
}

/* pop_to - keep levels [0, keep) */
static void pop_to(struct msgcheck *m, size_t keep)
{
    while (m->depth > keep)
        free(m->stack[--m->depth].boundary);
}

/* header_end - the header is over (blank: by an empty line): what follows */
static void header_end(struct msgcheck *m, bool blank)
{
    enum mc_ctype ct = m->ctype;
    bool room = m->depth + m->nested < MC_DEPTH_MAX;

    m->ctype = CT_OTHER;
    m->part_bytes = 0;
    m->st = ST_BODY;
    if (!m->c->mime)
        return;
    if (ct == CT_MULTIPART && m->boundary[0] && room) {
        push(m, m->boundary);
    } else if (ct == CT_MESSAGE && blank && room) {
        m->nested++;
        m->hclass = HC_NESTED;
        m->st = ST_BOL;
    }
    m->boundary[0] = 0;
}

static size_t body_bytes(struct msgcheck *m, const char *p, size_t n);

/* not_header - a line that is not a field ends the header; its bytes so far are body */
static void not_header(struct msgcheck *m)
{
    struct buf saved = m->field;
    size_t off = 0;

    buf_init(&m->field, 0);
    m->have_field = false;
    header_end(m, false);
    while (off < saved.len)
        off += body_bytes(m, saved.data + off, saved.len - off);
    buf_free(&saved);
}

/* hdr_bol - the first byte of a header line decides; returns bytes used */
static size_t hdr_bol(struct msgcheck *m, const char *p, size_t n)
{
    if (p[0] == '\n') {
        flush_field(m, true);
        emit(m, "\n", 1);
        header_end(m, true);
        return 1;
    }
    if ((p[0] == ' ' || p[0] == '\t') && m->have_field) {
        field_add(m, "\n", 1);
        m->st = ST_FIELD;
        return 0;
    }
    flush_field(m, true);
    buf_reset(&m->field);
    m->name_ws = false;
    m->st = ST_NAME;
    (void)n;
    return 0;
}

/* hdr_name - a field name up to ":"; returns bytes used */
static size_t hdr_name(struct msgcheck *m, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        size_t have = m->field.len + i;

        if (c == ':' && have > 0) {
            field_add(m, p, i + 1);
            m->have_field = true;
            m->st = ST_FIELD;
            return i + 1;
        }
        if (have < m->c->header_limit && is_name_char(c) && !m->name_ws)
            continue;
        if (have < m->c->header_limit && (c == ' ' || c == '\t') && have > 0) {
            m->name_ws = true;
            continue;
        }
        (void)buf_append(&m->field, p, i);
        not_header(m);
        return i;
    }
    (void)buf_append(&m->field, p, n);
    return n;
}

/* hdr_field - the rest of a field line; returns bytes used */
static size_t hdr_field(struct msgcheck *m, const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t seg = nl ? (size_t)(nl - p) : n;

    field_add(m, p, seg);
    if (nl == NULL)
        return seg;
    m->st = ST_BOL;
    return seg + 1;
}

/* ---- body --------------------------------------------------------------------- */

/* boundary_match - the line is "--boundary" of a level: that level (+1), 0 if none */
static size_t boundary_match(struct msgcheck *m, const char *s, size_t len, bool *close)
{
    if (len < 2 || s[0] != '-' || s[1] != '-')
        return 0;
    for (size_t k = m->depth; k > 0; k--) {
        const char *b = m->stack[k - 1].boundary;
        size_t bl = strlen(b);

        if (len - 2 >= bl && memcmp(s + 2, b, bl) == 0) {
            *close = len - 2 - bl >= 2 && s[2 + bl] == '-' && s[3 + bl] == '-';
            return k;
        }
    }
    return 0;
}

/* emit_piece - a body line piece is complete (final: the line ends; eol: with "\n") */
static void emit_piece(struct msgcheck *m, bool final, bool eol)
{
    const char *s = buf_str(&m->line);
    size_t len = m->line.len, level = 0;
    bool close = false;
    struct mc_edit ed = {ED_KEEP, NULL};

    if (!m->line_cont && final && m->c->mime)
        level = boundary_match(m, s, len, &close);
    if (m->c->list[MC_BODY].n > 0 && m->part_bytes < m->c->body_limit)
        inspect(m, MC_BODY, s, false, &ed);
    m->part_bytes += len + (eol ? 1 : 0);
    if (emit_edited(m, &ed, s, len))
        m->line_out = true;
    free(ed.text);
    buf_reset(&m->line);
    if (!final) {
        m->line_cont = true;
        return;
    }
    if (eol && m->line_out)
        emit(m, "\n", 1);
    m->line_cont = m->line_out = false;
    if (level == 0)
        return;
    m->nested = m->stack[level - 1].nested;
    m->part_bytes = 0;
    if (close) {
        pop_to(m, level - 1);
    } else {
        pop_to(m, level);
        m->hclass = HC_PART;
        m->ctype = CT_OTHER;
        m->boundary[0] = 0;
        m->st = ST_BOL;
    }
}

/*
 * body_bytes - body content; returns bytes used. A piece is complete
 * when line_length_limit bytes are held and the next byte is not the
 * newline: the same pieces however the bytes arrive.
 */
static size_t body_bytes(struct msgcheck *m, const char *p, size_t n)
{
    size_t room, scan;
    const char *nl;

    if (m->line.len >= m->c->line_limit) {
        if (p[0] == '\n') {
            emit_piece(m, true, true);
            return 1;
        }
        emit_piece(m, false, false);
    }
    room = m->c->line_limit - m->line.len;
    scan = n < room ? n : room;
    if ((nl = memchr(p, '\n', scan)) != NULL) {
        size_t k = (size_t)(nl - p);

        (void)buf_append(&m->line, p, k);
        emit_piece(m, true, true);
        return k + 1;
    }
    (void)buf_append(&m->line, p, scan);
    return scan;
}

/* ---- the interface -------------------------------------------------------------- */

/* msgcheck_new - start inspecting one message */
struct msgcheck *msgcheck_new(const struct msgcheck_conf *c, const char *id,
                              msgcheck_out_fn *out, msgcheck_log_fn *log, void *ctx)
{
    struct msgcheck *m = xcalloc(1, sizeof(*m));

    if (!msgcheck_active(c))
        msg_panic("msgcheck_new: no tables configured");
    m->c = c;
    m->id = xstrdup(id ? id : "");
    m->out = out;
    m->log = log;
    m->ctx = ctx;
    m->st = ST_BOL;
    m->hclass = HC_PRIMARY;
    m->v.kind = MSGCHECK_ACCEPT;
    m->v.hold_text = "";
    /* one field, one line piece, plus their terminators */
    buf_init(&m->field, c->header_limit + 1);
    buf_init(&m->line, c->line_limit + 1);
    return m;
}

/* msgcheck_feed - the next bytes of the content */
void msgcheck_feed(struct msgcheck *m, const char *p, size_t n)
{
    while (n > 0) {
        size_t used = 0;

        switch (m->st) {
        case ST_BOL:
            used = hdr_bol(m, p, n);
            break;
        case ST_NAME:
            used = hdr_name(m, p, n);
            break;
        case ST_FIELD:
            used = hdr_field(m, p, n);
            break;
        case ST_BODY:
            used = body_bytes(m, p, n);
            break;
        }
        p += used;
        n -= used;
    }
}

/* msgcheck_field_end - the fields so far are complete: inspect the last one now */
void msgcheck_field_end(struct msgcheck *m)
{
    if (m->st == ST_BOL)
        flush_field(m, true);
}

/* msgcheck_end - flush what is pending; the verdict */
const struct msgcheck_verdict *msgcheck_end(struct msgcheck *m)
{
    switch (m->st) {
    case ST_BOL:
        flush_field(m, true);
        break;
    case ST_FIELD:
        flush_field(m, false);
        break;
    case ST_NAME:
        not_header(m);
        if (m->line.len > 0 || m->line_cont)
            emit_piece(m, true, false);
        break;
    case ST_BODY:
        if (m->line.len > 0 || m->line_cont)
            emit_piece(m, true, false);
        break;
    }
    return &m->v;
}

/* msgcheck_free - release one inspection */
void msgcheck_free(struct msgcheck *m)
{
    if (m == NULL)
        return;
    pop_to(m, 0);
    buf_free(&m->field);
    buf_free(&m->line);
    buf_free(&m->logtext);
    buf_free(&m->logopt);
    free(m->vtext);
    free(m->htext);
    free(m->id);
    free(m);
}

/* msgcheck_log_line - "ID: ACTION: WHERE TEXT ORIGIN[: OPT]" */
void msgcheck_log_line(struct buf *out, const char *id, const struct msgcheck_event *ev,
                       const char *origin)
{
    (void)buf_printf(out, "%s: %s: %s %s %s", id, ev->action, ev->where, ev->text, origin);
    if (ev->opt && *ev->opt)
        (void)buf_printf(out, ": %s", ev->opt);
}
