/*
 * test_params_doc.c - the posta.conf(5) man page and the settings table agree
 *
 * Reads man/posta.conf.5 (relative to $POSTA_SRCDIR, default the current
 * directory: tests run from the repository root). In its PARAMETERS
 * section each parameter is an ".TP" paragraph whose tag line starts with
 * "\fBname\fR". Fails if a table parameter is missing from the page, if
 * the page documents a name that is not in the table, or if a name is
 * documented twice.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "mail/params.h"
#include "util/alloc.h"
#include "util/buf.h"

#define MAN_PAGE "man/posta.conf.5"
#define MAN_LINE_MAX 4096
#define SECTION_PARAMS ".SH PARAMETERS"

/* man_name - the parameter name in a "\fBname\fR ..." tag line, or NULL */
static char *man_name(const char *line)
{
    struct buf b = BUF_INIT;
    const char *p;

    if (strncmp(line, "\\fB", 3) != 0)
        return NULL;
    for (p = line + 3; *p && strncmp(p, "\\fR", 3) != 0; p++) {
        if (p[0] == '\\' && p[1] == '-') {   /* troff "\-" is a "-" */
            buf_putc(&b, '-');
            p++;
        } else {
            buf_putc(&b, *p);
        }
    }
    return buf_steal(&b);
}

/* table_index - index of name in the table, or -1 */
static long table_index(const char *name)
{
    const struct param_def *d = param_find(name);

    return d ? (long)(d - param_table) : -1;
}

static void test_man_matches_table(void **state)
{
    const char *src = getenv("POSTA_SRCDIR");
    char *path = xasprintf("%s/%s", src && *src ? src : ".", MAN_PAGE);
    FILE *fp = fopen(path, "r");
    char line[MAN_LINE_MAX];
    bool in_params = false, after_tp = false;
    int *seen = xcalloc(param_count, sizeof(*seen));
    int errors = 0, documented = 0;
    size_t i;
    char *name;
    long idx;

    if (fp == NULL)
        fail_msg("cannot open %s (run the tests from the repository root)", path);
    while (fgets(line, sizeof(line), fp) != NULL) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, ".SH", 3) == 0) {
            in_params = strcmp(line, SECTION_PARAMS) == 0;
            after_tp = false;
            continue;
        }
        if (!in_params)
            continue;
        if (strcmp(line, ".TP") == 0) {
            after_tp = true;
            continue;
        }
        if (after_tp) {
            after_tp = false;
            if ((name = man_name(line)) == NULL) {
                print_error("%s: tag line without a \\fBname\\fR: %s\n", path, line);
                errors++;
                continue;
            }
            documented++;
            if ((idx = table_index(name)) < 0) {
                print_error("%s documents %s, which is not in the settings table\n", path,
                            name);
                errors++;
            } else if (seen[idx]++) {
                print_error("%s documents %s twice\n", path, name);
                errors++;
            }
            free(name);
        }
    }
    fclose(fp);
    for (i = 0; i < param_count; i++) {
        if (!seen[i]) {
            print_error("%s does not document %s\n", path, param_table[i].name);
            errors++;
        }
    }
    free(seen);
    free(path);
    assert_int_equal(documented, (int)param_count);
    assert_int_equal(errors, 0);
}

static void test_man_name_parser(void **state)
{
    char *n = man_name("\\fBsmtpd\\-x_y\\fR (default: 1)");

    assert_string_equal(n, "smtpd-x_y");
    free(n);
    assert_null(man_name("plain text"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_man_name_parser),
        cmocka_unit_test(test_man_matches_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
