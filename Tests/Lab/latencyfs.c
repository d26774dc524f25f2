/* latencyfs: the latency lab's filesystem (see docs/performance.md, "The latency lab").
 *
 * A FUSE passthrough, on libfuse3's low-level API, that mirrors BACKING_DIR
 * at MOUNTPOINT and answers every request no earlier than a fixed delay
 * after it arrived, as if every request were a network round trip to an NFS
 * server. Requests are served by up to --threads threads, so that parallel
 * requests each wait their own delay at the same time, as round trips do.
 *
 *   - Entry, negative-entry and attribute caching are off (timeouts 0), as
 *     with NFS's `noac`: every path walk and every stat is a request.
 *   - Files are opened with direct_io (no page cache on this side; sanlock's
 *     O_DIRECT + libaio reads and writes pass through as they are, up to
 *     1 MiB per request) and FOPEN_PARALLEL_DIRECT_WRITES (direct writes to
 *     one file may run in parallel). libfuse 3.14.0, Debian 12's, has no
 *     field for the latter in struct fuse_file_info (3.14.1 added it), so
 *     the flag is added to the open and create replies on their way to the
 *     kernel, through the session's custom I/O hook.
 *   - Lookups and readdirs in one directory run in parallel (as on NFS):
 *     FUSE_PARALLEL_DIROPS is added to the INIT reply, which libfuse before
 *     3.17 never sends although it turns the capability on. Without it the
 *     kernel serialises them per directory, and every first lookup of a
 *     name in the lease directory waits for the one before.
 *   - The backing files are opened without O_DIRECT (an NFS server writes
 *     through its page cache too), and without O_SYNC and O_DSYNC; fsync
 *     is answered without syncing: the backing store is a server whose
 *     writes are stable once they are in its memory (NVRAM, or an async
 *     export), so that the delay is the only cost of a request. A sync of
 *     the local disk under other work took over a second now and then,
 *     longer than sanlock's io_timeout of 1 s in the tests. --sync passes
 *     them all on.
 *   - Every request is counted by opcode and by the process that made it:
 *     the thread id the kernel gives is mapped to its thread group (process)
 *     id and that process's name through /proc, and remembered while that
 *     thread lives (a pidfd tells: thread ids are soon reused). A RELEASE,
 *     which the kernel sends without a pid, is counted to the process that
 *     opened the file. Forgets are counted but not delayed (the kernel sends them
 *     whenever it drops an inode; no caller waits for them). Requests libfuse
 *     answers itself (e.g. GETXATTR with ENOSYS, which the kernel then stops
 *     sending) are counted and not delayed.
 *
 * Counts go to the --stats file (written to FILE.tmp, then renamed, so it is
 * never seen half written), never inside the mount: at start (once mounted),
 * on SIGUSR1, on SIGUSR2 (then the counts are reset), on SIGHUP (after
 * re-reading the --delay-file) and at unmount. Format:
 *   # latencyfs BACKING on MOUNTPOINT
 *   # delay_us D
 *   # seconds S            (since the last reset)
 *   # requests N           (since the last reset)
 *   # replies OPCODE N beyond_delay_max_us M over_100_ms K
 *                          (how late the replies were, beyond the delay)
 *   process_name<TAB>tgid<TAB>OPCODE<TAB>count
 * Requests the kernel makes on its own (no process) have tgid 0 and the
 * name "kernel"; a process that exited before it could be looked up is
 * named "?" with its thread id as tgid.
 *
 * It runs in the foreground until MOUNTPOINT is unmounted (fusermount3 -u)
 * or SIGTERM/SIGINT, which unmount it (lazily). As root it mounts with
 * allow_other, so that every user (a sanlock daemon running as sanlock) can
 * use it; permissions are the backing filesystem's, checked as this
 * process's user: it is test infrastructure, not a security boundary. New
 * entries are given to the requesting user and group.
 *
 * Build: gcc -Wall -Wextra -O2 -o latencyfs latencyfs.c $(pkg-config --cflags --libs fuse3) -lpthread
 * Usage: latencyfs [--delay-ms MS | --delay-us US] [--delay-file FILE] [--stats FILE]
 *                  [--threads N] [--no-parallel-direct-writes] [--no-parallel-dirops]
 *                  [--sync] [-o OPTIONS] [-d] BACKING_DIR MOUNTPOINT
 * (--no-parallel-*: without the flags libfuse 3.14.0 does not send; see
 * device_writev.)
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <linux/fuse.h>   /* the kernel's request and reply headers */

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ settings */

static const char *backing_dir, *mountpoint, *stats_path, *delay_path;
static _Atomic long long delay_ns;      /* per request */
static unsigned max_threads = 64;
static bool parallel_direct_writes = true, parallel_dirops = true;
static bool sync_backing;               /* --sync */
static bool running_as_root;
static struct fuse_session *session;

/* Set by the thread that read a request, used by the same thread's handler. */
static __thread struct timespec tl_received;
static __thread uint32_t tl_opcode;
static __thread bool tl_delayed;         /* this request waited its delay... */
static __thread long long tl_delayed_ns; /* ...of this long */
/* Set while an open or create reply, or the INIT reply, is being sent (see
 * device_writev). */
static __thread bool tl_open_reply, tl_init_reply;
static bool kernel_parallel_dirops;     /* the kernel offered it */

/* ------------------------------------------------------------ counting */

#define OPCODES 64                      /* FUSE opcodes are 1..52 in 6.x */
static const char *const opcode_names[OPCODES] = {
    [FUSE_LOOKUP] = "LOOKUP", [FUSE_FORGET] = "FORGET", [FUSE_GETATTR] = "GETATTR",
    [FUSE_SETATTR] = "SETATTR", [FUSE_READLINK] = "READLINK", [FUSE_SYMLINK] = "SYMLINK",
    [FUSE_MKNOD] = "MKNOD", [FUSE_MKDIR] = "MKDIR", [FUSE_UNLINK] = "UNLINK",
    [FUSE_RMDIR] = "RMDIR", [FUSE_RENAME] = "RENAME", [FUSE_LINK] = "LINK", [FUSE_OPEN] = "OPEN",
    [FUSE_READ] = "READ", [FUSE_WRITE] = "WRITE", [FUSE_STATFS] = "STATFS",
    [FUSE_RELEASE] = "RELEASE", [FUSE_FSYNC] = "FSYNC", [FUSE_SETXATTR] = "SETXATTR",
    [FUSE_GETXATTR] = "GETXATTR", [FUSE_LISTXATTR] = "LISTXATTR",
    [FUSE_REMOVEXATTR] = "REMOVEXATTR", [FUSE_FLUSH] = "FLUSH", [FUSE_INIT] = "INIT",
    [FUSE_OPENDIR] = "OPENDIR", [FUSE_READDIR] = "READDIR", [FUSE_RELEASEDIR] = "RELEASEDIR",
    [FUSE_FSYNCDIR] = "FSYNCDIR", [FUSE_GETLK] = "GETLK", [FUSE_SETLK] = "SETLK",
    [FUSE_SETLKW] = "SETLKW", [FUSE_ACCESS] = "ACCESS", [FUSE_CREATE] = "CREATE",
    [FUSE_INTERRUPT] = "INTERRUPT", [FUSE_BMAP] = "BMAP", [FUSE_DESTROY] = "DESTROY",
    [FUSE_IOCTL] = "IOCTL", [FUSE_POLL] = "POLL", [FUSE_NOTIFY_REPLY] = "NOTIFY_REPLY",
    [FUSE_BATCH_FORGET] = "BATCH_FORGET", [FUSE_FALLOCATE] = "FALLOCATE",
    [FUSE_READDIRPLUS] = "READDIRPLUS", [FUSE_RENAME2] = "RENAME2", [FUSE_LSEEK] = "LSEEK",
    [FUSE_COPY_FILE_RANGE] = "COPY_FILE_RANGE", [FUSE_SETUPMAPPING] = "SETUPMAPPING",
    [FUSE_REMOVEMAPPING] = "REMOVEMAPPING", [FUSE_SYNCFS] = "SYNCFS", [FUSE_TMPFILE] = "TMPFILE",
    [52] = "STATX",
};

/* Who made a request: a process (thread group) and its name. */
struct identity {
    pid_t tgid;
    char name[24];
};

struct process {
    struct identity who;
    uint64_t count[OPCODES + 1];        /* [OPCODES]: any other opcode */
};

/* Thread id -> identity, open addressing; tid 0 is never stored. Thread
 * ids are reused, and quickly (pid_max is 32768 here, and other work
 * starts processes by the thousand): each entry holds a pidfd of the
 * thread (pidfd_open PIDFD_THREAD, Linux 6.9), readable once that thread
 * has exited, so that a stale entry is never believed. Without pidfds
 * nothing is cached. */
struct tid_slot {
    pid_t tid;
    int pidfd;
    struct identity who;
    int process;                        /* index in processes[], if generation matches */
    unsigned generation;
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct process *processes;
static size_t process_count, process_capacity;
static unsigned generation = 1;         /* of processes[]: a reset empties it */
static struct tid_slot *tids;
static size_t tid_count, tid_capacity;  /* capacity: a power of two */
static size_t tid_sweep_at = 512;       /* entries before dead threads are swept */
static bool use_pidfds = true;
static uint64_t total_requests;
static struct timespec stats_since;
/* Replies: the longest time beyond the delay from reading a request to
 * answering it, and how many took more than SLOW_NS beyond it, by opcode. */
#define SLOW_NS 100000000LL
static long long beyond_max_ns[OPCODES + 1];
static uint64_t beyond_slow[OPCODES + 1], replies[OPCODES + 1];

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void *checked_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) die("calloc");
    return p;
}

/* Reads a small /proc file into buf (NUL-terminated); -1 if it is gone. */
static int read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t have = 0;
    while (have + 1 < size) {
        ssize_t n = read(fd, buf + have, size - 1 - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
    }
    close(fd);
    buf[have] = '\0';
    return have ? 0 : -1;
}

/* The thread group (process) of thread `tid` and that process's name (its
 * main thread's: a thread may have a name of its own). -1 if it is gone:
 * then "?" with the thread id. */
static int identify(pid_t tid, struct identity *who)
{
    char path[64], status[4096], comm[64];
    const char *text = "?";
    int rv = -1;
    who->tgid = tid;
    if (tid == 0) {
        snprintf(who->name, sizeof(who->name), "kernel");
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    if (read_small(path, status, sizeof(status)) == 0) {
        char *line = strstr(status, "\nTgid:");
        if (line) {
            who->tgid = (pid_t)strtol(line + 6, NULL, 10);
            rv = 0;
        }
        if (strncmp(status, "Name:\t", 6) == 0) {
            text = status + 6;
            status[strcspn(status, "\n")] = '\0';
        }
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)who->tgid);
        if (read_small(path, comm, sizeof(comm)) == 0) {
            comm[strcspn(comm, "\n")] = '\0';
            text = comm;
        }
    }
    size_t length = strnlen(text, sizeof(who->name) - 1);
    memcpy(who->name, text, length);
    who->name[length] = '\0';
    /* One field of a TSV line. */
    for (char *c = who->name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\') *c = '_';
    return rv;
}

static bool thread_exited(int pidfd)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    return poll(&p, 1, 0) != 0;         /* readable (or an error): gone */
}

static size_t tid_hash(pid_t tid, size_t capacity)
{
    return ((uint32_t)tid * 2654435761u) & (capacity - 1);
}

/* Under stats_lock: tid's slot, or the empty slot where it would go. */
static struct tid_slot *tid_find(pid_t tid)
{
    for (size_t i = tid_hash(tid, tid_capacity);; i = (i + 1) & (tid_capacity - 1))
        if (tids[i].tid == tid || tids[i].tid == 0) return &tids[i];
}

/* Under stats_lock: the table rebuilt with room for one more entry, the
 * entries of exited threads dropped once there are many. */
static void tid_make_room(void)
{
    bool sweep = tid_count + 1 >= tid_sweep_at;
    if (!sweep && 2 * (tid_count + 1) <= tid_capacity) return;
    size_t old_capacity = tid_capacity;
    struct tid_slot *old = tids;
    size_t live = 0;
    for (size_t i = 0; i < old_capacity; i++) {
        if (!old[i].tid) continue;
        if (sweep && thread_exited(old[i].pidfd)) {
            close(old[i].pidfd);
            old[i].tid = 0;
        } else {
            live++;
        }
    }
    if (sweep && 2 * (live + 1) >= tid_sweep_at) tid_sweep_at *= 2;
    tid_capacity = 1024;
    while (2 * (live + 1) > tid_capacity) tid_capacity *= 2;
    tids = checked_calloc(tid_capacity, sizeof(*tids));
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].tid) *tid_find(old[i].tid) = old[i];
    tid_count = live;
    free(old);
}

/* Under stats_lock: the entry for `who` in processes[], created if new. */
static int process_index(const struct identity *who)
{
    for (size_t i = process_count; i-- > 0;)
        if (processes[i].who.tgid == who->tgid && strcmp(processes[i].who.name, who->name) == 0) return (int)i;
    if (process_count == process_capacity) {
        size_t capacity = process_capacity ? 2 * process_capacity : 64;
        struct process *grown = realloc(processes, capacity * sizeof(*grown));
        if (!grown) die("realloc");
        processes = grown;
        process_capacity = capacity;
    }
    struct process *p = &processes[process_count];
    memset(p, 0, sizeof(*p));
    p->who = *who;
    return (int)process_count++;
}

/* Under stats_lock (dropped and taken again around /proc): who thread
 * `tid` belongs to, and its index in processes[]. */
static int resolve(pid_t tid, struct identity *who)
{
    if (tid != 0 && tid_capacity) {
        struct tid_slot *slot = tid_find(tid);
        if (slot->tid == tid && !thread_exited(slot->pidfd)) {
            if (slot->generation != generation) {
                slot->process = process_index(&slot->who);
                slot->generation = generation;
            }
            if (who) *who = slot->who;
            return slot->process;
        }
    }
    /* Not known, or that thread has exited and its id is another's now.
     * The pidfd first: the identity read after it is the thread's it
     * names. The requesting thread waits for our answer, so it is there
     * (a RELEASE is counted to its opener, see device_read). */
    struct identity found;
    pthread_mutex_unlock(&stats_lock);
    int pidfd = -1;
    if (tid != 0 && use_pidfds) {
        pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
        if (pidfd < 0 && (errno == EINVAL || errno == ENOSYS)) use_pidfds = false;
    }
    int known = identify(tid, &found);
    pthread_mutex_lock(&stats_lock);
    int index = process_index(&found);
    if (pidfd >= 0 && known == 0) {
        struct tid_slot *slot = tid_capacity ? tid_find(tid) : NULL;
        if (slot && slot->tid == tid) {
            close(slot->pidfd);         /* its former thread */
        } else {
            tid_make_room();
            slot = tid_find(tid);
            tid_count++;
        }
        slot->tid = tid;
        slot->pidfd = pidfd;
        slot->who = found;
        slot->process = index;
        slot->generation = generation;
    } else if (pidfd >= 0) {
        close(pidfd);
    }
    if (who) *who = found;
    return index;
}

static void count_request(uint32_t opcode, pid_t tid)
{
    unsigned op = opcode < OPCODES ? opcode : OPCODES;
    pthread_mutex_lock(&stats_lock);
    int index = resolve(tid, NULL);     /* may move processes[] */
    processes[index].count[op]++;
    total_requests++;
    pthread_mutex_unlock(&stats_lock);
}

/* A request counted to a process known from elsewhere (a RELEASE to the
 * process that opened the file). */
static void count_request_as(uint32_t opcode, const struct identity *who)
{
    unsigned op = opcode < OPCODES ? opcode : OPCODES;
    pthread_mutex_lock(&stats_lock);
    int index = process_index(who);     /* may move processes[] */
    processes[index].count[op]++;
    total_requests++;
    pthread_mutex_unlock(&stats_lock);
}

/* Who thread `tid` belongs to (for a handle's opener). */
static void identity_of(pid_t tid, struct identity *who)
{
    pthread_mutex_lock(&stats_lock);
    resolve(tid, who);
    pthread_mutex_unlock(&stats_lock);
}

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static const char *op_name(unsigned op, char *buf, size_t size)
{
    if (op < OPCODES && opcode_names[op]) return opcode_names[op];
    if (op >= OPCODES) return "OTHER";
    snprintf(buf, size, "OPCODE_%u", op);
    return buf;
}

/* Writes the counts to stats_path (atomically); with `reset`, zeroes them. */
static void write_stats(bool reset)
{
    static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
    if (!stats_path && !reset) return;
    pthread_mutex_lock(&write_lock);
    pthread_mutex_lock(&stats_lock);
    size_t n = process_count;
    struct process *copy = n ? malloc(n * sizeof(*copy)) : NULL;
    if (n && !copy) die("malloc");
    if (n) memcpy(copy, processes, n * sizeof(*copy));
    uint64_t total = total_requests;
    double seconds = seconds_since(&stats_since);
    long long max_ns[OPCODES + 1];
    uint64_t slow[OPCODES + 1], answered[OPCODES + 1];
    memcpy(max_ns, beyond_max_ns, sizeof(max_ns));
    memcpy(slow, beyond_slow, sizeof(slow));
    memcpy(answered, replies, sizeof(answered));
    if (reset) {
        process_count = 0;
        generation++;                   /* the thread ids stay known */
        total_requests = 0;
        memset(beyond_max_ns, 0, sizeof(beyond_max_ns));
        memset(beyond_slow, 0, sizeof(beyond_slow));
        memset(replies, 0, sizeof(replies));
        clock_gettime(CLOCK_MONOTONIC, &stats_since);
    }
    pthread_mutex_unlock(&stats_lock);

    if (stats_path) {
        char tmp[PATH_MAX];
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path) >= sizeof(tmp)) {
            fprintf(stderr, "latencyfs: stats path too long\n");
        } else {
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
            if (!f) {
                if (fd >= 0) close(fd);
                perror(tmp);
            } else {
                fprintf(f, "# latencyfs %s on %s\n# delay_us %lld\n# seconds %.3f\n# requests %" PRIu64 "\n",
                        backing_dir, mountpoint, atomic_load(&delay_ns) / 1000, seconds, total);
                char other[16];
                for (unsigned op = 0; op <= OPCODES; op++)
                    if (answered[op])
                        fprintf(f, "# replies %s %" PRIu64 " beyond_delay_max_us %lld over_%lld_ms %" PRIu64 "\n",
                                op_name(op, other, sizeof(other)), answered[op], max_ns[op] / 1000,
                                SLOW_NS / 1000000, slow[op]);
                for (size_t i = 0; i < n; i++)
                    for (unsigned op = 0; op <= OPCODES; op++)
                        if (copy[i].count[op])
                            fprintf(f, "%s\t%d\t%s\t%" PRIu64 "\n", copy[i].who.name, (int)copy[i].who.tgid,
                                    op_name(op, other, sizeof(other)), copy[i].count[op]);
                if (fflush(f) != 0 || ferror(f)) perror(tmp);
                if (fclose(f) != 0) perror(tmp);
                else if (rename(tmp, stats_path) != 0) perror(stats_path);
            }
        }
    }
    free(copy);
    pthread_mutex_unlock(&write_lock);
}

/* ------------------------------------------------------------ delay */

static int parse_delay_ms(const char *text, long long *ns)
{
    char *end;
    errno = 0;
    double ms = strtod(text, &end);
    while (*end == ' ' || *end == '\t' || *end == '\n') end++;
    if (errno || end == text || *end != '\0' || !(ms >= 0) || ms > 600000) return -1;
    *ns = (long long)(ms * 1e6 + 0.5);
    return 0;
}

static void load_delay_file(void)
{
    char buf[128];
    long long ns;
    if (!delay_path) return;
    int fd = open(delay_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) perror(delay_path);
        return;
    }
    ssize_t n;
    do n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) {
        perror(delay_path);
        return;
    }
    buf[n] = '\0';
    if (parse_delay_ms(buf, &ns) < 0) {
        fprintf(stderr, "latencyfs: %s: not a delay in milliseconds: %s\n", delay_path, buf);
        return;
    }
    atomic_store(&delay_ns, ns);
}

/* Every handler but forget starts here: waits until `delay` after the
 * request was read from the device. */
static void wait_delay(void)
{
    long long ns = atomic_load(&delay_ns);
    tl_delayed = true;
    tl_delayed_ns = ns > 0 ? ns : 0;
    if (ns <= 0) return;
    struct timespec until = tl_received;
    until.tv_sec += ns / 1000000000;
    until.tv_nsec += ns % 1000000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {}
}

/* ------------------------------------------------------------ device I/O */

/* An open file or directory (fi->fh): its backing descriptor, and the
 * process that opened it, to which its RELEASE is counted (the kernel sends
 * RELEASE without a pid, often after that process has gone). */
struct handle {
    int fd;
    struct identity opener;
    DIR *dp;                            /* directories */
    struct dirent *entry;               /* read, did not fit in the last reply */
    off_t offset;
    pthread_mutex_t lock;
};


/* Every request passes here: stamped and counted before it is handled. */
static ssize_t device_read(int fd, void *buf, size_t len, void *userdata)
{
    (void)userdata;
    ssize_t n = read(fd, buf, len);
    if (n >= (ssize_t)sizeof(struct fuse_in_header)) {
        int saved = errno;
        const struct fuse_in_header *in = buf;
        const struct handle *opened = NULL;
        clock_gettime(CLOCK_MONOTONIC, &tl_received);
        tl_opcode = in->opcode;
        tl_delayed = false;
        if ((in->opcode == FUSE_RELEASE || in->opcode == FUSE_RELEASEDIR) && in->pid == 0 &&
            n >= (ssize_t)(sizeof(*in) + sizeof(struct fuse_release_in))) {
            const struct fuse_release_in *release = (const void *)(in + 1);
            opened = (const struct handle *)(uintptr_t)release->fh;
        }
        if (opened) count_request_as(in->opcode, &opened->opener);
        else count_request(in->opcode, (pid_t)in->pid);
        errno = saved;
    }
    return n;
}

/* Every reply passes here. Two flags libfuse 3.14.0 does not send are added:
 *   - FUSE_PARALLEL_DIROPS in the INIT reply: libfuse turns the capability
 *     on by default but never tells the kernel (fixed in 3.17), which then
 *     serialises lookups and readdirs per directory: every first lookup of a
 *     name in the lease directory would wait for the one before it;
 *   - FOPEN_PARALLEL_DIRECT_WRITES in an open or create reply (struct
 *     fuse_open_out last), for which 3.14.0's fuse_file_info has no field. */
static ssize_t device_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    (void)userdata;
    const struct fuse_out_header *header = iov[0].iov_base;
    if (header->unique != 0) {          /* a reply, not a notification */
        unsigned op = tl_opcode < OPCODES ? tl_opcode : OPCODES;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long beyond = (now.tv_sec - tl_received.tv_sec) * 1000000000LL + (now.tv_nsec - tl_received.tv_nsec);
        /* (Requests libfuse answers itself were not delayed.) */
        if (tl_delayed) beyond -= tl_delayed_ns;
        pthread_mutex_lock(&stats_lock);
        replies[op]++;
        if (beyond > beyond_max_ns[op]) beyond_max_ns[op] = beyond;
        if (beyond > SLOW_NS) beyond_slow[op]++;
        pthread_mutex_unlock(&stats_lock);
    }
    if (tl_init_reply) {
        const struct fuse_out_header *out = iov[0].iov_base;
        /* flags is the fourth field of every version of fuse_init_out */
        if (parallel_dirops && kernel_parallel_dirops && count >= 2 && out->error == 0 &&
            iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
            struct fuse_init_out *init_out = iov[1].iov_base;
            init_out->flags |= FUSE_PARALLEL_DIROPS;
        }
        tl_init_reply = false;
    }
    if (tl_open_reply && parallel_direct_writes && count >= 2) {
        const struct fuse_out_header *out = iov[0].iov_base;
        struct iovec *last = &iov[count - 1];
        if (out->error == 0 && last->iov_len >= sizeof(struct fuse_open_out)) {
            struct fuse_open_out *open_out =
                (struct fuse_open_out *)((char *)last->iov_base + last->iov_len - sizeof(*open_out));
            open_out->open_flags |= FOPEN_PARALLEL_DIRECT_WRITES;
        }
    }
    return writev(fd, iov, count);
}

/* ------------------------------------------------------------ inodes */

/* A backing file or directory the kernel knows, pinned by an O_PATH
 * descriptor (so its inode number cannot be reused while we know it). */
struct inode {
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t nlookup;
    struct inode *next;                 /* hash chain */
};

#define INODE_BUCKETS 4096
static struct inode root = { .fd = -1, .nlookup = 1 };
static struct inode *inode_table[INODE_BUCKETS];
static pthread_mutex_t inode_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t inode_bucket(dev_t dev, ino_t ino)
{
    return (size_t)((ino * 0x9e3779b97f4a7c15ULL) ^ dev) % INODE_BUCKETS;
}

static struct inode *get_inode(fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? &root : (struct inode *)(uintptr_t)ino;
}

static int inode_fd(fuse_ino_t ino)
{
    return get_inode(ino)->fd;
}

static void proc_path(char *buf, size_t size, int fd)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

static struct handle *get_handle(const struct fuse_file_info *fi)
{
    return (struct handle *)(uintptr_t)fi->fh;
}

static int handle_fd(const struct fuse_file_info *fi)
{
    return get_handle(fi)->fd;
}

static struct handle *new_handle(fuse_req_t req, int fd)
{
    struct handle *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->fd = fd;
    identity_of(fuse_req_ctx(req)->pid, &h->opener);
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

static void free_handle(struct handle *h)
{
    if (h->dp) closedir(h->dp);         /* closes fd */
    else close(h->fd);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* A handle for `fd`, or NULL after closing `fd` and answering ENOMEM. */
static struct handle *handle_or_reply(fuse_req_t req, int fd)
{
    struct handle *h = new_handle(req, fd);
    if (!h) {
        close(fd);
        fuse_reply_err(req, ENOMEM);
    }
    return h;
}

/* A file's handle as the kernel gets it: every read and write reaches us. */
static void set_file_handle(struct fuse_file_info *fi, struct handle *h)
{
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fi->keep_cache = 0;
}

/* Drops `n` lookups of an inode; the last one closes and frees it. */
static void unref_inode(struct inode *inode, uint64_t n)
{
    if (inode == &root) return;
    pthread_mutex_lock(&inode_lock);
    if (n > inode->nlookup) {
        fprintf(stderr, "latencyfs: forget of %" PRIu64 " lookups, %" PRIu64 " known\n", n, inode->nlookup);
        n = inode->nlookup;
    }
    inode->nlookup -= n;
    bool last = inode->nlookup == 0;
    if (last) {
        struct inode **link = &inode_table[inode_bucket(inode->dev, inode->ino)];
        while (*link != inode) link = &(*link)->next;
        *link = inode->next;
    }
    pthread_mutex_unlock(&inode_lock);
    if (last) {
        close(inode->fd);
        free(inode);
    }
}

/* Looks NAME up in PARENT: fills e (caching off) and counts one lookup of
 * the inode. 0 or an errno. */
static int do_lookup(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->attr_timeout = 0;
    e->entry_timeout = 0;
    int fd = openat(inode_fd(parent), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno;
    if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        int err = errno;
        close(fd);
        return err;
    }
    struct inode *inode;
    size_t bucket = inode_bucket(e->attr.st_dev, e->attr.st_ino);
    pthread_mutex_lock(&inode_lock);
    for (inode = inode_table[bucket]; inode; inode = inode->next)
        if (inode->ino == e->attr.st_ino && inode->dev == e->attr.st_dev) break;
    if (inode) {
        inode->nlookup++;
    } else {
        inode = calloc(1, sizeof(*inode));
        if (!inode) {
            pthread_mutex_unlock(&inode_lock);
            close(fd);
            return ENOMEM;
        }
        inode->fd = fd;
        inode->dev = e->attr.st_dev;
        inode->ino = e->attr.st_ino;
        inode->nlookup = 1;
        inode->next = inode_table[bucket];
        inode_table[bucket] = inode;
        fd = -1;
    }
    pthread_mutex_unlock(&inode_lock);
    if (fd >= 0) close(fd);
    e->ino = (fuse_ino_t)(uintptr_t)inode;
    return 0;
}

/* Replies with an entry; if the kernel did not take it (the request was
 * interrupted), the lookup it would have counted is dropped. */
static void reply_entry(fuse_req_t req, struct fuse_entry_param *e)
{
    if (fuse_reply_entry(req, e) != 0) unref_inode(get_inode(e->ino), 1);
}

/* A new entry belongs to the user and group that asked for it. */
static void give_to_caller(fuse_req_t req, int dirfd, const char *name)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    if (running_as_root && (ctx->uid != 0 || ctx->gid != 0))
        if (fchownat(dirfd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) < 0)
            fprintf(stderr, "latencyfs: chown %s to %u:%u: %s\n", name, (unsigned)ctx->uid,
                    (unsigned)ctx->gid, strerror(errno));
}

/* ------------------------------------------------------------ operations */

static void lfs_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* Room for many background requests (async direct I/O, releases). */
    conn->max_background = 128;
    conn->congestion_threshold = 96;
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* libfuse sends its INIT reply from this thread right after: see
     * device_writev. */
    kernel_parallel_dirops = (conn->capable & FUSE_CAP_PARALLEL_DIROPS) != 0;
    tl_init_reply = true;
}

static void lfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    wait_delay();
    int err = do_lookup(parent, name, &e);
    if (err) fuse_reply_err(req, err);
    else reply_entry(req, &e);
}

static void lfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    unref_inode(get_inode(ino), nlookup);
    fuse_reply_none(req);
}

static void lfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++) unref_inode(get_inode(forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    int rv = fi ? fstat(handle_fd(fi), &st)
                : fstatat(inode_fd(ino), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    if (rv < 0) fuse_reply_err(req, errno);
    else fuse_reply_attr(req, &st, 0);
}

static void lfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    wait_delay();
    reply_attr(req, ino, fi);
}

static void lfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid, struct fuse_file_info *fi)
{
    char path[64];
    int ifd = inode_fd(ino), rv;
    wait_delay();
    proc_path(path, sizeof(path), ifd);
    if (valid & FUSE_SET_ATTR_MODE) {
        rv = fi ? fchmod(handle_fd(fi), attr->st_mode) : chmod(path, attr->st_mode);
        if (rv < 0) goto fail;
    }
    if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
        gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
        if (fchownat(ifd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) goto fail;
    }
    if (valid & FUSE_SET_ATTR_SIZE) {
        rv = fi ? ftruncate(handle_fd(fi), attr->st_size) : truncate(path, attr->st_size);
        if (rv < 0) goto fail;
    }
    if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
        struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
        if (valid & FUSE_SET_ATTR_ATIME_NOW) times[0].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_ATIME) times[0] = attr->st_atim;
        if (valid & FUSE_SET_ATTR_MTIME_NOW) times[1].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_MTIME) times[1] = attr->st_mtim;
        /* The inode itself, symlinks included (not what they point to). */
        rv = fi ? futimens(handle_fd(fi), times) : utimensat(ifd, "", times, AT_EMPTY_PATH);
        if (rv < 0) goto fail;
    }
    reply_attr(req, ino, fi);
    return;
fail:
    fuse_reply_err(req, errno);
}

static void lfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
    char buf[PATH_MAX + 1];
    wait_delay();
    ssize_t n = readlinkat(inode_fd(ino), "", buf, sizeof(buf));
    if (n < 0) fuse_reply_err(req, errno);
    else if (n >= (ssize_t)sizeof(buf)) fuse_reply_err(req, ENAMETOOLONG);
    else {
        buf[n] = '\0';
        fuse_reply_readlink(req, buf);
    }
}

/* mknod, mkdir, symlink: made, given to the caller, looked up. */
static void finish_make(fuse_req_t req, fuse_ino_t parent, const char *name, int rv)
{
    struct fuse_entry_param e;
    if (rv < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    give_to_caller(req, inode_fd(parent), name);
    int err = do_lookup(parent, name, &e);
    if (err) fuse_reply_err(req, err);
    else reply_entry(req, &e);
}

static void lfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    wait_delay();
    finish_make(req, parent, name, mknodat(inode_fd(parent), name, mode, rdev));
}

static void lfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    wait_delay();
    finish_make(req, parent, name, mkdirat(inode_fd(parent), name, mode));
}

static void lfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    wait_delay();
    finish_make(req, parent, name, symlinkat(link, inode_fd(parent), name));
}

static void lfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    char path[64];
    struct fuse_entry_param e;
    wait_delay();
    proc_path(path, sizeof(path), inode_fd(ino));
    if (linkat(AT_FDCWD, path, inode_fd(newparent), newname, AT_SYMLINK_FOLLOW) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    int err = do_lookup(newparent, newname, &e);
    if (err) fuse_reply_err(req, err);
    else reply_entry(req, &e);
}

static void lfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    wait_delay();
    fuse_reply_err(req, unlinkat(inode_fd(parent), name, 0) < 0 ? errno : 0);
}

static void lfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    wait_delay();
    fuse_reply_err(req, unlinkat(inode_fd(parent), name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void lfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                       const char *newname, unsigned int flags)
{
    wait_delay();
    int rv = renameat2(inode_fd(parent), name, inode_fd(newparent), newname, flags);
    fuse_reply_err(req, rv < 0 ? errno : 0);
}

/* Open flags for the backing file: no O_DIRECT, and no O_SYNC or O_DSYNC
 * without --sync (see the top), nothing that only the kernel's side of the
 * open meant. */
static int backing_flags(int flags)
{
    flags &= ~(O_DIRECT | O_NOFOLLOW | O_NOCTTY);
    if (!sync_backing) flags &= ~(O_SYNC | O_DSYNC);
    return flags | O_CLOEXEC;
}

/* fsync and fsyncdir: a sync only with --sync (see the top). */
static int backing_sync(int fd, int datasync)
{
    if (!sync_backing) return 0;
    return datasync ? fdatasync(fd) : fsync(fd);
}

static void lfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    char path[64];
    wait_delay();
    proc_path(path, sizeof(path), inode_fd(ino));
    int fd = open(path, backing_flags(fi->flags & ~(O_CREAT | O_EXCL)));
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    struct handle *h = handle_or_reply(req, fd);
    if (!h) return;
    set_file_handle(fi, h);
    tl_open_reply = true;
    int rv = fuse_reply_open(req, fi);
    tl_open_reply = false;
    if (rv != 0) free_handle(h);        /* the kernel never got it: no release */
}

static void lfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
    struct fuse_entry_param e;
    wait_delay();
    int dirfd = inode_fd(parent);
    int fd = openat(dirfd, name, backing_flags(fi->flags) | O_CREAT, mode);
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    give_to_caller(req, dirfd, name);
    int err = do_lookup(parent, name, &e);
    if (err) {
        close(fd);
        fuse_reply_err(req, err);
        return;
    }
    struct handle *h = handle_or_reply(req, fd);
    if (!h) {
        unref_inode(get_inode(e.ino), 1);
        return;
    }
    set_file_handle(fi, h);
    tl_open_reply = true;
    int rv = fuse_reply_create(req, &e, fi);
    tl_open_reply = false;
    if (rv != 0) {
        free_handle(h);
        unref_inode(get_inode(e.ino), 1);
    }
}

static void lfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    wait_delay();
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t have = 0;
    while (have < size) {
        ssize_t n = pread(handle_fd(fi), buf + have, size - have, off + (off_t)have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            if (have == 0) {
                int err = errno;
                free(buf);
                fuse_reply_err(req, err);
                return;
            }
            break;                      /* what was read, then the error next time */
        }
        if (n == 0) break;              /* end of file */
        have += (size_t)n;
    }
    fuse_reply_buf(req, buf, have);
    free(buf);
}

static void lfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    (void)ino;
    wait_delay();
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(handle_fd(fi), buf + done, size - done, off + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            if (done == 0) {
                fuse_reply_err(req, errno);
                return;
            }
            break;                      /* a short write, as the backing file made it */
        }
        if (n == 0) break;
        done += (size_t)n;
    }
    fuse_reply_write(req, done);
}

static void lfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    wait_delay();
    /* What a close of this descriptor would report (as passthrough_ll). */
    int fd = dup(handle_fd(fi));
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    fuse_reply_err(req, close(fd) < 0 ? errno : 0);
}

static void lfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    wait_delay();
    free_handle(get_handle(fi));
    fuse_reply_err(req, 0);
}

static void lfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    wait_delay();
    int rv = backing_sync(handle_fd(fi), datasync);
    fuse_reply_err(req, rv < 0 ? errno : 0);
}

static void lfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                          struct fuse_file_info *fi)
{
    (void)ino;
    wait_delay();
    fuse_reply_err(req, fallocate(handle_fd(fi), mode, offset, length) < 0 ? errno : 0);
}

static void lfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    wait_delay();
    int fd = openat(inode_fd(ino), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    struct handle *h = handle_or_reply(req, fd);
    if (!h) return;
    if (!(h->dp = fdopendir(fd))) {
        int err = errno;
        free_handle(h);
        fuse_reply_err(req, err);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    if (fuse_reply_open(req, fi) != 0) free_handle(h);
}

static void lfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *d = get_handle(fi);
    wait_delay();
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    int err = 0;
    pthread_mutex_lock(&d->lock);
    if (offset != d->offset) {
        seekdir(d->dp, offset);
        d->entry = NULL;
        d->offset = offset;
    }
    for (;;) {
        if (!d->entry) {
            errno = 0;
            d->entry = readdir(d->dp);
            if (!d->entry) {
                err = errno;            /* 0: the end */
                break;
            }
        }
        struct stat st = { .st_ino = d->entry->d_ino, .st_mode = (mode_t)d->entry->d_type << 12 };
        size_t need = fuse_add_direntry(req, buf + used, size - used, d->entry->d_name, &st, d->entry->d_off);
        if (need > size - used) break;  /* the rest next time */
        used += need;
        d->offset = d->entry->d_off;
        d->entry = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    /* An error after some entries: those first, the error next time. */
    if (err && used == 0) fuse_reply_err(req, err);
    else fuse_reply_buf(req, buf, used);
    free(buf);
}

static void lfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st;
    wait_delay();
    if (fstatvfs(inode_fd(ino), &st) < 0) fuse_reply_err(req, errno);
    else fuse_reply_statfs(req, &st);
}

static void lfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    char path[64];
    wait_delay();
    proc_path(path, sizeof(path), inode_fd(ino));
    fuse_reply_err(req, access(path, mask) < 0 ? errno : 0);
}

static const struct fuse_lowlevel_ops operations = {
    .init = lfs_init,
    .lookup = lfs_lookup,
    .forget = lfs_forget,
    .forget_multi = lfs_forget_multi,
    .getattr = lfs_getattr,
    .setattr = lfs_setattr,
    .readlink = lfs_readlink,
    .mknod = lfs_mknod,
    .mkdir = lfs_mkdir,
    .symlink = lfs_symlink,
    .link = lfs_link,
    .unlink = lfs_unlink,
    .rmdir = lfs_rmdir,
    .rename = lfs_rename,
    .open = lfs_open,
    .create = lfs_create,
    .read = lfs_read,
    .write = lfs_write,
    .flush = lfs_flush,
    .release = lfs_release,
    .fsync = lfs_fsync,
    .fallocate = lfs_fallocate,
    .opendir = lfs_opendir,
    .readdir = lfs_readdir,
    // A directory handle is released and synced as a file handle is (the
    // stats count requests by opcode, not by callback).
    .releasedir = lfs_release,
    .fsyncdir = lfs_fsync,
    .statfs = lfs_statfs,
    .access = lfs_access,
};

/* ------------------------------------------------------------ signals */

static void on_terminate(int signal)
{
    (void)signal;
    /* Only sets a flag; the main thread, which alone takes this signal,
     * wakes from its wait and ends the loop. */
    fuse_session_exit(session);
}

static void *signal_thread(void *arg)
{
    const sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0) continue;
        int old;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
        if (sig == SIGHUP) load_delay_file();
        write_stats(sig == SIGUSR2);
        pthread_setcancelstate(old, NULL);
    }
    return NULL;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: latencyfs [--delay-ms MS | --delay-us US] [--delay-file FILE] [--stats FILE]\n"
            "                 [--threads N] [--no-parallel-direct-writes] [--no-parallel-dirops]\n"
            "                 [--sync] [-o OPTIONS] [-d] BACKING_DIR MOUNTPOINT\n"
            "Mirrors BACKING_DIR at MOUNTPOINT; every request is answered no earlier than the\n"
            "delay after it arrived. Counts requests by process and opcode into the stats\n"
            "file: at start, on SIGUSR1, on SIGUSR2 (then resets them), on SIGHUP (after\n"
            "re-reading the delay file, milliseconds) and at unmount. Runs in the foreground\n"
            "until unmounted (fusermount3 -u) or SIGTERM.\n");
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "delay-ms", required_argument, NULL, 'm' },
        { "delay-us", required_argument, NULL, 'u' },
        { "delay-file", required_argument, NULL, 'f' },
        { "stats", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' },
        { "no-parallel-direct-writes", no_argument, NULL, 'P' },
        { "no-parallel-dirops", no_argument, NULL, 'L' },
        { "sync", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    bool debug = false;
    int opt;
    long long ns;
    char *end;

    running_as_root = geteuid() == 0;
    /* A descriptor per known thread (pidfds), one per open file. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    if (fuse_opt_add_arg(&args, argv[0]) != 0) die("fuse_opt_add_arg");
    while ((opt = getopt_long(argc, argv, "o:dh", long_options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            if (parse_delay_ms(optarg, &ns) < 0) {
                fprintf(stderr, "latencyfs: bad --delay-ms: %s\n", optarg);
                return 64;
            }
            atomic_store(&delay_ns, ns);
            break;
        case 'u':
            errno = 0;
            ns = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || ns < 0 || ns > 600000000LL) {
                fprintf(stderr, "latencyfs: bad --delay-us: %s\n", optarg);
                return 64;
            }
            atomic_store(&delay_ns, ns * 1000);
            break;
        case 'f': delay_path = optarg; break;
        case 's': stats_path = optarg; break;
        case 't': {
            unsigned long n = strtoul(optarg, &end, 10);
            if (end == optarg || *end || n < 1 || n > 4096) {
                fprintf(stderr, "latencyfs: bad --threads: %s\n", optarg);
                return 64;
            }
            max_threads = (unsigned)n;
            break;
        }
        case 'P': parallel_direct_writes = false; break;
        case 'L': parallel_dirops = false; break;
        case 'S': sync_backing = true; break;
        case 'o':
            if (fuse_opt_add_arg(&args, "-o") != 0 || fuse_opt_add_arg(&args, optarg) != 0) die("fuse_opt_add_arg");
            break;
        case 'd': debug = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 64;
    }
    backing_dir = argv[optind];
    mountpoint = argv[optind + 1];
    load_delay_file();

    char fsname[PATH_MAX + 32];
    snprintf(fsname, sizeof(fsname), "-ofsname=latencyfs:%s,subtype=latencyfs%s", backing_dir,
             running_as_root ? ",allow_other" : "");
    if (fuse_opt_add_arg(&args, fsname) != 0) die("fuse_opt_add_arg");
    if (debug && fuse_opt_add_arg(&args, "-d") != 0) die("fuse_opt_add_arg");

    /* Modes reach us with the caller's umask applied by the kernel. */
    umask(0);
    root.fd = open(backing_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root.fd < 0) die(backing_dir);
    clock_gettime(CLOCK_MONOTONIC, &stats_since);

    session = fuse_session_new(&args, &operations, sizeof(operations), NULL);
    if (!session) return 1;
    if (fuse_session_mount(session, mountpoint) != 0) {
        fuse_session_destroy(session);
        return 1;
    }
    const struct fuse_custom_io io = { .read = device_read, .writev = device_writev };
    if (fuse_session_custom_io(session, &io, fuse_session_fd(session)) != 0) {
        fuse_session_unmount(session);
        fuse_session_destroy(session);
        return 1;
    }

    /* SIGUSR1, SIGUSR2, SIGHUP: the signal thread's (sigwait). SIGTERM,
     * SIGINT: the main thread's only (libfuse's workers block them; the
     * signal thread blocks everything), to wake it from its wait. */
    sigset_t waited, all, previous;
    sigemptyset(&waited);
    sigaddset(&waited, SIGUSR1);
    sigaddset(&waited, SIGUSR2);
    sigaddset(&waited, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &waited, NULL);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pthread_t signals;
    if (pthread_create(&signals, NULL, signal_thread, &waited) != 0) die("pthread_create");
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    struct sigaction sa = { .sa_handler = on_terminate };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Sleeps end on time (the default slack is 50 µs); threads inherit it. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    write_stats(false);                 /* mounted: the caller may go on */

    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (!config) die("fuse_loop_cfg_create");
    fuse_loop_cfg_set_max_threads(config, max_threads);
    int rv = fuse_session_loop_mt(session, config);
    fuse_loop_cfg_destroy(config);

    pthread_cancel(signals);
    pthread_join(signals, NULL);
    fuse_session_unmount(session);
    write_stats(false);
    fuse_session_destroy(session);
    fuse_opt_free_args(&args);
    close(root.fd);
    return rv ? 1 : 0;
}
