/*
 * smtpreply.h - what an SMTP or LMTP server says: replies and EHLO features
 *
 * smtp_reply_parse reads one complete reply (RFC 5321 4.2: one or more
 * lines "CODE-text" ending with "CODE text" or "CODE"; all lines carry the
 * same three-digit code 2xx..5xx) from the start of a buffer of received
 * bytes. Lines end in CRLF; a bare LF is accepted as a line end (some
 * servers send it), a bare CR is kept as text. The enhanced status code
 * (RFC 3463 "X.Y.Z", class equal to the reply's first digit) is taken
 * from the first line when present.
 *
 * smtp_ehlo_features reads an EHLO/LHLO reply's keyword lines.
 *
 * SECURITY: input is the remote server's; every line is bounded
 * (SMTP_REPLY_LINE_MAX) and a reply by SMTP_REPLY_LINES_MAX lines; text
 * is kept as received except that bytes < 0x20 (other than the line
 * structure) and 0x7f become '?', so it is safe to log and to put in a
 * DSN.
 */
#ifndef POSTA_SMTPREPLY_H
#define POSTA_SMTPREPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define SMTP_REPLY_LINE_MAX 4096       /* bytes of one line, CRLF included */
#define SMTP_REPLY_LINES_MAX 1000

struct smtp_reply {
    int code;            /* 220, 250, 354, 451, 550, ... */
    char dsn[16];        /* "5.1.1", or "" when the server gave none */
    struct buf text;     /* every line as received without CRLF, joined by
                          * "\n": "250-mx.example.com\n250-PIPELINING\n250 SIZE" */
};

/* smtp_reply_init / smtp_reply_free - an empty reply / release its text */
void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);
/*
 * smtp_reply_parse - one reply from in[0..len): 1 = complete (*used bytes
 * consumed, *r filled), 0 = incomplete (wait for more bytes), -1 =
 * malformed (*err: static text such as "malformed reply line", "reply
 * line too long", "too many reply lines", "inconsistent reply codes").
 */
int smtp_reply_parse(const char *in, size_t len, size_t *used, struct smtp_reply *r,
                     const char **err);
/*
 * smtp_reply_oneline - the reply for logs and DSNs on one line: the
 * lines' texts after their codes joined by spaces, prefixed once by the
 * code: "550 5.1.1 <bob@x>: Recipient address rejected: User unknown".
 * Appended to out.
 */
void smtp_reply_oneline(const struct smtp_reply *r, struct buf *out);

/* EHLO keywords (RFC 5321 4.1.1.1 and the extensions' RFCs) */
#define SMTP_FEAT_PIPELINING 0x0001u
#define SMTP_FEAT_SIZE 0x0002u
#define SMTP_FEAT_8BITMIME 0x0004u
#define SMTP_FEAT_DSN 0x0008u
#define SMTP_FEAT_SMTPUTF8 0x0010u
#define SMTP_FEAT_STARTTLS 0x0020u
#define SMTP_FEAT_AUTH 0x0040u
#define SMTP_FEAT_ENHANCEDSTATUSCODES 0x0080u
#define SMTP_FEAT_CHUNKING 0x0100u

struct smtp_features {
    unsigned flags;
    uint64_t size_limit;     /* SIZE n; 0 = not given or no limit */
    char auth_mechs[512];    /* "PLAIN LOGIN CRAM-MD5" (upper case), from
                              * "AUTH ..." and "AUTH=..." lines */
};

/* smtp_ehlo_features - parse the keyword lines (not the first) of an EHLO reply */
void smtp_ehlo_features(const struct smtp_reply *r, struct smtp_features *f);

#endif
