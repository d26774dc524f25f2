#!/bin/bash
# End-to-end test with two libvirt hosts sharing one sanlock lease directory:
# a guest paused on one host whose lease the other takes, then live
# migrations back and forth under both hosts' audits and cleaning runs.
# Usage: Tests/EndToEnd/libvirt-two-hosts.sh path/to/virt-sanlock-cleanup (as
# root; `make check-two-hosts` installs the packages and runs it). Set
# VSC_2H_MIGRATIONS=N for another number of migrations than 24 (at least 20
# for issue 12), VSC_2H_KEEP=DIR to keep every report and libvirtd's logs.
#
#   step 1  hosts A (host_id 1) and B (host_id 2): a sanlock daemon and a
#           libvirtd each (auto_disk_leases = 1, io_timeout 2), one shared
#           lease directory and one shared images directory
#   step 2  a guest with two rw disks and a shareable disk starts on A; stale
#           leases: two never acquired, one acquired and released by B; the
#           first cleaning run of A deletes the never-acquired ones and keeps
#           B's, the first of B deletes B's; the guest's leases stay
#   step 3  the guest migrates to B and is paused there (libvirt releases
#           its leases); A takes its rw disk's lease: B's audit says
#           held-by-other-host, host 1, exit 4; with a configuration that
#           gives B host A's id (host_id = 1): a conflict, exit 4, joined;
#           and once B has left the lockspace, the lease A holds is still
#           held-by-other-host 1 (A's name), not B's own (issue 20); B joins
#           again; once A released it, released-while-paused, exit 0; the
#           guest resumes on B
#   step 4  24 live migrations back and forth while each host loops an
#           audit (--format json) and a cleaning run (--min-age 0): no failed
#           migration; after each, the same lease files (inodes) with the
#           destination as owner and lver one more; no lease of the guest
#           deleted; no running guest's disk read as anything but held, no
#           other unprotected but during a migration (each violation printed
#           with its audit document); every report valid against the schema
#   step 5  summary: migrations and their durations, runs, violations,
#           deletions
#   step 6  teardown, also when a step fails or the test is interrupted
#
# The script re-executes itself as the first process of a private mount, PID
# and network namespace (run_in_namespaces): when it exits, the kernel ends
# everything it started. There each host is a mount and UTS namespace of its
# own with private /etc/libvirt, /run and /var (start_libvirt_host), sharing
# the lease and images directories of the test's sandbox at the same paths.
# virsh talks to each libvirtd through its socket; a migration's memory
# stream goes over the private loopback. Our tool runs inside a host with its
# defaults, which there are that host's qemu-sanlock.conf (the shared lease
# directory, its host_id), /run/libvirt/qemu and sanlock daemon.
#
# Every piece of the script is a function and the last line calls one, so bash
# has parsed the whole file before the first step runs.
set -euo pipefail
export LC_ALL=C
# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. "$(dirname "$(realpath "$0")")/../lib/test-functions.sh"
# Each step builds on the one before.
tf_stop_at_first_failure=yes

guest=vsc-2h-guest
migrations=${VSC_2H_MIGRATIONS:-24}
declare -A name=([A]=vsc-2h-a [B]=vsc-2h-b) id=([A]=1 [B]=2)

# ------------------------------------------------------------------ outside --
outside() {
    binary=$(realpath "${1:?usage: $0 path/to/virt-sanlock-cleanup}")
    [ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 1; }
    [[ $migrations =~ ^[1-9][0-9]*$ ]] || { echo "VSC_2H_MIGRATIONS: not a number of migrations: $migrations" >&2; exit 64; }
    need_root "the two-host test starts libvirtd and sanlock"
    local command
    for command in unshare nsenter ip libvirtd virsh qemu-system-x86_64 qemu-img sanlock jq md5sum; do
        command -v "$command" >/dev/null || { echo "missing command: $command (make check-two-hosts installs the packages)" >&2; exit 1; }
    done
    python3 -c 'import jsonschema' 2>/dev/null || { echo "missing Python module jsonschema (make check-two-hosts installs it)" >&2; exit 1; }
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/lock-driver/sanlock.so ] || { echo "missing libvirt's sanlock plugin (package libvirt-sanlock)" >&2; exit 1; }
    # The mount point of each host's private /etc/libvirt.
    [ -d /etc/libvirt ] || { echo "missing /etc/libvirt (package libvirt-clients)" >&2; exit 1; }

    # On a real disk (sanlock opens leases with O_DIRECT, which tmpfs
    # refuses); the library's EXIT trap removes it.
    make_sandbox vsc-2h
    # The hosts replace /var, so the binary goes along in a shared directory
    # (the checkout may be under /var).
    mkdir -p "$sandbox/bin"
    cp "$binary" "$sandbox/bin/virt-sanlock-cleanup"
    VSC_2H_SCHEMA=$(realpath "$(dirname "$(realpath "$0")")/../../man/virt-sanlock-cleanup-report.schema.json")
    export VSC_2H_INSIDE=1 VSC_2H_BASE="$sandbox" VSC_2H_T0=$EPOCHREALTIME VSC_2H_SCHEMA
    run_in_namespaces --mount --propagation private --pid --mount-proc --net -- "$(realpath "$0")"
}

# ------------------------------------------------------------------ helpers --
# The report (check, same, say, note, step, finish) is the library's, on
# fd 7; the first failed check ends the test.
other() { if [ "$1" = A ]; then echo B; else echo A; fi; }
run_dir() { echo "$base/$1/run/sanlock"; }     # host X's sanlock daemon
v() { virsh_at "${name[$1]}" "${@:2}"; }        # virsh on host X
held_by() {  # X: the leases host X's daemon holds, one name a line
    sanlock_at "$(run_dir "$1")" status 2>/dev/null | awk '$1 == "r" { split($2, f, ":"); print f[2] }' | sort
}
qemu_pid() { cat "$base/$1/run/libvirt/qemu/$guest.pid"; }
lease_files() { find "$leases" -mindepth 1 -maxdepth 1 ! -name "$ls_name" -printf '%f\n' | sort; }
words() { tr '\n' ' ' | sed 's/ $//'; }
tally() { grep . | sort | uniq -c | awk '{ printf "%s%s×%s", (NR > 1 ? " " : ""), $2, $1 }' || true; }   # words, one a line

# tool X LABEL ARGS...: our tool in host X, JSON report in $tool_json, exit
# status in $tool_rc.
tool() {
    local X=$1 label=$2 rc=0
    shift 2
    runs=$((runs + 1))
    tool_json=$out/$runs-$X-$label.json tool_err=$out/$runs-$X-$label.err
    in_libvirt_host "${name[$X]}" timeout 120 "$binary" --format json "$@" >"$tool_json" 2>"$tool_err" || rc=$?
    tool_rc=$rc
    if ! jq -es 'length == 1 and (.[0] | type == "object")' "$tool_json" >/dev/null 2>&1; then   # (jq 1.6 -e: 0 on no input)
        note "our tool ($label on $X) exited $rc without a JSON report; stderr:"
        sed 's/^/         /' "$tool_err" >&7
    fi
}
janitor() {  # X LABEL: a cleaning run on host X, each lease's decision printed
    tool "$1" "$2" --min-age 0
    {
        jq -r '.leases[] | "         \(.action)\t\(.name)\t\(.reason)\t\(.guest // "-") \(.guest_state // "") \(.disk // "")"' "$tool_json"
        jq -r '"         summary: \(.summary.deleted) deleted, \(.summary.kept) kept, \(.summary.failed) failed"' "$tool_json"
    } >&7 2>/dev/null || true
}
expect_lease() {  # name action reason: what the last cleaning run said about a lease
    same "$(jq -r --arg n "$1" '.leases[] | select(.name == $n) | "\(.action) \(.reason)"' "$tool_json")" "$2 $3"
}
audit() {  # X LABEL [ARGS...]: an audit on host X, each disk's protection printed
    tool "$1" "audit-$2" --audit "${@:3}"
    {
        jq -r '.host | "         host: host_id \(.host_id) joined \(.joined) configured \(.configured_host_id) matches \(.host_id_matches) generation \(.generation); unaccounted leases: \(.unaccounted_leases | length)"' "$tool_json"
        jq -r '.guests[] | .name as $g | .state as $s | .pid as $p | .disks[] |
            "         \($g) \($s) pid \($p): \(.target) \(.mode) \(.protection) holder pid \(.holder_pid) host \(.holder_host_id) \(.holder_host_name)"' "$tool_json"
        echo "         exit status $tool_rc"
    } >&7 2>/dev/null || true
}
protections() {  # the last audit's disks: "target=protection ..." in target order
    jq -r '[.guests[] | .disks[] | "\(.target)=\(.protection)"] | sort | join(" ")' "$tool_json"
}
disk() {  # target fields...: those fields of that disk in the last audit, space-separated
    local target=$1
    shift
    jq -r --arg t "$target" --arg f "$*" \
        '.guests[] | .disks[] | select(.target == $t) | [.[($f | split(" "))[]] | tostring] | join(" ")' "$tool_json"
}

# The live migration of the guest from host X to host Y, with the domain
# definition moving along; its duration in ms in $migrate_ms.
migrate() {  # X Y
    local t=$EPOCHREALTIME rc=0
    v "$1" migrate --live --unsafe --persistent --undefinesource --migrateuri tcp://127.0.0.1 \
        "$guest" "$(libvirt_uri "${name[$2]}")" >"$out/migrate.out" 2>&1 || rc=$?
    migrate_ms=$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", 1000 * (b - a) }')
    [ "$rc" = 0 ] || note "virsh migrate $1 -> $2: exit $rc: $(words <"$out/migrate.out")"
    return "$rc"
}
running_on() {  # Y: the guest runs on Y with its three leases held there, and only there
    same "$(v "$1" domstate "$guest") | $(held_by "$1" | words) | $(held_by "$(other "$1")" | words)" \
        "running | $guest_lease_words | "
}

# leader NAME: "inode magic lockspace resource owner_id lver" of a lease file.
leader() {
    local inode
    inode=$(stat -c %i "$leases/$1" 2>/dev/null) || inode=missing
    sanlock direct read_leader -r "$(resource "$leases" "$1")" 2>/dev/null |
        awk -v inode="$inode" '{ v[$1] = $2 }
            END { print inode, v["magic"], v["space_name"], v["resource_name"], v["owner_id"], v["lver"] }'
}

# ------------------------------------------------------------------- inside --
inside() {
    base=$VSC_2H_BASE tf_t0=$VSC_2H_T0
    binary=$base/bin/virt-sanlock-cleanup
    leases=$base/leases images=$base/images out=$base/out loops=$base/out/loops stop=$base/out/stop
    runs=0 loop_pids=()
    mkdir -p "$leases" "$images" "$loops"
    # A step that fails exits through here; an interruption is handled
    # outside (run_in_namespaces).
    on_exit cleanup_inside
    ip link set lo up

    step1
    step2
    step3
    step4
    step5
}

cleanup_inside() {
    local status=$tf_exit_status X log
    stop_loops
    if [ -n "${VSC_2H_KEEP:-}" ]; then   # for a closer look: every report, the migrations, libvirtd's logs
        cp -a "$out" "$VSC_2H_KEEP"
        for X in A B; do cp "$base/$X/var/log/libvirt/libvirtd.log" "$VSC_2H_KEEP/$X-libvirtd.log"; done
        say "reports and logs kept in $VSC_2H_KEEP"
    fi
    step 6 "teardown"
    for X in B A; do stop_libvirt_host "${name[$X]}"; done
    if [ "$status" != 0 ]; then
        for X in A B; do
            for log in "$base/$X/var/log/libvirt/libvirtd.log" "$base/$X/var/log/libvirt/qemu/$guest.log" "$(run_dir "$X")/log/sanlock.log"; do
                [ -s "$log" ] || continue
                echo "--- last lines of host $X's $log"
                tail -n 15 "$log"
            done
        done
    fi
    finish "two-host test with libvirt" 360
}

# ------------------------------------------------------------------- step 1 --
step1() {
    step 1 "hosts A (host_id 1) and B (host_id 2) sharing $leases"
    local X start
    # A first: its libvirtd makes the lockspace file, B's joins it.
    for X in A B; do
        start=$EPOCHREALTIME
        check "host $X starts: sanlock daemon, libvirtd, lockspace joined with host_id ${id[$X]}" \
            start_libvirt_host "${name[$X]}" "${id[$X]}" "$base/$X" "$leases" "$images" "$base/bin"
        note "host $X (${name[$X]}) up after $(elapsed "$start" | tr -d ' ') s: $(sanlock_at "$(run_dir "$X")" status | awk '$1 == "s" { print $2 }')"
    done
}

# ------------------------------------------------------------------- step 2 --
step2() {
    step 2 "a guest with two rw disks and a shareable disk starts on A; stale leases; the first cleaning runs"
    rw1=$images/rw1.qcow2 rw2=$images/rw2.raw shared=$images/shared.raw
    rw1_lease=$(lease_name "$rw1") rw2_lease=$(lease_name "$rw2") shared_lease=$(lease_name "$shared")
    guest_leases=$(printf '%s\n' "$rw1_lease" "$rw2_lease" "$shared_lease" | sort)
    guest_lease_words=$(words <<<"$guest_leases")
    guest_leases_json=$(jq -Rsc 'split("\n") | map(select(. != ""))' <<<"$guest_leases")
    qemu-img create -q -f raw "$images/base.raw" 16M
    qemu-img create -q -f qcow2 -b "$images/base.raw" -F raw "$rw1"
    qemu-img create -q -f raw "$rw2" 1M
    qemu-img create -q -f raw "$shared" 1M
    libvirt_guest_xml "$guest" "$(libvirt_disk_xml "$rw1" vda qcow2)" "$(libvirt_disk_xml "$rw2" vdb raw)" \
        "$(libvirt_disk_xml "$shared" vdc raw shareable)" >"$out/$guest.xml"
    check "virsh define on A" v A define "$out/$guest.xml" >/dev/null
    check "virsh start on A" v A start "$guest" >/dev/null
    check "libvirt made one lease file per disk" same "$(lease_files)" "$guest_leases"
    check "the guest runs on A and holds its three leases there" running_on A
    note "rw disks vda $rw1_lease, vdb $rw2_lease; shareable vdc $shared_lease"

    # Leases of guests that are gone: two never acquired, one that ran on B.
    local stale1 stale2 stale_b
    stale1=$(lease_name "$images/gone-1.qcow2") stale2=$(lease_name "$images/gone-2.qcow2")
    stale_b=$(lease_name "$images/gone-from-b.qcow2")
    make_lease "$(run_dir A)" "$leases" "$stale1"
    make_lease "$(run_dir A)" "$leases" "$stale2"
    make_lease "$(run_dir B)" "$leases" "$stale_b"
    sanlock_at "$(run_dir B)" command -r "$(resource "$leases" "$stale_b")" -c /bin/true >/dev/null 2>&1

    janitor A first
    check "A's first cleaning run: exit status 0" same "$tool_rc" 0
    check "A's first cleaning run: the never-acquired leases deleted" \
        same "$(expect_lease "$stale1" deleted never-acquired && expect_lease "$stale2" deleted never-acquired && echo yes)" yes
    check "A's first cleaning run: the lease B released kept (its last holder is live)" \
        expect_lease "$stale_b" kept last-held-by-live-host
    check "A's first cleaning run: the guest's leases kept (used by guest)" \
        same "$(jq -r '[.leases[] | select(.guest != null) | "\(.action) \(.reason)"] | unique | join(",")' "$tool_json")" "kept used-by-guest"
    janitor B first
    check "B's first cleaning run: exit status 0" same "$tool_rc" 0
    check "B's first cleaning run: the lease B released deleted" expect_lease "$stale_b" deleted released
    check "B's first cleaning run: the guest's leases kept (held by host 1)" \
        same "$(expect_lease "$rw1_lease" kept held-by-live-host && expect_lease "$rw2_lease" kept held-by-live-host &&
                expect_lease "$shared_lease" kept held-shared && echo yes)" yes
    check "only the guest's leases are left" same "$(lease_files)" "$guest_leases"
}

# ------------------------------------------------------------------- step 3 --
step3() {
    step 3 "the guest paused on B, whose rw disk's lease host A takes"
    check "live migration A -> B" migrate A B
    check "the guest runs on B and holds its three leases there" running_on B
    local pid holder
    pid=$(qemu_pid B)
    audit B running
    check "B's audit (running): exit status 0" same "$tool_rc" 0
    check "B's audit (running): every disk held by the guest's qemu (pid $pid), shareable in shared mode" \
        same "$(protections) | $(disk vda mode holder_pid) | $(disk vdc mode holder_pid)" \
        "vda=held vdb=held vdc=held | exclusive $pid | shared $pid"
    check "B's audit: host 2, lockspace joined, as configured" \
        same "$(jq -r '.host | "\(.host_id) \(.joined) \(.configured_host_id) \(.host_id_matches)"' "$tool_json")" "2 true 2 true"
    audit A "no-guest"
    check "A's audit (no guest): exit status 0, no guest, host 1" \
        same "$tool_rc $(jq -r '"\(.guests | length) \(.host.host_id) \(.host.host_id_matches)"' "$tool_json")" "0 0 1 true"

    check "virsh suspend on B" v B suspend "$guest" >/dev/null
    check "paused: B holds none of the guest's leases (libvirt released them)" same "$(held_by B)" ""
    audit B paused
    check "B's audit (paused): exit status 0, every disk released-while-paused" \
        same "$tool_rc $(protections)" "0 vda=released-while-paused vdb=released-while-paused vdc=released-while-paused"

    check "host A takes the rw disk vda's lease" hold_lease "$(run_dir A)" "$leases" "$rw1_lease"
    holder=$held_pid
    audit B "paused-taken"
    check "B's audit (paused, vda's lease taken): exit status 4" same "$tool_rc" 4
    check "B's audit (paused, vda's lease taken): vda held-by-other-host, host 1 (${name[A]}); the others released-while-paused" \
        same "$(protections) | $(disk vda holder_host_id holder_host_name)" \
        "vda=held-by-other-host vdb=released-while-paused vdc=released-while-paused | 1 ${name[A]}"
    check "B's audit (paused, vda's lease taken): one unprotected disk" same "$(jq -r .summary.unprotected "$tool_json")" 1

    # B configured with A's host id: joined as 2, the audit names the
    # conflict; not joined, A's hold must not pass for B's own.
    local as_a=/etc/libvirt/qemu-sanlock-as-a.conf
    lockspace_b() { sanlock_at "$(run_dir B)" "$1" -s "$ls_name:2:$leases/$ls_name:0" >/dev/null; }
    # (B's /etc/libvirt is $base/B/etc-libvirt outside.)
    sed 's/^host_id = .*/host_id = 1/' "$base/B/etc-libvirt/qemu-sanlock.conf" >"$base/B/etc-libvirt/${as_a##*/}"
    audit B "configured-as-A" --config "$as_a"
    check "B's audit with host_id = 1 in its configuration, joined as 2: exit status 4, a conflict" \
        same "$tool_rc $(jq -r '"\(.host.host_id) \(.host.configured_host_id) \(.host.host_id_matches)"' "$tool_json")" "4 2 1 false"
    check "B leaves the lockspace" lockspace_b rem_lockspace
    audit B "configured-as-A-not-joined" --config "$as_a"
    check "B's audit, not joined, host_id = 1: exit status 4, vda held-by-other-host 1 (${name[A]}), identity conflict" \
        same "$tool_rc $(protections) | $(disk vda holder_host_id holder_host_name) | $(jq -r '.host | "\(.lockspace_state) \(.identity_conflict.host_id) \(.identity_conflict.lockspace_name)"' "$tool_json")" \
        "4 vda=held-by-other-host vdb=released-while-paused vdc=released-while-paused | 1 ${name[A]} | not-joined 1 ${name[A]}"
    check "B joins the lockspace again as host 2" lockspace_b add_lockspace
    audit A holder
    check "A's audit: exit status 0; the holder (pid $holder) is a lease no guest accounts for" \
        same "$tool_rc $(jq -c '[.host.unaccounted_leases[] | [.pid, .lease, .mode]]' "$tool_json")" \
        "0 [[$holder,\"$rw1_lease\",\"exclusive\"]]"

    check "host A releases it" release_lease "$holder" "$(run_dir A)"
    audit B "paused-released"
    check "B's audit (paused, released again): exit status 0, every disk released-while-paused" \
        same "$tool_rc $(protections)" "0 vda=released-while-paused vdb=released-while-paused vdc=released-while-paused"
    check "virsh resume on B" v B resume "$guest" >/dev/null
    check "the guest runs on B and holds its three leases there" running_on B
}

# ------------------------------------------------------------------- step 4 --
# loop X KIND ARGS...: our tool in host X again and again until $stop exists:
# each report in $loops/X-KIND-N.json, and a line "N start end status" in
# $loops/X-KIND.log (start and end as EPOCHREALTIME).
loop() {
    local X=$1 kind=$2 n=0 start rc
    shift 2
    while [ ! -e "$stop" ]; do
        n=$((n + 1)) start=$EPOCHREALTIME rc=0
        in_libvirt_host "${name[$X]}" timeout 120 "$binary" --format json "$@" \
            >"$loops/$X-$kind-$n.json" 2>"$loops/$X-$kind-$n.err" || rc=$?
        echo "$n $start $EPOCHREALTIME $rc" >>"$loops/$X-$kind.log"
    done
}
start_loops() {
    local X
    rm -f "$stop"
    for X in A B; do
        loop "$X" audit --audit &
        loop_pids+=($!)
        loop "$X" clean --min-age 0 &
        loop_pids+=($!)
    done
}
stop_loops() {
    local pid
    [ ${#loop_pids[@]} != 0 ] || return 0
    touch "$stop"
    for pid in "${loop_pids[@]}"; do wait "$pid" || true; done
    loop_pids=()
}

step4() {
    step 4 "$migrations live migrations back and forth under audits and cleaning runs on both hosts"
    local l i=0 X=B Y got want replaced=0 unexpected=0 t
    declare -gA inode=() lver=()
    for l in $guest_leases; do
        read -r inode["$l"] _ _ _ _ lver["$l"] < <(leader "$l")
        note "lease $l: inode ${inode[$l]}, $(leader "$l" | cut -d' ' -f2-)"
    done
    migration_ms=() migrations_failed=0
    : >"$out/migrations.log"
    start_loops
    for i in $(seq "$migrations"); do
        Y=$(other "$X")
        t=$EPOCHREALTIME
        if ! migrate "$X" "$Y" || ! running_on "$Y"; then
            migrations_failed=$((migrations_failed + 1))
            say "migration $i $X -> $Y failed; no more migrations"
            break
        fi
        echo "$i $X $Y $t $EPOCHREALTIME" >>"$out/migrations.log"
        migration_ms+=("$migrate_ms")
        # The guest's lease files: the same files, now owned by Y, each
        # acquired once more (by Y: a janitor's acquire would count too).
        for l in $guest_leases; do
            got=$(leader "$l")
            want="${inode[$l]} 0x6152010 $ls_name $l ${id[$Y]} $((lver[$l] + 1))"
            if [ "${got%% *}" != "${inode[$l]}" ]; then
                replaced=$((replaced + 1))
                note "migration $i: lease file $l replaced: expected $want, got $got"
            elif [ "$got" != "$want" ]; then
                unexpected=$((unexpected + 1))
                note "migration $i: lease $l: expected $want, got $got"
            fi
            lver[$l]=${got##* }
        done
        X=$Y
    done
    stop_loops
    say "step 4: $((i - migrations_failed)) migrations, ms each: ${migration_ms[*]}"
    check "no migration failed" same "$migrations_failed" 0
    check "no lease file of the guest replaced (the same inodes throughout)" same "$replaced" 0
    check "after each migration each lease's leader names the destination, with lver one more" same "$unexpected" 0
    check_cleaning_runs
    check_audits
    check "every report of the test ($(find "$out" -name '*.json' | wc -l)) is valid against the report schema" \
        same "$(schema_errors | head -n 5)" ""
}

# schema_errors: every JSON report of the test against the report schema
# (Draft 2020-12, as the daemon tests check theirs), one line an error.
schema_errors() {
    python3 - "$VSC_2H_SCHEMA" "$out" <<'PY'
import json, pathlib, sys
from jsonschema import Draft202012Validator
validator = Draft202012Validator(json.load(open(sys.argv[1])))
for path in sorted(pathlib.Path(sys.argv[2]).rglob("*.json")):
    try:
        document = json.loads(path.read_text())
    except ValueError as error:
        print(path.name, "is not JSON:", error)
        continue
    for error in validator.iter_errors(document):
        print(path.name, list(error.path), error.message)
PY
}

# each_report X KIND JQ_ARGS...: jq over every report of host X's KIND loop
# (one process; a file that is not JSON is skipped, the loop's log has its
# exit status).
each_report() {
    local X=$1 kind=$2 file
    shift 2
    jq -r "$@" "$loops/$X-$kind"-*.json 2>/dev/null && return 0
    for file in "$loops/$X-$kind"-*.json; do jq -r "$@" "$file" 2>/dev/null || true; done
}

# check_cleaning_runs: what the cleaning loops did: every run completed (exit
# 0, or 3 when it met another janitor of its host), none deleted anything.
check_cleaning_runs() {
    local X deleted
    for X in A B; do
        cleaning_runs[$X]=$(wc -l <"$loops/$X-clean.log")
        note "host $X: ${cleaning_runs[$X]} cleaning runs; exit statuses: $(awk '{ print $4 }' "$loops/$X-clean.log" | tally)"
        # shellcheck disable=SC2016  # jq's variable
        note "host $X: the guest's leases were kept as: $(each_report "$X" clean \
            --argjson l "$guest_leases_json" '.leases[]? | select(.name | IN($l[])) | .reason' | tally)"
    done
    deleted=$(for X in A B; do each_report "$X" clean '.leases[]? | select(.action != "kept") | "\(.action) \(.name) \(.reason)"'; done | sort | uniq -c)
    deletions=$(grep -c . <<<"$deleted" || true)
    [ -z "$deleted" ] || note "deleted or failed during the loops: $deleted"
    check "the cleaning runs completed (exit status 0, or 3: another janitor of the host at work)" \
        same "$(awk '$4 != 0 && $4 != 3' "$loops"/?-clean.log)" ""
    check "the cleaning runs deleted no lease of the guest" \
        same "$(grep -cE "$(words <<<"$guest_leases" | tr ' ' '|')" <<<"$deleted" || true)" 0
    check "all three lease files of the guest are still there" same "$(lease_files)" "$guest_leases"
}

# check_audits: the acceptance rule for the audits during migrations. A
# running guest: every disk held. A guest paused by a migration:
# released-while-paused, held (the destination acquired before it starts
# the CPUs), or, on the destination (<job async='migration in'>, which the
# audit reports as async_job), migrating-in with the other host (the source,
# still running it) as the holder, or, on the source (<job async='migration
# out'>), migrating-out with the other host (the destination, running it
# now) as the holder: an audit that reads the source's status file just
# before libvirt ends the guest there (seen under load, where an audit takes
# seconds). Measured here (libvirt 9.0), the
# destination is paused with reason "starting up" from its qemu's start (pid
# 0 for a moment) until the source is about to pause, ~200 ms with the source
# running and holding the leases, then with reason "migration" (both ends)
# until it runs. In this loop nothing else pauses a guest or starts one, so
# both reasons count as a migration's. Any other guest: no disk unprotected.
# And the host joined with its configured host id. Anything else is a
# violation, printed with its document, the time it ran and the migration it
# met.
check_audits() {
    local X
    # shellcheck disable=SC2016  # jq's variables
    local rule='
        def allowed:
            if .state == "running" then .protection == "held"
            elif .state == "paused" and (.reason | IN("migration", "starting up")) then
                (.protection | IN("released-while-paused", "held")) or
                (.protection == "migrating-in" and .job == "migration in" and .holder == $other) or
                (.protection == "migrating-out" and .job == "migration out" and .holder == $other)
            else .protection | IN("held", "released-while-paused") end;
        (input_filename | capture("-(?<n>[0-9]+)[.]json$").n) as $n
        | [.guests[] | {state, reason: .state_reason, job: .async_job} + (.disks[] | {protection, holder: .holder_host_id})] as $d
        | [$n,
           ([$d[] | select(allowed | not)] | length)
             + (if .host.joined and .host.host_id == $id and .host.host_id_matches then 0 else 1 end),
           .summary.unprotected,
           (.host.unaccounted_leases | length),
           ([$d[] | "\(.state)(\(.reason // "" | gsub(" "; "-")))/\(.protection)"] | join(" "))] | @tsv'
    violations=0
    for X in A B; do
        audit_runs[$X]=$(wc -l <"$loops/$X-audit.log")
        # one line a run: N start end status violations unprotected unaccounted state/protection...
        join -t "$(printf '\t')" -j 1 <(tr ' ' '\t' <"$loops/$X-audit.log" | sort -k1,1) \
            <(each_report "$X" audit --argjson id "${id[$X]}" --argjson other "${id[$(other "$X")]}" "$rule" | sort -k1,1) |
            sort -n >"$out/$X-audits.tsv" || true
        note "host $X: ${audit_runs[$X]} audits; exit statuses: $(awk '{ print $4 }' "$loops/$X-audit.log" | tally)"
        note "host $X: disks read as: $(cut -f8 "$out/$X-audits.tsv" | tr ' ' '\n' | tally)"
        note "host $X: audits that exited 4: $(awk -F'\t' '$4 == 4' "$out/$X-audits.tsv" | wc -l), their disks: $(awk -F'\t' '$4 == 4 { print $8 }' "$out/$X-audits.tsv" | tr ' ' '\n' | tally)"
        note "host $X: audits listing a lease no guest accounts for: $(awk -F'\t' '$7 > 0' "$out/$X-audits.tsv" | wc -l)"
        show_violations "$X"
    done
    check "every audit ran to a report (a JSON document each, exit status 0 or 4)" \
        same "$(cat "$loops"/?-audit.log | wc -l) $(cat "$out"/?-audits.tsv | awk -F'\t' '$4 == 0 || $4 == 4' | wc -l)" \
        "$(cat "$loops"/?-audit.log | wc -l) $(cat "$loops"/?-audit.log | wc -l)"
    check "exit status 4 exactly when the audit counts an unprotected disk" \
        same "$(awk -F'\t' '($4 == 4) != ($6 > 0)' "$out"/?-audits.tsv)" ""
    check "no audit read a running guest's disk as anything but held, nor another as unprotected but while a migration paused it" \
        same "$violations" 0
}

# show_violations X: each audit of host X that broke the rule: when it ran,
# against which migration, and its document.
show_violations() {
    local line n start end
    while IFS=$'\t' read -r n start end _ _ _ _ line; do
        violations=$((violations + 1))
        note "VIOLATION: host $1 audit $n ran $(awk -v a="$start" -v b="$end" -v t0="$tf_t0" 'BEGIN { printf "%.3f-%.3f s", a - t0, b - t0 }'): $line"
        awk -v a="$start" -v b="$end" '$4 <= b && $5 >= a {
            printf "  during migration %s %s -> %s (%.3f-%.3f s after it started)\n", $1, $2, $3, a - $4, b - $4 }' \
            "$out/migrations.log" | sed 's/^/         /' >&7
        note "  document: $(jq -c . "$loops/$1-audit-$n.json")"
        [ ! -s "$loops/$1-audit-$n.err" ] || note "  stderr: $(words <"$loops/$1-audit-$n.err")"
    done < <(awk -F'\t' '$5 > 0' "$out/$1-audits.tsv")
}

# ------------------------------------------------------------------- step 5 --
step5() {
    step 5 "summary"
    local stats
    stats=$(printf '%s\n' "${migration_ms[@]}" | sort -n |
        awk '{ v[NR] = $1 } END { printf "min %d, median %d, max %d ms", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR] }')
    say "migrations: ${#migration_ms[@]} done, $migrations_failed failed; durations $stats"
    say "audits: A ${audit_runs[A]}, B ${audit_runs[B]} ($(cat "$out"/?-audits.tsv | awk -F'\t' '$4 == 4' | wc -l) exited 4, at a migration's paused states); violations: $violations"
    say "cleaning runs: A ${cleaning_runs[A]}, B ${cleaning_runs[B]}; deletions during the migrations: $deletions"
}

declare -A audit_runs=() cleaning_runs=()
if [ -z "${VSC_2H_INSIDE:-}" ]; then outside "$@"; else inside; fi
