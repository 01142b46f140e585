/*
 * cmd_alias.h - "posta alias": build alias databases (postalias, newaliases)
 */
#ifndef POSTA_CMD_ALIAS_H
#define POSTA_CMD_ALIAS_H

struct cfg;

/*
 * cmd_alias - argv[0] is the command name ("alias" or "newaliases"); the
 * arguments name alias files, "type:/path" or a plain path (hash:). With
 * none, every table of the alias_database parameter is rebuilt. Each
 * source file /path is read in aliases(5) format and written to
 * /path.db (Berkeley DB, keys and values with their NUL, as postalias
 * does). Returns the exit status: 0, 1 (a table could not be built) or 2
 * (usage).
 */
int cmd_alias(int argc, char **argv, struct cfg *cfg);

#endif
