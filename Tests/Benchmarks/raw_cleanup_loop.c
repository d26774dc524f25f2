/* The floor .ci/bench compares virt-sanlock-cleanup against: the least a
 * cleanup that deletes leases under the lease can do. For every entry of DIR
 * but the lockspace file: sanlock_acquire(OWNER_NOWAIT) → unlink →
 * sanlock_release (which answers -ENOENT after the unlink: expected).
 * JOBS threads, each with its own registered connection, sharded by index
 * over the sorted names. With --clear it also invalidates the lease before
 * the unlink as virt-sanlock-cleanup does (the leader sector rewritten with
 * sanlock's "cleared" magic, O_DIRECT|O_SYNC), to show what that step costs.
 *
 * Usage: raw_cleanup_loop [--clear] JOBS DIR
 * Prints one line: "deleted D kept K errors E" and the acquire results.
 * Exit 0 unless something failed that a cleanup must not ignore. */
#define _GNU_SOURCE  /* O_DIRECT */
#include "bench_sanlock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

static const char *dir;
static char **names;
static int count, jobs, clear_first;

/* Per acquire result (0 and -1..-299 are all sanlock returns). */
#define RESULTS 300
static int results[RESULTS];
static int deleted, errors;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* sanlock's leader checksum: CRC-32C, seed ~1, no final inversion. */
static uint32_t leader_checksum(const unsigned char *data, size_t length)
{
    uint32_t crc = ~1u;
    while (length--) {
        crc ^= *data++;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return crc;
}

/* Rewrites the leader sector with the cleared magic 0x11282016. */
static int invalidate_leader(const char *path)
{
    void *sector;
    if (posix_memalign(&sector, 4096, 4096) != 0)
        return -ENOMEM;
    int rv = 0;
    int fd = open(path, O_RDWR | O_DIRECT | O_SYNC);
    if (fd < 0 || pread(fd, sector, 512, 0) != 512) {
        rv = -errno;
    } else {
        uint32_t magic = 0x11282016, checksum;
        memcpy(sector, &magic, 4);
        checksum = leader_checksum(sector, 168);
        memcpy((char *)sector + 168, &checksum, 4);
        if (pwrite(fd, sector, 512, 0) != 512)
            rv = -errno;
    }
    if (fd >= 0)
        close(fd);
    free(sector);
    return rv;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *worker(void *arg)
{
    int first = (int)(intptr_t)arg;
    int my_deleted = 0, my_errors = 0;
    int my_results[RESULTS] = {0};
    int sock = sanlock_register();
    if (sock < 0) {
        fprintf(stderr, "sanlock_register: %d\n", sock);
        pthread_mutex_lock(&lock);
        errors++;
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    for (int i = first; i < count; i += jobs) {
        struct bench_resource r;
        struct sanlk_resource *list[1] = { &r.res };
        bench_resource_set(&r, dir, names[i]);
        int rv = sanlock_acquire(sock, -1, SANLK_ACQUIRE_OWNER_NOWAIT, 1, list, NULL);
        my_results[(rv <= 0 && rv > -RESULTS) ? -rv : RESULTS - 1]++;
        if (rv < 0) {
            /* In use (here or elsewhere), owner failing, busy: kept. */
            if (rv != -EEXIST && rv != -EAGAIN && rv != -EBUSY && rv != SANLK_ACQUIRE_IDLIVE &&
                rv != SANLK_ACQUIRE_OWNED_RETRY && rv != SANLK_ACQUIRE_OWNED) {
                fprintf(stderr, "acquire %s: %d\n", names[i], rv);
                my_errors++;
            }
            continue;
        }
        if (clear_first) {
            int crv = invalidate_leader(r.disk.path);
            if (crv < 0) {
                fprintf(stderr, "clear %s: %d\n", names[i], crv);
                my_errors++;
            }
        }
        if (unlink(r.disk.path) != 0) {
            fprintf(stderr, "unlink %s: %s\n", names[i], strerror(errno));
            my_errors++;
        } else {
            my_deleted++;
        }
        rv = sanlock_release(sock, -1, 0, 1, list);
        if (rv < 0 && rv != -ENOENT) {
            fprintf(stderr, "release %s: %d\n", names[i], rv);
            my_errors++;
        }
    }
    close(sock);
    pthread_mutex_lock(&lock);
    deleted += my_deleted;
    errors += my_errors;
    for (int k = 0; k < RESULTS; k++) results[k] += my_results[k];
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    int arg = 1;
    if (arg < argc && strcmp(argv[arg], "--clear") == 0) {
        clear_first = 1;
        arg++;
    }
    if (argc - arg != 2) {
        fprintf(stderr, "usage: raw_cleanup_loop [--clear] JOBS DIR\n");
        return 64;
    }
    jobs = bench_parse_int(argv[arg], "JOBS");
    if (jobs < 1) jobs = 1;
    dir = argv[arg + 1];

    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    int capacity = 1024;
    names = malloc(capacity * sizeof(*names));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, BENCH_LOCKSPACE))
            continue;
        if (count == capacity) {
            capacity *= 2;
            names = realloc(names, capacity * sizeof(*names));
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof(*names), by_name);

    int threads = jobs < count ? jobs : (count ? count : 1);
    pthread_t tid[threads];
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);

    printf("entries %d deleted %d kept %d errors %d acquire:", count, deleted, count - deleted - errors, errors);
    for (int k = 0; k < RESULTS; k++)
        if (results[k]) printf(" %d=%d", -k, results[k]);
    printf("\n");
    return errors ? 1 : 0;
}
