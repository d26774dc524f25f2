/* The one C seam to libsanlock_client. sanlock's headers are not
 * self-contained (they use uint64_t and size_t without including the
 * headers that define them), so the order here matters. */
#ifndef VSC_CSANLOCK_SHIM_H
#define VSC_CSANLOCK_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <sanlock.h>
#include <sanlock_rv.h>
#include <sanlock_resource.h>
#include <sanlock_admin.h>

/* struct sanlk_resource ends in a flexible `disks[0]` array that Swift cannot
 * see. Every resource this tool uses has exactly one disk, so allocate the
 * header plus one sanlk_disk and fill it here. Names are copied as sanlock
 * stores them: NUL-padded to 48 bytes, not necessarily NUL-terminated. The
 * path is passed raw: the daemon does not unescape struct paths (only the
 * string form "LS:NAME:PATH:OFF" uses "\:" escapes). */
static inline struct sanlk_resource *vsc_resource_new(const char *lockspace,
                                                      const char *name,
                                                      const char *path,
                                                      uint64_t offset,
                                                      int *error)
{
    struct sanlk_resource *res;

    if (strlen(lockspace) > SANLK_NAME_LEN || strlen(name) > SANLK_NAME_LEN) {
        *error = -ENAMETOOLONG;
        return NULL;
    }
    if (strlen(path) >= SANLK_PATH_LEN) {
        *error = -ENAMETOOLONG;
        return NULL;
    }
    res = calloc(1, sizeof(struct sanlk_resource) + sizeof(struct sanlk_disk));
    if (!res) {
        *error = -ENOMEM;
        return NULL;
    }
    strncpy(res->lockspace_name, lockspace, SANLK_NAME_LEN);
    strncpy(res->name, name, SANLK_NAME_LEN);
    res->num_disks = 1;
    strncpy(res->disks[0].path, path, SANLK_PATH_LEN - 1);
    res->disks[0].offset = offset;
    *error = 0;
    return res;
}

/* The disks of a resource sanlock allocated (sanlock_state_to_args), which
 * Swift cannot index through the flexible array. */
static inline const struct sanlk_disk *vsc_resource_disk(const struct sanlk_resource *res, uint32_t index)
{
    return &res->disks[index];
}

/* sanlock_get_lockspaces, sanlock_get_hosts and sanlock_read_resource_owners
 * hand back arrays that libsanlock_client allocated with malloc, and
 * vsc_resource_new a calloc'd resource; the caller frees them, through the
 * seam that gave them. */
static inline void vsc_sanlock_free(void *array)
{
    free(array);
}

#endif
