/*
 * master_tls.c - a self-signed certificate for smtpd when none is configured
 *
 * Debian's Postfix ships with the "snakeoil" certificate so that STARTTLS
 * works out of the box; posta does the same for itself. At start and at
 * reload, when some smtpd service would speak TLS (smtpd_tls_security_
 * level may or encrypt, smtpd_tls_wrappermode, or the obsolete
 * smtpd_use_tls/smtpd_enforce_tls, from main.cf or that service's -o
 * options) but has neither smtpd_tls_cert_file nor smtpd_tls_chain_files,
 * master makes $config_directory/tls/posta-snakeoil.crt and .key (EC
 * P-256, ten years, CN and subjectAltName = myhostname) if they are
 * missing. smtpd uses them in that case (smtpd/smtpd_tls.c).
 *
 * DIAGNOSTICS: "created self-signed TLS certificate PATH for NAME" once;
 * a failure is a warning (smtpd then runs without STARTTLS at level may
 * and refuses to start at level encrypt, saying why).
 *
 * SECURITY: the key is created mode 0600 with O_EXCL by master (root):
 * smtpd reads it before it drops privileges. Nothing is overwritten.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mail/config.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/tls.h"

#include "master.h"

#define SNAKEOIL_DIR "tls"
#define SNAKEOIL_CRT "posta-snakeoil.crt"
#define SNAKEOIL_KEY "posta-snakeoil.key"
#define SNAKEOIL_DAYS 3650
#define SNAKEOIL_DIR_MODE 0755

/* svc_value - a setting as service svc sees it: its -o option, else main.cf */
static const char *svc_value(const struct mconfig *conf, const struct mservice *svc,
                             const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);

    for (char **a = svc->argv; a[0] != NULL && a[1] != NULL; a++)
        if (strcmp(a[0], "-o") == 0 && strncmp(a[1], name, n) == 0 && a[1][n] == '=')
            found = a[1] + n + 1; /* the last one wins, as in the child */
    return found ? found : cfg_str(conf->cfg, name);
}

/* svc_yes - a boolean setting as service svc sees it */
static bool svc_yes(const struct mconfig *conf, const struct mservice *svc,
                    const char *name)
{
    const char *v = svc_value(conf, svc, name);

    return strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

/* svc_wants_snakeoil - would this smtpd speak TLS without a certificate of its own? */
static bool svc_wants_snakeoil(const struct mconfig *conf, const struct mservice *svc)
{
    const char *level;
    bool tls;

    if (strcmp(svc->command, "smtpd") != 0)
        return false;
    if (*svc_value(conf, svc, "smtpd_tls_cert_file") ||
        *svc_value(conf, svc, "smtpd_tls_chain_files"))
        return false;
    level = svc_value(conf, svc, "smtpd_tls_security_level");
    if (*level)
        tls = strcasecmp(level, "may") == 0 || strcasecmp(level, "encrypt") == 0;
    else
        tls =
            svc_yes(conf, svc, "smtpd_use_tls") || svc_yes(conf, svc, "smtpd_enforce_tls");
    return tls || svc_yes(conf, svc, "smtpd_tls_wrappermode");
}

/* master_tls_snakeoil - make the self-signed certificate when a service needs it */
void master_tls_snakeoil(struct mconfig *conf)
{
    const char *cn = cfg_str(conf->cfg, "myhostname");
    char *dir, *crt, *key, *err = NULL;
    struct stat st;
    bool needed = false;

    for (size_t i = 0; i < conf->nsvc && !needed; i++)
        needed = svc_wants_snakeoil(conf, &conf->svc[i]);
    if (!needed)
        return;
    dir = xasprintf("%s/%s", conf->config_dir, SNAKEOIL_DIR);
    crt = xasprintf("%s/%s", dir, SNAKEOIL_CRT);
    key = xasprintf("%s/%s", dir, SNAKEOIL_KEY);
    if (stat(crt, &st) == 0 && stat(key, &st) == 0)
        goto done;
    if (mkdir(dir, SNAKEOIL_DIR_MODE) < 0 && errno != EEXIST) {
        msg_warn("cannot create %s for a self-signed TLS certificate: %m", dir);
        goto done;
    }
    /* half a pair (an interrupted earlier attempt) is replaced */
    (void)unlink(crt);
    (void)unlink(key);
    if (!tls_make_selfsigned(cn, crt, key, SNAKEOIL_DAYS, &err)) {
        msg_warn("cannot create a self-signed TLS certificate in %s: %s", dir, err);
        free(err);
        goto done;
    }
    msg_info(
        "created self-signed TLS certificate %s for %s (smtpd_tls_cert_file is not set)",
        crt, cn);
done:
    free(dir);
    free(crt);
    free(key);
}
