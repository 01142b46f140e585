/*
 * signer.c - DKIM signatures smtpd left pending, completed before delivery
 *
 * smtpd answers 250 for our mail (AUTH and mynetworks clients) once the
 * message is on disk with a pending signature field right after its
 * Received field (mail/dkim.h: placeholders where the base64 of bh= and
 * b= goes, the name X-DKIM-Pending) and the queue file attribute
 * dkim_sign=pending. Before the queue manager schedules such a message
 * it hands it to this module, which reads the content, hashes the body
 * and the signed fields, makes the signature with the key the field
 * names (d=, s=) and writes the finished field over the pending one, in
 * place and of the same length. Only then are the recipients scheduled,
 * so every delivery and every retry carries the one signature.
 *
 * Two threads take the jobs, oldest first. One runs at SCHED_IDLE: it
 * signs with the CPU nothing else wants, so a burst of submissions is
 * answered at the rate of unsigned mail (the private-key operation costs
 * about as much CPU as all the rest of receiving a small message). The
 * other runs at normal priority and takes only jobs that have waited
 * SIGNER_PATIENCE_MS: under a load that leaves no idle CPU for long,
 * signing then competes for the CPU like receiving does, and a message
 * never waits long for its signature.
 *
 * The write is not fsync'ed: RSA PKCS#1 v1.5 and Ed25519 signatures are
 * deterministic, so a field a crash left pending or half written (some
 * placeholders, or the old name, still there: dkim_complete_needed) is
 * completed again after a restart with the same bytes. A message whose
 * field is already complete (a retry from deferred/) is only read.
 *
 * The threads touch only their job, the key set (a key not preloaded is
 * looked up under keys_lock) and the file they open; results go back
 * through a locked list and a pipe that wakes the event loop, which logs
 * them and schedules the message.
 *
 * DIAGNOSTICS: "QID: DKIM-Signature added d=DOMAIN" for each signature
 *   made; a field that cannot be completed (no key for its d= and s= any
 *   more, a key of another size, an unreadable file) is a warning and the
 *   message is delivered without a signature (the pending field is an
 *   X- field verifiers ignore), as smtpd did with a signing failure.
 * SECURITY: only messages whose queue file carries dkim_sign=pending are
 *   signed (smtpd writes it for its own clients only, pickup refuses the
 *   attribute from maildrop files), and only their second field: a field
 *   of that name from the client is removed by smtpd. The keys are read
 *   as root before privileges are dropped.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/dkim.h"
#include "mail/qfile.h"
#include "qmgr.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

#define SIGNER_PATIENCE_MS 1000      /* then a job goes to the normal-priority thread */
#define MS_PER_SEC 1000
#define NS_PER_MS 1000000L
#define SIGNER_CHUNK 65536           /* content read at a time */
#define SIGNER_SEGS_MAX 64           /* file pieces of the header block kept */
#define SIGNER_WAKE_BUF 64

enum sjob_status { SJ_SIGNED, SJ_NOTHING, SJ_FAILED };

struct sjob {
    struct qmsg *m;
    char qid[QID_MAX];
    off_t content_offset;
    off_t file_size;
    struct timespec queued;          /* CLOCK_MONOTONIC */
    enum sjob_status status;
    char *text;                      /* d= when signed, the reason when failed */
    struct sjob *next;
};

/* where a piece of the content is in the file (records split it) */
struct seg {
    size_t pos;                      /* content offset */
    off_t off;                       /* file offset */
    size_t len;
};

struct head {
    struct buf text;                 /* the content read so far */
    struct seg seg[SIGNER_SEGS_MAX];
    size_t nseg;
    size_t f2_pos, f2_len;           /* the second field */
    size_t f_count;
    size_t rest_pos;                 /* after the second field's line end */
};

static struct dkim_keys *signer_keys;
static pthread_mutex_t signer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;  /* the key table */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t due_cond;     /* CLOCK_MONOTONIC, made in signer_post_jail */
static struct sjob *todo_head, *todo_tail, *done_head;
static int wake_fd[2] = {-1, -1};
static size_t header_max;

/* ---- the thread ------------------------------------------------------------ */

/* field_fn - dkim_header_split callback: note the first two fields */
static void field_fn(void *ctx, const char *field, size_t len)
{
    struct head *h = ctx;

    if (++h->f_count == 2) {
        h->f2_pos = (size_t)(field - h->text.data);
        h->f2_len = len;
    }
}

/* header_end - the length of the header block in text (no final empty line), or 0 */
static size_t header_end(const struct buf *t, size_t *body_pos)
{
    const char *p = t->data ? t->data : "";

    if (t->len > 0 && p[0] == '\n') {
        *body_pos = 1;
        return 0;
    }
    for (size_t i = 0; i + 1 < t->len; i++) {
        if (p[i] == '\n' && p[i + 1] == '\n') {
            *body_pos = i + 2;
            return i + 1;
        }
    }
    return 0;
}

/* write_field - the finished field over the pending one, piece by piece */
static int write_field(int fd, const struct head *h, const char *p, size_t len)
{
    size_t pos = h->f2_pos, done = 0;

    for (size_t i = 0; i < h->nseg && done < len; i++) {
        const struct seg *s = &h->seg[i];

        if (pos + done < s->pos || pos + done >= s->pos + s->len)
            continue;
        size_t in = pos + done - s->pos, n = s->len - in;
        if (n > len - done)
            n = len - done;
        if (pwrite(fd, p + done, n, s->off + (off_t)in) != (ssize_t)n)
            return -1;
        done += n;
    }
    if (done != len) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* sign_one - complete the pending field of one message */
static void sign_one(struct sjob *j)
{
    struct qfile q = {.fd = -1};
    struct qfile_cursor cur;
    struct head h = {.text = BUF_INIT};
    struct dkim_complete *c = NULL;
    struct buf out = BUF_INIT;
    char *chunk = xmalloc(SIGNER_CHUNK), *err = NULL;
    size_t hend = 0, body_pos = 0;
    bool have_head = false;
    ssize_t n;

    j->status = SJ_FAILED;
    q.fd = openat(qmgr_dir_active, j->qid, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (q.fd < 0) {
        j->text = xasprintf("open queue file: %s", strerror(errno));
        goto out;
    }
    q.content_offset = j->content_offset;
    q.file_size = j->file_size;
    qfile_content_begin(&q, &cur);
    /* the header block, with where each piece of it is in the file */
    while (!have_head && (n = qfile_content_read(&q, &cur, chunk, SIGNER_CHUNK)) > 0) {
        if (h.nseg < SIGNER_SEGS_MAX)
            h.seg[h.nseg++] = (struct seg){h.text.len, cur.off - n, (size_t)n};
        buf_append(&h.text, chunk, (size_t)n);
        hend = header_end(&h.text, &body_pos);
        have_head = body_pos > 0 || h.text.len > header_max;
    }
    if (!have_head && (n < 0 || h.text.len == 0)) {
        j->text = xasprintf("read queue file: %s", n < 0 ? strerror(errno) : "no content");
        goto out;
    }
    if (body_pos == 0)               /* no empty line: all header */
        hend = body_pos = h.text.len;
    dkim_header_split(h.text.data, hend, field_fn, &h);
    if (h.f_count < 2 || !dkim_complete_needed(h.text.data + h.f2_pos, h.f2_len)) {
        j->status = SJ_NOTHING;
        goto out;
    }
    /* a key not preloaded is looked up (and loaded) in the shared table */
    pthread_mutex_lock(&keys_lock);
    c = dkim_complete_new(signer_keys, h.text.data + h.f2_pos, h.f2_len, &err);
    pthread_mutex_unlock(&keys_lock);
    if (c == NULL) {
        j->text = err;
        err = NULL;
        goto out;
    }
    h.rest_pos = h.f2_pos + h.f2_len + 1;
    dkim_complete_header(c, h.text.data + h.rest_pos, hend > h.rest_pos ? hend - h.rest_pos : 0);
    dkim_complete_body(c, h.text.data + body_pos, h.text.len - body_pos);
    while ((n = qfile_content_read(&q, &cur, chunk, SIGNER_CHUNK)) > 0)
        dkim_complete_body(c, chunk, (size_t)n);
    if (n < 0) {
        j->text = xasprintf("read queue file: %s", strerror(errno));
        goto out;
    }
    if (dkim_complete_finish(c, &out, &err) < 0) {
        j->text = err;
        err = NULL;
        goto out;
    }
    if (out.len != h.f2_len) {
        j->text = xstrdup("the finished field is not as long as the pending one");
        goto out;
    }
    if (write_field(q.fd, &h, out.data, out.len) < 0) {
        j->text = xasprintf("write queue file: %s", strerror(errno));
        goto out;
    }
    j->status = SJ_SIGNED;
    j->text = xstrdup(dkim_complete_domain(c));
out:
    if (q.fd >= 0)
        close(q.fd);
    dkim_complete_free(c);
    buf_free(&h.text);
    buf_free(&out);
    free(chunk);
    free(err);
}

/* due_at - when job j goes to the normal-priority thread */
static struct timespec due_at(const struct sjob *j)
{
    struct timespec t = j->queued;

    t.tv_sec += SIGNER_PATIENCE_MS / MS_PER_SEC;
    t.tv_nsec += (SIGNER_PATIENCE_MS % MS_PER_SEC) * NS_PER_MS;
    if (t.tv_nsec >= NS_PER_MS * MS_PER_SEC) {
        t.tv_sec++;
        t.tv_nsec -= NS_PER_MS * MS_PER_SEC;
    }
    return t;
}

/* overdue - has the oldest job waited SIGNER_PATIENCE_MS? (lock held) */
static bool overdue(void)
{
    struct timespec now, due;

    if (todo_head == NULL)
        return false;
    clock_gettime(CLOCK_MONOTONIC, &now);
    due = due_at(todo_head);
    return now.tv_sec > due.tv_sec || (now.tv_sec == due.tv_sec && now.tv_nsec >= due.tv_nsec);
}

/* take - wait for a job (the idle thread: any; the other: an overdue one) */
static struct sjob *take(bool idle)
{
    struct sjob *j;

    pthread_mutex_lock(&signer_lock);
    for (;;) {
        if (idle && todo_head != NULL)
            break;
        if (!idle && overdue())
            break;
        if (idle) {
            pthread_cond_wait(&idle_cond, &signer_lock);
        } else if (todo_head == NULL) {
            pthread_cond_wait(&due_cond, &signer_lock);
        } else {
            struct timespec due = due_at(todo_head);
            pthread_cond_timedwait(&due_cond, &signer_lock, &due);
        }
    }
    j = todo_head;
    todo_head = j->next;
    if (todo_head == NULL)
        todo_tail = NULL;
    pthread_mutex_unlock(&signer_lock);
    return j;
}

/* signer_main - one thread: take a job, do it, hand it back */
static void *signer_main(void *arg)
{
    bool idle = arg != NULL;

    if (idle) {
        struct sched_param sp = {0};
        /* this thread only (Linux: a thread has its own policy) */
        (void)sched_setscheduler(0, SCHED_IDLE, &sp);
    }
    for (;;) {
        struct sjob *j = take(idle);

        sign_one(j);
        pthread_mutex_lock(&signer_lock);
        j->next = done_head;
        done_head = j;
        pthread_mutex_unlock(&signer_lock);
        while (write(wake_fd[1], "s", 1) < 0 && errno == EINTR)
            ;                        /* EAGAIN: a wake-up is pending anyway */
    }
    return NULL;
}

/* ---- the event loop side ------------------------------------------------------ */

/* finish_job - log, then schedule the message */
static void finish_job(struct sjob *j)
{
    switch (j->status) {
    case SJ_SIGNED:
        msg_info("%s: DKIM-Signature added d=%s", j->qid, j->text);
        break;
    case SJ_FAILED:
        msg_warn("%s: DKIM signing: %s: message not signed", j->qid,
                 j->text ? j->text : "?");
        break;
    case SJ_NOTHING:
        break;
    }
    sched_message(j->m);
    free(j->text);
    free(j);
}

/* signer_wake - the thread finished jobs */
static void signer_wake(int fd, unsigned events, void *ctx)
{
    char buf[SIGNER_WAKE_BUF];
    struct sjob *list, *rev = NULL;

    (void)events;
    (void)ctx;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&signer_lock);
    list = done_head;
    done_head = NULL;
    pthread_mutex_unlock(&signer_lock);
    /* in the order they were finished */
    while (list != NULL) {
        struct sjob *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev != NULL) {
        struct sjob *next = rev->next;
        finish_job(rev);
        rev = next;
    }
}

/* signer_pre_jail - the signing keys, read as root */
void signer_pre_jail(struct cfg *cfg)
{
    char *err = NULL;

    if (*cfg_str(cfg, "dkim_signing_table") == 0)
        return;
    if ((signer_keys = dkim_keys_load(cfg, &err)) == NULL)
        msg_fatal("dkim_signing_table: %s", err ? err : "cannot load");
}

/* start_thread - one signing thread that takes no signals (they are the loop's) */
static void start_thread(bool idle)
{
    static char idle_mark;
    pthread_t tid;
    sigset_t all, old;
    int e;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&tid, NULL, signer_main, idle ? &idle_mark : NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0)
        msg_fatal("signer: cannot start a signing thread: %s", strerror(e));
    pthread_detach(tid);
}

/* signer_post_jail - the wake-up pipe and the two threads */
void signer_post_jail(struct cfg *cfg)
{
    pthread_condattr_t ca;

    header_max = (size_t)cfg_int(cfg, "header_size_limit");
    if (signer_keys == NULL)
        return;
    if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) < 0)
        msg_fatal("signer: pipe: %m");
    event_add(wake_fd[0], EVENT_READ, signer_wake, NULL, false);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&due_cond, &ca);
    pthread_condattr_destroy(&ca);
    start_thread(true);
    start_thread(false);
}

/* signer_wanted - does m wait for a signature? */
bool signer_wanted(const struct qmsg *m)
{
    const char *v = qfile_attr(m->q, QATTR_DKIM_SIGN);

    return v != NULL && strcmp(v, QATTR_DKIM_SIGN_PENDING) == 0;
}

/* signer_submit - complete m's signature, then schedule it */
void signer_submit(struct qmsg *m)
{
    struct sjob *j;

    if (signer_keys == NULL) {
        msg_warn("%s: DKIM signing: a signature is pending but dkim_signing_table is empty: "
                 "message not signed", m->qid);
        sched_message(m);
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->m = m;
    memcpy(j->qid, m->qid, sizeof(j->qid));
    j->content_offset = m->q->content_offset;
    j->file_size = m->q->file_size;
    clock_gettime(CLOCK_MONOTONIC, &j->queued);
    pthread_mutex_lock(&signer_lock);
    if (todo_tail)
        todo_tail->next = j;
    else
        todo_head = j;
    todo_tail = j;
    pthread_cond_signal(&idle_cond);
    pthread_cond_signal(&due_cond);   /* it times its wait from the oldest job */
    pthread_mutex_unlock(&signer_lock);
}
