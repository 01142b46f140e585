/*
 * test_config.c - unit and golden tests for main.cf parsing (config.c) and
 * the settings table (params.c)
 *
 * Golden files: tests/golden/config/NAME.cf is a main.cf; NAME.out is what
 * the test prints for it. Comment lines in the input drive the test after
 * the load (they are comments to the parser), in file order:
 *
 *   #@query NAME...       print "NAME = expanded value" (+ typed value)
 *   #@list NAME...        print the cfg_list elements of NAME, one a line
 *   #@override NAME=VALUE apply an override (error text if refused)
 *
 * A load error prints "error: TEXT" and nothing else. The golden
 * directory is $POSTA_SRCDIR/tests/golden (default ./tests/golden).
 * POSTA_GOLDEN_UPDATE=1 rewrites the .out files (review the diff!).
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "mail/config.h"
#include "mail/params.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "golden.h"

#define GOLDEN_SUBDIR "config"
#define GOLDEN_MIN_FILES 10

static const char debian_main_cf[] =
    "smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)\n"
    "biff = no\n"
    "append_dot_mydomain = no\n"
    "readme_directory = no\n"
    "compatibility_level = 3.6\n"
    "smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem\n"
    "smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key\n"
    "smtpd_tls_security_level=may\n"
    "smtp_tls_CApath=/etc/ssl/certs\n"
    "smtp_tls_security_level=may\n"
    "smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache\n"
    "smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated "
    "defer_unauth_destination\n"
    "myhostname = mail.example.org\n"
    "alias_maps = hash:/etc/aliases\n"
    "alias_database = hash:/etc/aliases\n"
    "myorigin = /etc/mailname\n"
    "mydestination = $myhostname, example.org, localhost.localdomain, localhost\n"
    "relayhost =\n"
    "mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128\n"
    "mailbox_size_limit = 0\n"
    "recipient_delimiter = +\n"
    "inet_interfaces = all\n"
    "inet_protocols = all\n";

/* load - cfg_load_string on a C string; NULL + *err */
static struct cfg *load(const char *text, char **err)
{
    *err = NULL;
    return cfg_load_string(text, strlen(text), "main.cf", err);
}

/* load_ok - load text that must be valid */
static struct cfg *load_ok(const char *text)
{
    char *err = NULL;
    struct cfg *cfg = load(text, &err);

    if (cfg == NULL)
        fail_msg("unexpected load error: %s", err);
    return cfg;
}

/* load_err - load text that must fail; returns the error (free it) */
static char *load_err(const char *text)
{
    char *err = NULL;
    struct cfg *cfg = load(text, &err);

    if (cfg != NULL) {
        cfg_free(cfg);
        fail_msg("load of \"%s\" should have failed", text);
    }
    assert_non_null(err);
    return err;
}

/* ---- settings table ------------------------------------------------------ */

static void test_table_sorted(void **state)
{
    size_t i;

    for (i = 1; i < param_count; i++)
        if (strcmp(param_table[i - 1].name, param_table[i].name) >= 0)
            fail_msg("table not sorted/unique at %s, %s", param_table[i - 1].name,
                     param_table[i].name);
}

static void test_table_find(void **state)
{
    size_t i;

    for (i = 0; i < param_count; i++) {
        assert_ptr_equal(param_find(param_table[i].name), &param_table[i]);
        assert_non_null(param_table[i].doc);
        assert_true(strlen(param_table[i].doc) > 0);
        assert_null(strchr(param_table[i].doc, '\n'));
    }
    assert_null(param_find("no_such_parameter"));
    assert_null(param_find(""));
    assert_null(param_find("aaaa"));
    assert_null(param_find("zzzz"));
    assert_null(param_find(NULL));
}

static void test_table_required(void **state)
{
    static const char *const required[] = {
        "config_directory", "queue_directory", "daemon_directory", "command_directory",
        "data_directory", "mail_owner", "setgid_group", "mail_name", "mail_version",
        "syslog_name", "syslog_facility", "maillog_file", "compatibility_level",
        "myhostname", "mydomain", "myorigin", "mydestination", "inet_interfaces",
        "inet_protocols", "mynetworks", "mynetworks_style", "relay_domains",
        "parent_domain_matches_subdomains", "smtpd_banner", "message_size_limit",
        "smtpd_recipient_limit", "smtpd_timeout", "smtpd_hard_error_limit",
        "smtpd_soft_error_limit", "smtpd_error_sleep_time",
        "smtpd_client_connection_count_limit", "line_length_limit",
        "disable_vrfy_command", "smtpd_peername_lookup", "smtpd_forbid_bare_newline",
        "smtpd_forbid_bare_newline_exclusions", "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions", "local_recipient_maps", "alias_maps",
        "alias_database", "unknown_local_recipient_reject_code", "recipient_delimiter",
        "default_process_limit", "smtputf8_enable", "strict_rfc821_envelopes",
        "smtpd_helo_required", "smtpd_discard_ehlo_keywords", "smtpd_delay_reject",
        "service_throttle_time", "max_idle", "max_use", "daemon_timeout", "ipc_timeout",
        "in_flow_delay", "queue_minfree", "maximal_queue_lifetime", "bounce_queue_lifetime",
        "minimal_backoff_time", "maximal_backoff_time", "queue_run_delay",
        "default_transport", "relayhost", "transport_maps", "soft_bounce", "notify_classes",
        "debug_peer_list", "debug_peer_level", "smtpd_client_restrictions",
        "smtpd_helo_restrictions", "smtpd_sender_restrictions", "smtpd_data_restrictions",
        "smtpd_end_of_data_restrictions", "posta_queue_sync",
    };
    size_t i;

    for (i = 0; i < POSTA_ARRAY_LEN(required); i++)
        if (param_find(required[i]) == NULL)
            fail_msg("parameter %s missing from the table", required[i]);
}

static void test_defaults_valid(void **state)
{
    struct cfg *cfg = load_ok("");
    const char *why;
    size_t i;

    for (i = 0; i < param_count; i++) {
        const char *v = cfg_str(cfg, param_table[i].name);

        if (!cfg_is_raw(param_table[i].name) && !param_check(&param_table[i], v, &why))
            fail_msg("default of %s (%s) is invalid: %s", param_table[i].name, v, why);
    }
    assert_string_equal(cfg_str(cfg, "message_size_limit"), "10240000");
    assert_int_equal(cfg_int(cfg, "message_size_limit"), 10240000);
    assert_int_equal(cfg_time(cfg, "smtpd_timeout"), 300);
    assert_int_equal(cfg_time(cfg, "maximal_queue_lifetime"), 5 * 86400);
    assert_int_equal(cfg_time(cfg, "bounce_queue_lifetime"), 5 * 86400);
    assert_int_equal(cfg_time(cfg, "max_idle"), 100);
    assert_int_equal(cfg_int(cfg, "smtpd_hard_error_limit"), 20);
    assert_false(cfg_bool(cfg, "disable_vrfy_command"));
    assert_true(cfg_bool(cfg, "smtputf8_enable"));
    assert_string_equal(cfg_str(cfg, "relay_domains"), "");
    assert_string_equal(cfg_str(cfg, "mynetworks"), "");
    assert_string_equal(cfg_str(cfg, "mynetworks_style"), "host");
    assert_string_equal(cfg_str(cfg, "mail_owner"), "posta");
    assert_string_equal(cfg_str(cfg, "posta_queue_sync"), "auto");
    assert_string_equal(cfg_str(cfg, "smtpd_forbid_bare_newline"), "normalize");
    cfg_free(cfg);
}

static void test_parse_time(void **state)
{
    long long s;

    assert_true(param_parse_time("10", 's', &s));
    assert_int_equal(s, 10);
    assert_true(param_parse_time("10", 'd', &s));
    assert_int_equal(s, 864000);
    assert_true(param_parse_time("5m", 's', &s));
    assert_int_equal(s, 300);
    assert_true(param_parse_time("1h", 's', &s));
    assert_int_equal(s, 3600);
    assert_true(param_parse_time("2d", 's', &s));
    assert_int_equal(s, 172800);
    assert_true(param_parse_time("1w", 's', &s));
    assert_int_equal(s, 604800);
    assert_true(param_parse_time("0", 'h', &s));
    assert_int_equal(s, 0);
    assert_false(param_parse_time("", 's', &s));
    assert_false(param_parse_time("s", 's', &s));
    assert_false(param_parse_time("10x", 's', &s));
    assert_false(param_parse_time("10ss", 's', &s));
    assert_false(param_parse_time("-1", 's', &s));
    assert_false(param_parse_time(" 1", 's', &s));
    assert_false(param_parse_time("99999999999999999999", 's', &s));
    assert_false(param_parse_time("9999999999999999w", 's', &s));
}

static void test_parse_bool_int(void **state)
{
    bool b;
    long long n;

    assert_true(param_parse_bool("yes", &b) && b);
    assert_true(param_parse_bool("YES", &b) && b);
    assert_true(param_parse_bool("true", &b) && b);
    assert_true(param_parse_bool("1", &b) && b);
    assert_true(param_parse_bool("no", &b) && !b);
    assert_true(param_parse_bool("False", &b) && !b);
    assert_true(param_parse_bool("0", &b) && !b);
    assert_false(param_parse_bool("", &b));
    assert_false(param_parse_bool("y", &b));
    assert_false(param_parse_bool("yess", &b));
    assert_true(param_parse_int("42", &n) && n == 42);
    assert_true(param_parse_int("-7", &n) && n == -7);
    assert_false(param_parse_int("", &n));
    assert_false(param_parse_int("4x", &n));
    assert_false(param_parse_int("0x10", &n));
    assert_false(param_parse_int("99999999999999999999", &n));
}

static void test_check_limits(void **state)
{
    const struct param_def *d = param_find("message_size_limit");
    const char *why;

    assert_true(param_check(d, "0", &why));
    assert_true(param_check(d, "4611686018427387904", &why));
    assert_false(param_check(d, "4611686018427387905", &why));
    assert_false(param_check(d, "-1", &why));
    d = param_find("unknown_local_recipient_reject_code");
    assert_true(param_check(d, "450", &why));
    assert_false(param_check(d, "250", &why));
    d = param_find("smtpd_timeout");
    assert_false(param_check(d, "0", &why));
    assert_true(param_check(d, "1s", &why));
    d = param_find("smtpd_banner");
    assert_true(param_check(d, "anything at all }{", &why));
    d = param_find("mydestination");
    assert_false(param_check(d, "a, {b", &why));
}

/* ---- main.cf ------------------------------------------------------------- */

static void test_debian_main_cf(void **state)
{
    struct cfg *cfg = load_ok(debian_main_cf);

    assert_string_equal(cfg_str(cfg, "smtpd_banner"),
                        "mail.example.org ESMTP posta (Debian/GNU)");
    assert_string_equal(cfg_str(cfg, "mydomain"), "example.org");
    assert_string_equal(cfg_str(cfg, "mydestination"),
                        "mail.example.org, example.org, localhost.localdomain, localhost");
    assert_true(cfg_is_set(cfg, "relayhost"));
    assert_string_equal(cfg_str(cfg, "relayhost"), "");
    assert_false(cfg_is_set(cfg, "message_size_limit"));
    assert_int_equal(cfg_int(cfg, "mailbox_size_limit"), 0);
    assert_string_equal(cfg_str(cfg, "recipient_delimiter"), "+");
    cfg_free(cfg);
}

static void test_errors(void **state)
{
    char *err;

    err = load_err("myhostname = a.b\nsmtpd_timeout = 10x\n");
    assert_string_equal(err, "main.cf, line 2: bad value for parameter smtpd_timeout: "
                             "\"10x\" is not a time (number with optional unit s, m, h, "
                             "d or w)");
    free(err);
    err = load_err("\n\nno equals here\n");
    assert_non_null(strstr(err, "main.cf, line 3: "));
    free(err);
    err = load_err("a = $b\nb = $a\n");
    assert_non_null(strstr(err, "main.cf, line 1: bad value for parameter a: "));
    assert_non_null(strstr(err, "loop"));
    free(err);
    err = load_err("myorigin = $myorigin\n");
    assert_non_null(strstr(err, "parameter myorigin"));
    assert_non_null(strstr(err, "loop"));
    free(err);
    err = load_err("smtpd_banner = ${myhostname\n");
    assert_non_null(strstr(err, "line 1"));
    free(err);
}

static void test_nul_in_text(void **state)
{
    static const char text[] = "x = a\0b\n";
    char *err = NULL;
    struct cfg *cfg = cfg_load_string(text, sizeof(text) - 1, "t", &err);

    assert_null(cfg);
    assert_non_null(err);
    free(err);
}

static void test_override_cache(void **state)
{
    struct cfg *cfg = load_ok("myhostname = a.example\nsmtpd_banner = $myhostname hi\n");
    const char *before = cfg_str(cfg, "smtpd_banner");
    char *err = NULL;

    assert_string_equal(before, "a.example hi");
    assert_string_equal(cfg_str(cfg, "mydomain"), "example");
    cfg_override(cfg, "myhostname", "b.example.net");
    assert_string_equal(cfg_str(cfg, "smtpd_banner"), "b.example.net hi");
    assert_string_equal(cfg_str(cfg, "mydomain"), "example.net");
    assert_string_equal(before, "a.example hi");   /* old pointer still valid */
    assert_true(cfg_override_arg(cfg, "smtpd_timeout=1m"));
    assert_int_equal(cfg_time(cfg, "smtpd_timeout"), 60);
    assert_false(cfg_override_arg(cfg, "novalue"));
    assert_false(cfg_override_arg(cfg, "=x"));
    assert_false(cfg_try_override(cfg, "test", "smtpd_timeout", "bad", &err));
    assert_non_null(strstr(err, "test: bad value for parameter smtpd_timeout"));
    free(err);
    assert_int_equal(cfg_time(cfg, "smtpd_timeout"), 60);   /* rolled back */
    assert_false(cfg_try_override(cfg, "test", "myhostname", "$smtpd_banner", &err));
    assert_non_null(strstr(err, "loop"));
    free(err);
    assert_string_equal(cfg_str(cfg, "myhostname"), "b.example.net");
    cfg_free(cfg);
}

static void test_raw_and_set(void **state)
{
    struct cfg *cfg = load_ok("# c\nsmtpd_banner = $myhostname x\nfoo = bar\n");
    const char *file;
    int line;

    assert_string_equal(cfg_raw(cfg, "smtpd_banner", &file, &line), "$myhostname x");
    assert_string_equal(file, "main.cf");
    assert_int_equal(line, 2);
    assert_string_equal(cfg_raw(cfg, "smtpd_timeout", &file, &line), "300s");
    assert_null(file);
    assert_string_equal(cfg_raw(cfg, "foo", NULL, NULL), "bar");
    assert_null(cfg_raw(cfg, "nothing", NULL, NULL));
    assert_true(cfg_is_set(cfg, "foo"));
    assert_false(cfg_is_set(cfg, "nothing"));
    assert_string_equal(cfg_set_name(cfg, 0), "smtpd_banner");
    assert_string_equal(cfg_set_name(cfg, 1), "foo");
    assert_null(cfg_set_name(cfg, 2));
    assert_string_equal(cfg_default_text(cfg, "smtpd_banner"), "$myhostname ESMTP $mail_name");
    assert_null(cfg_default_text(cfg, "foo"));
    cfg_free(cfg);
}

static void test_hostname_computed(void **state)
{
    struct cfg *cfg = load_ok("");
    const char *host = cfg_str(cfg, "myhostname");
    const char *dom = cfg_str(cfg, "mydomain");

    assert_non_null(strchr(host, '.'));
    assert_string_equal(dom, strchr(host, '.') + 1);
    assert_string_equal(cfg_default_text(cfg, "myhostname"), host);
    cfg_free(cfg);
    cfg = load_ok("myhostname = localhost\n");
    assert_string_equal(cfg_str(cfg, "mydomain"), "localdomain");
    cfg_free(cfg);
}

static void test_split_list(void **state)
{
    size_t n;
    char **l = cfg_split_list(" a, b\tc ,, { d e } f{g, h}i {x}{y} {} ", &n);

    assert_int_equal(n, 7);
    assert_string_equal(l[0], "a");
    assert_string_equal(l[1], "b");
    assert_string_equal(l[2], "c");
    assert_string_equal(l[3], "d e");
    assert_string_equal(l[4], "f{g, h}i");
    assert_string_equal(l[5], "{x}{y}");
    assert_string_equal(l[6], "");
    assert_null(l[7]);
    cfg_list_free(l, n);
    l = cfg_split_list("", &n);
    assert_int_equal(n, 0);
    assert_null(l[0]);
    cfg_list_free(l, n);
    l = cfg_split_list("{ unbalanced, x", &n);
    assert_int_equal(n, 1);
    cfg_list_free(l, n);
}

static void test_expand(void **state)
{
    struct cfg *cfg = load_ok("myhostname = h.example\nfoo = 1\n");
    char *s;

    s = cfg_expand(cfg, "$myhostname ${foo?{yes}:{no}} ${bar:def} $$");
    assert_string_equal(s, "h.example yes def $");
    free(s);
    s = cfg_expand(cfg, "bad $");
    assert_string_equal(s, "bad $");   /* warned, returned as is */
    free(s);
    cfg_free(cfg);
}

static void test_load_dir(void **state)
{
    char dir[] = "/tmp/posta-test-config-XXXXXX";
    char *path;
    FILE *fp;
    struct cfg *cfg;

    assert_non_null(mkdtemp(dir));
    path = xasprintf("%s/main.cf", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("myhostname = dir.example\n", fp);
    fclose(fp);
    cfg = cfg_load(dir);
    assert_string_equal(cfg_dir(cfg), dir);
    assert_string_equal(cfg_str(cfg, "config_directory"), dir);
    assert_string_equal(cfg_str(cfg, "myhostname"), "dir.example");
    cfg_free(cfg);
    unlink(path);
    rmdir(dir);
    free(path);
    assert_string_equal(cfg_default_dir("/x"), "/x");
    setenv("MAIL_CONFIG", "/from/env", 1);
    assert_string_equal(cfg_default_dir(NULL), "/from/env");
    unsetenv("MAIL_CONFIG");
    assert_non_null(cfg_default_dir(NULL));
}

/* ---- golden files -------------------------------------------------------- */

/* dump_query - "name = value" and the typed value */
static void dump_query(struct cfg *cfg, const char *name, struct buf *out)
{
    const struct param_def *d = param_find(name);
    char *v;

    if (d == NULL) {
        const char *raw = cfg_raw(cfg, name, NULL, NULL);

        if (raw == NULL) {
            buf_printf(out, "%s: undefined\n", name);
            return;
        }
        v = cfg_expand(cfg, raw);
        buf_printf(out, "%s = %s (user-defined)\n", name, v);
        free(v);
        return;
    }
    buf_printf(out, "%s = %s", name, cfg_str(cfg, name));
    switch (d->type) {
    case PARAM_INT:
        buf_printf(out, " (int %lld)", cfg_int(cfg, name));
        break;
    case PARAM_TIME:
        buf_printf(out, " (%lld seconds)", cfg_time(cfg, name));
        break;
    case PARAM_BOOL:
        buf_printf(out, " (bool %s)", cfg_bool(cfg, name) ? "true" : "false");
        break;
    default:
        break;
    }
    buf_putc(out, '\n');
}

/* dump_list - cfg_list elements */
static void dump_list(struct cfg *cfg, const char *name, struct buf *out)
{
    size_t n, i;
    char **l = cfg_list(cfg, name, &n);

    buf_printf(out, "%s: %zu element(s)\n", name, n);
    for (i = 0; i < n; i++)
        buf_printf(out, "  [%s]\n", l[i]);
    cfg_list_free(l, n);
}

/* run_directive - one "#@..." line */
static void run_directive(struct cfg *cfg, char *line, struct buf *out)
{
    char *rest, *name, *eq, *err = NULL;
    size_t n, i;
    char **words;

    if (strncmp(line, "#@override ", 11) == 0) {
        rest = line + 11;
        eq = strchr(rest, '=');
        buf_printf(out, "override %s\n", rest);
        if (eq == NULL) {
            buf_puts(out, "  error: no '='\n");
            return;
        }
        *eq = 0;
        name = rest;
        while (*name == ' ')
            name++;
        for (i = strlen(name); i > 0 && name[i - 1] == ' '; i--)
            name[i - 1] = 0;
        rest = eq + 1;
        while (*rest == ' ')
            rest++;
        if (!cfg_try_override(cfg, "test override", name, rest, &err)) {
            buf_printf(out, "  error: %s\n", err);
            free(err);
        }
        return;
    }
    if (strncmp(line, "#@query ", 8) == 0 || strncmp(line, "#@list ", 7) == 0) {
        bool is_list = line[2] == 'l';

        words = cfg_split_list(line + (is_list ? 7 : 8), &n);
        for (i = 0; i < n; i++) {
            if (is_list)
                dump_list(cfg, words[i], out);
            else
                dump_query(cfg, words[i], out);
        }
        cfg_list_free(words, n);
        return;
    }
    fail_msg("unknown golden directive: %s", line);
}

/* render_cf - load one main.cf and run its #@ directives */
static void render_cf(const char *file, char *text, size_t len, struct buf *out)
{
    char *err = NULL, *p, *nl;
    struct cfg *cfg;

    cfg = cfg_load_string(text, len, file, &err);
    if (cfg == NULL) {
        buf_printf(out, "error: %s\n", err);
        free(err);
        return;
    }
    for (p = text; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (nl && nl > p && nl[-1] == '\r')
            nl[-1] = 0;
        if (strncmp(p, "#@", 2) == 0)
            run_directive(cfg, p, out);
    }
    cfg_free(cfg);
}

/* test_golden - every tests/golden/config/NAME.cf against NAME.out */
static void test_golden(void **state)
{
    golden_run_dir(GOLDEN_SUBDIR, ".cf", GOLDEN_MIN_FILES, render_cf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sorted),
        cmocka_unit_test(test_table_find),
        cmocka_unit_test(test_table_required),
        cmocka_unit_test(test_defaults_valid),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_bool_int),
        cmocka_unit_test(test_check_limits),
        cmocka_unit_test(test_debian_main_cf),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nul_in_text),
        cmocka_unit_test(test_override_cache),
        cmocka_unit_test(test_raw_and_set),
        cmocka_unit_test(test_hostname_computed),
        cmocka_unit_test(test_split_list),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_golden),
    };

    log_open("test_config", LOG_SINK_STDERR, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
