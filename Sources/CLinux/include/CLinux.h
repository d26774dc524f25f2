/* What Swift cannot see of glibc, and the command line as glibc passed it.
 * The only C of the project besides the system libraries' headers; used by
 * the SystemCalls target (and the executable, for the command line). */
#ifndef VSC_CLINUX_H
#define VSC_CLINUX_H

#include <dirent.h>

/* O_DIRECT: glibc declares it only under _GNU_SOURCE, which Swift's import of
 * <fcntl.h> does not define; its value differs between architectures, so it
 * comes from the header (clinux.c), never from a table of our own. */
extern const int clinux_O_DIRECT;

/* sem_clockwait (glibc 2.30), declared only under _GNU_SOURCE: a bounded
 * wait on a semaphore against CLOCK_MONOTONIC. Returns 0, or -1 with errno
 * (ETIMEDOUT, EINTR). */
struct timespec;
int clinux_sem_wait_monotonic(void *semaphore, const struct timespec *deadline);

/* statx(AT_STATX_DONT_SYNC) into a struct stat: the attributes the kernel
 * holds for the file, without asking a network file system again. Right
 * after an open or a lookup, which fetched them, they are as fresh as a
 * stat's, and cost no round trip (NFS with noac, FUSE with attribute
 * caching off answer a stat with one). `name` "" with `dirfd` an open file
 * (AT_EMPTY_PATH) stats that file; otherwise an entry of the directory
 * `dirfd`, never following a symlink. Returns 0, or -1 with errno. */
struct stat;
int clinux_stat_cached(int dirfd, const char *name, struct stat *out);

/* fstatfs(fd)'s f_type (NFS_SUPER_MAGIC...) into *type; 0, or -1 with errno.
 * <sys/vfs.h> is not part of what Swift's Glibc module imports. */
int clinux_filesystem_type(int fd, long long *type);

/* The type of a directory entry as the file system reported it (d_type:
 * DT_REG, DT_DIR, ..., DT_UNKNOWN when it does not say). */
unsigned char clinux_dirent_type(const struct dirent *entry);

/* The NUL-terminated name of a directory entry (d_name is a fixed-size array
 * in the header, which Swift imports as a tuple). */
const char *clinux_dirent_name(const struct dirent *entry);

/* The process's argv as glibc hands it to ELF constructors. Swift's
 * CommandLine.arguments is found at run time by reading /proc/self/maps; when
 * that read fails (EIO, EACCES, an exhausted fd table) it is silently EMPTY,
 * and a command line parsed from nothing is a cleaning run with every default
 * (measured: `--dry-run` deleted leases). These never fail. */

/* argc as the process was started with, or 0 if the constructor did not run. */
int vsc_argument_count(void);

/* argv[index] for 0 <= index < vsc_argument_count(); NULL otherwise. */
const char *vsc_argument(int index);

#endif
