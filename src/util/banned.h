/*
 * banned.h - poison unsafe libc string functions
 *
 * Included by every posta source file (through util/sys.h). Any use of
 * strcpy, strcat, sprintf, vsprintf, gets or strtok becomes a compile
 * error. Use struct buf (util/buf.h) or snprintf instead.
 */
#ifndef POSTA_BANNED_H
#define POSTA_BANNED_H

#include <stdio.h>
#include <string.h>

#pragma GCC poison strcpy strcat sprintf vsprintf gets strtok

#endif
