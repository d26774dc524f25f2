/* Compiled with _GNU_SOURCE so that glibc's headers declare what the Swift
 * importer, which never defines it, cannot see. */
#define _GNU_SOURCE
#include "CLinux.h"

#include <fcntl.h>
#include <semaphore.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>

const int clinux_O_DIRECT = O_DIRECT;

int clinux_sem_wait_monotonic(void *semaphore, const struct timespec *deadline)
{
    return sem_clockwait((sem_t *)semaphore, CLOCK_MONOTONIC, deadline);
}

int clinux_stat_cached(int dirfd, const char *name, struct stat *out)
{
    struct statx x;
    int flags = AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW | (name[0] == '\0' ? AT_EMPTY_PATH : 0);

    if (statx(dirfd, name, flags, STATX_BASIC_STATS, &x) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
    out->st_ino = x.stx_ino;
    out->st_mode = x.stx_mode;
    out->st_nlink = x.stx_nlink;
    out->st_uid = x.stx_uid;
    out->st_gid = x.stx_gid;
    out->st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
    out->st_size = (off_t)x.stx_size;
    out->st_blksize = (blksize_t)x.stx_blksize;
    out->st_blocks = (blkcnt_t)x.stx_blocks;
    out->st_atim.tv_sec = x.stx_atime.tv_sec;
    out->st_atim.tv_nsec = x.stx_atime.tv_nsec;
    out->st_mtim.tv_sec = x.stx_mtime.tv_sec;
    out->st_mtim.tv_nsec = x.stx_mtime.tv_nsec;
    out->st_ctim.tv_sec = x.stx_ctime.tv_sec;
    out->st_ctim.tv_nsec = x.stx_ctime.tv_nsec;
    return 0;
}

int clinux_filesystem_type(int fd, long long *type)
{
    struct statfs status;

    if (fstatfs(fd, &status) != 0)
        return -1;
    *type = (long long)status.f_type;
    return 0;
}

unsigned char clinux_dirent_type(const struct dirent *entry)
{
    return entry->d_type;
}

const char *clinux_dirent_name(const struct dirent *entry)
{
    return entry->d_name;
}
