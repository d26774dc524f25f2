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

/* sanlock_get_lockspaces, sanlock_get_hosts and sanlock_read_resource_owners
 * hand back arrays that libsanlock_client allocated with malloc, and
 * vsc_resource_new a calloc'd resource; the caller frees them, through the
 * seam that gave them. */
static inline void vsc_sanlock_free(void *array)
{
    free(array);
}

/* The daemon's status command (what `sanlock client status` prints) is the
 * one way to learn every lease each registered process holds without
 * touching those processes: sanlock_inquire marks its target busy while it
 * runs, and libvirt's acquire or release for that qemu then fails with
 * EBUSY. The command has no declared API, so its wire format is mirrored
 * here from sanlock's src/sanlock_sock.h (unchanged from 2.x to 3.8):
 * send_command() (exported by libsanlock_client, which `sanlock client`
 * itself uses) connects to the daemon named by SANLOCK_RUN_DIR and sends the
 * header; the daemon answers with one header, then a stream of records up
 * to the end of the connection. Resource records carry a struct
 * sanlk_resource and its sanlk_disks after their string; lockspace records
 * a struct sanlk_lockspace. */
#define VSC_SM_CMD_STATUS 5

#define VSC_SANLK_STATE_DAEMON 1
#define VSC_SANLK_STATE_CLIENT 2
#define VSC_SANLK_STATE_LOCKSPACE 3
#define VSC_SANLK_STATE_RESOURCE 4
#define VSC_SANLK_STATE_HOST 5
#define VSC_SANLK_STATE_RENEWAL 6

struct vsc_sm_header {
    uint32_t magic;
    uint32_t version;
    uint32_t cmd;
    uint32_t cmd_flags;
    uint32_t length;
    uint32_t seq;
    uint32_t data;
    uint32_t data2;
};

/* struct sanlk_state without its flexible str[0]: the size the daemon sends
 * is sizeof this struct (the padding after str_len included). */
struct vsc_sanlk_state {
    uint32_t type;
    uint32_t flags;
    uint32_t data32; /* pid, for clients and resources */
    uint64_t data64; /* lver, for resources */
    char name[SANLK_NAME_LEN];
    uint32_t str_len;
};

extern int send_command(int cmd, uint32_t data);

/* data: SANLK_STATE_DEBUG-like flag of `sanlock client status -D` (1): the
 * daemon record then carries its settings as "key=value" words
 * (max_worker_threads among them). */
static inline int vsc_send_status_command(uint32_t debug)
{
    return send_command(VSC_SM_CMD_STATUS, debug);
}

#endif
