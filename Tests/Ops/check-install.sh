#!/bin/bash
# make check-ops: make install into a scratch DESTDIR; the files where they
# belong; the man page renders without warnings; the installed binary run with
# the installed service unit's exact ExecStart command line, and with the cron
# entry's command, against a private sanlock daemon and a sandbox lease
# directory (as in .ci/demo); exit status 3 is a success for the unit; make
# uninstall leaves nothing behind. Touches nothing of the machine's own
# libvirt, sanlock or /usr/local. Run as root. Usage: Tests/Ops/check-install.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. Tests/lib/test-functions.sh

need_root "check-install: starts a sanlock daemon"
.ci/deps man-db

name=virt-sanlock-cleanup
prefix=/usr/local

make_sandbox vsc-install
base=$sandbox
root=$base/root                       # DESTDIR
host1=$base/run                       # the sanlock daemon's run directory
export SANLOCK_RUN_DIR=$host1
leases="$base/lease dir"
lock_holder=""
# shellcheck disable=SC2016  # expanded when the hook runs
on_exit '[ -z "$lock_holder" ] || kill "$lock_holder" 2>/dev/null'

# --- make install ------------------------------------------------------------
check "make install DESTDIR=$root PREFIX=$prefix" quietly make --no-print-directory -s install DESTDIR="$root" PREFIX="$prefix"
binary=$root$prefix/sbin/$name
# Nothing to check without it.
[ -x "$binary" ] || finish check-install
service=$root$prefix/lib/systemd/system/$name.service
timer=$root$prefix/lib/systemd/system/$name.timer
cron=$root/etc/cron.d/$name
manpage=$root$prefix/share/man/man8/$name.8
schema=$root$prefix/share/doc/$name/$name-report.schema.json
rules=$root$prefix/share/doc/$name/$name.rules.yml
completions=("$root$prefix/share/bash-completion/completions/$name" "$root$prefix/share/zsh/site-functions/_$name"
             "$root$prefix/share/fish/vendor_completions.d/$name.fish")
audit_units=("$root$prefix/lib/systemd/system/$name-audit.service" "$root$prefix/lib/systemd/system/$name-audit.timer")
expected=("$binary" "$cron" "$manpage" "$schema" "$rules" "${completions[@]}" "$service" "$timer" "${audit_units[@]}")
check "installed exactly: ${expected[*]#"$root"}" \
    same "$(find "$root" ! -type d | sort)" "$(printf '%s\n' "${expected[@]}" | sort)"
check "${binary#"$root"}: mode 0755" same "$(stat -c %a "$binary")" 755
check "the other files: mode 0644" same "$(stat -c '%a %n' "${expected[@]:1}" | grep -v '^644 ' || true)" ""
check "${binary#"$root"}: Swift runtime linked statically ($(du -h "$binary" | cut -f1))" \
    same "$(ldd "$binary" | grep libswift || true)" ""

check "man -l --warnings $name.8: no warnings" same "$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l --warnings "$manpage" 2>&1 >/dev/null)" ""
check "man -w $name finds the installed page" same "$(MANPATH=$root$prefix/share/man man -w $name 2>&1)" "$manpage"

# --- a sandbox: private sanlock daemon, lease directory, configuration --------
echo "-- a private sanlock daemon (SANLOCK_RUN_DIR=$SANLOCK_RUN_DIR)"
mkdir -p "$leases" "$base/status" "$base/definitions"
start_sanlock "$host1" check-install-host1
init_lockspace "$host1" "$leases"
join_lockspace "$host1" "$leases" 1
qemu_sanlock_conf "$leases" 1 >"$base/qemu-sanlock.conf"
# The unit and the cron entry rely on the configuration for the lease
# directory; the sandbox appends its own configuration, guest directories and
# minimum age to their exact command lines.
sandbox_args=(--config "$base/qemu-sanlock.conf" --status-dir "$base/status" --config-dir "$base/definitions" --min-age 0)

lease() { make_lease "$host1" "$leases" "$1"; }
free1=$(lease_name /var/lib/libvirt/images/old1.qcow2); lease "$free1"
free2=$(lease_name /var/lib/libvirt/images/old2.qcow2); lease "$free2"
busy=$(lease_name /var/lib/libvirt/images/busy.qcow2); lease "$busy"; hold_lease "$host1" "$leases" "$busy"
echo notes >"$leases/README.txt"

# --- the installed unit's ExecStart ----------------------------------------
mapfile -t execstarts < <(sed -n 's/^ExecStart=//p' "$service")
check "$name.service: one ExecStart=" same "${#execstarts[@]}" 1
[ "${#execstarts[@]}" = 1 ] || execstarts=("$prefix/sbin/$name")
read -r -a command <<<"${execstarts[0]}"
check "ExecStart runs $prefix/sbin/$name" same "${command[0]}" "$prefix/sbin/$name"
plain() { [[ $1 != *[\"\'\$%\\]* ]]; }
check "ExecStart has no quoting or specifiers (this check does not parse them): ${execstarts[0]}" plain "${execstarts[0]}"
success_statuses=" 0 $(sed -n 's/^SuccessExitStatus=//p' "$service" | tr '\n' ' ') "
echo "-- ExecStart=${execstarts[0]}  (+ ${sandbox_args[*]})"
status=0
"$root${command[0]}" "${command[@]:1}" "${sandbox_args[@]}" >"$base/unit.out" 2>"$base/unit.err" || status=$?
sed 's/^/   | /' "$base/unit.out"
check "exit status 0, nothing on stderr" same "$status $(cat "$base/unit.err")" "0 "
check "the free leases were deleted" files_gone "$leases" "$free1" "$free2"
check "the held lease, the lockspace and README.txt were kept" files_present "$leases" "$busy" README.txt "$ls_name"
check "the report lists 2 deletions" same "$(grep -c '^deleted ' "$base/unit.out")" 2

# --- exit status 3 counts as a success for the unit ------------------------
# Another janitor for this directory and host holds the run lock file, which
# the run above left in /run/virt-sanlock-cleanup.
lockfile=$(find /run/$name -maxdepth 1 -name "lease-dir-*-$(stat -c %i "$leases")-run-*.lock" 2>/dev/null | head -1)
check "the run left its lock file for the sandbox directory in /run/$name" test -n "$lockfile"
if [ -n "$lockfile" ]; then
    # One process holds the lock and is the one killed afterwards (flock(1)
    # would leave its child holding the lock).
    (exec 9<>"$lockfile"; flock -x 9; touch "$base/locked"; exec sleep 600) &
    lock_holder=$!
    for _ in $(seq "$tf_patience"); do [ -e "$base/locked" ] && break; sleep 0.05; done
    status=0; "$root${command[0]}" "${command[@]:1}" "${sandbox_args[@]}" >/dev/null 2>&1 || status=$?
    kill "$lock_holder" 2>/dev/null || true; wait "$lock_holder" 2>/dev/null || true; lock_holder=""
    check "a second janitor exits 3" same "$status" 3
    check "the unit counts exit status $status as success (SuccessExitStatus; success:$success_statuses)" \
        grep -qF " $status " <<<"$success_statuses"
fi

# --- the cron entry's command ----------------------------------------------
entry=$(grep -E '^#[[:space:]]*[0-9*]' "$cron" | head -1 | sed 's/^#//')
read -r -a fields <<<"$entry"
cron_command=$(sed -E 's/^[[:space:]]*([^[:space:]]+[[:space:]]+){6}//' <<<"$entry")
check "the cron entry runs as root" same "${fields[5]}" root
# Run as cron would (sh -c, a minimal environment), with the installed path
# under DESTDIR and the sandbox arguments appended to the janitor's command.
sandbox_quoted=$(printf ' %q' "${sandbox_args[@]}")
cron_sandboxed="${cron_command//$prefix\/sbin\//$root$prefix/sbin/}$sandbox_quoted"
free3=$(lease_name /var/lib/libvirt/images/old3.qcow2); lease "$free3"
echo "-- cron: $cron_command  (+${sandbox_quoted})"
status=0
env -i PATH=/usr/bin:/bin SHELL=/bin/sh HOME=/root LOGNAME=root SANLOCK_RUN_DIR="$SANLOCK_RUN_DIR" \
    /bin/sh -c "$cron_sandboxed" >"$base/cron.out" 2>&1 || status=$?
check "cron command: exit status 0" same "$status" 0
check "cron command: quiet (nothing for cron to mail)" same "$(cat "$base/cron.out")" ""
check "cron command: deleted the free lease" files_gone "$leases" "$free3"
check "cron command: kept the held one" files_present "$leases" "$busy"
# With the binary gone, the entry is silent (cron mails any output).
rm "$root$prefix/sbin/$name"
out=$(env -i PATH=/usr/bin:/bin /bin/sh -c "$cron_sandboxed" 2>&1) || true
check "cron command: silent when the binary is not installed" same "$out" ""
make --no-print-directory -s install-bin DESTDIR="$root" PREFIX="$prefix" >/dev/null 2>&1

# --- reinstalling keeps an enabled cron entry --------------------------------
sed -i 's/^#\([0-9*]\)/\1/' "$cron"
make --no-print-directory -s install DESTDIR="$root" PREFIX="$prefix" >/dev/null 2>&1
check "make install again keeps the administrator's enabled cron entry" grep -qE '^[0-9*]' "$cron"

# --- make uninstall ----------------------------------------------------------
make --no-print-directory -s uninstall DESTDIR="$root" PREFIX="$prefix" >/dev/null
check "make uninstall removed every installed file" same "$(find "$root" ! -type d)" ""

# --- make install into the real root, seen through overlays --------------------
# In a private mount namespace /usr/local and /etc are overlays whose writes
# land in the sandbox: install with DESTDIR empty as an administrator would,
# then use the standard search paths: PATH, man, systemd's unit path.
echo "-- make install (DESTDIR empty), /usr/local and /etc overlaid in a private mount namespace"
mkdir -p "$base/overlay/usr-local" "$base/overlay/usr-local.work" "$base/overlay/etc" "$base/overlay/etc.work"
# shellcheck disable=SC2016  # expanded by that bash
real_root=$(unshare -m --propagation private bash -c '
    set -u
    overlay=$1 man=$2
    mount -t overlay overlay -o "lowerdir=/usr/local,upperdir=$overlay/usr-local,workdir=$overlay/usr-local.work" /usr/local || exit 90
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$overlay/etc,workdir=$overlay/etc.work" /etc || exit 90
    make --no-print-directory -s install >"$overlay/install.log" 2>&1 || { echo "install-failed"; cat "$overlay/install.log"; exit 0; }
    echo "which=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v virt-sanlock-cleanup)"
    [ "$man" = yes ] && echo "man=$(man -w virt-sanlock-cleanup 2>&1)"
    [ "$man" = yes ] || verify_man=--man=no
    out=$(systemd-analyze verify ${verify_man:-} virt-sanlock-cleanup.service virt-sanlock-cleanup.timer 2>&1) && echo "verify=ok" || echo "verify=$out"
    systemctl enable virt-sanlock-cleanup.timer >/dev/null 2>&1 && echo "enabled=$(systemctl is-enabled virt-sanlock-cleanup.timer)"
    make --no-print-directory -s uninstall >/dev/null 2>&1 && echo "uninstall=ok"
    echo "left=$(find "$overlay/usr-local" "$overlay/etc" ! -type d -printf "%P " )"
' sh "$base/overlay" "$([ -f man/$name.8 ] && echo yes || echo no)") || real_root="unshare-failed=$?"
value() { sed -n "s/^$1=//p" <<<"$real_root"; }
failure=""
case $real_root in unshare-failed=*|install-failed*) failure=$real_root ;; esac
check "make install into the overlaid real root" same "$failure" ""
if [ -z "$failure" ]; then
    check "on PATH: /usr/local/sbin/$name (ahead of the stock /usr/sbin one)" same "$(value which)" /usr/local/sbin/$name
    if [ -f man/$name.8 ]; then
        man_found() { [[ $(value man) == /usr/local/*/man8/$name.8 ]]; }
        check "man -w $name: $(value man)" man_found
    fi
    check "systemd finds and verifies $name.service and .timer by name in /usr/local/lib/systemd/system" same "$(value verify)" ok
    check "systemctl enable $name.timer (offline)" same "$(value enabled)" enabled
    check "make uninstall" same "$(value uninstall)" ok
    check "make uninstall: no file left in /usr/local or /etc (timer enablement removed too)" same "$(value left | tr -d ' ')" ""
fi

finish check-install
