/*
 * test_dict_lmdb_cdb.c - file tables written by dict_build and read back
 *
 * Golden files under $POSTA_SRCDIR/tests/golden/dict_lmdb_cdb: NAME.src
 * is a table source in postmap's input format (golden {TEXT*N} repeats
 * expanded), then a line "%%" and lookup keys. The source is built as
 * hash, btree, lmdb and cdb; NAME.out holds the warnings, then for each
 * type the sorted dict_walk listing and "KEY<TAB>=VALUE|notfound" for
 * every key. Also: Postfix's postmap and posta read each other's lmdb,
 * cdb and hash files (when Postfix supports the type), corrupt and
 * missing files are open errors naming the file, a locked lmdb file is a
 * temporary failure (not "not found"), tables rebuilt on disk are
 * reopened at the next lookup, and unionmap:/pipemap: combine tables.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"
#include "golden.h"

#define KEYS_SEPARATOR "%%\n"
#define GARBAGE_SIZE 8192

static char tmpdir[] = "/tmp/test_dict_lmdb_cdb.XXXXXX";
static char *log_path;
static const char *const types[] = {"hash", "btree", "lmdb", "cdb"};

struct entries {
    char **key;
    char **value;
    size_t n;
};

/* entry_line - dict_line_fn: "key value" with the key folded, as posta map does */
static void entry_line(void *ctx, char *line, int lineno)
{
    struct entries *e = ctx;
    char *v = line + strcspn(line, " \t");

    if (*v == 0)
        return;
    *v++ = 0;
    v += strspn(v, " \t");
    for (char *c = line; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    e->key = xreallocarray(e->key, e->n + 1, sizeof(char *));
    e->value = xreallocarray(e->value, e->n + 1, sizeof(char *));
    e->key[e->n] = xstrdup(line);
    e->value[e->n] = xstrdup(v);
    e->n++;
}

/* entries_free - release the pairs */
static void entries_free(struct entries *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->key[i]);
        free(e->value[i]);
    }
    free(e->key);
    free(e->value);
    memset(e, 0, sizeof(*e));
}

/* collect - dict_walk callback: "key<TAB>value" lines */
static void collect(void *ctx, const char *key, const char *value)
{
    struct entries *e = ctx;
    char *line = xasprintf("%s\t%s", key, value);

    e->key = xreallocarray(e->key, e->n + 1, sizeof(char *));
    e->value = xreallocarray(e->value, e->n + 1, sizeof(char *));
    e->key[e->n] = line;
    e->value[e->n] = NULL;
    e->n++;
}

/* str_cmp - qsort of strings */
static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* render - build the source as every type, list it and look up the keys */
static void render(const char *file, char *text, size_t len, struct buf *out)
{
    struct buf src = BUF_INIT;
    struct entries e = {0};
    char *err = NULL;

    golden_expand(text, len, true, &src);
    char *all = buf_steal(&src);
    char *sep = strstr(all, KEYS_SEPARATOR);
    if (sep == NULL)
        fail_msg("%s: no \"%%%%\" line", file);
    *sep = 0;
    char *keys = sep + strlen(KEYS_SEPARATOR);
    size_t offset = golden_file_size(log_path);
    dict_source_text(all, strlen(all), file, entry_line, &e);
    char *base = xasprintf("%s/%s", tmpdir, file);
    for (size_t t = 0; t < POSTA_ARRAY_LEN(types); t++) {
        /* hash and btree share NAME.db: one base name per type */
        char *path = xasprintf("%s-%s", base, types[t]);
        assert_int_equal(dict_build(types[t], path, (const char *const *)e.key,
                                    (const char *const *)e.value, e.n, 0, &err),
                         0);
        if (t == 0)
            golden_log_warnings(log_path, offset, tmpdir, "DIR", out);
        char *spec = xasprintf("%s:%s", types[t], path);
        struct dict *d = dict_open(spec, 0, &err);
        if (d == NULL)
            fail_msg("%s: %s", spec, err);
        struct entries listed = {0};
        assert_int_equal(dict_walk(d, collect, &listed, &err), 0);
        if (listed.n > 0)
            qsort(listed.key, listed.n, sizeof(char *), str_cmp);
        buf_printf(out, "== %s\n", types[t]);
        for (size_t i = 0; i < listed.n; i++)
            buf_printf(out, "%s\n", listed.key[i]);
        entries_free(&listed);
        char *copy = xstrdup(keys), *save = NULL;
        for (char *k = strtok_r(copy, "\n", &save); k; k = strtok_r(NULL, "\n", &save)) {
            const char *v;
            enum dict_result r = dict_lookup(d, k, &v);
            buf_printf(out, "%.40s\t%s%s\n", k, r == DICT_FOUND ? "=" : "",
                       r == DICT_FOUND ? v : r == DICT_NOTFOUND ? "notfound" : "tempfail");
        }
        free(copy);
        dict_close(d);
        free(spec);
        free(path);
    }
    free(base);
    entries_free(&e);
    free(all);
}

/* test_golden - every NAME.src */
static void test_golden(void **state)
{
    golden_run_dir("dict_lmdb_cdb", ".src", 3, render);
}

/* test_postfix_interop - each side reads the other's files */
static void test_postfix_interop(void **state)
{
    static const char *const ptypes[] = {"hash", "lmdb", "cdb"};
    const char *keys[] = {"alpha@example.com", "beta"};
    const char *values[] = {"one value", "two"};
    struct buf out = BUF_INIT;
    char *err = NULL;
    const char *v;
    int tested = 0;

    for (size_t t = 0; t < POSTA_ARRAY_LEN(ptypes); t++) {
        if (!golden_postfix_has(ptypes[t]))
            continue;
        /* Postfix builds, posta reads. */
        char *src = xasprintf("%s/pf-%s", tmpdir, ptypes[t]);
        golden_write_file(src, "Alpha@Example.COM one value\nbeta two\n",
                   strlen("Alpha@Example.COM one value\nbeta two\n"));
        char *spec = xasprintf("%s:%s", ptypes[t], src);
        assert_int_equal(golden_postmap_run(spec, NULL, NULL, &out), 0);
        struct dict *d = dict_open(spec, 0, &err);
        if (d == NULL)
            fail_msg("%s: %s", spec, err);
        assert_int_equal(dict_lookup(d, "ALPHA@example.com", &v), DICT_FOUND);
        assert_string_equal(v, "one value");
        assert_int_equal(dict_lookup(d, "beta", &v), DICT_FOUND);
        assert_string_equal(v, "two");
        assert_int_equal(dict_lookup(d, "gamma", &v), DICT_NOTFOUND);
        dict_close(d);
        /* posta builds, Postfix reads. */
        char *mine = xasprintf("%s/posta-%s", tmpdir, ptypes[t]);
        char *mspec = xasprintf("%s:%s", ptypes[t], mine);
        assert_int_equal(dict_build(ptypes[t], mine, keys, values, 2, 0, &err), 0);
        assert_int_equal(golden_postmap_run("-q", "alpha@example.com", mspec, &out), 0);
        assert_string_equal(buf_str(&out), "one value");
        assert_int_equal(golden_postmap_run("-q", "Beta", mspec, &out), 0);
        assert_string_equal(buf_str(&out), "two");
        assert_int_equal(golden_postmap_run("-q", "gamma", mspec, &out), 1);
        free(mspec);
        free(mine);
        free(spec);
        free(src);
        tested++;
    }
    buf_free(&out);
    if (tested == 0)
        skip();
}

/* test_corrupt_and_missing - open errors name the file */
static void test_corrupt_and_missing(void **state)
{
    static const char *const ftypes[] = {"lmdb", "cdb"};
    char garbage[GARBAGE_SIZE];
    char *err = NULL;

    memset(garbage, 'x', sizeof(garbage));
    for (size_t t = 0; t < POSTA_ARRAY_LEN(ftypes); t++) {
        char *name = xasprintf("%s/corrupt-%s", tmpdir, ftypes[t]);
        char *file = xasprintf("%s.%s", name, ftypes[t]);
        char *spec = xasprintf("%s:%s", ftypes[t], name);
        /* Too short for a header, then a header whose tables lie past the end. */
        static const size_t sizes[] = {100, sizeof(garbage)};
        for (size_t z = 0; z < POSTA_ARRAY_LEN(sizes); z++) {
            golden_write_file(file, garbage, sizes[z]);
            assert_null(dict_open(spec, 0, &err));
            assert_non_null(strstr(err, file));
            free(err);
        }
        unlink(file);
        assert_null(dict_open(spec, 0, &err));
        assert_non_null(strstr(err, file));
        assert_non_null(strstr(err, "No such file"));
        free(err);
        free(spec);
        free(file);
        free(name);
    }
}

/* test_lmdb_locked - a writer's exclusive lock makes lookups a temporary failure */
static void test_lmdb_locked(void **state)
{
    const char *keys[] = {"k"};
    const char *values[] = {"v"};
    char *err = NULL;
    const char *v;
    char *name = xasprintf("%s/locked", tmpdir);
    char *file = xasprintf("%s.lmdb", name);
    char *spec = xasprintf("lmdb:%s", name);
    int ready[2];
    char c;

    assert_int_equal(dict_build("lmdb", name, keys, values, 1, 0, &err), 0);
    struct dict *d = dict_open(spec, 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(file, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
            _exit(1);
        (void)!write(ready[1], "x", 1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(dict_lookup(d, "k", &v), DICT_TEMPFAIL);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(ready[0]);
    assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
    dict_close(d);
    free(spec);
    free(file);
    free(name);
}

/* test_reopen - a table rebuilt on disk is used at the next lookup */
static void test_reopen(void **state)
{
    const char *keys[] = {"k"};
    const char *old_values[] = {"old"};
    const char *new_values[] = {"new"};
    char *err = NULL;
    const char *v;

    dict_set_recheck_interval(0);
    for (size_t t = 0; t < POSTA_ARRAY_LEN(types); t++) {
        char *name = xasprintf("%s/reopen-%s", tmpdir, types[t]);
        char *spec = xasprintf("%s:%s", types[t], name);
        assert_int_equal(dict_build(types[t], name, keys, old_values, 1, 0, &err), 0);
        struct dict *d = dict_open(spec, 0, &err);
        assert_non_null(d);
        assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
        assert_string_equal(v, "old");
        assert_int_equal(dict_build(types[t], name, keys, new_values, 1, 0, &err), 0);
        assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
        assert_string_equal(v, "new");
        /*
         * A broken replacement (renamed into place, as every writer does:
         * truncating a mapped file in place would crash any reader): the
         * good table stays in use.
         */
        char *file = xasprintf("%s%s", name, dict_build_suffix(types[t]));
        char *tmp = xasprintf("%s.garbage", file);
        golden_write_file(tmp, "garbage", strlen("garbage"));
        assert_int_equal(rename(tmp, file), 0);
        free(tmp);
        assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
        assert_string_equal(v, "new");
        dict_close(d);
        free(file);
        free(spec);
        free(name);
    }
    dict_set_recheck_interval(DICT_RECHECK_MS_DEFAULT);
}

/* test_recheck_interval - within the interval, no stat and no reopen */
static void test_recheck_interval(void **state)
{
    const char *keys[] = {"k"};
    const char *v1[] = {"one"};
    const char *v2[] = {"two"};
    char *err = NULL;
    const char *v;
    char *name = xasprintf("%s/interval", tmpdir);
    char *spec = xasprintf("cdb:%s", name);

    dict_set_recheck_interval(60 * 1000);
    assert_int_equal(dict_build("cdb", name, keys, v1, 1, 0, &err), 0);
    struct dict *d = dict_open(spec, 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
    assert_int_equal(dict_build("cdb", name, keys, v2, 1, 0, &err), 0);
    assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
    assert_string_equal(v, "one");
    assert_true(dict_changed(d));
    dict_set_recheck_interval(0);
    assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
    assert_string_equal(v, "two");
    dict_set_recheck_interval(DICT_RECHECK_MS_DEFAULT);
    dict_close(d);
    free(spec);
    free(name);
}

/* test_multi - unionmap: joins, pipemap: chains, failures propagate */
static void test_multi(void **state)
{
    char *err = NULL;
    const char *v;
    struct dict *d = dict_open("unionmap:{inline:{a=1, b=2}, static:{x y}, inline:{a=3}}", 0,
                               &err);

    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "A", &v), DICT_FOUND);
    assert_string_equal(v, "1,x y,3");
    assert_int_equal(dict_lookup(d, "c", &v), DICT_FOUND);
    assert_string_equal(v, "x y");
    dict_close(d);
    d = dict_open("unionmap:{inline:{a=1}, inline:{b=2}}", 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "z", &v), DICT_NOTFOUND);
    dict_close(d);
    d = dict_open("pipemap:{inline:{a=B}, regexp:{{/^B$/ c-$0}}, inline:{c-b=done}}", 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "a", &v), DICT_FOUND);
    assert_string_equal(v, "done");
    assert_int_equal(dict_lookup(d, "x", &v), DICT_NOTFOUND);
    dict_close(d);
    assert_null(dict_open("unionmap:{inline:{a=1}, nosuchtype:x}", 0, &err));
    assert_non_null(strstr(err, "nosuchtype"));
    free(err);
    assert_null(dict_open("pipemap:{}", 0, &err));
    free(err);
    assert_null(dict_open("unionmap:inline:{a=1}", 0, &err));
    free(err);
    /* A component that cannot be read (locked lmdb) is a failure of the whole. */
    char *name = xasprintf("%s/multi", tmpdir);
    const char *keys[] = {"k"};
    const char *values[] = {"v"};
    assert_int_equal(dict_build("lmdb", name, keys, values, 1, 0, &err), 0);
    char *spec = xasprintf("unionmap:{lmdb:%s, static:s}", name);
    d = dict_open(spec, 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
    assert_string_equal(v, "v,s");
    dict_close(d);
    free(spec);
    free(name);
}

/* test_build_errors - unsupported types and NUL choices */
static void test_build_errors(void **state)
{
    const char *keys[] = {"k"};
    const char *values[] = {"v"};
    char *err = NULL;
    char *name = xasprintf("%s/nonul", tmpdir);

    assert_int_equal(dict_build("texthash", name, keys, values, 1, 0, &err), -1);
    assert_non_null(strstr(err, "texthash"));
    free(err);
    assert_int_equal(dict_build("hash", name, keys, values, 1, DICT_BUILD_NONUL, &err), -1);
    free(err);
    /* lmdb without NUL, cdb with NUL: both still found */
    assert_int_equal(dict_build("lmdb", name, keys, values, 1, DICT_BUILD_NONUL, &err), 0);
    assert_int_equal(dict_build("cdb", name, keys, values, 1, DICT_BUILD_NUL, &err), 0);
    const char *specs[] = {"lmdb:", "cdb:"};
    for (size_t i = 0; i < 2; i++) {
        char *spec = xasprintf("%s%s", specs[i], name);
        const char *v;
        struct dict *d = dict_open(spec, 0, &err);
        assert_non_null(d);
        assert_int_equal(dict_lookup(d, "k", &v), DICT_FOUND);
        assert_string_equal(v, "v");
        dict_close(d);
        free(spec);
    }
    char *nodir = xasprintf("%s/no/such/dir/t", tmpdir);
    assert_int_equal(dict_build("cdb", nodir, keys, values, 1, 0, &err), -1);
    assert_non_null(strstr(err, "no/such/dir"));
    free(err);
    free(nodir);
    free(name);
}

/* setup - temporary directory and a log file for warnings */
static int setup(void **state)
{
    log_path = golden_tmp_setup(tmpdir);
    return log_path == NULL ? -1 : 0;
}

/* teardown - remove the temporary directory */
static int teardown(void **state)
{
    free(log_path);
    return golden_tmp_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),          cmocka_unit_test(test_postfix_interop),
        cmocka_unit_test(test_corrupt_and_missing), cmocka_unit_test(test_lmdb_locked),
        cmocka_unit_test(test_reopen),          cmocka_unit_test(test_recheck_interval),
        cmocka_unit_test(test_multi),           cmocka_unit_test(test_build_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
