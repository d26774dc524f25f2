#!/bin/bash
# End-to-end test with a real libvirtd, a real qemu guest and the sanlock lock
# manager. Usage: Tests/EndToEnd/libvirt-e2e.sh path/to/virt-sanlock-cleanup
# (as root; `make check-e2e` installs the packages and runs it).
#
#   step 1  a private sanlock daemon and libvirtd (io_timeout 2)
#   step 2  a guest with a rw qcow2 disk on a backing file, a readonly disk, a
#           shareable disk, a cdrom with media and an empty cdrom: libvirt's
#           lease files are exactly the ones our naming rule predicts
#   step 3  stale leases and a failed hot-plug; the janitor with the guest
#           running, paused (and the stock script there), destroyed
#           (--audit each time: held, released-while-paused, and file-missing
#           once the stock script deleted the paused guest's leases)
#   step 4  --audit under a running guest: sanlock killed and restarted
#           (not-held), then its lease file removed and made again
#           (file-replaced)
#   step 5  crash: libvirtd stopped, qemu killed, a stale status file left
#   step 6  teardown, also when a step fails (EXIT trap)
#
# Everything runs in one private mount and PID namespace: private /etc/libvirt,
# /run and /var, and private copies of /etc/passwd and /etc/group with the
# accounts Debian's libvirtd looks up. The machine's own /etc/libvirt,
# /run/libvirt, /var/lib/libvirt and sanlock daemon are never seen or touched.
# The script re-executes itself inside the namespace (VSC_E2E_INSIDE=1) as the
# namespace's first process: when it exits, the kernel ends whatever is left
# there and drops the mounts, so only processes this test started are killed.
#
# Every piece of the script is a function and the last line calls one, so bash
# has parsed the whole file before the first step runs.
set -euo pipefail
export LC_ALL=C
# Sourced before anything is mounted: inside the namespace, a checkout under
# /var would be hidden.
# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. "$(dirname "$(realpath "$0")")/../lib/test-functions.sh"
# Each step builds on the one before.
tf_stop_at_first_failure=yes

guest=vsc-e2e-guest

# ------------------------------------------------------------------ outside --
outside() {
    binary=$(realpath "${1:?usage: $0 path/to/virt-sanlock-cleanup}")
    [ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 1; }
    need_root "the end-to-end test starts libvirtd and sanlock"
    local command file
    for command in unshare libvirtd virsh qemu-system-x86_64 qemu-img sanlock augtool jq md5sum; do
        command -v "$command" >/dev/null || { echo "missing command: $command (make check-e2e installs the packages)" >&2; exit 1; }
    done
    for file in /usr/sbin/virt-sanlock-cleanup /usr/lib/x86_64-linux-gnu/libvirt/lock-driver/sanlock.so; do
        [ -e "$file" ] || { echo "missing $file (package libvirt-sanlock)" >&2; exit 1; }
    done
    # The mount point of the private /etc/libvirt (libvirt-clients ships the
    # directory): the test never creates or writes the machine's own.
    [ -d /etc/libvirt ] || { echo "missing /etc/libvirt (package libvirt-clients)" >&2; exit 1; }

    # The library's sandbox is on a real disk (sanlock opens leases with
    # O_DIRECT, which tmpfs refuses); its EXIT trap removes it.
    make_sandbox vsc-e2e
    base=$sandbox
    # Private copies of the user and group databases with the accounts the
    # Debian build of libvirtd looks up before it reads qemu.conf.
    libvirt_accounts "$base"
    mkdir -p "$base/etc-libvirt" "$base/run" "$base/var"

    # The inner script is the namespace's first process: when it exits, or
    # this script is interrupted, the kernel ends whatever is left there.
    export VSC_E2E_INSIDE=1 VSC_E2E_BASE="$base" VSC_E2E_BINARY="$binary" VSC_E2E_T0=$EPOCHREALTIME
    local status=0
    run_in_namespaces --mount --propagation private --pid --mount-proc -- "$(realpath "$0")" || status=$?
    exit "$status"
}

# ------------------------------------------------------------------ helpers --
# The report (check, same, say, note, step, finish) is the library's, on
# fd 7; a failed check ends the test there.
# Every command that talks to a daemon is bounded in time.
virsh() { timeout 60 virsh -q -c qemu:///system "$@"; }
lease_files() { find "$leases" -mindepth 1 -maxdepth 1 ! -name "$ls_name" -printf '%f\n' | sort; }
lease() { make_lease "$SANLOCK_RUN_DIR" "$leases" "$1"; }   # as libvirt makes one
leader() { sanlock direct read_leader -r "$(resource "$leases" "$1")" 2>/dev/null | grep -E '^(owner_id|lver|timestamp) ' | tr '\n' ' '; }
held_leases() { sanlock client status 2>/dev/null | awk '$1 == "r" { split($2, f, ":"); print f[2] }' | sort -u; }
alive() { kill -0 "$1" 2>/dev/null; }
wait_gone() {  # pid seconds (a hang guard, see tf_patience)
    for _ in $(seq $(($2 * 20))); do alive "$1" || return 0; sleep 0.05; done
    return 1
}
start_libvirtd() {
    libvirtd >>"$out/libvirtd.out" 2>&1 7>&- 8>&- &
    libvirtd_pid=$!
    for _ in $(seq $((tf_patience * 2))); do
        virsh version >/dev/null 2>&1 && return 0
        alive "$libvirtd_pid" || return 1
        sleep 0.05
    done
    return 1
}

janitor() {  # label args...: our tool with its defaults, which inside the namespace are the private ones
    local label=$1 rc=0
    shift
    runs=$((runs + 1))
    janitor_json=$out/janitor-$runs-$label.json janitor_err=$out/janitor-$runs-$label.err
    timeout 120 "$binary" --format json "$@" >"$janitor_json" 2>"$janitor_err" || rc=$?
    janitor_rc=$rc
    if ! jq -e . "$janitor_json" >/dev/null 2>&1; then
        note "our tool ($label) exited $rc without a JSON report; stderr:"
        sed 's/^/         /' "$janitor_err" >&7
    fi
    {
        jq -r '.leases[] | "         \(.action)\t\(.name)\t\(.reason)\t\(.guest // "-") \(.guest_state // "") \(.disk // "")"' "$janitor_json"
        jq -r '"         summary: \(.summary.deleted) deleted, \(.summary.kept) kept, \(.summary.failed) failed"' "$janitor_json"
        jq -r '.warnings[]? | "         warning: \(.)"' "$janitor_json"
    } >&7
}
field() { jq -r --arg n "$1" ".leases[] | select(.name == \$n) | .$2 // \"\"" "$janitor_json"; }
summary() { jq -r ".summary.$1" "$janitor_json"; }
expect_lease() {  # name action reason [guest guest_state]: what the last janitor run said about a lease
    local got want
    got="$(field "$1" action) $(field "$1" reason)"
    want="$2 $3"
    if [ $# -ge 4 ]; then
        got="$got $(field "$1" guest) $(field "$1" guest_state)"
        want="$want $4 $5"
    fi
    same "$got" "$want"
}

audit() {  # label: our tool's --audit, its JSON in $audit_json, its exit status in $audit_rc
    local rc=0
    runs=$((runs + 1))
    audit_json=$out/audit-$runs-$1.json
    timeout 120 "$binary" --audit --format json >"$audit_json" 2>"$out/audit-$runs-$1.err" || rc=$?
    audit_rc=$rc
    jq -r '.guests[]? | .name as $g | .state as $s | .disks[] | "         audit: \($g) (\($s)) \(.target) \(.mode): \(.protection): \(.detail)"' \
        "$audit_json" >&7 2>/dev/null || sed 's/^/         audit stderr: /' "$out/audit-$runs-$1.err" >&7
}
protection() {  # lease name → its disk's protection in the last audit
    jq -r --arg n "$1" '[.guests[].disks[] | select(.lease == $n) | .protection] | join(" ")' "$audit_json"
}

# ------------------------------------------------------------------- inside --
inside() {
    base=$VSC_E2E_BASE binary=$VSC_E2E_BINARY tf_t0=$VSC_E2E_T0
    runs=0
    libvirtd_pid="" qemu_pid=""
    # A step that fails exits through here. An interruption is handled
    # outside (run_in_namespaces). Through the library's trap: the first
    # daemon it starts arms it, which would replace a trap of our own.
    on_exit cleanup_inside

    # The private filesystem view. /var goes last: the sources of the other
    # binds live under /var/tmp.
    mount --bind "$base/passwd" /etc/passwd
    mount --bind "$base/group" /etc/group
    mount --bind "$base/etc-libvirt" /etc/libvirt
    mount --bind "$base/run" /run
    mkdir -p "$base/var/tmp" "$base/var/lib/libvirt" "$base/var/cache/libvirt" "$base/var/log/libvirt" "$base/var/e2e"
    ln -sfn /run "$base/var/run"
    ln -sfn /run/lock "$base/var/lock"
    # The binary may live anywhere, /var or /run included (a CI checkout under
    # /var/tmp, say), which the binds below hide: take a copy along.
    mkdir -p "$base/var/e2e-bin"
    cp "$binary" "$base/var/e2e-bin/virt-sanlock-cleanup"
    binary=/var/e2e-bin/virt-sanlock-cleanup
    mount --bind "$base/var" /var
    mkdir -p /run/lock
    work=/var/e2e                       # $base/var/e2e seen from outside
    out=$work/out
    images=/var/lib/libvirt/images
    leases=/var/lib/libvirt/sanlock     # libvirt's default disk_lease_dir, the private one
    mkdir -p "$images" "$leases" "$out"
    export SANLOCK_RUN_DIR=/run/sanlock # sanlock's default, in the private /run

    step1
    step2
    step3
    step4
    step5
}

cleanup_inside() {
    local status=$tf_exit_status pid log
    step 6 "teardown"
    if [ -n "$libvirtd_pid" ] && alive "$libvirtd_pid"; then
        virsh destroy "$guest" >/dev/null 2>&1 || true
        kill "$libvirtd_pid" 2>/dev/null || true
        wait_gone "$libvirtd_pid" 10 || kill -9 "$libvirtd_pid" 2>/dev/null || true
    fi
    for pid in $(cat /run/libvirt/qemu/*.pid 2>/dev/null) $qemu_pid; do
        if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    stop_sanlock /run/sanlock
    if [ "$status" != 0 ]; then
        for log in /var/log/libvirt/libvirtd.log "/var/log/libvirt/qemu/$guest.log" /var/log/sanlock.log; do
            [ -s "$log" ] || continue
            echo "--- last lines of $log"
            tail -n 25 "$log"
        done
    fi
    finish "end-to-end test with libvirt" 180
}

# ------------------------------------------------------------------- step 1 --
step1() {
    step 1 "a private sanlock daemon and libvirtd in a private mount and PID namespace ($base)"
    # -N: this namespace's /var/log is private already.
    check "the sanlock daemon answers" start_sanlock -N -o "$out/sanlock.out" /run/sanlock vsc-e2e-host1

    libvirt_qemu_conf >/etc/libvirt/qemu.conf
    qemu_sanlock_conf "$leases" 1 'io_timeout = 2' 'user = "root"' 'group = "root"' >/etc/libvirt/qemu-sanlock.conf
    cat >/etc/libvirt/libvirtd.conf <<'CONF'
log_filters = "1:locking"
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
CONF
    local start=$EPOCHREALTIME
    check "libvirtd starts (it creates and joins the lockspace)" start_libvirtd
    note "libvirtd answers after $(elapsed "$start" | tr -d ' ') s; lockspace: $(sanlock client status | awk '$1 == "s" { print $2 }')"
    check "libvirt created the lockspace $leases/$ls_name" test -f "$leases/$ls_name"
    check "libvirt joined it with io_timeout 2 (our delta lease says so)" \
        same "$(sanlock direct read_leader -s "$ls_name:1:$leases/$ls_name:0" | grep '^io_timeout ')" "io_timeout 2"
}

# ------------------------------------------------------------------- step 2 --
step2() {
    rw_disk=$images/rw.qcow2
    backing=$images/base.raw
    ro_disk=$images/readonly.raw
    shared_disk=$images/shared.raw
    media=$images/media.iso
    rw_lease=$(lease_name "$rw_disk")
    shared_lease=$(lease_name "$shared_disk")
    expected=$(printf '%s\n' "$rw_lease" "$shared_lease" | sort)
    expected_words=$(tr '\n' ' ' <<<"$expected")   # as held_leases | tr '\n' ' ' says it
    step 2 "define and start $guest: rw qcow2 on a backing file, readonly, shareable, cdrom, empty cdrom"
    qemu-img create -q -f raw "$backing" 16M
    qemu-img create -q -f qcow2 -b "$backing" -F raw "$rw_disk"
    local file path
    for file in "$ro_disk" "$shared_disk" "$media"; do qemu-img create -q -f raw "$file" 1M; done
    cat >"$work/$guest.xml" <<XML
<domain type='qemu'>
  <name>$guest</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$rw_disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$ro_disk'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$shared_disk'/>
      <target dev='vdc' bus='virtio'/>
      <shareable/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='$media'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdd' bus='ide'/>
      <readonly/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
    check "virsh define" virsh define "$work/$guest.xml" >/dev/null
    check "virsh start" virsh start "$guest" >/dev/null
    qemu_pid=$(cat "/run/libvirt/qemu/$guest.pid")
    check "the guest runs (qemu pid $qemu_pid)" same "$(virsh domstate "$guest")" running
    check "libvirt's status XML has the backing file (so the test covers it)" \
        grep -q "source file='$backing'" "/run/libvirt/qemu/$guest.xml"
    note "lease files: $(lease_files | tr '\n' ' ')"
    check "libvirt made exactly one lease file per rw or shareable disk, named as md5sum names the path" \
        same "$(lease_files)" "$expected"
    for path in "$ro_disk" "$media" "$backing"; do
        check "no lease file for $path" test ! -e "$leases/$(lease_name "$path")"
    done
    check "the guest holds both leases (sanlock client status)" same "$(held_leases)" "$expected"
    janitor names --dry-run
    check "our tool (dry run) maps each lease file libvirt made to its disk of $guest" \
        same "$(jq -r '[.leases[] | select(.kind != "lockspace") | "\(.name) \(.guest) \(.disk) \(.reason)"] | sort | .[]' "$janitor_json")" \
        "$(printf '%s\n' "$rw_lease $guest $rw_disk used-by-guest" "$shared_lease $guest $shared_disk used-by-guest" | sort)"
    say "step 2: libvirt made $(lease_files | wc -l) lease files, rw $rw_lease and shareable $shared_lease, none for the readonly disk, the cdroms or the backing file"
}

# ------------------------------------------------------------------- step 3 --
step3() {
    step 3 "stale leases, then the janitor with the guest running, paused, destroyed"
    # The disk of a guest that no longer exists, never acquired, and one that
    # ran once (acquired and released by this host).
    gone_never=$(lease_name "$images/deleted-guest.qcow2")
    lease "$gone_never"
    gone_released=$(lease_name "$images/retired-guest.qcow2")
    lease "$gone_released"
    sanlock client command -r "$(resource "$leases" "$gone_released")" -c /bin/true >/dev/null 2>&1
    # Failed hot-plugs. A missing file (like a bad target) is refused before
    # the lock manager is asked; a wrong format is refused by qemu after
    # libvirt created the lease, acquired it for the guest and released it.
    local before rc=0
    before=$(lease_files)
    virsh attach-disk "$guest" "$images/missing.qcow2" vdd --live >"$out/hotplug-missing.out" 2>&1 || rc=$?
    note "hot-plug of a missing file: $(tr '\n' ' ' <"$out/hotplug-missing.out")"
    check "the hot-plug of a missing file fails and leaves no lease file" same "$rc $(lease_files)" "1 $before"
    local garbage=$images/not-qcow2.img
    qemu-img create -q -f raw "$garbage" 1M
    hotplug_lease=$(lease_name "$garbage")
    rc=0
    virsh attach-disk "$guest" "$garbage" vdd --live --subdriver qcow2 >"$out/hotplug-format.out" 2>&1 || rc=$?
    note "hot-plug of a raw file as qcow2: $(tr '\n' ' ' <"$out/hotplug-format.out")"
    check "the hot-plug with the wrong format fails" test "$rc" != 0
    check "and leaves its lease file $hotplug_lease" test -f "$leases/$hotplug_lease"
    note "its leader: $(leader "$hotplug_lease")"
    check "the guest still runs and holds its leases" \
        same "$(virsh domstate "$guest") $(held_leases | tr '\n' ' ')" "running $expected_words"

    janitor running --min-age 0
    check "janitor (running): exit status 0" same "$janitor_rc" 0
    check "janitor (running): rw disk's lease kept" expect_lease "$rw_lease" kept used-by-guest "$guest" running
    check "janitor (running): shareable disk's lease kept" expect_lease "$shared_lease" kept used-by-guest "$guest" running
    check "janitor (running): never-acquired stale lease deleted" expect_lease "$gone_never" deleted never-acquired
    check "janitor (running): released stale lease deleted" expect_lease "$gone_released" deleted released
    check "janitor (running): failed hot-plug's lease deleted" expect_lease "$hotplug_lease" deleted released
    check "janitor (running): no known disk for the three" \
        same "$(field "$gone_never" unknown_disk) $(field "$gone_released" unknown_disk) $(field "$hotplug_lease" unknown_disk)" "true true true"
    check "janitor (running): the lease directory holds the guest's leases only" same "$(lease_files)" "$expected"
    check "janitor (running): the guest still holds them" same "$(held_leases)" "$expected"
    say "step 3: running: janitor kept $(jq '[.leases[] | select(.reason == "used-by-guest")] | length' "$janitor_json") leases, deleted $(summary deleted) stale ones"
    audit running
    check "audit (running): exit status 0, both disks held (the shareable one in shared mode)" \
        same "$audit_rc $(protection "$rw_lease") $(protection "$shared_lease") $(jq -r '.guests[0].disks | map(.mode) | sort | join(",")' "$audit_json")" \
        "0 held held exclusive,shared"
    check "audit (running): qemu ($qemu_pid) is the holder" \
        same "$(jq -r '[.guests[0].disks[].holder_pid] | unique | join(" ")' "$audit_json")" "$qemu_pid"

    virsh suspend "$guest" >/dev/null
    check "the guest is paused" same "$(virsh domstate "$guest")" paused
    check "a paused guest holds no lease (libvirt released them)" same "$(held_leases)" ""
    gone_paused=$(lease_name "$images/another-deleted-guest.qcow2")
    lease "$gone_paused"
    janitor paused --min-age 0
    check "janitor (paused): exit status 0" same "$janitor_rc" 0
    check "janitor (paused): rw disk's lease kept" expect_lease "$rw_lease" kept used-by-guest "$guest" paused
    check "janitor (paused): shareable disk's lease kept" expect_lease "$shared_lease" kept used-by-guest "$guest" paused
    check "janitor (paused): stale lease deleted" expect_lease "$gone_paused" deleted never-acquired
    check "janitor (paused): the paused guest's lease files are still there" same "$(lease_files)" "$expected"
    local janitor_kept
    janitor_kept=$(jq '[.leases[] | select(.reason == "used-by-guest")] | length' "$janitor_json")
    audit paused
    check "audit (paused): exit status 0, both disks released-while-paused" \
        same "$audit_rc $(protection "$rw_lease") $(protection "$shared_lease")" "0 released-while-paused released-while-paused"

    # The stock script in the same state on the same directory; it reads the
    # private /etc/libvirt/qemu-sanlock.conf with augtool.
    timeout 120 /usr/sbin/virt-sanlock-cleanup >"$out/stock-paused.out" 2>&1 || true
    sed 's/^/         stock: /' "$out/stock-paused.out" >&7
    local stock_deleted
    stock_deleted=$(comm -23 <(echo "$expected") <(lease_files))
    check "stock script (paused): it deleted the paused guest's leases (as docs/operations.md says for libvirt 9.0; update it if this changes)" \
        same "$stock_deleted" "$expected"
    say "step 3: paused: janitor kept $janitor_kept leases, stock script deleted $(echo "$stock_deleted" | grep -c .)"
    audit after-stock
    check "audit (paused, after the stock script): exit status 4, both disks file-missing" \
        same "$audit_rc $(protection "$rw_lease") $(protection "$shared_lease")" "4 file-missing file-missing"
    # What libvirt 9.0 does next: resume creates the lease files anew and
    # acquires them, so the guest runs on with fresh leases (lver starts over).
    rc=0
    virsh resume "$guest" >"$out/resume.out" 2>&1 || rc=$?
    note "virsh resume: exit $rc $(tr '\n' ' ' <"$out/resume.out"); lease files: $(lease_files | tr '\n' ' '); rw lease: $(leader "$rw_lease")"
    check "after the stock script, resume made the lease files anew and acquired them (libvirt 9.0)" \
        same "$rc $(virsh domstate "$guest") $(held_leases | tr '\n' ' ')" "0 running $expected_words"
    audit resumed
    check "audit (resumed): exit status 0, both disks held again" \
        same "$audit_rc $(protection "$rw_lease") $(protection "$shared_lease")" "0 held held"

    check "virsh destroy" virsh destroy "$guest" >/dev/null
    check "destroyed: no status file left" test ! -e "/run/libvirt/qemu/$guest.xml"
    check "destroyed: no lease held, the lease files remain (libvirt never deletes one)" \
        same "$(held_leases)|$(lease_files)" "|$expected"
    janitor destroyed --min-age 0
    check "janitor (destroyed): exit status 0" same "$janitor_rc" 0
    check "janitor (destroyed): rw disk's lease deleted" expect_lease "$rw_lease" deleted released "$guest" shutoff
    check "janitor (destroyed): shareable disk's lease deleted" expect_lease "$shared_lease" deleted released "$guest" shutoff
    check "janitor (destroyed): nothing left but the lockspace" same "$(lease_files)" ""
    say "step 3: destroyed: janitor deleted $(summary deleted) leases of the stopped guest"
}

# ------------------------------------------------------------------- step 4 --
step4() {
    step 4 "--audit under a running guest: sanlock restarted, then its lease file replaced"
    check "virsh start" virsh start "$guest" >/dev/null
    qemu_pid=$(cat "/run/libvirt/qemu/$guest.pid")
    audit started
    check "audit (started): exit status 0, rw disk held" same "$audit_rc $(protection "$rw_lease")" "0 held"

    # sanlock dies under the running guest and comes back (same host id):
    # qemu runs on, but the new daemon knows nothing of it.
    local generation_before
    generation_before=$(jq -r '.host.generation' "$audit_json")
    kill_sanlock /run/sanlock
    check "the guest outlived the sanlock daemon" alive "$qemu_pid"
    check "the sanlock daemon answers again" start_sanlock -N -o "$out/sanlock-restarted.out" /run/sanlock vsc-e2e-host1
    note "sanlock client status after the restart: $(sanlock client status 2>&1 | tr '\n' ' ')"
    note "rw lease leader after the restart: $(leader "$rw_lease")"
    audit sanlock-restarted
    # The rw lease's leader still names host 1 (its earlier incarnation): this
    # host's, not another host's, though the daemon has not joined.
    check "audit (sanlock restarted, lockspace not joined): exit status 4, host not joined, both disks not-held" \
        same "$audit_rc $(jq -r '.host.joined' "$audit_json") $(protection "$rw_lease") $(protection "$shared_lease")" \
        "4 false not-held not-held"
    # libvirt joins the lockspace only when libvirtd starts; an admin does it
    # by hand (libvirtd would too when restarted).
    check "the lockspace joined again as host 1" join_lockspace /run/sanlock "$leases" 1
    audit rejoined
    check "audit (rejoined): exit status 4, both disks not-held: qemu is no longer registered" \
        same "$audit_rc $(protection "$rw_lease") $(protection "$shared_lease")" "4 not-held not-held"
    check "audit (rejoined): a new generation ($generation_before before)" \
        test "$(jq -r '.host.generation' "$audit_json")" -gt "$generation_before"
    check "the guest still runs" same "$(virsh domstate "$guest")" running

    # Restarted, the guest holds its leases again. Then what the stock
    # script's unlocked rm, and a guest start elsewhere, do: the running
    # guest holds a lease on a deleted inode; the file at the path is a
    # fresh lease anybody can take.
    check "virsh destroy" virsh destroy "$guest" >/dev/null
    check "virsh start" virsh start "$guest" >/dev/null
    qemu_pid=$(cat "/run/libvirt/qemu/$guest.pid")
    audit restarted
    check "audit (guest restarted): exit status 0, both disks held" \
        same "$audit_rc $(protection "$rw_lease") $(protection "$shared_lease")" "0 held held"
    local before after
    before=$(stat -c %i "$leases/$rw_lease")
    rm "$leases/$rw_lease"
    lease "$rw_lease"
    after=$(stat -c %i "$leases/$rw_lease")
    audit replaced
    check "audit (file replaced, inode $before → $after): exit status 4, rw disk file-replaced, still held by qemu" \
        same "$audit_rc $(protection "$rw_lease") $(jq -r --arg n "$rw_lease" '.guests[].disks[] | select(.lease == $n) | .holder_pid' "$audit_json")" \
        "4 file-replaced $qemu_pid"
    note "$(jq -r --arg n "$rw_lease" '.guests[].disks[] | select(.lease == $n) | .detail' "$audit_json")"
    say "step 4: sanlock restarted → not-held until the guest restarts; file replaced → file-replaced"
    check "virsh destroy" virsh destroy "$guest" >/dev/null
    janitor after-restart --min-age 0 >/dev/null
}

# ------------------------------------------------------------------- step 5 --
step5() {
    step 5 "crash: the guest runs, libvirtd stops, qemu is killed"
    check "virsh start" virsh start "$guest" >/dev/null
    qemu_pid=$(cat "/run/libvirt/qemu/$guest.pid")
    check "the guest holds its leases (made anew)" same "$(held_leases)" "$expected"
    kill "$libvirtd_pid"
    check "libvirtd stopped" wait_gone "$libvirtd_pid" 60
    libvirtd_pid=""
    check "the guest outlived libvirtd" alive "$qemu_pid"
    kill -9 "$qemu_pid"
    check "qemu killed" wait_gone "$qemu_pid" 60
    for _ in $(seq "$tf_patience"); do [ -z "$(held_leases)" ] && break; sleep 0.05; done
    check "sanlock released the dead qemu's leases" same "$(held_leases)" ""
    check "a stale status file remains: state running, pid $qemu_pid" \
        grep -q "<domstatus state='running' reason='[a-z]*' pid='$qemu_pid'>" "/run/libvirt/qemu/$guest.xml"
    janitor crashed --min-age 0
    check "janitor (stale status): exit status 0" same "$janitor_rc" 0
    check "janitor (stale status): rw disk's lease kept" expect_lease "$rw_lease" kept stale-guest-status "$guest" running
    check "janitor (stale status): shareable disk's lease kept" expect_lease "$shared_lease" kept stale-guest-status "$guest" running
    check "janitor (stale status): it warns on stderr about the stale status file" \
        grep -q "stale status file /run/libvirt/qemu/$guest.xml: guest $guest is running but its process $qemu_pid is gone" "$janitor_err"
    check "janitor (stale status): the lease files are still there" same "$(lease_files)" "$expected"
    say "step 5: stale status file: janitor kept $(jq '[.leases[] | select(.reason == "stale-guest-status")] | length' "$janitor_json") leases (stale-guest-status), deleted $(summary deleted)"

    # libvirtd comes back, finds qemu gone and removes the guest's status.
    local start=$EPOCHREALTIME
    check "libvirtd starts again" start_libvirtd
    note "libvirtd answers after $(elapsed "$start" | tr -d ' ') s (the lockspace was still joined)"
    check "libvirtd says the guest is shut off" same "$(virsh domstate "$guest")" "shut off"
    check "libvirtd removed the stale status file" test ! -e "/run/libvirt/qemu/$guest.xml"
    janitor recovered --min-age 0
    check "janitor (status gone): exit status 0" same "$janitor_rc" 0
    check "janitor (status gone): rw disk's lease deleted" expect_lease "$rw_lease" deleted released "$guest" shutoff
    check "janitor (status gone): shareable disk's lease deleted" expect_lease "$shared_lease" deleted released "$guest" shutoff
    check "janitor (status gone): nothing left but the lockspace" same "$(lease_files)" ""
    say "step 5: status file removed by the restarted libvirtd: janitor deleted $(summary deleted) leases"
}

if [ -z "${VSC_E2E_INSIDE:-}" ]; then outside "$@"; else inside; fi
