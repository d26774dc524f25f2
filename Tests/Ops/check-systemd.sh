#!/bin/bash
# make check-ops: the installed service and timer under a real systemd, with
# all their hardening, when the machine has no systemd running (containers,
# CI VMs). A private systemd (PID 1 of its own pid, mount, UTS and cgroup
# namespaces, only these units and empty stand-ins for the standard targets)
# starts virt-sanlock-cleanup.service unmodified; libvirt's paths are tmpfs
# or bind mounts of a sandbox in that mount namespace only:
#   /var/lib/libvirt/sanlock        a sandbox lease directory (ext4, O_DIRECT)
#   /run/sanlock                    a sanlock daemon started in the namespace,
#                                   running as the sanlock user (socket 0660)
#   /etc/libvirt/qemu-sanlock.conf  host_id 1, auto_disk_leases
#   /run/libvirt/qemu               a running guest whose "qemu" is another user
# The root file system is read-only in there: the machine is not touched.
# Skips (exit 0, with a message) when systemd cannot start that way, unless
# CI=true. Run as root. Usage: Tests/Ops/check-systemd.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. Tests/lib/test-functions.sh

need_root check-systemd
.ci/deps systemd

name=virt-sanlock-cleanup

if [ -d /run/systemd/system ]; then
    echo "note: systemd runs this machine; a private instance is used anyway, to leave it alone"
fi
getent passwd sanlock >/dev/null || skip "no sanlock user (the sanlock package creates it)"

make_sandbox vsc-systemd
base=$sandbox
chmod 0755 "$base"
cgroup=""
pid1=""
launcher=""
# The namespace's sanlock daemon is told to stop, then the namespace's PID 1
# is killed, and with it everything in there.
cleanup_namespace() {
    if [ -n "$pid1" ] && [ -d "/proc/$pid1" ]; then
        in_ns sanlock client shutdown -f 1 >/dev/null 2>&1 || true
        kill -9 "$pid1" 2>/dev/null || true
    fi
    [ -z "$launcher" ] || wait "$launcher" 2>/dev/null || true
    if [ -n "$cgroup" ] && [ -d "$cgroup" ]; then
        for _ in $(seq 50); do find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null; [ -d "$cgroup" ] || break; sleep 0.1; done
    fi
}
on_exit cleanup_namespace
in_ns() { nsenter -t "$pid1" -m -p -u -C -- "$@"; }

check "make install DESTDIR=$base/root" quietly make --no-print-directory -s install DESTDIR="$base/root"
# Nothing to start without it.
[ -x "$base/root/usr/local/sbin/$name" ] || finish check-systemd
mkdir -p "$base/leases" "$base/stubs" "$base/etc" "$base/etc.work"
for target in sysinit basic sockets timers paths slices local-fs remote-fs shutdown; do
    printf '[Unit]\nDescription=stand-in for %s.target\n' "$target" >"$base/stubs/$target.target"
done
printf '[Unit]\nDescription=check-systemd\n' >"$base/stubs/vsc-check.target"

# The namespace's cgroup: a child of ours in the unified hierarchy.
for hierarchy in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ "$(stat -f -c %T "$hierarchy" 2>/dev/null)" = cgroup2fs ]; then
        self=$(sed -n 's/^0:://p' /proc/self/cgroup)
        cgroup=$hierarchy${self%/}/vsc-systemd-$$
        mkdir "$cgroup" || skip "cannot create a cgroup under $hierarchy$self"
        break
    fi
done
[ -n "$cgroup" ] || skip "no cgroup2 hierarchy"

# The namespace: set up the file system, then become systemd (PID 1).
cat >"$base/setup.sh" <<'SETUP'
set -eu
base=$1
# systemd mounts a cgroup2 file system of its own, which the cgroup namespace
# confines to a child of our cgroup (never the machine's v1 hierarchies).
umount -R /sys/fs/cgroup 2>/dev/null || true
if mountpoint -q /sys/fs/cgroup; then echo "cannot unmount /sys/fs/cgroup" >&2; exit 1; fi
# Its log (console) goes to a file, not to the machine's console.
: >"$base/console"; [ -e /dev/console ] && mount --bind "$base/console" /dev/console
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir -p /var/lib/libvirt/sanlock /var/lib/systemd
mount --bind "$base/leases" /var/lib/libvirt/sanlock
# /etc as an overlay whose writes land in the sandbox; /etc/libvirt empty.
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$base/etc,workdir=$base/etc.work" /etc
mkdir -p /etc/libvirt; mount -t tmpfs -o mode=0755 tmpfs /etc/libvirt
printf 'auto_disk_leases = 1\nhost_id = 1\nuser = "sanlock"\ngroup = "sanlock"\n' >/etc/libvirt/qemu-sanlock.conf
mkdir -p /etc/libvirt/qemu /run/libvirt/qemu /run/libvirt/libxl /run/sanlock /run/vsc-units /run/vsc-log /run/vsc-empty
chown sanlock:sanlock /run/sanlock /run/vsc-log
cp "$base"/root/usr/local/lib/systemd/system/* "$base"/stubs/* /run/vsc-units/
mount --bind "$base/root/usr/local/sbin" /usr/local/sbin
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mount -o remount,bind,ro /
exec env -i container=vsc-check SYSTEMD_PROC_CMDLINE=systemd.unified_cgroup_hierarchy=1 SYSTEMD_UNIT_PATH=/run/vsc-units SYSTEMD_GENERATOR_PATH=/run/vsc-empty \
    SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/vsc-empty \
    /lib/systemd/systemd --system --unit=vsc-check.target --log-target=console --log-level=info \
    --default-standard-output=inherit --default-standard-error=inherit --show-status=no
SETUP
(
    echo $BASHPID >"$cgroup/cgroup.procs"
    exec unshare --mount --pid --uts --cgroup --fork --propagation private --mount-proc \
        /bin/sh "$base/setup.sh" "$base"
) >"$base/systemd.log" 2>&1 </dev/null &
launcher=$!
for _ in $(seq "$tf_patience"); do
    pid1=$(awk '{ print $1 }' "/proc/$launcher/task/$launcher/children" 2>/dev/null) || true
    [ -n "$pid1" ] && break; sleep 0.05
done
[ -n "$pid1" ] || skip "the namespace did not start: $(cat "$base/systemd.log" "$base/console" 2>/dev/null)"
for _ in $(seq "$tf_patience"); do
    state=$(in_ns systemctl is-system-running 2>/dev/null) || true
    case $state in running|degraded) break;; esac
    [ -d "/proc/$pid1" ] || break
    sleep 0.05
done
case ${state:-} in
    running|degraded) ;;
    *) skip "systemd did not start in a namespace (state '${state:-}'): $(tail -5 "$base/systemd.log" "$base/console" 2>/dev/null)";;
esac
say "a private systemd is up ($(in_ns systemctl --version | head -1), state $state)"

# sanlock, as its package runs it: as the sanlock user; a sandbox lockspace.
# Its run directory, log directory and lease directory are paths inside the
# namespace; the library reaches them through in_ns.
dir=/var/lib/libvirt/sanlock
check "sanlock starts in the namespace, as the sanlock user" \
    start_sanlock -x in_ns -u sanlock -l /run/vsc-log -o "$base/daemon.log" /run/sanlock check-systemd-host1
# Nothing to clean without it.
sanlock_at /run/sanlock status >/dev/null 2>&1 || finish check-systemd
socket=$(in_ns stat -c '%A %U:%G' /run/sanlock/sanlock.sock)
echo "-- sanlock daemon up, /run/sanlock/sanlock.sock $socket"
# Lease files as libvirt makes them with user/group = sanlock: sanlock-owned, 0600.
lease() { make_lease /run/sanlock "$dir" "$1"; }
init_lockspace /run/sanlock "$dir"
join_lockspace /run/sanlock "$dir" 1
free1=$(lease_name /var/lib/libvirt/images/old1.qcow2); lease "$free1"
free2=$(lease_name /var/lib/libvirt/images/old2.qcow2); lease "$free2"
# A running guest whose lease is free (as while it migrates or pauses): its
# "qemu" belongs to another user, and only kill(pid, 0) can see it.
guest=$(lease_name /var/lib/libvirt/images/web1.qcow2); lease "$guest"
qemu=$(in_ns sh -c 'setpriv --reuid=65534 --regid=65534 --clear-groups sleep 600 >/dev/null 2>&1 & echo $!')
guest_xml --pid "$qemu" --disk /var/lib/libvirt/images/web1.qcow2 web1 | in_ns sh -c "cat >/run/libvirt/qemu/web1.xml"
chmod 0755 "$base/leases"; chown root:root "$base/leases"
touch -d '2 hours ago' "$base/leases"/*
present() { [ -e "$base/leases/$1" ]; }
show() { in_ns systemctl show -P "$1" $name.service; }
dropin() {   # name, text ("" removes it) [unit]: a drop-in for the service, then daemon-reload
    local directory=/run/vsc-units/${3:-$name}.service.d
    if [ -n "$2" ]; then printf '%s\n' "$2" | in_ns sh -c "mkdir -p $directory && cat >$directory/$1.conf"
    else in_ns rm -f "$directory/$1.conf"; fi
    in_ns systemctl daemon-reload
}
# Without a journal in here, the report goes to a file: the only change to the
# unit besides the capability test below.
dropin output "$(printf '[Service]\nStandardOutput=append:/run/vsc-log/report\nStandardError=append:/run/vsc-log/report\n')"
report() { in_ns sh -c 'cat /run/vsc-log/report 2>/dev/null; : >/run/vsc-log/report' | sed 's/^/   | /'; }

# --- the timer ---------------------------------------------------------------
# Started first: it also keeps the service loaded between runs, so that its
# exit status can be read after each run.
in_ns systemctl start $name.timer
next=$(in_ns systemctl show -P NextElapseUSecRealtime $name.timer)
check "$name.timer: active, next run ${next:-(none)}" same "$(in_ns systemctl is-active $name.timer) ${next:+next}" "active next"

# --- the service, unmodified -------------------------------------------------
echo "-- systemctl start $name.service"
started=0; in_ns systemctl start $name.service || started=$?
result=$(show Result) status=$(show ExecMainStatus)
report
check "$name.service: started, Result=success, exit status 0" same "$started $result $status" "0 success 0"
check "the free leases (sanlock-owned, 0600) were deleted" files_gone "$base/leases" "$free1" "$free2"
check "the running guest's lease was kept (its qemu seen through kill(pid, 0))" files_present "$base/leases" "$guest"
check "the lockspace file was kept" files_present "$base/leases" "$ls_name"
check "/run/$name is kept after the run (RuntimeDirectoryPreserve=yes)" in_ns test -d /run/$name

# --- exit status 3 is a success ----------------------------------------------
lockfile=$(in_ns sh -c "ls /run/$name/lease-dir-*-run-*.lock" | head -1)
holder=$(in_ns sh -c "(exec 9<>'$lockfile'; flock -x 9; touch /run/vsc-log/locked; exec sleep 600) >/dev/null 2>&1 & echo \$!")
for _ in $(seq "$tf_patience"); do in_ns test -e /run/vsc-log/locked && break; sleep 0.05; done
check "another janitor holds the run lock $lockfile" in_ns test -e /run/vsc-log/locked
started=0; in_ns systemctl start $name.service || started=$?
result=$(show Result) status=$(show ExecMainStatus)
report
check "another janitor running: started, Result=success, exit status 3" same "$started $result $status" "0 success 3"
in_ns kill "$holder"

# --- the audit unit, with all its hardening ------------------------------------
# web1's "qemu" holds no lease: while the guest runs, its disk is not-held
# (exit 4, the unit fails); once it is paused, released-while-paused (exit 0).
dropin output "$(printf '[Service]\nStandardOutput=append:/run/vsc-log/report\nStandardError=append:/run/vsc-log/report\n')" $name-audit
audit() {
    in_ns systemctl start $name-audit.service 2>/dev/null || true
    audit_result=$(in_ns systemctl show -P Result $name-audit.service) audit_status=$(in_ns systemctl show -P ExecMainStatus $name-audit.service)
    audit_report=$(in_ns sh -c 'cat /run/vsc-log/report 2>/dev/null; : >/run/vsc-log/report')
    # shellcheck disable=SC2001  # a prefix on each line
    sed 's/^/   | /' <<<"$audit_report"
}
audit
check "$name-audit.service: a running guest without its lease: web1 not-held, exit status 4, the unit failed" \
    same "$(grep -q 'web1.*not-held' <<<"$audit_report" && echo "web1 not-held") $audit_result $audit_status" "web1 not-held exit-code 4"
guest_xml --state paused --pid "$qemu" --disk /var/lib/libvirt/images/web1.qcow2 web1 | in_ns sh -c "cat >/run/libvirt/qemu/web1.xml"
audit
check "$name-audit.service: the guest paused: released-while-paused, exit status 0" \
    same "$(grep -q 'released-while-paused' <<<"$audit_report" && echo released-while-paused) $audit_result $audit_status" \
    "released-while-paused success 0"
check "the audit removed no lease" files_present "$base/leases" "$guest"

# --- CAP_DAC_OVERRIDE is what lets root reach sanlock's socket ---------------
dropin nocaps "$(printf '[Service]\nCapabilityBoundingSet=\n')"
free3=$(lease_name /var/lib/libvirt/images/old3.qcow2); lease "$free3"; touch -d '2 hours ago' "$base/leases/$free3"
in_ns systemctl start $name.service 2>/dev/null && started=0 || started=$?
result=$(show Result) status=$(show ExecMainStatus)
check "without CAP_DAC_OVERRIDE it fails closed: the start fails, exit status 1, nothing deleted" \
    same "$([ "$started" != 0 ] && echo failed || echo started) $result $status $(present "$free3" && echo kept || echo deleted)" \
    "failed exit-code 1 kept"
report
dropin nocaps ""

finish check-systemd
