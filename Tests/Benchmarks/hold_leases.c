/* Stands in for many running guests at once: acquires every lease named in
 * NAMES_FILE (one name a line, in DIR) on JOBS registered connections of
 * this one process, creates READY_FILE, and sleeps until killed. sanlock
 * releases the leases when the process dies (or never, if the daemon is
 * killed first: a crashed host). Cheaper than one `sanlock client command`
 * process per lease.
 *
 * Usage: hold_leases JOBS DIR NAMES_FILE READY_FILE */
#include "bench_sanlock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

static const char *dir;
static char **names;
static int count, jobs, failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
    int first = (int)(intptr_t)arg, my_failures = 0;
    int sock = sanlock_register();
    if (sock < 0) {
        fprintf(stderr, "sanlock_register: %d\n", sock);
        my_failures++;
    }
    for (int i = first; sock >= 0 && i < count; i += jobs) {
        struct bench_resource r;
        struct sanlk_resource *list[1] = { &r.res };
        bench_resource_set(&r, dir, names[i]);
        int rv = sanlock_acquire(sock, -1, SANLK_ACQUIRE_OWNER_NOWAIT, 1, list, NULL);
        if (rv < 0) {
            fprintf(stderr, "acquire %s: %d\n", names[i], rv);
            my_failures++;
        }
    }
    /* The connection stays open: the leases are held while we live. */
    pthread_mutex_lock(&lock);
    failures += my_failures;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: hold_leases JOBS DIR NAMES_FILE READY_FILE\n");
        return 64;
    }
    jobs = bench_parse_int(argv[1], "JOBS");
    if (jobs < 1) jobs = 1;
    dir = argv[2];
    FILE *f = fopen(argv[3], "r");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    int capacity = 1024;
    names = malloc(capacity * sizeof(*names));
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0]) continue;
        if (count == capacity) {
            capacity *= 2;
            names = realloc(names, capacity * sizeof(*names));
        }
        names[count++] = strdup(line);
    }
    fclose(f);

    int threads = jobs < count ? jobs : (count ? count : 1);
    pthread_t tid[threads];
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    if (failures) {
        fprintf(stderr, "hold_leases: %d of %d not acquired\n", failures, count);
        return 1;
    }
    int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(argv[4]);
        return 1;
    }
    close(fd);
    for (;;) pause();
}
