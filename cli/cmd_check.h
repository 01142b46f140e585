/*
 * cmd_check.h - "posta check" and "posta set-permissions"
 */
#ifndef POSTA_CMD_CHECK_H
#define POSTA_CMD_CHECK_H

/*
 * cmd_check - check main.cf, master.cf, the programs master.cf names, and
 * the owners and modes of the spool directories, the files in them, the
 * configuration files and postdrop; one line per problem on stderr
 * ("posta check: warning: ..."). verbose: also say when all is well.
 * Returns the exit status: 0 (no problem), 1 (problems), 2 (usage).
 */
int cmd_check(int argc, char **argv, const char *config_dir, int verbose);

/*
 * cmd_set_permissions - repair what cmd_check reports about owners and
 * modes (as root; an instance owned by the caller may be repaired by its
 * owner), then check again. Returns the exit status as cmd_check.
 */
int cmd_set_permissions(int argc, char **argv, const char *config_dir, int verbose);

#endif
