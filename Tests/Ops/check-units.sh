#!/bin/bash
# make check-ops: the cron entry and the systemd units as shipped in cron/.
# Static checks of the cron entry; systemd-analyze verify (clean: no output)
# and an offline exposure score of the units as make install writes them, with
# the unit's ExecStart binary in place. Run as root (installs systemd if
# missing; uses a private mount namespace). Usage: Tests/Ops/check-units.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. Tests/lib/test-functions.sh

need_root "check-units: it installs packages and uses a mount namespace"
.ci/deps systemd

name=virt-sanlock-cleanup
sbin=/usr/local/sbin/$name

make_sandbox vsc-units
base=$sandbox

# --- the cron entry --------------------------------------------------------
cron=cron/$name
matches() { [[ $1 =~ $2 ]]; }
check "$cron: no dot in the file name (cron ignores /etc/cron.d files with one)" grep -qvF . <<<"${cron##*/}"
check "$cron: the last line ends with a newline (cron drops it otherwise)" test -z "$(tail -c1 "$cron")"
# Shipped disabled: no active line at all (no entry, no variable).
active=$(grep -vE '^[[:space:]]*(#|$)' "$cron" || true)
check "$cron ships disabled: no active line" same "$active" ""
# Exactly one commented-out entry: "#" followed by a schedule.
entries=$(grep -E '^#[[:space:]]*[0-9*]' "$cron" || true)
count=$(grep -c . <<<"$entries" || true)
check "$cron: exactly one commented-out entry" same "$count" 1
if [ "$count" = 1 ]; then
    read -r -a field <<<"${entries#\#}"
    cronfield='^(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*$'
    in_range() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
    command="${entries#\#}"; for _ in 1 2 3 4 5 6; do command=$(sed -E 's/^[[:space:]]*[^[:space:]]+//' <<<"$command"); done
    command=$(sed -E 's/^[[:space:]]+//' <<<"$command")
    check "$cron: the entry has 5 time fields, a user and a command" test "${#field[@]}" -ge 7
    if [ "${#field[@]}" -ge 7 ]; then
        for i in 0 1 2 3 4; do check "$cron: time field $((i + 1)), '${field[$i]}', is valid" matches "${field[$i]}" "$cronfield"; done
        check "$cron: minute ${field[0]} in 0-59" in_range "${field[0]}" 0 59
        check "$cron: hour ${field[1]} in 0-23" in_range "${field[1]}" 0 23
        weekly() { [ "${field[2]}" = "*" ] && [ "${field[3]}" = "*" ] && in_range "${field[4]}" 0 7; }
        check "$cron: weekly ('${field[*]:0:5}': day of week ${field[4]}, ${field[1]}:${field[0]})" weekly
        check "$cron: runs as root" same "${field[5]}" root
        check "$cron: no '%' in the command (cron makes it a newline)" grep -qvF % <<<"$command"
        check "$cron: command '[ -x $sbin ] && timeout 1h $sbin -q'" same "$command" "[ -x $sbin ] && timeout 1h $sbin -q"
    fi
fi
# The boot run, commented out like the weekly one: it removes what a crash left
# invalidated.
check "$cron: commented-out '@reboot root sleep N; [ -x $sbin ] && timeout 1h $sbin -q'" \
    grep -qE "^#@reboot[[:space:]]+root[[:space:]]+sleep [0-9]+; \[ -x $sbin \] && timeout 1h $sbin -q\$" "$cron"
check "$cron says how to use the timer instead" grep -q 'systemctl enable --now virt-sanlock-cleanup.timer' "$cron"
check "$cron says that each host of a shared directory runs its own" grep -qi 'every host' "$cron"

# --- the units, as installed -----------------------------------------------
root=$base/root
make --no-print-directory -s install-units install-cron DESTDIR="$root" >/dev/null
units=$root/usr/local/lib/systemd/system
as_shipped() {
    local file
    for file in $name.service $name.timer $name-audit.service $name-audit.timer; do
        cmp -s "$units/$file" "cron/$file" || { note "$file differs"; return 1; }
    done
    cmp -s "$root/etc/cron.d/$name" "$cron" || { note "the cron entry differs"; return 1; }
}
check "installed with PREFIX=/usr/local: identical to cron/" as_shipped

service=$units/$name.service timer=$units/$name.timer
setting() { sed -n "s/^$2=//p" "$1"; }
has_setting() {  # unit key value
    setting "$1" "$2" | grep -qxF -- "$3" || { note "$2=$(setting "$1" "$2" | paste -sd ' ')"; return 1; }
}
expect() { check "$(basename "$1"): $2=$3" has_setting "$@"; }  # unit key value
check "$name.service: ExecStart=$sbin" same "$(setting "$service" ExecStart)" "$sbin"
expect "$service" Type oneshot
expect "$service" SuccessExitStatus 3
# A run killed by SIGKILL or a crash runs again a minute later: it may have
# left a lease invalidated, which the next run of this host removes.
expect "$service" Restart on-abnormal
# Bounded: the daemon's waits by --daemon-timeout, everything else by this.
expect "$service" TimeoutStartSec 1h
expect "$service" LimitNOFILE 524288
expect "$service" ProtectSystem strict
expect "$service" ReadWritePaths -/var/lib/libvirt/sanlock
expect "$service" RuntimeDirectory $name
expect "$service" PrivateTmp yes
expect "$service" NoNewPrivileges yes
check "$name.service: commented --metrics-file example" \
    grep -qE "^#ExecStart=$sbin .*--metrics-file /var/lib/prometheus/node-exporter/" "$service"
check "$name.service says how to change ReadWritePaths with a drop-in (systemctl edit)" grep -q 'systemctl edit' "$service"
expect "$timer" OnCalendar weekly
expect "$timer" Persistent true
expect "$timer" OnBootSec 15min
check "$name.timer: RandomizedDelaySec=$(setting "$timer" RandomizedDelaySec)" test -n "$(setting "$timer" RandomizedDelaySec)"
expect "$timer" WantedBy timers.target

# The audit: read-only, every 5 minutes, ended before the next one if it hangs.
audit_service=$units/$name-audit.service audit_timer=$units/$name-audit.timer
check "$name-audit.service: ExecStart=$sbin --audit" same "$(setting "$audit_service" ExecStart)" "$sbin --audit"
expect "$audit_service" Type oneshot
expect "$audit_service" ProtectSystem strict
expect "$audit_service" TimeoutStartSec 4min
check "$name-audit.service: writes nowhere (no ReadWritePaths)" same "$(setting "$audit_service" ReadWritePaths)" ""
check "$name-audit.service: commented --metrics-file example" \
    grep -qE "^#ExecStart=$sbin --audit --metrics-file /var/lib/prometheus/node-exporter/" "$audit_service"
expect "$audit_timer" OnUnitActiveSec 5min
expect "$audit_timer" OnBootSec 5min
expect "$audit_timer" WantedBy timers.target

# systemd-analyze verify checks that ExecStart's binary exists and that the
# Documentation= man page can be found. The binary: a stub at the installed
# path, in a private mount namespace (the machine's /usr/local/sbin is not
# touched). The man page: only ours (MANPATH), never the stock libvirt one.
mkdir -p "$base/sbin"
printf '#!/bin/sh\nexit 0\n' >"$base/sbin/$name"; chmod 0755 "$base/sbin/$name"
man_option=()
if [ -f man/$name.8 ]; then
    make --no-print-directory -s install-man DESTDIR="$root" >/dev/null
    export MANPATH=$root/usr/local/share/man
else
    echo "note: man/$name.8 does not exist yet: verifying without the Documentation= man page check (--man=no)"
    man_option=(--man=no)
fi
# shellcheck disable=SC2016  # expanded by that sh
verify_output=$(unshare -m --propagation private sh -c \
    'mount --bind "$1" /usr/local/sbin && shift && exec systemd-analyze verify "$@"' \
    sh "$base/sbin" "${man_option[@]}" "$service" "$timer" "$audit_service" "$audit_timer" 2>&1) && rc=0 || rc=$?
check "systemd-analyze verify $name.service $name.timer $name-audit.service $name-audit.timer: clean ($(systemd-analyze --version | head -1))" \
    same "exit $rc: $verify_output" "exit 0: "

# Exposure score (0 = locked down, 10 = unprotected), for the record; fails if
# the hardening regresses beyond "OK".
at_most() {  # SCORE LIMIT: a number, no larger than LIMIT; else the end of $security
    if [ -n "$1" ] && awk -v s="$1" -v limit="$2" 'BEGIN { exit !(s <= limit) }'; then return 0; fi
    note "$(tail -3 <<<"$security")"
    return 1
}
for unit in "$service" "$audit_service"; do
    if security=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1); then
        score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$security")
        check "systemd-analyze security --offline $(basename "$unit"): exposure ${score:-?}, at most 2.5" at_most "$score" 2.5
    else
        echo "note: this systemd-analyze has no offline security check; skipped"
    fi
done

# With another PREFIX, the unit and the cron entry name the binary there.
other=$base/other
make --no-print-directory -s install-units install-cron DESTDIR="$other" PREFIX=/opt/vsc >/dev/null
check "PREFIX=/opt/vsc: the units and the cron entry (both lines) name /opt/vsc/sbin/$name, nothing /usr/local" \
    same "$(setting "$other/opt/vsc/lib/systemd/system/$name.service" ExecStart) | $(setting "$other/opt/vsc/lib/systemd/system/$name-audit.service" ExecStart) | $(grep -cF "[ -x /opt/vsc/sbin/$name ] && timeout 1h /opt/vsc/sbin/$name -q" "$other/etc/cron.d/$name") | $(grep -rl /usr/local "$other")" \
    "/opt/vsc/sbin/$name | /opt/vsc/sbin/$name --audit | 2 | "

finish check-units
