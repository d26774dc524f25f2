/* Shared bits of the benchmark-only C helpers (.ci/bench compiles them with
 * gcc against -lsanlock_client -lpthread). Not part of the tool. */
#ifndef BENCH_SANLOCK_H
#define BENCH_SANLOCK_H

/* sanlock's headers are not self-contained. */
#include <stdint.h>
#include <stddef.h>
#include <sanlock.h>
#include <sanlock_resource.h>
#include <sanlock_admin.h>
#include <sanlock_rv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_LOCKSPACE "__LIBVIRT__DISKS__"

/* A resource with room for its one disk: struct sanlk_resource ends in a
 * flexible disks[0] array. */
struct bench_resource {
    struct sanlk_resource res;
    struct sanlk_disk disk;
};

static inline void bench_resource_set(struct bench_resource *r, const char *dir, const char *name)
{
    memset(r, 0, sizeof(*r));
    /* NUL-padded fields, not necessarily NUL-terminated. */
    memcpy(r->res.lockspace_name, BENCH_LOCKSPACE, strlen(BENCH_LOCKSPACE));
    size_t length = strlen(name);
    if (length > SANLK_NAME_LEN) {
        fprintf(stderr, "name too long: %s\n", name);
        exit(2);
    }
    memcpy(r->res.name, name, length);
    r->res.num_disks = 1;
    if ((size_t)snprintf(r->disk.path, SANLK_PATH_LEN, "%s/%s", dir, name) >= SANLK_PATH_LEN) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(2);
    }
    r->disk.offset = 0;
}

static inline int bench_parse_int(const char *text, const char *what)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 0 || value > 1000000) {
        fprintf(stderr, "bad %s: %s\n", what, text);
        exit(64);
    }
    return (int)value;
}

#endif
