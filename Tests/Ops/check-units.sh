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
[[ $(basename "$cron") != *.* ]] || fail "$cron: cron ignores /etc/cron.d files whose name has a dot"
[ -z "$(tail -c1 "$cron")" ] || fail "$cron: the last line must end with a newline (cron drops it otherwise)"
# Shipped disabled: no active line at all (no entry, no variable).
active=$(grep -vE '^[[:space:]]*(#|$)' "$cron" || true)
[ -z "$active" ] && ok "$cron ships disabled" || fail "$cron has active lines: $active"
# Exactly one commented-out entry: "#" followed by a schedule.
entries=$(grep -E '^#[[:space:]]*[0-9*]' "$cron" || true)
if [ "$(printf '%s\n' "$entries" | grep -c .)" != 1 ]; then
    fail "$cron: expected exactly one commented-out entry, found: $entries"
else
    read -r -a field <<<"${entries#\#}"
    cronfield='^(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*$'
    in_range() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
    command="${entries#\#}"; for _ in 1 2 3 4 5 6; do command=$(sed -E 's/^[[:space:]]*[^[:space:]]+//' <<<"$command"); done
    command=$(sed -E 's/^[[:space:]]+//' <<<"$command")
    if [ "${#field[@]}" -lt 7 ]; then fail "$cron: entry has ${#field[@]} fields, want 5 time fields, user, command"
    else
        for i in 0 1 2 3 4; do [[ ${field[$i]} =~ $cronfield ]] || fail "$cron: time field $((i + 1)) '${field[$i]}' is not valid"; done
        in_range "${field[0]}" 0 59 && in_range "${field[1]}" 0 23 || fail "$cron: minute/hour out of range"
        [ "${field[2]}" = "*" ] && [ "${field[3]}" = "*" ] && in_range "${field[4]}" 0 7 \
            && ok "$cron: weekly (day of week ${field[4]}, ${field[1]}:${field[0]})" || fail "$cron: not a weekly schedule: ${field[*]:0:5}"
        [ "${field[5]}" = root ] && ok "$cron: runs as root" || fail "$cron: user field is '${field[5]}', want root"
        [[ $command != *%* ]] || fail "$cron: '%' in a cron command is a newline"
        [ "$command" = "[ -x $sbin ] && timeout 1h $sbin -q" ] && ok "$cron: command '$command'" \
            || fail "$cron: unexpected command '$command'"
    fi
fi
# The boot run, commented out like the weekly one: it removes what a crash left
# invalidated.
grep -qE "^#@reboot[[:space:]]+root[[:space:]]+sleep [0-9]+; \[ -x $sbin \] && timeout 1h $sbin -q\$" "$cron" \
    && ok "$cron: commented-out @reboot entry" || fail "$cron: no commented-out '@reboot root sleep N; [ -x $sbin ] && timeout 1h $sbin -q'"
grep -q 'systemctl enable --now virt-sanlock-cleanup.timer' "$cron" || fail "$cron: does not say how to use the timer instead"
grep -qi 'every host' "$cron" || fail "$cron: does not say that each host of a shared directory runs its own"

# --- the units, as installed -----------------------------------------------
root=$base/root
make --no-print-directory -s install-units install-cron DESTDIR="$root" >/dev/null
units=$root/usr/local/lib/systemd/system
cmp -s "$units/$name.service" cron/$name.service && cmp -s "$units/$name.timer" cron/$name.timer \
    && cmp -s "$units/$name-audit.service" cron/$name-audit.service && cmp -s "$units/$name-audit.timer" cron/$name-audit.timer \
    && cmp -s "$root/etc/cron.d/$name" "$cron" && ok "installed with PREFIX=/usr/local: identical to cron/" \
    || fail "installed files differ from cron/ for the default PREFIX"

service=$units/$name.service timer=$units/$name.timer
setting() { sed -n "s/^$2=//p" "$1"; }
expect() {  # unit key value
    if setting "$1" "$2" | grep -qxF -- "$3"; then ok "$(basename "$1"): $2=$3"; else fail "$(basename "$1"): no $2=$3"; fi
}
[ "$(setting "$service" ExecStart)" = "$sbin" ] && ok "$name.service: ExecStart=$sbin" \
    || fail "$name.service: ExecStart is '$(setting "$service" ExecStart)'"
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
grep -qE "^#ExecStart=$sbin .*--metrics-file /var/lib/prometheus/node-exporter/" "$service" \
    && ok "$name.service: commented --metrics-file example" || fail "$name.service: no commented --metrics-file example"
grep -q 'systemctl edit' "$service" || fail "$name.service: does not say how to change ReadWritePaths with a drop-in"
expect "$timer" OnCalendar weekly
expect "$timer" Persistent true
expect "$timer" OnBootSec 15min
[ -n "$(setting "$timer" RandomizedDelaySec)" ] && ok "$name.timer: RandomizedDelaySec=$(setting "$timer" RandomizedDelaySec)" \
    || fail "$name.timer: no RandomizedDelaySec"
expect "$timer" WantedBy timers.target

# The audit: read-only, every 5 minutes, ended before the next one if it hangs.
audit_service=$units/$name-audit.service audit_timer=$units/$name-audit.timer
[ "$(setting "$audit_service" ExecStart)" = "$sbin --audit" ] && ok "$name-audit.service: ExecStart=$sbin --audit" \
    || fail "$name-audit.service: ExecStart is '$(setting "$audit_service" ExecStart)'"
expect "$audit_service" Type oneshot
expect "$audit_service" ProtectSystem strict
expect "$audit_service" TimeoutStartSec 4min
[ -z "$(setting "$audit_service" ReadWritePaths)" ] && ok "$name-audit.service: writes nowhere" \
    || fail "$name-audit.service: ReadWritePaths=$(setting "$audit_service" ReadWritePaths)"
grep -qE "^#ExecStart=$sbin --audit --metrics-file /var/lib/prometheus/node-exporter/" "$audit_service" \
    && ok "$name-audit.service: commented --metrics-file example" || fail "$name-audit.service: no commented --metrics-file example"
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
verify_output=$(unshare -m --propagation private sh -c \
    'mount --bind "$1" /usr/local/sbin && shift && exec systemd-analyze verify "$@"' \
    sh "$base/sbin" "${man_option[@]}" "$service" "$timer" "$audit_service" "$audit_timer" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] && [ -z "$verify_output" ]; then
    ok "systemd-analyze verify $name.service $name.timer $name-audit.service $name-audit.timer: clean ($(systemd-analyze --version | head -1))"
else
    fail "systemd-analyze verify (exit $rc):"; printf '%s\n' "$verify_output" >&2
fi

# Exposure score (0 = locked down, 10 = unprotected), for the record; fails if
# the hardening regresses beyond "OK".
for unit in "$service" "$audit_service"; do
    if security=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1); then
        score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$security")
        if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }'; then
            ok "systemd-analyze security --offline $(basename "$unit"): exposure $score"
        else
            fail "systemd-analyze security --offline $(basename "$unit"): exposure '${score:-?}' (want <= 2.5)"; tail -3 <<<"$security" >&2
        fi
    else
        echo "note: this systemd-analyze has no offline security check; skipped"
    fi
done

# With another PREFIX, the unit and the cron entry name the binary there.
other=$base/other
make --no-print-directory -s install-units install-cron DESTDIR="$other" PREFIX=/opt/vsc >/dev/null
[ "$(setting "$other/opt/vsc/lib/systemd/system/$name.service" ExecStart)" = /opt/vsc/sbin/$name ] \
    && [ "$(setting "$other/opt/vsc/lib/systemd/system/$name-audit.service" ExecStart)" = "/opt/vsc/sbin/$name --audit" ] \
    && [ "$(grep -cF "[ -x /opt/vsc/sbin/$name ] && timeout 1h /opt/vsc/sbin/$name -q" "$other/etc/cron.d/$name")" = 2 ] \
    && ! grep -rq /usr/local "$other" \
    && ok "PREFIX=/opt/vsc: unit and cron entry name /opt/vsc/sbin/$name" || fail "PREFIX=/opt/vsc: paths not rewritten"

finish check-units
