/*
 * results.c - what happened to each recipient, and the end of a message
 *
 * A delivered recipient is marked done in the queue file at once
 * (qfile_mark_done: one byte, fdatasync), after a "delivered" notice when
 * it asked for NOTIFY=SUCCESS (a "relayed" one when the next hop does not
 * speak DSN; none when it does, as it then reports itself); without the fdatasync when it was the last
 * recipient with no deferred or bounced one left, as the file is then
 * removed at once (docs/QUEUE.md, crash windows). A deferred one is
 * appended to defer/QID, a bounced one to bounce/QID (fdatasync'ed: the
 * bounce log is what keeps a recipient from being delivered again after a
 * crash before its notice was written), as "recipient<TAB>dsn<TAB>reason"
 * lines.
 *
 * When every recipient of a message has a result: deferred recipients of
 * a message older than maximal_queue_lifetime (bounce_queue_lifetime for
 * the null sender) are bounced with their last reason ("status=expired,
 * returned to sender"); when delay_warning_time > 0 and the message is at
 * least that old, the recipients still deferred get one delay notice per
 * message (bounce_notify BOUNCE_DELAYED, which keeps only those with no
 * NOTIFY or with DELAY), recorded by the marker file defer/QID.warned
 * (created and made durable after the notice, so a crash in between may
 * repeat the notice but never loses it; the marker outlives the defer log,
 * which starts anew at each attempt, and goes with the message);
 * bounced recipients get one failure notice
 * (bounce_notify) and are marked done only after it is on disk. Then the
 * message is removed ("QID: removed") or, when recipients remain, moved to
 * deferred/ with its mtime set to the next attempt: now + the time since
 * arrival, clamped to [minimal_backoff_time, maximal_backoff_time].
 *
 * DIAGNOSTICS: I/O errors on logs and queue files are warnings; a failed
 *   notice keeps its recipients for the next attempt.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mail/bounce.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/resolve.h"
#include "qmgr.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define LOG_MODE 0600
#define LOG_READ_MAX (16u << 20)
#define US_PER_SEC 1e6
#define DELAY_WHOLE 10.0      /* from here on whole seconds */
#define DELAY_TENTHS 1.0      /* from here on one decimal */
#define DSN_BOUNCE_FAILED "4.3.0"
#define WARNED_SUFFIX ".warned"   /* defer/QID.warned: delay notice sent */

/* fmt_delay - a delay as Postfix prints it: 388, 4.4, 0.24, 0.1, 0 */
static void fmt_delay(struct buf *out, double secs)
{
    size_t start = out->len;

    if (secs < 0)
        secs = 0;
    if (secs >= DELAY_WHOLE)
        buf_printf(out, "%.0f", secs);
    else if (secs >= DELAY_TENTHS)
        buf_printf(out, "%.1f", secs);
    else
        buf_printf(out, "%.2f", secs);
    if (strchr(out->data + start, '.') == NULL)
        return;
    while (out->len > start && out->data[out->len - 1] == '0')
        buf_truncate(out, out->len - 1);
    if (out->len > start && out->data[out->len - 1] == '.')
        buf_truncate(out, out->len - 1);
}

/* result_format_delays - "delay=D, delays=a/b/0/0" for qmgr's own lines */
void result_format_delays(const struct qmsg *m, struct buf *out)
{
    long long now = qmgr_now_us();
    long long arrival = m->q->arrival_sec * 1000000LL + m->q->arrival_usec;

    buf_puts(out, "delay=");
    fmt_delay(out, (double)(now - arrival) / US_PER_SEC);
    buf_puts(out, ", delays=");
    fmt_delay(out, (double)(m->active_us - arrival) / US_PER_SEC);
    buf_putc(out, '/');
    fmt_delay(out, (double)(now - m->active_us) / US_PER_SEC);
    buf_puts(out, "/0/0");
}

/* log_result - "QID: to=<..>, [orig_to=<..>, ]relay=.., delay.., dsn=.., status=.. (..)" */
static void log_result(struct qmsg *m, size_t i, const char *status, const char *dsn,
                       const char *relay, const char *text)
{
    struct buf line = BUF_INIT;
    const char *orig = m->q->rcpts[i].addr;
    const char *addr = m->ri[i].address ? m->ri[i].address : orig;

    buf_printf(&line, "%s: to=<%s>, ", m->qid, addr);
    if (strcmp(orig, addr) != 0)
        buf_printf(&line, "orig_to=<%s>, ", orig);
    buf_printf(&line, "relay=%s, ", relay);
    result_format_delays(m, &line);
    buf_printf(&line, ", dsn=%s, status=%s (%s)", dsn, status, text);
    msg_info("%s", buf_str(&line));
    buf_free(&line);
}

/* log_append - "recipient<TAB>dsn<TAB>reason" to dirfd/QID; 0 or -1 */
static int log_append(int dirfd, const char *qid, const char *rcpt, const char *dsn,
                      const char *text, bool sync)
{
    struct buf line = BUF_INIT;
    int fd, rc = 0;

    buf_printf(&line, "%s\t%s\t", rcpt, dsn);
    for (const char *p = text; *p; p++)
        buf_putc(&line, (*p == '\t' || *p == '\n' || *p == '\r') ? ' ' : *p);
    buf_putc(&line, '\n');
    fd = openat(dirfd, qid, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, LOG_MODE);
    if (fd < 0 || write(fd, line.data, line.len) != (ssize_t)line.len
        || (sync && fdatasync(fd) < 0)) {
        msg_warn("%s: append to %s log: %m", qid, dirfd == qmgr_dir_bounce ? "bounce" : "defer");
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    buf_free(&line);
    return rc;
}

/* set_reason - remember the last dsn/text/relay of recipient i */
static void set_reason(struct rcpt_info *ri, const char *dsn, const char *relay,
                       const char *text)
{
    snprintf(ri->dsn, sizeof(ri->dsn), "%s", dsn);
    free(ri->text);
    ri->text = xstrdup(text ? text : "");
    free(ri->relay);
    ri->relay = xstrdup(relay ? relay : "none");
}

/* fill_bounce_rcpt - the notice's view of recipient i */
static void fill_bounce_rcpt(struct qmsg *m, size_t i, struct bounce_rcpt *br)
{
    const struct qrcpt *qr = &m->q->rcpts[i];
    const struct rcpt_info *ri = &m->ri[i];

    memset(br, 0, sizeof(*br));
    br->address = ri->address ? ri->address : qr->addr;
    br->orig = qr->addr;
    br->orcpt = qr->orcpt;
    br->notify = qr->notify;
    br->dsn = ri->dsn;
    br->text = ri->text ? ri->text : "";
    br->remote_mta = ri->remote_mta;
    br->diag = ri->diag;
    br->last_attempt = 0;
}

/* notice_written - a new queue file in incoming/: look at it soon */
static void notice_written(const char *new_qid)
{
    (void)new_qid;
    scan_incoming_soon();
}

/* msg_fd_open - open m's queue file again (closed between uses); false if not */
static bool msg_fd_open(struct qmsg *m)
{
    if (m->q->fd >= 0)
        return true;
    m->q->fd = openat(qmgr_dir_active, m->qid, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (m->q->fd < 0) {
        msg_warn("%s: open queue file: %m", m->qid);
        return false;
    }
    return true;
}

/* msg_fd_close - close m's queue file until it is needed again */
static void msg_fd_close(struct qmsg *m)
{
    if (m->q->fd >= 0)
        close(m->q->fd);
    m->q->fd = -1;
}

/* mark_done - qfile_mark_done with a warning */
static void mark_done(struct qmsg *m, size_t i)
{
    if (!msg_fd_open(m) || qfile_mark_done(m->q, i) < 0)
        msg_warn("%s: mark recipient <%s> done: %m (it may be delivered again)", m->qid,
                 m->q->rcpts[i].addr);
}

/*
 * removal_next - every recipient of m has a result and none is deferred or
 * bounced: result_message_check will remove the queue file right away (no
 * notice, no retry), so a durable done mark would be wasted work
 */
static bool removal_next(const struct qmsg *m)
{
    if (m->unfinished > 0)
        return false;
    for (size_t i = 0; i < m->q->nrcpts; i++)
        if (m->ri[i].st == RS_DEFER || m->ri[i].st == RS_BOUNCE)
            return false;
    return true;
}

/*
 * mark_sent - mark delivered recipient i done: durably, unless the file is
 * about to be removed (then the mark only covers a qmgr crash before the
 * unlink; after a system crash in that window the recipient is delivered
 * again, the same window as between the agent's reply and any mark)
 */
static void mark_sent(struct qmsg *m, size_t i)
{
    if (!removal_next(m)) {
        mark_done(m, i);
        return;
    }
    if (!msg_fd_open(m) || qfile_mark_done_nosync(m->q, i) < 0)
        msg_warn("%s: mark recipient <%s> done: %m (it may be delivered again)", m->qid,
                 m->q->rcpts[i].addr);
}

/* result_record - apply the result of recipient i; log it when log_it */
void result_record(struct qmsg *m, size_t i, enum deliver_status st, const char *dsn,
                   const char *relay, const char *text, bool log_it)
{
    struct rcpt_info *ri = &m->ri[i];
    const struct qrcpt *qr = &m->q->rcpts[i];

    if (ri->st != RS_TODO && ri->st != RS_BUSY)
        msg_panic("%s: result for recipient %zu in state %d", m->qid, i, (int)ri->st);
    m->unfinished--;
    set_reason(ri, dsn, relay, text);
    if (log_it)
        log_result(m, i, deliver_status_name(st), dsn, ri->relay, ri->text);
    switch (st) {
    case DELIVER_SENT:
        ri->st = RS_SENT;
        /* A next hop that speaks DSN got NOTIFY and reports on its own;
         * notices come from here for final delivery (no remote MTA) and
         * for a next hop without DSN ("relayed"). */
        if ((qr->notify & QNOTIFY_SUCCESS) && (ri->remote_mta == NULL || ri->relayed)) {
            struct bounce_rcpt br;
            char new_qid[QID_MAX] = "";

            fill_bounce_rcpt(m, i, &br);
            (void)msg_fd_open(m);
            if (bounce_notify(qmgr_cfg, m->q, ri->relayed ? BOUNCE_RELAYED : BOUNCE_DELIVERED, &br, 1, new_qid) < 0)
                msg_warn("%s: cannot write delivery notice for <%s>: %m", m->qid, qr->addr);
            else if (new_qid[0])
                notice_written(new_qid);
        }
        mark_sent(m, i);
        msg_fd_close(m);
        break;
    case DELIVER_DEFERRED:
        ri->st = RS_DEFER;
        (void)log_append(qmgr_dir_defer, m->qid, qr->addr, dsn, ri->text, false);
        break;
    case DELIVER_BOUNCED:
        ri->st = RS_BOUNCE;
        (void)log_append(qmgr_dir_bounce, m->qid, qr->addr, dsn, ri->text, true);
        break;
    }
}

/* result_job_failed - every recipient of j deferred with dsn/text (logged) */
void result_job_failed(struct qjob *j, const char *dsn, const char *text)
{
    for (size_t k = 0; k < j->n; k++)
        if (j->m->ri[j->idx[k]].st == RS_BUSY)
            result_record(j->m, j->idx[k], DELIVER_DEFERRED, dsn, "none", text, true);
}

/* result_load_bounce_log - recipients already bounced in an earlier pass */
void result_load_bounce_log(struct qmsg *m)
{
    struct buf data = BUF_INIT;
    char chunk[8192];
    ssize_t n;
    int fd = openat(qmgr_dir_bounce, m->qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        if (errno != ENOENT)
            msg_warn("%s: open bounce log: %m", m->qid);
        return;
    }
    buf_init(&data, LOG_READ_MAX);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        if (buf_append(&data, chunk, (size_t)n) < 0)
            break;
    close(fd);
    for (char *line = data.data, *next; line && *line; line = next) {
        char *dsn, *text;

        next = strchr(line, '\n');
        if (next == NULL)
            break;   /* a torn last line: that recipient is tried again */
        *next++ = 0;
        if ((dsn = strchr(line, '\t')) == NULL || (text = strchr(dsn + 1, '\t')) == NULL)
            continue;
        *dsn++ = 0;
        *text++ = 0;
        for (size_t i = 0; i < m->q->nrcpts; i++) {
            if (m->ri[i].st != RS_TODO || strcmp(m->q->rcpts[i].addr, line) != 0)
                continue;
            m->ri[i].st = RS_BOUNCE;
            m->unfinished--;
            set_reason(&m->ri[i], dsn, "none", text);
        }
    }
    buf_free(&data);
}

/* expire - deferred recipients of a message past its lifetime bounce */
static void expire(struct qmsg *m)
{
    time_t now = time(NULL);
    long long lifetime = cfg_time(qmgr_cfg, *m->q->sender ? "maximal_queue_lifetime"
                                                          : "bounce_queue_lifetime");
    bool any = false;

    if (now - m->q->arrival_sec < lifetime)
        return;
    for (size_t i = 0; i < m->q->nrcpts; i++) {
        struct rcpt_info *ri = &m->ri[i];

        if (ri->st != RS_DEFER)
            continue;
        any = true;
        ri->st = RS_BOUNCE;
        (void)log_append(qmgr_dir_bounce, m->qid, m->q->rcpts[i].addr, ri->dsn,
                         ri->text ? ri->text : "", true);
    }
    if (any)
        msg_info("%s: from=<%s>, status=expired, returned to sender", m->qid, m->q->sender);
}

/* warned_name - "QID.warned", the delay notice marker of m in defer/ */
static void warned_name(const struct qmsg *m, char *out, size_t len)
{
    snprintf(out, len, "%s%s", m->qid, WARNED_SUFFIX);
}

/* warned_already - the delay notice marker of m exists */
static bool warned_already(const struct qmsg *m)
{
    char name[QID_MAX + sizeof(WARNED_SUFFIX)];
    struct stat st;

    warned_name(m, name, sizeof(name));
    if (fstatat(qmgr_dir_defer, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return true;
    if (errno == ENOENT)
        return false;
    /* cannot tell: rather no notice now than one in every pass */
    msg_warn("%s: look up delay notice marker: %m", m->qid);
    return true;
}

/* mark_warned - create the delay notice marker durably; 0 or -1 */
static int mark_warned(const struct qmsg *m)
{
    char name[QID_MAX + sizeof(WARNED_SUFFIX)];
    int fd;

    warned_name(m, name, sizeof(name));
    fd = openat(qmgr_dir_defer, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, LOG_MODE);
    if (fd < 0 || close(fd) < 0 || fsync(qmgr_dir_defer) < 0) {
        msg_warn("%s: record the delay notice: %m (it may be sent again)", m->qid);
        return -1;
    }
    return 0;
}

/* send_delay_warning - the once-per-message delay notice, when it is due */
static void send_delay_warning(struct qmsg *m)
{
    long long warn_after = cfg_time(qmgr_cfg, "delay_warning_time");
    struct bounce_rcpt *br;
    size_t n = 0;
    char new_qid[QID_MAX] = "";

    /* Postfix: off at 0; never to the null sender (bounce_notify agrees) */
    if (warn_after <= 0 || *m->q->sender == 0
        || (long long)time(NULL) - m->q->arrival_sec < warn_after)
        return;
    for (size_t i = 0; i < m->q->nrcpts; i++)
        if (m->ri[i].st == RS_DEFER)
            n++;
    if (n == 0 || warned_already(m))
        return;
    br = xcalloc(n, sizeof(*br));
    n = 0;
    for (size_t i = 0; i < m->q->nrcpts; i++)
        if (m->ri[i].st == RS_DEFER)
            fill_bounce_rcpt(m, i, &br[n++]);
    (void)msg_fd_open(m);   /* the notice reads the headers through it */
    if (bounce_notify(qmgr_cfg, m->q, BOUNCE_DELAYED, br, n, new_qid) < 0) {
        msg_warn("%s: cannot write the delay notice: %m; will try again", m->qid);
    } else {
        /* also when no recipient wanted one: the moment has passed, once */
        (void)mark_warned(m);
        if (new_qid[0])
            notice_written(new_qid);
    }
    free(br);
}

/* send_failures - one failure notice for the bounced recipients; 0 or -1 */
static int send_failures(struct qmsg *m)
{
    struct bounce_rcpt *br = xcalloc(m->q->nrcpts ? m->q->nrcpts : 1, sizeof(*br));
    size_t *idx = xcalloc(m->q->nrcpts ? m->q->nrcpts : 1, sizeof(*idx));
    size_t n = 0;
    char new_qid[QID_MAX] = "";
    int rc = 0;

    for (size_t i = 0; i < m->q->nrcpts; i++)
        if (m->ri[i].st == RS_BOUNCE) {
            fill_bounce_rcpt(m, i, &br[n]);
            idx[n++] = i;
        }
    if (n > 0) {
        (void)msg_fd_open(m);   /* the notice reads the content through it */
        if (bounce_notify(qmgr_cfg, m->q, BOUNCE_FAILED, br, n, new_qid) < 0) {
            msg_warn("%s: cannot write the non-delivery notice: %m; will try again", m->qid);
            for (size_t k = 0; k < n; k++)
                m->ri[idx[k]].st = RS_DEFER;
            rc = -1;
        } else {
            if (new_qid[0])
                notice_written(new_qid);
            for (size_t k = 0; k < n; k++) {
                mark_done(m, idx[k]);
                m->ri[idx[k]].st = RS_SENT;
            }
        }
    }
    free(br);
    free(idx);
    return rc;
}

/* defer_message - to deferred/ with the next attempt as its mtime */
static void defer_message(struct qmsg *m)
{
    time_t now = time(NULL);
    long long backoff = now - m->q->arrival_sec;
    long long lo = cfg_time(qmgr_cfg, "minimal_backoff_time");
    long long hi = cfg_time(qmgr_cfg, "maximal_backoff_time");
    struct timespec ts[2];

    if (backoff > hi)
        backoff = hi;
    if (backoff < lo)
        backoff = lo;
    ts[0].tv_sec = ts[1].tv_sec = now + backoff;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (utimensat(qmgr_dir_active, m->qid, ts, AT_SYMLINK_NOFOLLOW) < 0)
        msg_warn("%s: set retry time: %m", m->qid);
    if (renameat(qmgr_dir_active, m->qid, qmgr_dir_deferred, m->qid) < 0)
        msg_warn("%s: move to deferred/: %m", m->qid);
}

/* remove_message - every recipient is done: the file and its logs go */
static void remove_message(struct qmsg *m)
{
    char name[QID_MAX + sizeof(WARNED_SUFFIX)];

    /* Logs first: once the queue file is gone nothing may be left over
     * (every recipient is marked done, so a crash in between only makes
     * the next pass remove the file). */
    if (unlinkat(qmgr_dir_defer, m->qid, 0) < 0 && errno != ENOENT)
        msg_warn("%s: remove defer log: %m", m->qid);
    if (unlinkat(qmgr_dir_bounce, m->qid, 0) < 0 && errno != ENOENT)
        msg_warn("%s: remove bounce log: %m", m->qid);
    warned_name(m, name, sizeof(name));
    if (unlinkat(qmgr_dir_defer, name, 0) < 0 && errno != ENOENT)
        msg_warn("%s: remove delay notice marker: %m", m->qid);
    if (unlinkat(qmgr_dir_active, m->qid, 0) < 0) {
        msg_warn("%s: remove queue file: %m", m->qid);
        return;
    }
    msg_info("%s: removed", m->qid);
}

/* qmsg_free - release a message's memory */
void qmsg_free(struct qmsg *m)
{
    for (size_t i = 0; i < (m->q ? m->q->nrcpts : 0); i++) {
        free(m->ri[i].address);
        free(m->ri[i].text);
        free(m->ri[i].relay);
        free(m->ri[i].remote_mta);
        free(m->ri[i].diag);
    }
    free(m->ri);
    if (m->q)
        qfile_close(m->q);
    free(m);
}

/* result_message_check - finish m once every recipient has a result */
void result_message_check(struct qmsg *m)
{
    bool deferred = false;
    bool bounce_failed;

    if (m->unfinished > 0 || m->jobs > 0)
        return;
    expire(m);
    send_delay_warning(m);
    bounce_failed = send_failures(m) < 0;
    for (size_t i = 0; i < m->q->nrcpts; i++)
        if (m->ri[i].st == RS_DEFER)
            deferred = true;
    if (deferred) {
        if (!bounce_failed && unlinkat(qmgr_dir_bounce, m->qid, 0) < 0 && errno != ENOENT)
            msg_warn("%s: remove bounce log: %m", m->qid);
        defer_message(m);
    } else {
        remove_message(m);
    }
    qmsg_free(m);
    scan_room();
}
