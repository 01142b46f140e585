/*
 * cmd_cat.h - "posta cat": show a queue file (postcat)
 */
#ifndef POSTA_CMD_CAT_H
#define POSTA_CMD_CAT_H

struct cfg;

/*
 * cmd_cat - argv[0] is the command name; options as postcat: -e envelope,
 * -h header, -b body (default: all three), -q (the arguments are queue
 * IDs looked up in the queue directories, else file names; no argument:
 * standard input, when it is a file). Returns the exit status: 0, 1 (a
 * file that is missing, unreadable or corrupt: the reason on stderr) or
 * 2 (usage).
 */
int cmd_cat(int argc, char **argv, struct cfg *cfg);

#endif
