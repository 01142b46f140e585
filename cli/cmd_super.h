/*
 * cmd_super.h - "posta super": queue maintenance (postsuper)
 */
#ifndef POSTA_CMD_SUPER_H
#define POSTA_CMD_SUPER_H

#include <stdbool.h>

struct cfg;

/*
 * cmd_super - argv[0] is the command name; options as postsuper: -d, -h,
 * -H, -r (each "ID", "ALL" or "-" for IDs on stdin; may repeat), -s, -p,
 * then optional queue names that limit -d/-h/-r. running: the mail system
 * runs now (active/ is then left alone). Returns the exit status: 0, 1
 * (not root or mail_owner, a queue that cannot be read, an operation that
 * failed) or 2 (usage).
 */
int cmd_super(int argc, char **argv, struct cfg *cfg, bool running);

#endif
