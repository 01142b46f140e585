/*
 * msgcheck.h - header_checks, mime_header_checks, nested_header_checks and
 * body_checks (Postfix's built-in content inspection, header_checks(5))
 *
 * Loaded once per process (msgcheck_conf_load: the tables are opened
 * then, before privileges are dropped). Per message, msgcheck_new starts
 * an inspection; the content is fed as posta stores it (lines ending in
 * "\n": header, empty line, body) in pieces of any size; the (possibly
 * changed) content comes out through the output callback, and
 * msgcheck_end gives the verdict. Nothing is copied but the current
 * header field (at most header_size_limit bytes) or body line piece (at
 * most line_length_limit bytes).
 *
 * What is inspected with which tables:
 *   - each logical field of the primary header (with its continuation
 *     lines, joined by their "\n": the pattern sees one string) with
 *     header_checks;
 *   - MIME fields (Content-Type, Content-Transfer-Encoding,
 *     Content-Disposition, Content-Description, Content-ID, MIME-Version)
 *     anywhere, and every field of a multipart part's header, with
 *     mime_header_checks;
 *   - the other fields of an attached message's header (message/rfc822)
 *     with nested_header_checks;
 *   - everything else, boundary lines included, with body_checks, one
 *     line at a time (a line longer than line_length_limit in pieces of
 *     that size), only the first body_checks_size_limit bytes of each
 *     body part.
 * disable_mime_input_processing = yes: after the primary header
 * everything is body.
 *
 * Actions: see man/header_checks.5. REJECT, 4NN/5NN text, DEFER and
 * DISCARD end the inspection (the rest passes unchanged); HOLD, WARN,
 * INFO, IGNORE, STRIP, REPLACE, PREPEND go on. REDIRECT, BCC and FILTER
 * change the envelope, which is written before the content: they are not
 * performed and msgcheck_end names the first one (the caller warns). A
 * table that fails (DICT_TEMPFAIL) makes the verdict "451 4.3.0" and
 * ends the inspection: the message is never let through unchecked.
 */
#ifndef POSTA_MSGCHECK_H
#define POSTA_MSGCHECK_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct buf;
struct msgcheck_conf;
struct msgcheck;

/*
 * msgcheck_conf_load - open the tables of header_checks,
 * mime_header_checks, nested_header_checks and body_checks (fatal when
 * one cannot be opened, as for any configured table); NULL when none is
 * configured: the caller then skips content inspection entirely.
 */
struct msgcheck_conf *msgcheck_conf_load(struct cfg *cfg);
void msgcheck_conf_free(struct msgcheck_conf *c);
/* msgcheck_active - some table is configured (c may be NULL) */
bool msgcheck_active(const struct msgcheck_conf *c);

/* what an action did, for the caller's log line */
struct msgcheck_event {
    const char *action;   /* "reject", "warning", "info", "hold", "discard", ... */
    const char *where;    /* "header" or "body" */
    const char *text;     /* the inspected field or line, truncated, printable */
    const char *opt;      /* the optional text ("5.7.1 text" for reject), or "" */
};

typedef void msgcheck_out_fn(void *ctx, const char *p, size_t n);
typedef void msgcheck_log_fn(void *ctx, const struct msgcheck_event *ev);

enum msgcheck_kind {
    MSGCHECK_ACCEPT = 0,    /* queue it (held if .hold) */
    MSGCHECK_REJECT,        /* refuse with code/enh/text (5xx) */
    MSGCHECK_DEFER,         /* refuse with code/enh/text (4xx; a table failure too) */
    MSGCHECK_DISCARD,       /* say it was delivered, drop it */
};

#define MSGCHECK_ENH_MAX 16

struct msgcheck_verdict {
    enum msgcheck_kind kind;
    int code;                       /* REJECT/DEFER: the SMTP reply code */
    char enh[MSGCHECK_ENH_MAX];     /* REJECT/DEFER: "5.7.1" */
    const char *text;               /* REJECT/DEFER: reply text; DISCARD/hold: reason */
    bool hold;                      /* HOLD was seen: queue into hold/ */
    const char *hold_text;          /* its optional text ("" if none) */
    const char *unsupported;        /* first REDIRECT/BCC/FILTER seen, or NULL */
    bool tempfail;                  /* DEFER because a table lookup failed */
};

/*
 * msgcheck_new - start inspecting one message (c must be active); id is
 * the queue ID for warnings; out receives the content, log each action
 */
struct msgcheck *msgcheck_new(const struct msgcheck_conf *c, const char *id,
                              msgcheck_out_fn *out, msgcheck_log_fn *log, void *ctx);
/* msgcheck_feed - the next n bytes of the content */
void msgcheck_feed(struct msgcheck *m, const char *p, size_t n);
/*
 * msgcheck_field_end - the header fields fed so far are complete (the
 * caller's own Received: field): inspect and output the last one now
 * instead of waiting for the next line to show it has no continuation
 */
void msgcheck_field_end(struct msgcheck *m);
/* msgcheck_end - end of content: flush, and the verdict (valid until msgcheck_free) */
const struct msgcheck_verdict *msgcheck_end(struct msgcheck *m);
void msgcheck_free(struct msgcheck *m);

/*
 * msgcheck_log_line - Postfix's log line for an event:
 * "ID: ACTION: WHERE TEXT ORIGIN[: OPT]", where origin is the caller's
 * "from host[addr]; from=<s> to=<r> proto=ESMTP helo=<h>"
 */
void msgcheck_log_line(struct buf *out, const char *id, const struct msgcheck_event *ev,
                       const char *origin);

#endif
