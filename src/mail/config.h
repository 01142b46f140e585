/*
 * config.h - main.cf: Postfix-syntax parameters with lazy $expansion
 *
 * One parser reads main.cf: "name = value" lines, continuation lines that
 * start with white space, '#' comments (a '#' only starts a comment at the
 * start of a logical line, as in Postfix). Values are kept raw and expanded
 * when read: $name, ${name}, $(name), ${name?text}, ${name:text}, $$ for a
 * literal '$'. Reading a parameter by name returns the expanded value of
 * (in order) a -o override, main.cf, or the settings table default.
 *
 * Every parameter posta knows has one entry in the settings table
 * (mail/params.h). Loading main.cf warns once for each unknown name (file,
 * line, name) and checks the type and limits of every known typed
 * parameter; a bad value is fatal and names file, line and parameter.
 * Reading an unknown name through cfg_* is a programming error (panic).
 *
 * The configuration directory comes from -c DIR, else $MAIL_CONFIG, else
 * the compiled-in default (POSTA_CONFIG_DIR).
 */
#ifndef POSTA_CONFIG_H
#define POSTA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;

/* cfg_default_dir - -c argument, else $MAIL_CONFIG, else compiled default */
const char *cfg_default_dir(const char *cli_dir);

/*
 * cfg_load - read DIR/main.cf; fatal (file, line, parameter) on a bad value,
 * a warning for each unknown parameter. A missing main.cf is fatal.
 */
struct cfg *cfg_load(const char *config_dir);
/* cfg_load_string - same, from text (tests, fuzzing); NULL + *err on error */
struct cfg *cfg_load_string(const char *text, size_t len, const char *origin,
                            char **err);
void cfg_free(struct cfg *cfg);

/* cfg_override - a -o name=value from master.cf or the command line */
void cfg_override(struct cfg *cfg, const char *name, const char *value);
/* cfg_override_arg - parse "name=value"; false if malformed */
bool cfg_override_arg(struct cfg *cfg, const char *arg);
/*
 * cfg_override_at - cfg_override, with where ("master.cf, line 12: service
 * submission") naming the override in the fatal message on a bad value.
 */
void cfg_override_at(struct cfg *cfg, const char *where, const char *name,
                     const char *value);
/* cfg_try_override - same, but false + *err (malloced) instead of fatal */
bool cfg_try_override(struct cfg *cfg, const char *where, const char *name,
                      const char *value, char **err);

/* Typed, expanded access. Names must be in the settings table. */
const char *cfg_str(struct cfg *cfg, const char *name);
long long cfg_int(struct cfg *cfg, const char *name);
bool cfg_bool(struct cfg *cfg, const char *name);
/* cfg_time - a time parameter in seconds (unit suffix s/m/h/d/w honoured) */
long long cfg_time(struct cfg *cfg, const char *name);
/* cfg_list - split a value on commas and/or white space ({...} groups kept) */
char **cfg_list(struct cfg *cfg, const char *name, size_t *count);
void cfg_list_free(char **list, size_t count);

/* cfg_raw - unexpanded value and where it came from (NULL file: default) */
const char *cfg_raw(struct cfg *cfg, const char *name, const char **file, int *line);
/* cfg_is_set - explicitly set in main.cf or by an override */
bool cfg_is_set(struct cfg *cfg, const char *name);
/* cfg_expand - expand $references in arbitrary text against cfg */
char *cfg_expand(struct cfg *cfg, const char *text);
/*
 * cfg_is_raw - parameters that cfg_str returns unexpanded because their
 * user expands them with extra names at delivery time ($home, $user, ...):
 * forward_path, luser_relay, mailbox_command, smtpd_reject_footer.
 */
bool cfg_is_raw(const char *name);
/* cfg_set_name - i-th name set in main.cf or by -o (file order); NULL at end */
const char *cfg_set_name(const struct cfg *cfg, size_t i);
/*
 * cfg_default_text - default of a table parameter as main.cf text, with the
 * machine-dependent ones computed (myhostname: the system's FQDN; mydomain:
 * myhostname minus its first label, else "localdomain"; config_directory:
 * the directory loaded). NULL for names not in the table.
 */
const char *cfg_default_text(struct cfg *cfg, const char *name);
/* cfg_dir - the configuration directory this cfg was loaded from */
const char *cfg_dir(const struct cfg *cfg);

/* cfg_split_list - split text as cfg_list does (for master.cf args too) */
char **cfg_split_list(const char *text, size_t *count);

/* Helpers shared with the master.cf parser (mastercf.c). */

/* cfg_valid_param_name - a parameter name: letters, digits, underscore */
bool cfg_valid_param_name(const char *name);
/*
 * cfg_group_token - copy of [start, start+len); when it is one whole
 * "{ ... }" group, without the braces and the white space inside them
 */
char *cfg_group_token(const char *start, size_t len);

/* cfg_line_fn - called with each logical line and its first line number */
typedef bool cfg_line_fn(void *ctx, char *text, int line, char **err);
/*
 * cfg_logical_lines - split Postfix-style text into logical lines: a line
 * that starts with a non-blank character plus the lines after it that
 * start with white space (joined with one space); blank and '#' lines are
 * skipped without ending a logical line; a trailing CR is dropped. A NUL
 * in text, or a logical line over max bytes, is an error ("ORIGIN, line
 * N: ..."); a continuation before the first logical line is a warning.
 * Stops at the first fn that returns false; false + *err (malloced).
 */
bool cfg_logical_lines(const char *text, size_t len, const char *origin, size_t max,
                       cfg_line_fn *fn, void *ctx, char **err);

struct buf;
/* cfg_read_file - whole file, at most max bytes, into *out; false + *err */
bool cfg_read_file(const char *path, size_t max, struct buf *out, char **err);

#endif
