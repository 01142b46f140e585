/*
 * sys.h - common system includes for posta sources
 *
 * Every .c file in posta includes this first. It fixes the feature-test
 * macros, pulls in the headers nearly every module uses, and poisons the
 * banned string functions.
 */
#ifndef POSTA_SYS_H
#define POSTA_SYS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "util/banned.h"

#define POSTA_NORETURN __attribute__((noreturn))
#define POSTA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define POSTA_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
