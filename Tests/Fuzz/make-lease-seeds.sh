#!/bin/bash
# Makes the lease seeds of FuzzLeader and FuzzClassifier with sanlock itself:
# a private daemon (no watchdog, its own SANLOCK_RUN_DIR, as the integration
# tests run it) initialises a lockspace and auto leases, holds some, and the
# first sectors of each file are copied into Corpus/. Run as root, where
# sanlock is installed; the seeds are committed, so this is only needed to
# remake them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/test-functions.sh
. "$here/../lib/test-functions.sh"
need_root "make-lease-seeds: starts a sanlock daemon"
out=${1:-$here/Corpus}
make_sandbox fuzz-seeds
export SANLOCK_RUN_DIR=$sandbox/run
dir=$sandbox/leases
ls=$ls_name
mkdir -p "$dir" "$out/FuzzLeader" "$out/FuzzClassifier"

start_sanlock "$SANLOCK_RUN_DIR" host1
init_lockspace "$SANLOCK_RUN_DIR" "$dir"
join_lockspace "$SANLOCK_RUN_DIR" "$dir" 1

# An auto lease as libvirt makes it: named by the MD5 of the disk path.
lease() {
    local name
    name=$(lease_name "$1")
    make_lease "$SANLOCK_RUN_DIR" "$dir" "$name"
    echo "$name"
}

free=$(lease /var/lib/libvirt/images/free.qcow2)
released=$(lease /var/lib/libvirt/images/released.qcow2)
hold_lease "$SANLOCK_RUN_DIR" "$dir" "$released"
release_lease "$held_pid" "$SANLOCK_RUN_DIR"
held=$(lease /var/lib/libvirt/images/held.qcow2)
hold_lease "$SANLOCK_RUN_DIR" "$dir" "$held"
shared=$(lease /var/lib/libvirt/images/shared.img)
hold_lease "$SANLOCK_RUN_DIR" "$dir" "$shared" SH

# SANLK_WRITE_CLEAR through the client library, as sanlock's own tools clear.
cleared=$(lease /var/lib/libvirt/images/cleared.qcow2)
python3 - "$ls" "$cleared" "$dir/$cleared" <<'EOF'
import ctypes, sys
class Resource(ctypes.Structure):
    _fields_ = [("lockspace_name", ctypes.c_char * 48), ("name", ctypes.c_char * 48), ("lver", ctypes.c_uint64),
                ("data64", ctypes.c_uint64), ("data32", ctypes.c_uint32), ("unused", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("num_disks", ctypes.c_uint32), ("path", ctypes.c_char * 1024),
                ("offset", ctypes.c_uint64), ("pad1", ctypes.c_uint32), ("pad2", ctypes.c_uint32)]
res = Resource(lockspace_name=sys.argv[1].encode(), name=sys.argv[2].encode(), num_disks=1, path=sys.argv[3].encode())
rv = ctypes.CDLL("libsanlock_client.so.1").sanlock_write_resource(ctypes.byref(res), 0, 0, 1)  # SANLK_WRITE_CLEAR
sys.exit(f"sanlock_write_resource: {rv}" if rv != 0 else 0)
EOF

# 4 KiB sectors, 8 MiB alignment (no daemon needed).
big=$(lease_name /dev/mapper/vg-big)
truncate -s 8M "$dir/$big"
sanlock direct init -r "$ls:$big:$dir/$big:0" -Z 4096 -A 8M >/dev/null

# FuzzLeader: the first sectors, as they are.
head -c 8192 "$dir/$free" >"$out/FuzzLeader/lease-free"
head -c 8192 "$dir/$released" >"$out/FuzzLeader/lease-released"
head -c 8192 "$dir/$held" >"$out/FuzzLeader/lease-held"
head -c 8192 "$dir/$shared" >"$out/FuzzLeader/lease-shared"
head -c 8192 "$dir/$cleared" >"$out/FuzzLeader/lease-cleared"
head -c 16384 "$dir/$big" >"$out/FuzzLeader/lease-4k-sectors"
head -c 4096 "$dir/$ls" >"$out/FuzzLeader/lockspace"

# The janitor's own invalidation of a held lease (LeaderRecord.invalidating:
# cleared magic, everything else kept, checksum recomputed), and
# FuzzClassifier's seeds: its 42-byte header (see FuzzClassifier.swift) then
# the file's first sectors.
python3 - "$out" <<'EOF'
import struct, sys
out = sys.argv[1]
def crc32c(data):
    crc = 0xFFFFFFFE
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc
held = bytearray(open(f"{out}/FuzzLeader/lease-held", "rb").read())
held[0:4] = struct.pack("<I", 0x11282016)
held[168:172] = struct.pack("<I", crc32c(held[:168]))
open(f"{out}/FuzzLeader/lease-invalidated-by-janitor", "wb").write(held)

def header(flags, size=0, probes=()):
    ids = list(probes) + [0] * (4 - len(probes))
    return struct.pack("<BQB4Q", flags, size, len(probes), *ids)
# flags: 1 fix checksum, 2 name from the leader, 4 file size 1 MiB
for kind in ["free", "released", "held", "shared", "cleared", "invalidated-by-janitor"]:
    image = open(f"{out}/FuzzLeader/lease-{kind}", "rb").read()
    open(f"{out}/FuzzClassifier/{kind}", "wb").write(header(0x07, probes=[1]) + image)
image = open(f"{out}/FuzzLeader/lease-shared", "rb").read()
open(f"{out}/FuzzClassifier/shared-probe-1-2-3", "wb").write(header(0x07, probes=[1, 2, 3]) + image)
open(f"{out}/FuzzClassifier/shared-truncated", "wb").write(header(0x03, probes=[1]) + image[:1024])
image = open(f"{out}/FuzzLeader/lease-4k-sectors", "rb").read()
# mode 2: size from the header (8 MiB, the lease's real size)
open(f"{out}/FuzzClassifier/4k-sectors", "wb").write(header(0x0B, size=8 << 20, probes=[1, 2]) + image)
open(f"{out}/FuzzClassifier/uninitialised", "wb").write(header(0x07) + bytes(512))
EOF
echo "seeds written to $out"
