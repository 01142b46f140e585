/*
 * aliasfile.h - the right-hand side of aliases(5) and .forward files
 *
 * A right-hand side (an alias value, or the text of a .forward file or an
 * :include: file) is a list of destinations separated by commas or new
 * lines. Each destination is one of:
 *   user, user@domain, <user@domain>, Name <user@domain>   an address
 *   \user                                 an address that is not aliased
 *                                         again (delivered to the mailbox)
 *   /path/to/file                         append the message to a file
 *   |command args                         pipe the message into a command
 *   :include:/path                        read more destinations from a file
 * and may be written in double quotes ("|cmd a, b" keeps its comma and
 * spaces; \" and \\ inside quotes). '#' at the start of a line starts a
 * comment (in .forward and :include: files). Unquoted addresses may also
 * be separated by white space, as sendmail allows.
 *
 * Commands are not run through a shell: aliasfile_argv splits a command
 * into an argument vector ('single quotes' literal, "double quotes" with
 * backslash escapes, backslash escapes outside quotes), refusing shell
 * syntax it cannot honour.
 *
 * DIAGNOSTICS: parse errors return false with a malloc'ed explanation.
 * SECURITY: the input is bounded (ALIASFILE_TEXT_MAX bytes,
 * ALIASFILE_ITEMS_MAX destinations, ALIASFILE_ARGS_MAX arguments).
 */
#ifndef POSTA_ALIASFILE_H
#define POSTA_ALIASFILE_H

#include <stdbool.h>
#include <stddef.h>

#define ALIASFILE_TEXT_MAX (1024 * 1024)
#define ALIASFILE_ITEMS_MAX 10000
#define ALIASFILE_ARGS_MAX 256

enum alias_type {
    ALIAS_ADDR,      /* value: the address as written (brackets removed) */
    ALIAS_NOALIAS,   /* \user: value without the backslash */
    ALIAS_FILE,      /* value: the absolute path */
    ALIAS_COMMAND,   /* value: the command text after '|' */
    ALIAS_INCLUDE,   /* value: the path after ":include:" */
};

struct alias_item {
    enum alias_type type;
    char *value;
};

struct alias_list {
    struct alias_item *items;
    size_t n;
};

/*
 * aliasfile_parse - parse text[0..len) into out (appended); false + *err
 * (malloc'ed) on a syntax error, with out left as parsed so far.
 */
bool aliasfile_parse(const char *text, size_t len, struct alias_list *out, char **err);
void alias_list_free(struct alias_list *l);
/* alias_type_name - "address", "noalias", "file", "command", "include" */
const char *alias_type_name(enum alias_type t);

/*
 * aliasfile_argv - split a command into a NULL-terminated argument vector
 * (free with aliasfile_argv_free); NULL + *err (malloc'ed) on unbalanced
 * quotes, an empty command or too many arguments.
 */
char **aliasfile_argv(const char *cmd, size_t *argc, char **err);
void aliasfile_argv_free(char **argv);

#endif
