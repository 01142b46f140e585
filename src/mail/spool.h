/*
 * spool.h - the queue directory: layout, owners, modes
 *
 * $queue_directory holds incoming/ active/ deferred/ hold/ corrupt/
 * and the per-message logs defer/ and bounce/ (owner mail_owner, mode
 * 0700), maildrop/ (mail_owner:setgid_group 0730, as Postfix),
 * public/ (mail_owner:setgid_group 0710), private/ (mail_owner 0700) and
 * pid/ (root 0755). In an unprivileged instance everything belongs to the
 * invoking user.
 */
#ifndef POSTA_SPOOL_H
#define POSTA_SPOOL_H

#include <stdbool.h>
#include <sys/types.h>

struct cfg;

/* spool_create - create missing directories; fix owner/mode when privileged */
void spool_create(struct cfg *cfg);
/* spool_dir_fd - open $queue_directory/name as O_DIRECTORY|O_PATH-free fd (fatal on error) */
int spool_dir_fd(struct cfg *cfg, const char *name);

#endif
