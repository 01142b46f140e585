/*
 * forward.c - resubmit mail for destinations outside this machine
 *
 * Addresses in other domains that an alias, .forward or :include: list
 * names are not delivered here: the message is written as a new queue
 * file into incoming/ - same envelope sender, the listed recipients, and
 * the original content with "Delivered-To: ADDRESS" prepended (ADDRESS: the
 * request recipient, as in the local copies; a loop back is noticed) - made durable (fsync of the file and
 * of incoming/), and qmgr is woken. The original recipient is then
 * reported as sent, "forwarded as NEWQID" (as Postfix).
 *
 * DIAGNOSTICS: a failure to write the file defers (4.3.0) and removes it.
 * SECURITY: the file is handed to mail_owner (qmgr runs as that user).
 */
#include "util/sys.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "mail/config.h"
#include "mail/qid.h"
#include "mail/trigger.h"
#include "util/alloc.h"
#include "util/log.h"

#include "local.h"

struct fwd_copy {
    struct qfile_writer *w;
};

/* fwd_line - copy one piece of the content */
static int fwd_line(void *ctx, const char *p, size_t n, bool bol)
{
    struct fwd_copy *c = ctx;

    (void)bol;
    qfw_content(c->w, p, n);
    return qfw_error(c->w) ? -1 : 0;
}

/* forward_queue - one new queue file for addrs */
void forward_queue(struct lmsg *m, const struct lrcpt *r, char **addrs, size_t n,
                   struct dres *res)
{
    char qid[QID_MAX];
    struct qfile_writer *w;
    struct timeval tv;
    struct fwd_copy c;
    struct passwd *pw;
    const char *attr;
    char *hdr;
    int e;

    qid_new(qid);
    w = qfw_create(local_conf.incoming_fd, qid);
    if (w == NULL) {
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "cannot create queue file: %s",
                 strerror(errno));
        return;
    }
    /* qmgr runs as mail_owner and must be able to read and update it. */
    if (geteuid() == 0 && (pw = getpwnam(cfg_str(local_conf.cfg, "mail_owner"))) != NULL
        && fchown(qfw_fd(w), pw->pw_uid, pw->pw_gid) < 0) {
        e = errno;
        qfw_abort(w);
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "cannot set queue file owner: %s",
                 strerror(e));
        return;
    }
    gettimeofday(&tv, NULL);
    qfw_recordf(w, QREC_TIME, "%lld.%06ld", (long long)tv.tv_sec, (long)tv.tv_usec);
    qfw_recordf(w, QREC_ATTR, "protocol=%s", "local");
    if ((attr = qfile_attr(m->q, "encoding")) != NULL)
        qfw_recordf(w, QREC_ATTR, "encoding=%s", attr);
    if ((attr = qfile_attr(m->q, "smtputf8")) != NULL)
        qfw_recordf(w, QREC_ATTR, "smtputf8=%s", attr);
    qfw_recordf(w, QREC_ATTR, "log_ident=%s", qid);
    qfw_recordf(w, QREC_ATTR, "rewrite_context=local");
    qfw_record(w, QREC_SENDER, m->sender, strlen(m->sender));
    for (size_t i = 0; i < n; i++)
        qfw_record(w, QREC_RCPT, addrs[i], strlen(addrs[i]));
    qfw_record(w, QREC_MESSAGE, "", 0);
    hdr = xasprintf("Delivered-To: %s\n", r->top ? r->top : r->address);
    qfw_content(w, hdr, strlen(hdr));
    free(hdr);
    c.w = w;
    if (content_stream(m->q, fwd_line, &c) < 0 || qfw_finish(w) < 0 || fsync(qfw_fd(w)) < 0
        || fsync(local_conf.incoming_fd) < 0) {
        e = qfw_error(w) ? qfw_error(w) : errno;
        qfw_abort(w);
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "cannot write queue file: %s", strerror(e));
        return;
    }
    qfw_close(w);
    m->fwd_count++;
    msg_info("%s: forwarded copy of %s for <%s>, nrcpt=%zu", qid, m->q->qid, r->address, n);
    trigger_send(local_conf.cfg, TRIGGER_QMGR, TRIGGER_SCAN);
    dres_set(res, DELIVER_SENT, "2.0.0", "forwarded as %s", qid);
}
