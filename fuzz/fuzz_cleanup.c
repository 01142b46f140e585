/*
 * fuzz_cleanup.c - libFuzzer target for the local-submission clean-up
 *
 * The first input byte selects the options (bit 0: extract recipients,
 * bit 1: a small header_size_limit, bit 2: a small output maximum, bit
 * 3: a full name taken from the start of the input, up to the first
 * NUL); the rest is the message, copied to a buffer of exactly its size
 * so that any over-read is caught by ASan. Invariants: the output starts
 * with the Received: header, has exactly one empty line that ends the
 * header, no header line added by cleanup contains a control character
 * other than TAB, every extracted recipient is non-empty, and an output
 * within the maximum is never marked as overflowing. cleanup_addr_list
 * is also run on the raw input: its rewritten copy must contain the
 * input's bytes in order.
 */
#include "util/sys.h"

#include <string.h>

#include "mail/cleanup.h"
#include "util/alloc.h"

#define OPT_EXTRACT 1u
#define OPT_HDR_LIMIT 2u
#define OPT_SMALL_MAX 4u
#define OPT_FULL_NAME 8u
#define SMALL_HDR_LIMIT 64
#define SMALL_MAX 512
#define NAME_MAX_LEN 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* no_rcpt - ignore addresses */
static void no_rcpt(void *ctx, const char *addr)
{
    check(addr[0] != 0, "empty address reported");
}

/* subsequence - every byte of a appears in b in order */
static bool subsequence(const char *a, size_t an, const char *b, size_t bn)
{
    size_t j = 0;

    for (size_t i = 0; i < an; i++) {
        while (j < bn && b[j] != a[i])
            j++;
        if (j == bn)
            return false;
        j++;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cleanup_info ci = {"0FUZZQIDz1", 1795374973, "mail.example.com", "example.com",
                              1000, "alice@example.com", NULL, false, 0};
    struct cleanup_out out;
    char name[NAME_MAX_LEN + 1];
    unsigned opts;
    char *msg;

    if (size == 0)
        return 0;
    opts = data[0];
    data++;
    size--;
    ci.extract = (opts & OPT_EXTRACT) != 0;
    ci.header_size_limit = (opts & OPT_HDR_LIMIT) ? SMALL_HDR_LIMIT : 0;
    if (opts & OPT_FULL_NAME) {
        size_t n = 0;
        while (n < size && n < NAME_MAX_LEN && data[n] != 0)
            n++;
        memcpy(name, data, n);
        name[n] = 0;
        ci.full_name = name;
    }
    msg = xmalloc(size ? size : 1);
    memcpy(msg, data, size);

    cleanup_out_init(&out, (opts & OPT_SMALL_MAX) ? SMALL_MAX : 0);
    int rc = cleanup_local(&ci, msg, size, &out);
    if (rc == 0) {
        const char *s = buf_str(&out.msg);
        check(strncmp(s, "Received: by mail.example.com", 29) == 0, "Received first");
        check(memmem(s, out.msg.len, "\n\n", 2) != NULL, "empty line after the header");
        check(!out.overflow, "overflow flag without failure");
        /* the headers cleanup adds: no control characters but TAB */
        const char *end = memmem(s, out.msg.len, "\n\n", 2);
        const char *from = memmem(s, (size_t)(end - s) + 1, "\nFrom: ", 7);
        if (from != NULL && ci.full_name != NULL && memmem(msg, size, "From:", 5) == NULL) {
            for (const char *p = from + 1; *p && *p != '\n'; p++)
                check((unsigned char)*p >= ' ' || *p == '\t', "control character in From:");
        }
    } else {
        check(out.overflow, "failure without overflow");
        check(opts & OPT_SMALL_MAX, "overflow with the default maximum");
    }
    for (size_t i = 0; i < out.nrcpts; i++)
        check(out.rcpts[i][0] != 0, "empty recipient");
    cleanup_out_free(&out);

    struct buf rw = BUF_INIT;
    cleanup_addr_list(msg, size, "o", &rw, no_rcpt, NULL);
    check(subsequence(msg, size, buf_str(&rw), rw.len), "rewrite keeps the input");
    buf_free(&rw);
    free(msg);
    return 0;
}
