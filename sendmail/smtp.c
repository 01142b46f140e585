/*
 * smtp.c - "sendmail -bs": a small SMTP server on stdin/stdout
 *
 * For MUAs and scripts that speak SMTP to a local program: EHLO/HELO,
 * MAIL, RCPT, DATA, RSET, NOOP, QUIT. Each message is submitted through
 * postdrop like any other sendmail message, and 250 is sent only after
 * postdrop has put it on disk. ESMTP parameters of MAIL and RCPT are
 * accepted and ignored (SIZE is checked). No AUTH, no STARTTLS: the peer
 * is the local user who started us.
 *
 * DIAGNOSTICS: SMTP replies; the exit status is EX_OK after QUIT or EOF.
 * SECURITY: runs with the caller's privileges; lines are bounded
 * (SMTP_LINE_MAX) and the message by message_size_limit.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "mail/addr.h"
#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "sendmail.h"

#define SMTP_LINE_MAX 4096        /* a command line (RFC 5321 minimum: 512) */
#define SMTP_RCPT_MAX 1000
#define MAIL_FROM "MAIL FROM:"
#define RCPT_TO "RCPT TO:"

struct smtp {
    struct cfg *cfg;
    const char *full_name;
    char *sender;                 /* NULL: no MAIL yet */
    char **rcpts;
    size_t nrcpts;
    long long limit;
};

/* reply - one reply line, flushed */
static void POSTA_PRINTF(1, 2) reply(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputs("\r\n", stdout);
    fflush(stdout);
}

/* read_line - one line without CRLF; 0 ok, 1 EOF, -1 too long (rest skipped) */
static int read_line(struct buf *line, size_t max)
{
    int c;
    bool too_long = false;

    buf_reset(line);
    while ((c = getchar()) != EOF && c != '\n') {
        if (line->len >= max)
            too_long = true;
        else
            buf_putc(line, c);
    }
    if (c == EOF && line->len == 0)
        return 1;
    if (line->len > 0 && line->data[line->len - 1] == '\r')
        buf_truncate(line, line->len - 1);
    return too_long ? -1 : 0;
}

/* reset - forget the transaction */
static void reset(struct smtp *s)
{
    free(s->sender);
    s->sender = NULL;
    for (size_t i = 0; i < s->nrcpts; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    s->rcpts = NULL;
    s->nrcpts = 0;
}

/* parse_path - the address after "MAIL FROM:" / "RCPT TO:"; NULL on bad syntax */
static char *parse_path(const char *text, unsigned flags, long long *size)
{
    struct addr a;
    size_t end;
    char *out;

    if (addr_parse_path(text, strlen(text), flags | ADDR_LAX | ADDR_UTF8, &a, &end, NULL) !=
        ADDR_OK)
        return NULL;
    out = xstrdup(a.addr);
    addr_free(&a);
    if (size != NULL) {
        const char *p = strcasestr(text + end, "SIZE=");
        *size = p ? strtoll(p + strlen("SIZE="), NULL, 10) : 0;
    }
    return out;
}

/* data - read the message after 354; dot-stuffing undone; then submit */
static void data(struct smtp *s)
{
    struct submission sub;
    struct buf line = BUF_INIT;
    bool too_big = false;
    int r;

    memset(&sub, 0, sizeof(sub));
    buf_init(&sub.msg, s->limit > 0 ? (size_t)s->limit : 0);
    reply("354 End data with <CR><LF>.<CR><LF>");
    for (;;) {
        r = read_line(&line, s->limit > 0 ? (size_t)s->limit : BUF_DEFAULT_MAX);
        if (r == 1) {
            buf_free(&line);
            buf_free(&sub.msg);
            reset(s);
            exit(EX_OK);   /* EOF inside DATA: the client went away */
        }
        if (line.len == 1 && line.data[0] == '.')
            break;
        const char *p = buf_str(&line);
        size_t n = line.len;
        if (p[0] == '.') {
            p++;
            n--;
        }
        if (r < 0 || buf_append(&sub.msg, p, n) < 0 || buf_putc(&sub.msg, '\n') < 0)
            too_big = true;
    }
    buf_free(&line);
    if (too_big) {
        reply("552 5.3.4 Error: message file too big");
    } else {
        sub.sender = s->sender;
        sub.full_name = s->full_name;
        sub.rcpts = s->rcpts;
        sub.nrcpts = s->nrcpts;
        if (sm_submit(s->cfg, &sub) == EX_OK)
            reply("250 2.0.0 Ok: queued");
        else
            reply("451 4.3.0 Error: queue file write error");
    }
    buf_free(&sub.msg);
    reset(s);
}

/* command - one command line */
static bool command(struct smtp *s, const char *cmd)
{
    const char *host = cfg_str(s->cfg, "myhostname");

    if (strncasecmp(cmd, "EHLO", 4) == 0 && (cmd[4] == ' ' || cmd[4] == 0)) {
        reset(s);
        reply("250-%s", host);
        reply("250-PIPELINING");
        reply("250-SIZE %lld", s->limit);
        reply("250-8BITMIME");
        reply("250 SMTPUTF8");
    } else if (strncasecmp(cmd, "HELO", 4) == 0 && (cmd[4] == ' ' || cmd[4] == 0)) {
        reset(s);
        reply("250 %s", host);
    } else if (strncasecmp(cmd, MAIL_FROM, strlen(MAIL_FROM)) == 0) {
        long long size = 0;
        char *addr;
        if (s->sender != NULL) {
            reply("503 5.5.1 Error: nested MAIL command");
        } else if ((addr = parse_path(cmd + strlen(MAIL_FROM), ADDR_ALLOW_NULL, &size)) == NULL) {
            reply("501 5.1.7 Bad sender address syntax");
        } else if (s->limit > 0 && size > s->limit) {
            free(addr);
            reply("552 5.3.4 Message size exceeds fixed limit");
        } else {
            s->sender = addr;
            reply("250 2.1.0 Ok");
        }
    } else if (strncasecmp(cmd, RCPT_TO, strlen(RCPT_TO)) == 0) {
        char *addr;
        if (s->sender == NULL) {
            reply("503 5.5.1 Error: need MAIL command");
        } else if (s->nrcpts >= SMTP_RCPT_MAX) {
            reply("452 4.5.3 Error: too many recipients");
        } else if ((addr = parse_path(cmd + strlen(RCPT_TO), ADDR_ALLOW_POSTMASTER, NULL)) ==
                       NULL || !sm_addr_ok(s->cfg, addr)) {
            free(addr);
            reply("501 5.1.3 Bad recipient address syntax");
        } else {
            s->rcpts = xreallocarray(s->rcpts, s->nrcpts + 1, sizeof(char *));
            s->rcpts[s->nrcpts++] = addr;
            reply("250 2.1.5 Ok");
        }
    } else if (strcasecmp(cmd, "DATA") == 0) {
        if (s->sender == NULL)
            reply("503 5.5.1 Error: need MAIL command");
        else if (s->nrcpts == 0)
            reply("554 5.5.1 Error: no valid recipients");
        else
            data(s);
    } else if (strcasecmp(cmd, "RSET") == 0) {
        reset(s);
        reply("250 2.0.0 Ok");
    } else if (strncasecmp(cmd, "NOOP", 4) == 0 && (cmd[4] == ' ' || cmd[4] == 0)) {
        reply("250 2.0.0 Ok");
    } else if (strcasecmp(cmd, "QUIT") == 0) {
        reply("221 2.0.0 Bye");
        return false;
    } else {
        reply("502 5.5.2 Error: command not recognized");
    }
    return true;
}

/* sm_smtp - the session loop */
int sm_smtp(struct cfg *cfg, const char *full_name)
{
    struct smtp s = {cfg, full_name, NULL, NULL, 0, cfg_int(cfg, "message_size_limit")};
    struct buf line = BUF_INIT;
    int r;

    reply("220 %s ESMTP %s", cfg_str(cfg, "myhostname"), cfg_str(cfg, "mail_name"));
    while ((r = read_line(&line, SMTP_LINE_MAX)) != 1) {
        if (r < 0) {
            reply("500 5.5.2 Error: line too long");
            continue;
        }
        if (!command(&s, buf_str(&line)))
            break;
    }
    reset(&s);
    buf_free(&line);
    return EX_OK;
}
