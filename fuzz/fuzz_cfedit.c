/*
 * fuzz_cfedit.c - libFuzzer target for main.cf/master.cf editing
 *
 * The first input byte picks the syntax (bit 0) and, two bits each, the
 * operation on each of three fixed keys (none, set, remove, comment); the
 * rest is the text. Invariants: the edit succeeds; a second application
 * of the same operations to the result changes nothing (for text without
 * CR, whose line ends the editor may normalise); after the first edit a
 * removed or commented key no longer occurs and a set key does.
 */
#include "util/sys.h"

#include "mail/cfedit.h"
#include "util/buf.h"
#include "util/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NKEYS 3
#define OP_BITS 2
#define OP_MASK 3

static const char *const main_keys[NKEYS] = {"a", "mydestination", "relayhost"};
static const char *const master_keys[NKEYS] = {"smtp/inet", "smtp/unix", "x/y"};
static const char *const master_entries[NKEYS] = {
    "smtp inet n - n - - smtpd -o a=b", "smtp unix - - n - - smtp", "x y n - n - - prog"};

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_open("fuzz_cfedit", 0, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfedit_op ops[NKEYS], probe[NKEYS];
    struct buf once = BUF_INIT, twice = BUF_INIT, seen = BUF_INIT;
    enum cfedit_syntax syn;
    const char *text;
    size_t n = 0, len, i;

    if (size < 1)
        return 0;
    syn = data[0] & 1 ? CFEDIT_MASTER : CFEDIT_MAIN;
    for (i = 0; i < NKEYS; i++) {
        unsigned kind = (data[0] >> (1 + OP_BITS * i)) & OP_MASK;

        if (kind == 0)
            continue;
        ops[n].type = kind == 1 ? CFEDIT_SET : kind == 2 ? CFEDIT_REMOVE : CFEDIT_COMMENT;
        ops[n].key = syn == CFEDIT_MAIN ? main_keys[i] : master_keys[i];
        ops[n].value = syn == CFEDIT_MAIN ? "v $x" : master_entries[i];
        n++;
    }
    text = (const char *)data + 1;
    len = size - 1;
    check(cfedit_apply(syn, text, len, ops, n, &once), "first edit failed");
    check(cfedit_apply(syn, once.data ? once.data : "", once.len, ops, n, &twice),
          "second edit failed");
    if (memchr(text, '\r', len) == NULL)
        check(once.len == twice.len && (once.len == 0 || memcmp(once.data, twice.data, once.len) == 0),
              "edit is not idempotent");
    /* probe: which keys does the result hold? */
    for (i = 0; i < n; i++) {
        probe[i] = ops[i];
        probe[i].type = CFEDIT_REMOVE;
    }
    check(cfedit_apply(syn, once.data ? once.data : "", once.len, probe, n, &seen), "probe failed");
    for (i = 0; i < n; i++) {
        check(probe[i].found == (ops[i].type == CFEDIT_SET), "key state after the edit");
    }
    buf_free(&once);
    buf_free(&twice);
    buf_free(&seen);
    return 0;
}
