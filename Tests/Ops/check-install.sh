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
on_exit '[ -z "$lock_holder" ] || kill "$lock_holder" 2>/dev/null'

# --- make install ------------------------------------------------------------
echo "-- make install DESTDIR=$root PREFIX=$prefix"
make --no-print-directory -s install DESTDIR="$root" PREFIX="$prefix" >"$base/install.log" 2>&1 \
    || { cat "$base/install.log" >&2; echo "make install failed" >&2; exit 1; }
binary=$root$prefix/sbin/$name
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
actual=$(find "$root" ! -type d | sort)
[ "$actual" = "$(printf '%s\n' "${expected[@]}" | sort)" ] && ok "installed exactly: ${expected[*]#"$root"}" \
    || fail "installed files: $(tr '\n' ' ' <<<"$actual"), expected ${expected[*]}"
[ "$(stat -c %a "$binary")" = 755 ] || fail "$binary is not mode 0755"
for f in "${expected[@]:1}"; do [ "$(stat -c %a "$f")" = 644 ] || fail "$f is not mode 0644"; done
if ldd "$binary" | grep -q 'libswift'; then fail "$binary links the Swift runtime dynamically: $(ldd "$binary" | grep -m1 libswift)"
else ok "$binary: Swift runtime linked statically ($(du -h "$binary" | cut -f1))"; fi

warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l --warnings "$manpage" 2>&1 >/dev/null)
[ -z "$warnings" ] && ok "man -l --warnings $name.8: no warnings" || fail "man page warnings: $warnings"
found=$(MANPATH=$root$prefix/share/man man -w $name 2>&1)
[ "$found" = "$manpage" ] && ok "man -w $name finds the installed page" || fail "man -w $name: $found"

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
present() { [ -e "$leases/$1" ]; }

# --- the installed unit's ExecStart ----------------------------------------
mapfile -t execstarts < <(sed -n 's/^ExecStart=//p' "$service")
if [ "${#execstarts[@]}" != 1 ]; then
    fail "$name.service: expected one ExecStart=, found ${#execstarts[@]}"; execstarts=("$prefix/sbin/$name")
fi
read -r -a command <<<"${execstarts[0]}"
[[ ${command[0]} == "$prefix/sbin/$name" ]] || fail "ExecStart runs ${command[0]}, not $prefix/sbin/$name"
[[ ${execstarts[0]} != *[\"\'\$%\\]* ]] || fail "ExecStart has quoting or specifiers this check does not parse: ${execstarts[0]}"
success_statuses=" 0 $(sed -n 's/^SuccessExitStatus=//p' "$service" | tr '\n' ' ') "
echo "-- ExecStart=${execstarts[0]}  (+ ${sandbox_args[*]})"
status=0
"$root${command[0]}" "${command[@]:1}" "${sandbox_args[@]}" >"$base/unit.out" 2>"$base/unit.err" || status=$?
sed 's/^/   | /' "$base/unit.out"
[ "$status" = 0 ] && ok "exit status 0" || fail "exit status $status: $(cat "$base/unit.err")"
[ ! -s "$base/unit.err" ] || fail "unexpected stderr: $(cat "$base/unit.err")"
! present "$free1" && ! present "$free2" && ok "the free leases were deleted" || fail "a free lease is still there"
present "$busy" && present README.txt && present "$ls_name" && ok "the held lease, the lockspace and README.txt were kept" \
    || fail "the held lease, the lockspace or README.txt is gone"
[ "$(grep -c '^deleted ' "$base/unit.out")" = 2 ] && ok "the report lists 2 deletions" || fail "the report does not list 2 deletions"

# --- exit status 3 counts as a success for the unit ------------------------
# Another janitor for this directory and host holds the run lock file, which
# the run above left in /run/virt-sanlock-cleanup.
lockfile=$(find /run/$name -maxdepth 1 -name "lease-dir-*-$(stat -c %i "$leases")-run-*.lock" 2>/dev/null | head -1)
if [ -z "$lockfile" ]; then
    fail "no run lock file for the sandbox directory in /run/$name"
else
    # One process holds the lock and is the one killed afterwards (flock(1)
    # would leave its child holding the lock).
    (exec 9<>"$lockfile"; flock -x 9; touch "$base/locked"; exec sleep 600) &
    lock_holder=$!
    for _ in $(seq "$tf_patience"); do [ -e "$base/locked" ] && break; sleep 0.05; done
    status=0; "$root${command[0]}" "${command[@]:1}" "${sandbox_args[@]}" >/dev/null 2>&1 || status=$?
    kill "$lock_holder" 2>/dev/null || true; wait "$lock_holder" 2>/dev/null || true; lock_holder=""
    [ "$status" = 3 ] && ok "a second janitor exits 3" || fail "a second janitor exited $status, expected 3"
    [[ $success_statuses == *" $status "* ]] && ok "the unit counts exit status $status as success (SuccessExitStatus)" \
        || fail "exit status $status is a failure for the unit (success:$success_statuses)"
fi

# --- the cron entry's command ----------------------------------------------
entry=$(grep -E '^#[[:space:]]*[0-9*]' "$cron" | head -1 | sed 's/^#//')
read -r -a fields <<<"$entry"
cron_command=$(sed -E 's/^[[:space:]]*([^[:space:]]+[[:space:]]+){6}//' <<<"$entry")
[ "${fields[5]}" = root ] || fail "the cron entry does not run as root"
# Run as cron would (sh -c, a minimal environment), with the installed path
# under DESTDIR and the sandbox arguments appended to the janitor's command.
sandbox_quoted=$(printf ' %q' "${sandbox_args[@]}")
cron_sandboxed="${cron_command//$prefix\/sbin\//$root$prefix/sbin/}$sandbox_quoted"
free3=$(lease_name /var/lib/libvirt/images/old3.qcow2); lease "$free3"
echo "-- cron: $cron_command  (+${sandbox_quoted})"
status=0
env -i PATH=/usr/bin:/bin SHELL=/bin/sh HOME=/root LOGNAME=root SANLOCK_RUN_DIR="$SANLOCK_RUN_DIR" \
    /bin/sh -c "$cron_sandboxed" >"$base/cron.out" 2>&1 || status=$?
[ "$status" = 0 ] && ok "cron command: exit status 0" || fail "cron command: exit status $status: $(cat "$base/cron.out")"
[ ! -s "$base/cron.out" ] && ok "cron command: quiet (nothing for cron to mail)" || fail "cron command printed: $(cat "$base/cron.out")"
! present "$free3" && present "$busy" && ok "cron command: deleted the free lease, kept the held one" \
    || fail "cron command: free lease still there or held lease gone"
# With the binary gone, the entry is silent (cron mails any output).
rm "$root$prefix/sbin/$name"
out=$(env -i PATH=/usr/bin:/bin /bin/sh -c "$cron_sandboxed" 2>&1) || true
[ -z "$out" ] && ok "cron command: silent when the binary is not installed" || fail "cron command without the binary printed: $out"
make --no-print-directory -s install-bin DESTDIR="$root" PREFIX="$prefix" >/dev/null 2>&1

# --- reinstalling keeps an enabled cron entry --------------------------------
sed -i 's/^#\([0-9*]\)/\1/' "$cron"
make --no-print-directory -s install DESTDIR="$root" PREFIX="$prefix" >/dev/null 2>&1
grep -qE '^[0-9*]' "$cron" && ok "make install again keeps the administrator's enabled cron entry" \
    || fail "make install again disabled the cron entry"

# --- make uninstall ----------------------------------------------------------
make --no-print-directory -s uninstall DESTDIR="$root" PREFIX="$prefix" >/dev/null
left=$(find "$root" ! -type d)
[ -z "$left" ] && ok "make uninstall removed every installed file" || fail "left after make uninstall: $left"

# --- make install into the real root, seen through overlays --------------------
# In a private mount namespace /usr/local and /etc are overlays whose writes
# land in the sandbox: install with DESTDIR empty as an administrator would,
# then use the standard search paths: PATH, man, systemd's unit path.
echo "-- make install (DESTDIR empty), /usr/local and /etc overlaid in a private mount namespace"
mkdir -p "$base/overlay/usr-local" "$base/overlay/usr-local.work" "$base/overlay/etc" "$base/overlay/etc.work"
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
if [[ $real_root == unshare-failed=* || $real_root == install-failed* ]]; then
    fail "make install into the overlaid real root: $real_root"
else
    [ "$(value which)" = /usr/local/sbin/$name ] && ok "on PATH: /usr/local/sbin/$name (ahead of the stock /usr/sbin one)" \
        || fail "command -v $name: $(value which)"
    if [ -f man/$name.8 ]; then
        [[ $(value man) == /usr/local/*/man8/$name.8 ]] && ok "man -w $name: $(value man)" || fail "man -w $name: $(value man)"
    fi
    [ "$(value verify)" = ok ] && ok "systemd finds and verifies $name.service and .timer by name in /usr/local/lib/systemd/system" \
        || fail "systemd-analyze verify by name: $(value verify)"
    [ "$(value enabled)" = enabled ] || fail "systemctl enable $name.timer (offline) did not work"
    [ "$(value uninstall)" = ok ] || fail "make uninstall failed"
    [ -z "$(value left | tr -d ' ')" ] && ok "make uninstall: no file left in /usr/local or /etc (timer enablement removed too)" \
        || fail "left after make uninstall: $(value left)"
fi

finish check-install
