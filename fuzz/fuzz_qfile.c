/*
 * fuzz_qfile.c - libFuzzer target for the queue file reader
 *
 * The input is written to a memfd and parsed as a queue file; when it is
 * accepted, its content is read back and its recipients are marked done,
 * exercising every path that reads a file the reader has checked. The
 * reader must never crash, hang or allocate without bound.
 */
#include "util/sys.h"

#include <sys/mman.h>

#include "mail/qfile.h"
#include "util/buf.h"

#define FUZZ_CONTENT_MAX (16 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - parse one input as a queue file */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_qfile", MFD_CLOEXEC);
    struct qfile *q;
    char *err = NULL;
    size_t off = 0;

    if (fd < 0)
        return 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);

        if (n <= 0) {
            close(fd);
            return 0;
        }
        off += (size_t)n;
    }
    q = qfile_parse_fd(fd, "fuzz", &err);
    if (q) {
        struct buf b;

        buf_init(&b, FUZZ_CONTENT_MAX);
        if (qfile_read_content(q, &b) < 0 || b.len != q->content_length)
            __builtin_trap();   /* an accepted file must read back whole */
        buf_free(&b);
        (void)qfile_attr(q, "client_name");
        for (size_t i = 0; i < q->nrcpts; i++)
            (void)qfile_mark_done(q, i);
        qfile_close(q);
    } else if (err == NULL) {
        __builtin_trap();       /* every rejection says why */
    }
    free(err);
    return 0;
}
