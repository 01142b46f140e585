/*
 * test_matchlist.c - unit tests for domain lists, network lists and the
 * local_recipient_maps check
 *
 * Every case builds its own main.cf text (cfg_load_string) and its own
 * tables in a temporary directory; nothing depends on the host's
 * configuration. The computed-mynetworks cases compare with getifaddrs().
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "mail/config.h"
#include "mail/matchlist.h"
#include "util/alloc.h"
#include "util/log.h"

static char tmpdir[] = "/tmp/test_matchlist.XXXXXX";

/* tmp_file - write text to NAME in the temporary directory; path (caller frees) */
static char *tmp_file(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* load - a cfg from printf-style main.cf text */
static struct cfg *load(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* load - parse the formatted text as main.cf */
static struct cfg *load(const char *fmt, ...)
{
    va_list ap;
    char *text = NULL, *err = NULL;

    va_start(ap, fmt);
    assert_true(vasprintf(&text, fmt, ap) >= 0);
    va_end(ap);
    struct cfg *cfg = cfg_load_string(text, strlen(text), "test main.cf", &err);
    if (cfg == NULL)
        fail_msg("config: %s", err);
    free(text);
    return cfg;
}

/* expect_domain - one domain against a list */
static void expect_domain(struct matchlist *m, const char *domain, enum match_result want)
{
    enum match_result got = matchlist_match_domain(m, domain);

    if (got != want)
        fail_msg("%s: domain \"%s\": expected %d, got %d", matchlist_text(m), domain, want, got);
}

/* expect_addr - one address against a list */
static void expect_addr(struct matchlist *m, const char *addr, enum match_result want)
{
    enum match_result got = matchlist_match_addr(m, addr);

    if (got != want)
        fail_msg("%s: address \"%s\": expected %d, got %d", matchlist_text(m), addr, want, got);
}

/* test_domains_exact - no parent matching for mydestination by default */
static void test_domains_exact(void **state)
{
    char *tab = tmp_file("domains", "tabled.example  ok\n.dotted.example ok\n");
    struct cfg *cfg = load("mydestination = example.com, .sub.example.org !bad.example.net\n"
                           "  example.net, texthash:%s, Upper.Example\n", tab);
    struct matchlist *m = matchlist_domains(cfg, "mydestination");

    expect_domain(m, "example.com", MATCH_YES);
    expect_domain(m, "EXAMPLE.COM", MATCH_YES);
    expect_domain(m, "example.com.", MATCH_YES);
    expect_domain(m, "a.example.com", MATCH_NO);
    expect_domain(m, "xexample.com", MATCH_NO);
    expect_domain(m, "x.sub.example.org", MATCH_YES);
    expect_domain(m, "a.b.sub.example.org", MATCH_YES);
    expect_domain(m, "sub.example.org", MATCH_NO);
    expect_domain(m, "bad.example.net", MATCH_NO);
    expect_domain(m, "example.net", MATCH_YES);
    expect_domain(m, "tabled.example", MATCH_YES);
    expect_domain(m, "Tabled.Example", MATCH_YES);
    expect_domain(m, "a.tabled.example", MATCH_NO);
    expect_domain(m, "a.dotted.example", MATCH_YES);
    expect_domain(m, "dotted.example", MATCH_NO);
    expect_domain(m, "upper.example", MATCH_YES);
    expect_domain(m, "", MATCH_NO);
    expect_domain(m, ".", MATCH_NO);
    assert_non_null(strstr(matchlist_text(m), "example.com"));
    matchlist_free(m);
    cfg_free(cfg);
    free(tab);
}

/* test_domains_parent - relay_domains is in parent_domain_matches_subdomains */
static void test_domains_parent(void **state)
{
    char *tab = tmp_file("pdomains", "tabled.example  ok\n");
    struct cfg *cfg = load("relay_domains = !secret.example.com, example.com, "
                           ".dot.example, texthash:%s\n", tab);
    struct matchlist *m = matchlist_domains(cfg, "relay_domains");

    expect_domain(m, "example.com", MATCH_YES);
    expect_domain(m, "a.b.example.com", MATCH_YES);
    expect_domain(m, "xexample.com", MATCH_NO);
    expect_domain(m, "secret.example.com", MATCH_NO);
    expect_domain(m, "x.secret.example.com", MATCH_NO);
    expect_domain(m, "x.dot.example", MATCH_YES);
    expect_domain(m, "dot.example", MATCH_NO);
    expect_domain(m, "tabled.example", MATCH_YES);
    expect_domain(m, "a.b.tabled.example", MATCH_YES);
    expect_domain(m, "example", MATCH_NO);
    matchlist_free(m);
    cfg_free(cfg);

    /* the same list without parent matching */
    cfg = load("parent_domain_matches_subdomains = mynetworks\n"
               "relay_domains = example.com, texthash:%s\n", tab);
    m = matchlist_domains(cfg, "relay_domains");
    expect_domain(m, "example.com", MATCH_YES);
    expect_domain(m, "a.example.com", MATCH_NO);
    expect_domain(m, "a.tabled.example", MATCH_NO);
    matchlist_free(m);
    cfg_free(cfg);

    /* and mydestination with it */
    cfg = load("parent_domain_matches_subdomains = mydestination\n"
               "mydestination = example.com\n");
    m = matchlist_domains(cfg, "mydestination");
    expect_domain(m, "a.example.com", MATCH_YES);
    matchlist_free(m);
    cfg_free(cfg);
    free(tab);
}

/* test_domains_file - /file/name includes, negated includes */
static void test_domains_file(void **state)
{
    char *inner = tmp_file("inner", "# nested\ninner.example\n");
    char *deny = tmp_file("deny", "denied.example,  other-denied.example\n");
    char *body = xasprintf("# domains\n  one.example two.example\n\n%s\n", inner);
    char *file = tmp_file("list", body);
    struct cfg *cfg = load("mydestination = !%s, %s, last.example\n", deny, file);
    struct matchlist *m = matchlist_domains(cfg, "mydestination");

    expect_domain(m, "one.example", MATCH_YES);
    expect_domain(m, "two.example", MATCH_YES);
    expect_domain(m, "inner.example", MATCH_YES);
    expect_domain(m, "denied.example", MATCH_NO);
    expect_domain(m, "other-denied.example", MATCH_NO);
    expect_domain(m, "last.example", MATCH_YES);
    expect_domain(m, "three.example", MATCH_NO);
    matchlist_free(m);
    cfg_free(cfg);
    free(inner);
    free(deny);
    free(body);
    free(file);
}

/* test_domains_empty - an empty list matches nothing */
static void test_domains_empty(void **state)
{
    struct cfg *cfg = load("relay_domains =\n");
    struct matchlist *m = matchlist_domains(cfg, "relay_domains");

    expect_domain(m, "example.com", MATCH_NO);
    assert_string_equal(matchlist_text(m), "");
    matchlist_free(m);
    cfg_free(cfg);
}

/* test_networks - CIDR patterns, negation, IPv6, cidr: tables, host bits */
static void test_networks(void **state)
{
    char *tab = tmp_file("nets.cidr", "172.16.0.0/12 ok\n!0.0.0.0/0 v6\n");
    struct cfg *cfg = load("mynetworks = !10.1.0.0/16, 10.0.0.0/8 [2001:db8::]/32,"
                           " 192.168.1.7/24, [::1]/128 127.0.0.1 cidr:%s\n", tab);
    struct matchlist *m = matchlist_networks(cfg, "mynetworks");

    expect_addr(m, "10.2.3.4", MATCH_YES);
    expect_addr(m, "10.1.2.3", MATCH_NO);
    expect_addr(m, "11.0.0.1", MATCH_NO);
    expect_addr(m, "2001:db8:5::1", MATCH_YES);
    expect_addr(m, "[2001:db8:5::1]", MATCH_YES);
    expect_addr(m, "2001:db9::1", MATCH_YES);          /* the cidr table's !0.0.0.0/0 */
    expect_addr(m, "192.168.1.200", MATCH_YES);        /* host bits masked */
    expect_addr(m, "192.168.2.1", MATCH_NO);
    expect_addr(m, "::1", MATCH_YES);
    expect_addr(m, "127.0.0.1", MATCH_YES);
    expect_addr(m, "127.0.0.2", MATCH_NO);
    expect_addr(m, "::ffff:10.2.3.4", MATCH_YES);
    expect_addr(m, "::ffff:10.1.2.3", MATCH_NO);
    expect_addr(m, "172.20.1.1", MATCH_YES);           /* from the cidr: table */
    expect_addr(m, "::ffff:172.20.1.1", MATCH_YES);
    expect_addr(m, "garbage", MATCH_NO);
    expect_addr(m, "", MATCH_NO);
    matchlist_free(m);
    cfg_free(cfg);

    /* texthash keyed by address */
    char *hosts = tmp_file("hosts", "192.0.2.9 ok\n");
    cfg = load("mynetworks = texthash:%s\n", hosts);
    m = matchlist_networks(cfg, "mynetworks");
    expect_addr(m, "192.0.2.9", MATCH_YES);
    expect_addr(m, "::ffff:192.0.2.9", MATCH_YES);
    expect_addr(m, "192.0.2.10", MATCH_NO);
    matchlist_free(m);
    cfg_free(cfg);
    free(hosts);
    free(tab);
}

/* child_fatal_exit - leave at once: the leak checker has nothing to say about a fatal exit */
static void child_fatal_exit(void)
{
    _exit(1);
}

/* fatal_in_child - run a compile in a child; true if it exited non-zero */
static bool fatal_in_child(const char *maincf, const char *param, bool networks)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        char *err = NULL;
        struct cfg *cfg;

        log_on_fatal(child_fatal_exit);
        cfg = cfg_load_string(maincf, strlen(maincf), "child", &err);
        if (cfg == NULL)
            _exit(0);
        if (networks)
            matchlist_free(matchlist_networks(cfg, param));
        else
            matchlist_free(matchlist_domains(cfg, param));
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) != 0;
}

/* test_fatal - configuration errors are fatal */
static void test_fatal(void **state)
{
    assert_true(fatal_in_child("mynetworks = not-a-network\n", "mynetworks", true));
    assert_true(fatal_in_child("mynetworks = 10.0.0.0/40\n", "mynetworks", true));
    assert_true(fatal_in_child("mydestination = hash:/nonexistent/table\n", "mydestination",
                               false));
    assert_true(fatal_in_child("mydestination = /nonexistent/list\n", "mydestination", false));
    assert_true(fatal_in_child("mynetworks_style = bogus\n", "mynetworks", true));
    assert_false(fatal_in_child("mynetworks = 10.0.0.0/8\n", "mynetworks", true));
}

struct ifcheck {
    int family;
    uint8_t addr[16];
    bool loopback;
};

/* interface_addrs - the up interfaces' addresses, as mynetworks sees them */
static size_t interface_addrs(struct ifcheck *out, size_t max)
{
    struct ifaddrs *list, *ifa;
    size_t n = 0;

    assert_int_equal(getifaddrs(&list), 0);
    for (ifa = list; ifa && n < max; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP))
            continue;
        if (ifa->ifa_addr->sa_family == AF_INET) {
            out[n].family = AF_INET;
            memcpy(out[n].addr, &((struct sockaddr_in *)(void *)ifa->ifa_addr)->sin_addr, 4);
        } else if (ifa->ifa_addr->sa_family == AF_INET6) {
            out[n].family = AF_INET6;
            memcpy(out[n].addr, &((struct sockaddr_in6 *)(void *)ifa->ifa_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        out[n].loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
        n++;
    }
    freeifaddrs(list);
    return n;
}

/* test_mynetworks_computed - mynetworks_style host, subnet, class */
static void test_mynetworks_computed(void **state)
{
    static const char *const styles[] = {"host", "subnet", "class"};
    struct ifcheck ifs[64];
    size_t nif = interface_addrs(ifs, POSTA_ARRAY_LEN(ifs));
    bool have_lo4 = false;

    for (size_t i = 0; i < nif; i++)
        have_lo4 |= ifs[i].loopback && ifs[i].family == AF_INET;

    for (size_t s = 0; s < POSTA_ARRAY_LEN(styles); s++) {
        struct cfg *cfg = load("mynetworks_style = %s\n", styles[s]);
        struct matchlist *m = matchlist_networks(cfg, "mynetworks");
        print_message("mynetworks_style = %s: mynetworks = %s\n", styles[s], matchlist_text(m));
        for (size_t i = 0; i < nif; i++) {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(ifs[i].family, ifs[i].addr, text, sizeof(text));
            expect_addr(m, text, MATCH_YES);
        }
        expect_addr(m, "198.51.100.77", MATCH_NO);   /* TEST-NET-2: not ours */
        if (have_lo4) {
            expect_addr(m, "127.0.0.1", MATCH_YES);
            expect_addr(m, "127.1.2.3", MATCH_YES);
            assert_non_null(strstr(matchlist_text(m), "127.0.0.0/8"));
        }
        matchlist_free(m);
        cfg_free(cfg);
    }

    /* an explicit value wins over the style */
    struct cfg *cfg = load("mynetworks = 192.0.2.0/24\nmynetworks_style = host\n");
    struct matchlist *m = matchlist_networks(cfg, "mynetworks");
    assert_string_equal(matchlist_text(m), "192.0.2.0/24");
    expect_addr(m, "127.0.0.1", MATCH_NO);
    matchlist_free(m);
    cfg_free(cfg);
}

/* test_local_rcpt - passwd + alias tables, extensions, address forms */
static void test_local_rcpt(void **state)
{
    char *aliases = tmp_file("aliases", "postmaster root\nlist-request root\n"
                                        "alias root\nfull@example.com root\n"
                                        "@catchall.example root\n");
    struct cfg *cfg = load("alias_maps = texthash:%s\nrecipient_delimiter = +-\n", aliases);
    struct local_rcpt *lr = local_rcpt_open(cfg);

    assert_int_equal(local_rcpt_check(lr, "root", "root@example.com"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "ROOT", "ROOT@example.com"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "nosuchuser123", "nosuchuser123@example.com"),
                     MATCH_NO);
    assert_int_equal(local_rcpt_check(lr, "postmaster", "postmaster@example.com"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "PostMaster", NULL), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "root+box", "root+box@example.com"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "alias-ext", "alias-ext@example.com"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "postmaster+x", NULL), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "nosuchuser123+x", NULL), MATCH_NO);
    assert_int_equal(local_rcpt_check(lr, "list-request", NULL), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "owner-root", NULL), MATCH_NO);  /* not split */
    assert_int_equal(local_rcpt_check(lr, "+root", NULL), MATCH_NO);
    assert_int_equal(local_rcpt_check(lr, "full", "full@example.com"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "full", "full@Example.COM"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "full+x", "full+x@example.com"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "full", "full@other.example"), MATCH_NO);
    assert_int_equal(local_rcpt_check(lr, "anyone", "anyone@catchall.example"), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "", "@other.example"), MATCH_NO);
    local_rcpt_close(lr);
    cfg_free(cfg);

    /* no recipient_delimiter: extensions are part of the name */
    cfg = load("alias_maps = texthash:%s\n", aliases);
    lr = local_rcpt_open(cfg);
    assert_int_equal(local_rcpt_check(lr, "root+box", NULL), MATCH_NO);
    assert_int_equal(local_rcpt_check(lr, "root", NULL), MATCH_YES);
    local_rcpt_close(lr);
    cfg_free(cfg);

    /* empty local_recipient_maps accepts everyone */
    cfg = load("local_recipient_maps =\n");
    lr = local_rcpt_open(cfg);
    assert_int_equal(local_rcpt_check(lr, "nosuchuser123", "nosuchuser123@x.example"),
                     MATCH_YES);
    local_rcpt_close(lr);
    cfg_free(cfg);

    /* a table that cannot be opened: defer unless another table knows the user */
    cfg = load("local_recipient_maps = hash:%s/missing unix:passwd.byname\n", tmpdir);
    lr = local_rcpt_open(cfg);
    assert_int_equal(local_rcpt_check(lr, "root", NULL), MATCH_YES);
    assert_int_equal(local_rcpt_check(lr, "nosuchuser123", NULL), MATCH_TEMPFAIL);
    local_rcpt_close(lr);
    cfg_free(cfg);
    free(aliases);
}

/* setup - a private temporary directory */
static int setup(void **state)
{
    log_open("test_matchlist", LOG_SINK_STDERR, NULL);
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
        cmocka_unit_test(test_domains_exact),
        cmocka_unit_test(test_domains_parent),
        cmocka_unit_test(test_domains_file),
        cmocka_unit_test(test_domains_empty),
        cmocka_unit_test(test_networks),
        cmocka_unit_test(test_fatal),
        cmocka_unit_test(test_mynetworks_computed),
        cmocka_unit_test(test_local_rcpt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
