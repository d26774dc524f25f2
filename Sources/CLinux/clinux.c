/* Compiled with _GNU_SOURCE so that glibc's headers declare what the Swift
 * importer, which never defines it, cannot see. */
#define _GNU_SOURCE
#include "CLinux.h"

#include <fcntl.h>

const int clinux_O_DIRECT = O_DIRECT;

const char *clinux_dirent_name(const struct dirent *entry)
{
    return entry->d_name;
}
