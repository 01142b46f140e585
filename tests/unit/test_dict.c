/*
 * test_dict.c - unit and golden tests for lookup tables
 *
 * Golden files under $POSTA_SRCDIR/tests/golden/dict (default
 * "./tests/golden/dict"):
 *   aliases.texthash + .expect   texthash: table, "KEY<TAB>=VALUE|notfound"
 *   table.cidr + .expect          cidr: table, same expect format
 *   inline.txt                    "SPEC<TAB>KEY<TAB>=VALUE|notfound|error"
 * Berkeley DB tables are made in a temporary directory with the DB API
 * (keys with and without the trailing NUL) and, when Postfix is
 * installed, with /usr/sbin/postmap and /usr/sbin/postalias.
 */
#include "util/sys.h"

#include <db.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#define GOLDEN_LINE_MAX 4096
#define POSTMAP "/usr/sbin/postmap"
#define POSTALIAS "/usr/sbin/postalias"

static char tmpdir[] = "/tmp/test_dict.XXXXXX";

/* golden_path - a file under the golden directory (caller frees) */
static char *golden_path(const char *name)
{
    const char *src = getenv("POSTA_SRCDIR");

    return xasprintf("%s/tests/golden/dict/%s", src ? src : ".", name);
}

/* tmp_path - a file in this run's temporary directory (caller frees) */
static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

/* write_file - create path with text */
static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* result_text - a lookup's outcome in golden form */
static void result_text(struct dict *d, const char *key, struct buf *out)
{
    const char *value = NULL;

    buf_reset(out);
    switch (dict_lookup(d, key, &value)) {
    case DICT_FOUND:
        buf_printf(out, "=%s", value);
        break;
    case DICT_NOTFOUND:
        buf_puts(out, "notfound");
        break;
    default:
        buf_puts(out, "tempfail");
        break;
    }
}

/* check_expect - every "KEY<TAB>RESULT" line of an expect file against d */
static void check_expect(struct dict *d, const char *expect_name)
{
    char *path = golden_path(expect_name);
    FILE *fp = fopen(path, "r");
    char line[GOLDEN_LINE_MAX];
    struct buf got = BUF_INIT;
    int lineno = 0, cases = 0, bad = 0;

    if (fp == NULL)
        fail_msg("open %s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' && line[1] != '\t')
            continue;
        if (line[0] == 0)
            continue;
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        result_text(d, line, &got);
        if (strcmp(buf_str(&got), tab + 1) != 0) {
            print_error("%s:%d: key \"%s\": expected \"%s\", got \"%s\"\n", expect_name, lineno,
                        line, tab + 1, buf_str(&got));
            bad++;
        }
        cases++;
    }
    fclose(fp);
    buf_free(&got);
    free(path);
    assert_true(cases >= 10);
    assert_int_equal(bad, 0);
}

/* test_golden_texthash - texthash: table in postmap format */
static void test_golden_texthash(void **state)
{
    char *path = golden_path("aliases.texthash");
    char *spec = xasprintf("texthash:%s", path);
    char *err = NULL;
    struct dict *d = dict_open(spec, 0, &err);

    if (d == NULL)
        fail_msg("%s", err);
    assert_string_equal(dict_type(d), "texthash");
    assert_false(dict_changed(d));
    check_expect(d, "aliases.texthash.expect");
    dict_close(d);
    free(spec);
    free(path);
}

/* test_golden_cidr - cidr: table */
static void test_golden_cidr(void **state)
{
    char *path = golden_path("table.cidr");
    char *spec = xasprintf("cidr:%s", path);
    char *err = NULL;
    struct dict *d = dict_open(spec, 0, &err);

    if (d == NULL)
        fail_msg("%s", err);
    check_expect(d, "table.cidr.expect");
    dict_close(d);
    free(spec);
    free(path);
}

/* test_golden_inline - inline:, static:, proxy:, errors */
static void test_golden_inline(void **state)
{
    char *path = golden_path("inline.txt");
    FILE *fp = fopen(path, "r");
    char line[GOLDEN_LINE_MAX];
    struct buf got = BUF_INIT;
    int lineno = 0, cases = 0, bad = 0;

    if (fp == NULL)
        fail_msg("open %s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        char *key = strchr(line, '\t');
        assert_non_null(key);
        *key++ = 0;
        char *want = strchr(key, '\t');
        assert_non_null(want);
        *want++ = 0;
        char *err = NULL;
        struct dict *d = dict_open(line, 0, &err);
        if (d == NULL) {
            assert_non_null(err);
            buf_set(&got, "error");
            free(err);
        } else {
            assert_null(err);
            result_text(d, key, &got);
            dict_close(d);
        }
        if (strcmp(buf_str(&got), want) != 0) {
            print_error("inline.txt:%d: %s key \"%s\": expected \"%s\", got \"%s\"\n", lineno,
                        line, key, want, buf_str(&got));
            bad++;
        }
        cases++;
    }
    fclose(fp);
    buf_free(&got);
    free(path);
    assert_true(cases >= 10);
    assert_int_equal(bad, 0);
}

/* make_db - a Berkeley DB file with key/value pairs, NULs as asked */
static void make_db(const char *path, DBTYPE type, const char *const *kv, size_t n, bool nul)
{
    DB *db;

    assert_int_equal(db_create(&db, NULL, 0), 0);
    assert_int_equal(db->open(db, NULL, path, NULL, type, DB_CREATE | DB_TRUNCATE, 0644), 0);
    for (size_t i = 0; i + 1 < n; i += 2) {
        DBT k, v;
        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        k.data = (void *)kv[i];
        k.size = (u_int32_t)(strlen(kv[i]) + (nul ? 1 : 0));
        v.data = (void *)kv[i + 1];
        v.size = (u_int32_t)(strlen(kv[i + 1]) + (nul ? 1 : 0));
        assert_int_equal(db->put(db, NULL, &k, &v, 0), 0);
    }
    assert_int_equal(db->close(db, 0), 0);
}

/* check_lookup - one lookup with an expected value (NULL: not found) */
static void check_lookup(struct dict *d, const char *key, const char *want)
{
    const char *value = NULL;
    enum dict_result r = dict_lookup(d, key, &value);

    if (want == NULL) {
        assert_int_equal(r, DICT_NOTFOUND);
        assert_null(value);
    } else {
        assert_int_equal(r, DICT_FOUND);
        assert_string_equal(value, want);
    }
}

/* db_case - build NAME.db of type with/without NULs, then read it back */
static void db_case(const char *type, DBTYPE dbtype, bool nul)
{
    static const char *const kv[] = {"postmaster", "root", "user@example.com", "local-user",
                                     "empty", "", "Upper", "never-found-folded"};
    char *base = tmp_path(nul ? "dbnul" : "dbplain");
    char *file = xasprintf("%s.db", base);
    char *spec = xasprintf("%s:%s", type, base);
    char *err = NULL;

    make_db(file, dbtype, kv, POSTA_ARRAY_LEN(kv), nul);
    struct dict *d = dict_open(spec, 0, &err);
    if (d == NULL)
        fail_msg("%s", err);
    check_lookup(d, "postmaster", "root");
    check_lookup(d, "PostMaster", "root");           /* folded */
    check_lookup(d, "user@example.com", "local-user");
    check_lookup(d, "empty", "");
    check_lookup(d, "Upper", NULL);                  /* key folded to "upper" */
    check_lookup(d, "nobody", NULL);
    check_lookup(d, "", NULL);
    check_lookup(d, "postmaste", NULL);
    assert_false(dict_changed(d));
    dict_close(d);

    d = dict_open(spec, DICT_FLAG_FIXED_CASE, &err);
    assert_non_null(d);
    check_lookup(d, "Upper", "never-found-folded");
    check_lookup(d, "PostMaster", NULL);
    dict_close(d);

    free(spec);
    free(file);
    free(base);
}

/* test_db_api - hash: and btree: made with the Berkeley DB API */
static void test_db_api(void **state)
{
    db_case("hash", DB_HASH, true);
    db_case("hash", DB_HASH, false);
    db_case("btree", DB_BTREE, true);
    db_case("btree", DB_BTREE, false);
    db_case("proxy:btree", DB_BTREE, true);
}

/* test_db_errors - missing file, wrong format, wrong type */
static void test_db_errors(void **state)
{
    char *base = tmp_path("missing");
    char *spec = xasprintf("hash:%s", base);
    char *err = NULL;

    assert_null(dict_open(spec, 0, &err));
    char *want = xasprintf("open database %s.db: No such file or directory", base);
    assert_string_equal(err, want);
    free(err);
    free(want);
    free(spec);
    free(base);

    /* a text file is not a database */
    base = tmp_path("notdb");
    char *file = xasprintf("%s.db", base);
    write_file(file, "this is not a Berkeley DB file, just text that is long enough\n");
    spec = xasprintf("hash:%s", base);
    err = NULL;
    assert_null(dict_open(spec, 0, &err));
    assert_non_null(strstr(err, "open database"));
    free(err);
    free(spec);

    /* a btree file opened as hash */
    static const char *const kv[] = {"a", "b"};
    make_db(file, DB_BTREE, kv, 2, true);
    spec = xasprintf("hash:%s", base);
    err = NULL;
    assert_null(dict_open(spec, 0, &err));
    assert_non_null(err);
    free(err);
    free(spec);
    free(file);
    free(base);
}

/* run_tool - run argv; its exit status (or -1) */
static int run_tool(char *const argv[])
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* test_postmap - tables built by Postfix's own postmap and postalias */
static void test_postmap(void **state)
{
    if (access(POSTMAP, X_OK) != 0 || access(POSTALIAS, X_OK) != 0) {
        print_message("postmap/postalias not installed: skipping Postfix-built tables\n");
        skip();
    }
    static const char *const types[] = {"hash", "btree"};
    for (size_t i = 0; i < POSTA_ARRAY_LEN(types); i++) {
        char *name = xasprintf("pm-%s", types[i]);
        char *base = tmp_path(name);
        write_file(base, "# made by postmap\nPostmaster  root\nuser@Example.COM   local user\n"
                         "multi a,\n  b\n");
        char *arg = xasprintf("%s:%s", types[i], base);
        char *argv[] = {(char *)POSTMAP, arg, NULL};
        assert_int_equal(run_tool(argv), 0);
        char *err = NULL;
        struct dict *d = dict_open(arg, 0, &err);
        if (d == NULL)
            fail_msg("%s", err);
        check_lookup(d, "postmaster", "root");
        check_lookup(d, "POSTMASTER", "root");
        check_lookup(d, "user@example.com", "local user");
        check_lookup(d, "multi", "a,  b");
        check_lookup(d, "root", NULL);
        assert_false(dict_changed(d));

        /* rebuilding the table is noticed */
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
        write_file(base, "postmaster other\n");
        assert_int_equal(run_tool(argv), 0);
        assert_true(dict_changed(d));
        dict_close(d);
        d = dict_open(arg, 0, &err);
        assert_non_null(d);
        check_lookup(d, "postmaster", "other");
        dict_close(d);
        free(arg);
        free(base);
        free(name);
    }

    /* postalias: "name: value" aliases file */
    char *base = tmp_path("aliases");
    write_file(base, "postmaster: root\nMailer-Daemon: postmaster\nlist: a, b,\n  c\n");
    char *arg = xasprintf("hash:%s", base);
    char *argv[] = {(char *)POSTALIAS, arg, NULL};
    assert_int_equal(run_tool(argv), 0);
    char *err = NULL;
    struct dict *d = dict_open(arg, 0, &err);
    if (d == NULL)
        fail_msg("%s", err);
    check_lookup(d, "postmaster", "root");
    check_lookup(d, "mailer-daemon", "postmaster");
    check_lookup(d, "list", "a, b, c");   /* postalias joins with one space */
    check_lookup(d, "root", NULL);
    dict_close(d);
    free(arg);
    free(base);
}

/* test_unix - unix:passwd.byname, fixed case */
static void test_unix(void **state)
{
    char *err = NULL;
    struct dict *d = dict_open("proxy:unix:passwd.byname", 0, &err);
    const char *value;

    assert_non_null(d);
    assert_string_equal(dict_spec(d), "proxy:unix:passwd.byname");
    assert_string_equal(dict_type(d), "unix");
    assert_int_equal(dict_lookup(d, "root", &value), DICT_FOUND);
    assert_true(strncmp(value, "root:", 5) == 0);
    assert_non_null(strstr(value, ":0:0:"));
    assert_int_equal(dict_lookup(d, "nosuchuser123", &value), DICT_NOTFOUND);
    assert_int_equal(dict_lookup(d, "ROOT", &value), DICT_NOTFOUND);  /* fixed case */
    assert_false(dict_changed(d));
    dict_close(d);

    d = dict_open("unix:group.byname", 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "root", &value), DICT_FOUND);
    assert_true(strncmp(value, "root:", 5) == 0);
    dict_close(d);
}

/* test_texthash_changed - dict_changed notices edits and removal */
static void test_texthash_changed(void **state)
{
    char *path = tmp_path("changing");
    char *spec = xasprintf("texthash:%s", path);
    char *err = NULL;

    write_file(path, "a 1\n");
    struct dict *d = dict_open(spec, 0, &err);
    assert_non_null(d);
    check_lookup(d, "a", "1");
    assert_false(dict_changed(d));
    write_file(path, "a 22\n");
    assert_true(dict_changed(d));
    dict_close(d);

    d = dict_open(spec, 0, &err);
    assert_non_null(d);
    check_lookup(d, "a", "22");
    assert_int_equal(unlink(path), 0);
    assert_true(dict_changed(d));
    dict_close(d);

    assert_null(dict_open(spec, 0, &err));
    assert_non_null(strstr(err, "No such file or directory"));
    free(err);
    free(spec);
    free(path);
}

/* setup - a private temporary directory */
static int setup(void **state)
{
    log_open("test_dict", LOG_SINK_STDERR, NULL);
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* teardown - remove the temporary directory */
static int teardown(void **state)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);

    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_texthash),
        cmocka_unit_test(test_golden_cidr),
        cmocka_unit_test(test_golden_inline),
        cmocka_unit_test(test_db_api),
        cmocka_unit_test(test_db_errors),
        cmocka_unit_test(test_postmap),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_texthash_changed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
