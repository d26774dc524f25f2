/* Creates COUNT lease files in DIR the way libvirt does
 * (virLockManagerSanlockCreateLease): open(O_CREAT|O_EXCL, 0600),
 * posix_fallocate 1 MiB, then sanlock_init through the daemon named by
 * SANLOCK_RUN_DIR. JOBS threads in parallel. Names are 32 lowercase hex
 * digits (like the MD5 of a disk path), deterministic from SEED and the
 * index, so a directory can be recreated identically. Prints the names in
 * index order.
 *
 * Usage: make_leases SEED COUNT JOBS DIR */
#include "bench_sanlock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#define LEASE_SIZE (1024 * 1024)

static const char *dir;
static char (*names)[33];
static int count, jobs, failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void *worker(void *arg)
{
    int first = (int)(intptr_t)arg, my_failures = 0;
    for (int i = first; i < count; i += jobs) {
        struct bench_resource r;
        bench_resource_set(&r, dir, names[i]);
        int fd = open(r.disk.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            fprintf(stderr, "create %s: %s\n", r.disk.path, strerror(errno));
            my_failures++;
            continue;
        }
        int err = posix_fallocate(fd, 0, LEASE_SIZE);
        close(fd);
        if (err) {
            fprintf(stderr, "fallocate %s: %s\n", r.disk.path, strerror(err));
            my_failures++;
            continue;
        }
        int rv = sanlock_init(NULL, &r.res, 0, 0);
        if (rv < 0) {
            fprintf(stderr, "sanlock_init %s: %d\n", r.disk.path, rv);
            my_failures++;
        }
    }
    pthread_mutex_lock(&lock);
    failures += my_failures;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: make_leases SEED COUNT JOBS DIR\n");
        return 64;
    }
    uint64_t seed = (uint64_t)bench_parse_int(argv[1], "SEED") << 32;
    count = bench_parse_int(argv[2], "COUNT");
    jobs = bench_parse_int(argv[3], "JOBS");
    if (jobs < 1) jobs = 1;
    dir = argv[4];
    names = calloc(count ? count : 1, sizeof(*names));
    for (int i = 0; i < count; i++) {
        uint64_t a = splitmix64(seed + 2 * (uint64_t)i), b = splitmix64(seed + 2 * (uint64_t)i + 1);
        snprintf(names[i], sizeof(names[i]), "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
    }
    int threads = jobs < count ? jobs : (count ? count : 1);
    pthread_t tid[threads];
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    for (int i = 0; i < count; i++) puts(names[i]);
    if (failures) {
        fprintf(stderr, "make_leases: %d of %d failed\n", failures, count);
        return 1;
    }
    return 0;
}
