#!/bin/bash
# Tests/Lab/latencyfs.sh: the latency lab's driver (see docs/performance.md, "The latency
# lab"): builds Tests/Lab/latencyfs.c, mounts a backing directory through it
# with a delay per request, changes the delay, reads and resets its request
# counts, unmounts. Source it after Tests/lib/test-functions.sh, whose EXIT
# trap (make_sandbox / on_exit) also unmounts whatever is still mounted:
#
#   . Tests/lib/test-functions.sh
#   . Tests/Lab/latencyfs.sh
#   make_sandbox lab
#   latencyfs_build "$sandbox/bin"
#   latencyfs_mount "$sandbox/backing" "$sandbox/leases" 1    # 1 ms a request
#   ... start a sanlock daemon now (its mount namespace copies the mount) ...
#   latencyfs_reset "$sandbox/leases"
#   some-tool "$sandbox/leases"
#   latencyfs_stats "$sandbox/leases" >counts.tsv
#   latencyfs_unmount "$sandbox/leases"
#
# Like the library, the functions report failures by their exit status and a
# message on stderr, and change no shell option. The counts are lines
# "process_name<TAB>tgid<TAB>OPCODE<TAB>count" after a few "#" lines (the
# delay, and how late replies were beyond it: see latencyfs.c);
# latencyfs_requests sums them.
#
# A process that enters a new mount namespace while a mount exists (a
# private sanlock daemon, `unshare -m`) keeps a copy of it: the filesystem
# then serves that copy after latencyfs_unmount, until that process ends.
# End such processes first; latencyfs_unmount stops the server anyway after
# a grace period (SIGTERM: the copies then fail with ENOTCONN).

_lfs_source=$(dirname "${BASH_SOURCE[0]}")/latencyfs.c
latencyfs_binary=""
declare -A _lfs_pid=() _lfs_state=()
_lfs_hooked=""
_lfs_count=0

# latencyfs_build DIR: compiles latencyfs into DIR (gcc, pkg-config fuse3:
# Debian's libfuse3-dev), no warnings allowed; its path in $latencyfs_binary.
latencyfs_build() {
    local cflags
    mkdir -p "$1" || return 1
    cflags=$(pkg-config --cflags --libs fuse3) || { echo "latencyfs_build: pkg-config fuse3 failed (libfuse3-dev)" >&2; return 1; }
    # shellcheck disable=SC2086  # pkg-config's words
    gcc -Wall -Wextra -Werror -O2 -o "$1/latencyfs" "$_lfs_source" $cflags -lpthread || return 1
    latencyfs_binary=$1/latencyfs
}

# latencyfs_mount BACKING MOUNTPOINT [DELAY_MS] [LATENCYFS_OPTION...]: mounts
# BACKING (created if missing) at MOUNTPOINT (created if missing), every
# request delayed by DELAY_MS milliseconds (default 0; decimals allowed), and
# returns once mounted. The server's state (its delay file, its counts, its
# stderr) lives in a directory beside MOUNTPOINT, never inside it.
latencyfs_mount() {
    local backing=$1 mnt=$2 delay=${3:-0} state pid
    shift; shift; [ $# = 0 ] || shift
    [ -n "$latencyfs_binary" ] || { echo "latencyfs_mount: latencyfs_build first" >&2; return 2; }
    [ -z "${_lfs_pid[$mnt]:-}" ] || { echo "latencyfs_mount: $mnt is mounted already" >&2; return 2; }
    mkdir -p "$backing" "$mnt" || return 1
    _lfs_count=$((_lfs_count + 1))
    state=$(dirname "$mnt")/.latencyfs-$_lfs_count-$(basename "$mnt")
    mkdir -p "$state" || return 1
    printf '%s\n' "$delay" >"$state/delay"
    rm -f "$state/stats"
    if [ -z "$_lfs_hooked" ]; then _lfs_hooked=1; on_exit _lfs_exit; fi
    (
        _tf_close_fds
        exec "$latencyfs_binary" --delay-file "$state/delay" --stats "$state/stats" "$@" "$backing" "$mnt"
    ) >"$state/server.out" 2>&1 </dev/null &
    pid=$!
    _lfs_pid[$mnt]=$pid
    _lfs_state[$mnt]=$state
    # The first stats file is written once the mount is in place.
    for _ in $(seq 200); do
        if [ -e "$state/stats" ]; then
            _lfs_mounted "$mnt" && return 0
        fi
        _lfs_alive "$pid" || break
        sleep 0.05
    done
    echo "latencyfs_mount: $mnt is not mounted; the server said:" >&2
    sed 's/^/  | /' "$state/server.out" >&2
    latencyfs_unmount "$mnt"
    return 1
}

# _lfs_alive PID: whether that process exists and is not a zombie. (Not the
# library's _tf_alive: its bare `return` gives, in an EXIT trap, the status
# of the command before the trap, so it says "gone" for a live process.)
_lfs_alive() {
    local state
    state=$(awk '$1 == "State:" { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    if [ -n "$state" ] && [ "$state" != Z ]; then return 0; fi
    return 1
}

# _lfs_mounted MOUNTPOINT: whether a latencyfs is mounted there (in this
# mount namespace). /proc/self/mountinfo writes a space, tab, newline or
# backslash in a path as an octal escape.
_lfs_mounted() {
    local path=$1
    path=${path//\\/\\134}
    path=${path// /\\040}
    path=${path//$'\t'/\\011}
    path=${path//$'\n'/\\012}
    # (ENVIRON: awk -v would undo the escapes)
    LFS_MOUNTPOINT=$path awk '
        $5 == ENVIRON["LFS_MOUNTPOINT"] { for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "fuse.latencyfs") found = 1; break } }
        END { exit !found }' /proc/self/mountinfo
}

# _lfs_signal MOUNTPOINT SIGNAL: sends SIGNAL and waits until the server has
# written its stats file in answer (it is removed first: the rename that
# writes it makes it appear whole).
_lfs_signal() {
    local pid=${_lfs_pid[$1]:-} state=${_lfs_state[$1]:-}
    [ -n "$pid" ] || { echo "latencyfs: $1 is not mounted here" >&2; return 2; }
    rm -f "$state/stats"
    kill "-$2" "$pid" 2>/dev/null || { echo "latencyfs: the server of $1 is gone" >&2; return 1; }
    for _ in $(seq 400); do
        [ -e "$state/stats" ] && return 0
        sleep 0.01
    done
    echo "latencyfs: the server of $1 did not answer SIG$2 in 4 s" >&2
    return 1
}

# latencyfs_delay MOUNTPOINT DELAY_MS: every request from now on waits
# DELAY_MS milliseconds; returns once the server has taken it.
latencyfs_delay() {
    local state=${_lfs_state[$1]:-} us
    [ -n "$state" ] || { echo "latencyfs_delay: $1 is not mounted here" >&2; return 2; }
    printf '%s\n' "$2" >"$state/delay"
    _lfs_signal "$1" HUP || return
    us=$(awk -v ms="$2" 'BEGIN { printf "%d", ms * 1000 + 0.5 }')
    grep -qx "# delay_us $us" "$state/stats" || { echo "latencyfs_delay: the server did not take $2 ms" >&2; return 1; }
}

# latencyfs_reset MOUNTPOINT: zeroes the counts.
latencyfs_reset() { _lfs_signal "$1" USR2; }

# latencyfs_stats MOUNTPOINT: prints the counts since the last reset.
latencyfs_stats() {
    _lfs_signal "$1" USR1 || return
    cat "${_lfs_state[$1]}/stats"
}

# latencyfs_requests STATS_FILE WHO [TGID]: the number of requests in a
# stats file, per opcode ("OPCODE<TAB>count" lines, most first) and in all
# (a last line "TOTAL<TAB>count"). WHO: "all", "tgid" (the process TGID
# only) or "others" (every process but TGID; requests the kernel makes on
# its own, tgid 0, are never a process's). Forgets are left out: the kernel
# sends them when it drops an inode, nobody waits for them, and they are not
# delayed; so is INIT.
latencyfs_requests() {
    awk -F'\t' -v who="$2" -v tgid="${3:-}" '
        /^#/ || NF != 4 { next }
        $3 == "FORGET" || $3 == "BATCH_FORGET" || $3 == "INIT" || $3 == "DESTROY" { next }
        who == "tgid" && $2 != tgid { next }
        who == "others" && ($2 == tgid || $2 == 0) { next }
        { count[$3] += $4; total += $4 }
        END {
            for (op in count) printf "%s\t%d\n", op, count[op] | "sort -t\"\t\" -k2,2nr -k1,1"
            close("sort -t\"\t\" -k2,2nr -k1,1")
            printf "TOTAL\t%d\n", total
        }' "$1"
}

# latencyfs_unmount MOUNTPOINT: unmounts (fusermount3 -u, lazily if busy)
# and waits for the server to end; after 5 s (another mount namespace still
# has a copy of the mount) it is stopped with SIGTERM, then SIGKILL. Its
# last counts stay in its state directory.
latencyfs_unmount() {
    local mnt=$1 pid=${_lfs_pid[$1]:-} i
    [ -n "$pid" ] || return 0
    if _lfs_mounted "$mnt"; then
        fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" || umount -l "$mnt" || true
    fi
    for i in $(seq 300); do
        _lfs_alive "$pid" || break
        [ "$i" != 100 ] || kill -TERM "$pid" 2>/dev/null || true
        [ "$i" != 250 ] || kill -KILL "$pid" 2>/dev/null || true
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || true
    unset "_lfs_pid[$mnt]"
}

# The EXIT hook: whatever is still mounted.
_lfs_exit() {
    local mnt
    for mnt in "${!_lfs_pid[@]}"; do latencyfs_unmount "$mnt"; done
}
