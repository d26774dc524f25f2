#!/bin/bash
# Tests/lib/test-functions.sh: what the test scripts share, in the manner of
# systemd's test/test-functions. Every script that needs a sandbox, a private
# sanlock daemon, leases or checks (check, finish: see "checks" below)
# sources it:
#
#   # shellcheck source=SCRIPTDIR/../lib/test-functions.sh
#   . "$(dirname "$0")/../lib/test-functions.sh"
#
# Sourcing defines functions and a few variables (ls_name, sandbox, held_pid,
# tf_passed, tf_failed, tf_stop_at_first_failure), opens fds 7 and 8 (the
# report) and changes no shell option: each script keeps its own
# `set -euo pipefail`. (Arming the EXIT trap, which make_sandbox, on_exit,
# start_sanlock and check do, adds set -E for the ERR trap.) The functions
# report failures by their exit status and a message on stderr, never by
# exiting (but check, skip and finish, which end tests), so they also work
# inside `if`/`||`, where bash ignores set -e.
#
# Functions that talk to a sanlock daemon take its run directory (its
# SANLOCK_RUN_DIR) as their first argument, not one global, so that a harness
# with several "hosts" (two daemons sharing a lease directory, see docs/testing.md,
# "Two hosts") can drive each by name.
#
# Run rather than sourced, it is a command for callers that are not bash (the
# Swift integration tests' SanlockTestHost), so that the daemon recipe exists
# once:
#   test-functions.sh sanlock-daemon [-N] [-u USER] [-l LOG_DIR] RUN_DIR HOST_NAME
#       becomes a private sanlock daemon (exec: the caller's child process is
#       the daemon itself, and the caller reaps it); output in RUN_DIR/daemon.out
#   test-functions.sh wait-sanlock RUN_DIR [PID]
#       returns once that daemon answers; fails at once if PID dies, or after 60 s
#   test-functions.sh guest-xml [OPTION...] NAME
#       libvirt's status XML (or definition) of a guest (see guest_xml)

# libvirt's lockspace: every lease of auto_disk_leases lives in it.
ls_name=__LIBVIRT__DISKS__

# How many 50 ms polls a wait makes before it gives up: 60 s. These waits
# are hang guards, not speed goals: a daemon answers, a lease is granted, a
# holder goes in well under a second on an idle machine, but a shared CI
# machine may be many times slower, and a test must not fail for that
# (speed is measured by make bench, never asserted by a test).
tf_patience=1200

# ------------------------------------------------------------ checks ------
# One convention for every script that asserts:
#   check DESCRIPTION COMMAND...  runs COMMAND; one line, "[  12.3s] ok: ..."
#                                 or "[  12.3s] FAIL: ...", and a count
#   same ACTUAL EXPECTED          a COMMAND for check: on a difference, both
#                                 values below the FAIL line
#   quietly COMMAND...            a COMMAND for check: COMMAND's output only
#                                 if it fails, below the FAIL line
#   say TEXT / note TEXT          a line of the report, with the time / indented
#   step NUMBER TITLE             a timed step (optional)
#   skip MESSAGE                  this machine cannot run the test
#   finish NAME [SECONDS]         the ending: each step's time, a warning past
#                                 SECONDS, "NAME: N passed, M failed", exit 1 if
#                                 a check failed
# One setting, tf_stop_at_first_failure: "no" counts a failure and goes on,
# so that one run shows every failure (the ops checks); "yes" ends the script
# at its first failed check, for a test whose later checks build on the
# earlier ones (the end-to-end tests). Such a script calls finish last in
# its on_exit hook, which every way out runs, so the summary comes after the
# teardown, and is there however the script ended.
#
# The report goes to fd 7, a copy of the script's stdout made when it sources
# this file (fd 8 keeps stderr): a check inside a function whose output is
# redirected (`check ... >/dev/null`), and the EXIT trap, still reach the log.
# The ERR trap (with set -E: in functions too) notes where a command last
# failed, so that an exit no check explains (set -e) is a "FAIL: unexpected
# error at line N" rather than a silent stop.
tf_stop_at_first_failure=no
tf_passed=0
tf_failed=0
tf_t0=$EPOCHREALTIME
tf_timings=""                   # ", step 1 2.0 s, ..."
_tf_step="" _tf_step_start=""
_tf_reporting="" _tf_ended="" _tf_finished="" _tf_exiting="" _tf_last_error=""
_tf_checking="" _tf_held=()
if [ "${BASH_SOURCE[0]}" != "$0" ]; then exec 7>&1 8>&2; fi

# Microseconds since SINCE (an EPOCHREALTIME, whose decimal separator is the
# locale's; default tf_t0): integers, so no awk per line.
_tf_us() {
    local now=${EPOCHREALTIME//[!0-9]/} since=${1:-$tf_t0}
    since=${since//[!0-9]/}
    echo $((10#$now - 10#$since))
}
# elapsed [SINCE]: seconds since SINCE, as printf %5.1f writes them.
elapsed() {
    local tenths=$((($(_tf_us "${1:-}") + 50000) / 100000))
    printf '%3d.%d' $((tenths / 10)) $((tenths % 10))
}
say() { _tf_line "[$(elapsed)s] $*"; }
note() {
    local line
    while IFS= read -r line; do _tf_line "         $line"; done <<<"$*"
}
# While a check's command runs, its notes (same's expected and actual) wait
# for the check's own line, so that they read as its explanation.
_tf_line() {
    if [ "$_tf_checking" = "$BASHPID" ]; then _tf_held+=("$1"); else printf '%s\n' "$1" >&7; fi
}

# same ACTUAL EXPECTED: succeeds when they are equal, else notes both.
same() { [ "$1" = "$2" ] || { note "expected: $2"; note "actual:   $1"; return 1; }; }

# quietly COMMAND...: a COMMAND for check: COMMAND with its output (stdout
# and stderr) held back in tf_output, for the script to read from, and its
# last 40 lines below the FAIL line if it fails.
tf_output=""
quietly() {
    local status=0
    tf_output=$("$@" 2>&1) || status=$?
    [ "$status" = 0 ] || note "$(tail -n 40 <<<"$tf_output")"
    return "$status"
}

# check DESCRIPTION COMMAND...: DESCRIPTION says what must hold. It returns 0
# whenever it returns: under set -e a failure must not end a script that goes
# on; a script that needs the outcome tests the condition itself.
check() {
    local description=$1 status=0 line
    shift
    _tf_report
    _tf_checking=$BASHPID _tf_held=()
    "$@" || status=$?
    _tf_checking=""
    if [ "$status" = 0 ]; then
        tf_passed=$((tf_passed + 1))
        say "ok: $description"
    else
        tf_failed=$((tf_failed + 1))
        say "FAIL: $description"
    fi
    for line in "${_tf_held[@]}"; do printf '%s\n' "$line" >&7; done
    _tf_held=()
    # (Never from the EXIT trap: an exit there would skip the cleanup.)
    if [ "$status" != 0 ] && [ "$tf_stop_at_first_failure" = yes ] && [ -z "$_tf_exiting" ]; then
        _tf_ended=1
        exit 1
    fi
    return 0
}

# step NUMBER TITLE: starts a step (and ends the one before); finish lists
# each step's time.
step() {
    _tf_report
    _tf_end_step
    _tf_step="step $1" _tf_step_start=$EPOCHREALTIME
    say "step $1: $2"
}
_tf_end_step() {
    local took
    [ -n "$_tf_step" ] || return 0
    took=$(elapsed "$_tf_step_start")
    tf_timings="$tf_timings, $_tf_step ${took// /} s"
    _tf_step=""
}

# The first check or step: from here on every exit ends with a summary.
_tf_report() {
    _tf_reporting=1
    [ -n "$_tf_exiting" ] || _tf_arm
}

# An exit status no check, finish or skip accounts for is a failure. STATUS
_tf_unexpected() {
    [ "$1" != 0 ] && [ -z "$_tf_ended" ] || return 0
    _tf_ended=1
    tf_failed=$((tf_failed + 1))
    case $1 in
        129|130|141|143) say "FAIL: interrupted (exit $1)" ;;
        *) say "FAIL: unexpected error at ${_tf_last_error:-an unknown place (exit $1)}" ;;
    esac
}

# skip MESSAGE: this machine cannot run the test: exit 0 with a message. Under
# CI (CI=true) a skip would hide a broken setup, so it is a failure there.
skip() {
    _tf_ended=1
    if [ "${CI:-}" = true ]; then
        tf_failed=$((tf_failed + 1))
        say "FAIL: $*"
        exit 1
    fi
    _tf_finished=1
    say "skipped: $*"
    exit 0
}

# finish NAME [SECONDS]: the summary; SECONDS is a budget whose excess is
# reported, never failed (speed is not asserted: see tf_patience). At the end
# of a script it exits, 1 if a check failed; in an on_exit hook the EXIT
# trap's exit status says so.
finish() {
    local name=$1 limit=${2:-} total
    [ -z "$_tf_finished" ] || return 0
    [ -z "$_tf_exiting" ] || _tf_unexpected "$tf_exit_status"
    _tf_finished=1 _tf_ended=1
    _tf_end_step
    total=$(elapsed)
    [ -z "$tf_timings" ] || say "timings: ${tf_timings#, }; total ${total// /} s"
    if [ -n "$limit" ] && [ "$(_tf_us)" -gt $((limit * 1000000)) ]; then
        say "warning: the $name took more than its $limit s"
    fi
    say "$name: $tf_passed passed, $tf_failed failed"
    [ -n "$_tf_exiting" ] || exit $((tf_failed > 0))
}

# need_root WHY: the tests start daemons and use mount namespaces.
need_root() {
    [ "$(id -u)" = 0 ] || { echo "$1: run it as root" >&2; exit 1; }
}

# ------------------------------------------------------------ sandbox -----
# One directory per run under /var/tmp (sanlock opens leases with O_DIRECT,
# which tmpfs refuses), and one EXIT trap that undoes everything: the
# scripts' own steps (on_exit), then the lease holders and sanlock daemons
# this shell started, then the sandbox. Once checks have run, it first
# reports an exit no check explains, and last the summary if finish did not
# run; the exit status is kept, but 0 becomes 1 if a check failed. The daemons
# get SIGKILL, not an orderly shutdown (1-2 s each): their lockspace and
# leases are removed with the sandbox, and without a watchdog (-w 0) a killed
# daemon harms nothing.
sandbox=""
_tf_hooks=()
_tf_holders=()
declare -A _tf_daemon_pid=() _tf_daemon_via=() _tf_daemon_user=()
_tf_armed=""

# make_sandbox PREFIX: creates /var/tmp/PREFIX-XXXXXX, its path in $sandbox.
make_sandbox() {
    sandbox=$(mktemp -d "/var/tmp/$1-XXXXXX") || return 1
    _tf_arm
}

# on_exit CODE: shell code (usually a function name) the trap runs first, in
# the order given: what the script started that the library does not know
# (libvirtd, a namespace, a lock holder). It runs with set +eu; the script's
# exit status is in $tf_exit_status.
on_exit() {
    _tf_hooks+=("$1")
    _tf_arm
}

_tf_arm() {
    [ -z "$_tf_armed" ] || return 0
    _tf_armed=1
    trap _tf_exit EXIT
    set -E
    trap '_tf_last_error="line $LINENO: $BASH_COMMAND (exit $?)"' ERR
    # A signal ends the script through the EXIT trap too (SIGPIPE: a reader
    # such as `| head` went away).
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 141' PIPE
    trap 'exit 143' TERM
}

_tf_exit() {
    local status=$? hook pid run name=${0##*/}
    tf_exit_status=$status
    trap - EXIT ERR
    trap '' HUP INT PIPE TERM
    set +eEu
    _tf_exiting=1
    # An exit from inside a redirected function (a failed check's
    # `>/dev/null`) would take the hooks' output and the summary with it.
    exec 1>&7 2>&8
    [ -z "$_tf_reporting" ] || _tf_unexpected "$status"
    for hook in "${_tf_hooks[@]}"; do eval "$hook"; done
    [ -z "$_tf_reporting" ] || finish "${name%.sh}"
    [ "$status" != 0 ] || [ "$tf_failed" = 0 ] || status=1
    for pid in "${_tf_holders[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null    # reaped: no "Killed" line from bash
    done
    for run in "${!_tf_daemon_pid[@]}"; do kill_sanlock "$run"; done
    [ -z "$sandbox" ] || rm -rf "$sandbox"
    exit "$status"
}

# Whether PID is a process that has not exited: kill -0 also succeeds on a
# zombie, which a daemon we did not start (or did not reap yet) can be. While
# a process execs (the daemon's env, unshare, sh, sanlock chain),
# /proc/PID/status can fail to read for a moment (measured: 4 of 2400 polls);
# kill -0 said it exists, so it is alive then.
_tf_alive() {
    local key value
    kill -0 "$1" 2>/dev/null || return 1
    { while read -r key value _; do
        if [ "$key" = State: ]; then [ "$value" != Z ]; return; fi
    done <"/proc/$1/status"; } 2>/dev/null
    return 0
}

# A daemon or a holder started by a script must not keep the script's other
# descriptors open (the report on fds 7 and 8, a pipe to make): only 0, 1
# and 2 go along.
_tf_close_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        case $fd in 0|1|2) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
    done
}

# ------------------------------------------------------------ sanlock -----
# A private sanlock daemon (docs/testing.md, "Daemon tests"): its own SANLOCK_RUN_DIR (socket and
# pid file), no watchdog (-w 0), SANLOCK_PRIVILEGED=0 (else it fails to set
# the memlock limit here), and its own /var/log through a mount namespace:
# the log path /var/log/sanlock.log is hard-coded, and daemons must not
# share it. A fixed host name (-e) per host id keeps a re-join after a crash
# from waiting 8 × io_timeout + 60 s.

# Sets _tf_cmd to the daemon's command line. NAMESPACE (yes/no) USER LOG_DIR RUN_DIR HOST_NAME
_tf_daemon_command() {
    if [ "$1" = yes ]; then
        # shellcheck disable=SC2016  # expanded by that sh
        _tf_cmd=(env SANLOCK_RUN_DIR="$4" SANLOCK_PRIVILEGED=0 unshare -m --propagation private sh -c
                 'mount --bind "$1" /var/log && exec sanlock daemon -D -w 0 -U "$2" -G "$2" -l 0 -e "$3"'
                 sh "$3" "$2" "$5")
    else
        _tf_cmd=(env SANLOCK_RUN_DIR="$4" SANLOCK_PRIVILEGED=0 sanlock daemon -D -w 0 -U "$2" -G "$2" -l 0 -e "$5")
    fi
}

# Parses [-N] [-u USER] [-l LOG_DIR] [-o OUTPUT] [-x VIA] RUN_DIR HOST_NAME
# into _tf_opt_*; the options are start_sanlock's.
_tf_daemon_options() {
    local opt OPTIND=1 OPTARG
    _tf_opt_ns=yes _tf_opt_user=root _tf_opt_log="" _tf_opt_out="" _tf_opt_via=""
    while getopts Nu:l:o:x: opt; do
        case $opt in
            N) _tf_opt_ns=no ;;
            u) _tf_opt_user=$OPTARG ;;
            l) _tf_opt_log=$OPTARG ;;
            o) _tf_opt_out=$OPTARG ;;
            x) _tf_opt_via=$OPTARG ;;
            *) return 2 ;;
        esac
    done
    shift $((OPTIND - 1))
    [ $# = 2 ] || { echo "usage: start_sanlock [-N] [-u USER] [-l LOG_DIR] [-o OUTPUT] [-x VIA] RUN_DIR HOST_NAME" >&2; return 2; }
    _tf_opt_run=$1 _tf_opt_name=$2
    if [ "$_tf_opt_ns" = yes ]; then _tf_opt_log=${_tf_opt_log:-$1/log}; else _tf_opt_log=""; fi
    _tf_opt_out=${_tf_opt_out:-$1/daemon.out}
}

# start_sanlock [-N] [-u USER] [-l LOG_DIR] [-o OUTPUT] [-x VIA] RUN_DIR HOST_NAME
# Starts a daemon in the background and returns once it answers; the EXIT
# trap kills it (armed here if make_sandbox did not). Options, for daemons that live elsewhere:
#   -N         no mount namespace of its own: the caller's /var/log is
#              private already (a test that runs in a namespace, like libvirt)
#   -u USER    run as USER and group USER (as Debian's package runs it:
#              sanlock); lease files are then made USER's, mode 0600
#   -l LOG_DIR the directory bound over /var/log (default RUN_DIR/log)
#   -o OUTPUT  the daemon's stdout and stderr (default RUN_DIR/daemon.out)
#   -x VIA     a command or function that runs its arguments where the daemon
#              lives (e.g. nsenter into a test namespace); every later
#              command for this RUN_DIR (sanlock_at, make_lease, ...) goes
#              through it too. RUN_DIR and LOG_DIR are paths seen there;
#              OUTPUT is a path seen here (give -o: RUN_DIR may not be).
start_sanlock() {
    # The trap that kills it, even in a script that made no sandbox.
    _tf_arm
    _tf_daemon_options "$@" || return
    local run=$_tf_opt_run name=$_tf_opt_name via=$_tf_opt_via pid
    _tf_daemon_command "$_tf_opt_ns" "$_tf_opt_user" "$_tf_opt_log" "$run" "$name"
    _tf_daemon_via[$run]=$via
    _tf_daemon_user[$run]=$_tf_opt_user
    _tf_via "$run" mkdir -p "$run" ${_tf_opt_log:+"$_tf_opt_log"} || return 1
    # Without VIA the subshell execs (env, unshare, sh all exec too): $! is
    # the daemon itself.
    (
        _tf_close_fds
        if [ -n "$via" ]; then "$via" "${_tf_cmd[@]}"; else exec "${_tf_cmd[@]}"; fi
    ) >"$_tf_opt_out" 2>&1 </dev/null &
    pid=$!
    _tf_daemon_pid[$run]=$pid
    if ! wait_sanlock "$run" "$pid"; then
        sed 's/^/  | /' "$_tf_opt_out" >&2
        kill_sanlock "$run"
        return 1
    fi
}

# exec_sanlock [-N] [-u USER] [-l LOG_DIR] RUN_DIR HOST_NAME: this process
# becomes the daemon (what `test-functions.sh sanlock-daemon` runs). It keeps
# the descriptors its caller gave it: Foundation's Process learns that its
# child exited from the EOF on a socket the child inherits; closed early,
# Foundation blocks in waitpid() and no Process of the test ever ends.
exec_sanlock() {
    _tf_daemon_options "$@" || return
    [ -z "$_tf_opt_via" ] || { echo "exec_sanlock: no -x" >&2; return 2; }
    _tf_daemon_command "$_tf_opt_ns" "$_tf_opt_user" "$_tf_opt_log" "$_tf_opt_run" "$_tf_opt_name"
    mkdir -p "$_tf_opt_run" ${_tf_opt_log:+"$_tf_opt_log"} || return 1
    exec "${_tf_cmd[@]}" >"$_tf_opt_out" 2>&1 </dev/null
}

# wait_sanlock RUN_DIR [PID]: polls `sanlock client status` every 50 ms (a
# daemon answers after ~0.1 s); fails if PID exits first, or after 60 s.
# Another daemon answering on RUN_DIR (one left over) does not count: the
# answer must come from PID, whose pid file says so (not checked with -x:
# there PID is VIA's, and the pid file names a pid of another namespace).
wait_sanlock() {
    local run=$1 pid=${2:-} owner
    for _ in $(seq "$tf_patience"); do
        if sanlock_at "$run" status >/dev/null 2>&1; then
            [ -n "$pid" ] || return 0
            if [ -n "${_tf_daemon_via[$run]:-}" ]; then _tf_alive "$pid" && return 0
            else read -r owner 2>/dev/null <"$run/sanlock.pid" && [ "$owner" = "$pid" ] && return 0
            fi
        fi
        if [ -n "$pid" ] && ! _tf_alive "$pid"; then
            echo "the sanlock daemon of $run (pid $pid) exited before it answered" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "the sanlock daemon of $run does not answer after 60 s" >&2
    return 1
}

# stop_sanlock RUN_DIR: an orderly stop: `shutdown -f 1` (plain shutdown is
# ignored while a lockspace is joined), which takes 1-2 s, then SIGKILL after
# 10 s. Like kill_sanlock, only for a daemon started by this shell: for any
# other run directory it does nothing (it must never reach the machine's own
# /run/sanlock).
stop_sanlock() {
    local run=$1 pid=${_tf_daemon_pid[$1]:-}
    [ -n "$pid" ] || return 0
    _tf_via "$run" env SANLOCK_RUN_DIR="$run" timeout 10 sanlock client shutdown -f 1 >/dev/null 2>&1 || true
    for _ in $(seq 200); do _tf_alive "$pid" || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _tf_forget_daemon "$run"
}

# kill_sanlock RUN_DIR: a host crash: SIGKILL, nothing is released; its
# leases stay owned by its host id until another host sees it dead. (With -x
# the signal reaches only VIA's process: end the daemon where it lives, e.g.
# with its namespace.)
kill_sanlock() {
    local pid=${_tf_daemon_pid[$1]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _tf_forget_daemon "$1"
}

_tf_forget_daemon() {
    unset "_tf_daemon_pid[$1]" "_tf_daemon_via[$1]" "_tf_daemon_user[$1]"
}

# _tf_via RUN_DIR COMMAND...: COMMAND where that daemon lives.
_tf_via() {
    local via=${_tf_daemon_via[$1]:-}
    shift
    if [ -n "$via" ]; then "$via" "$@"; else "$@"; fi
}

# sanlock_at RUN_DIR ARGS...: `sanlock client ARGS` on that daemon. Every
# client must name it: one without SANLOCK_RUN_DIR silently talks to the
# machine's /run/sanlock.
sanlock_at() {
    local run=$1
    shift
    _tf_via "$run" env SANLOCK_RUN_DIR="$run" sanlock client "$@"
}

# ------------------------------------------------------------ leases ------
# lease_name DISK_PATH: libvirt's lease file and resource name for a disk:
# the MD5 of the path exactly as the domain XML writes it.
lease_name() { printf %s "$1" | md5sum | cut -c1-32; }

# sanlock_escape PATH: sanlock's resource strings separate fields with ':',
# so a ':' in a path is written '\:'. (An unparsable -r is silently ignored
# by `sanlock client command`, which then runs its command with no lock.)
sanlock_escape() { printf '%s\n' "${1//:/\\:}"; }

# resource LEASE_DIR NAME [SH]: "LOCKSPACE:NAME:PATH:0", shared with SH.
resource() {
    printf '%s:%s:%s:0%s\n' "$ls_name" "$2" "$(sanlock_escape "$1/$2")" "${3:+:$3}"
}

# A zero-filled 1 MiB file, as libvirt writes before sanlock_init; made the
# daemon's user's, 0600, when it does not run as root (libvirt chowns to
# qemu-sanlock.conf's user). RUN_DIR PATH
_tf_zero_file() {
    local user=${_tf_daemon_user[$1]:-root}
    _tf_via "$1" dd if=/dev/zero of="$2" bs=1M count=1 status=none || return 1
    [ "$user" = root ] || { _tf_via "$1" chown "$user:$user" "$2" && _tf_via "$1" chmod 0600 "$2"; }
}

# init_lockspace RUN_DIR LEASE_DIR: a fresh lockspace file (once per
# directory, by the first host), io_timeout 1.
init_lockspace() {
    _tf_zero_file "$1" "$2/$ls_name" || return 1
    sanlock_at "$1" init -o 1 -s "$ls_name:0:$(sanlock_escape "$2/$ls_name"):0" >/dev/null
}

# join_lockspace RUN_DIR LEASE_DIR HOST_ID: joins with io_timeout 1: about
# 3 s (21 s with the default 10). It returns once the daemon can list the
# lockspace's hosts: for about a second after a join it answers "hosts not
# ready" (sanlock_get_hosts: EAGAIN), which a janitor run then waits out,
# and a test's timings and ages with it.
join_lockspace() {
    local hosts
    sanlock_at "$1" add_lockspace -o 1 -s "$ls_name:$3:$(sanlock_escape "$2/$ls_name"):0" >/dev/null || return 1
    for _ in $(seq "$tf_patience"); do
        hosts=$(sanlock_at "$1" gets -h 1 2>/dev/null) || true
        grep -q '^h ' <<<"$hosts" && return 0
        sleep 0.05
    done
    echo "the sanlock daemon of $1 lists no hosts 60 s after joining" >&2
    return 1
}

# make_lease RUN_DIR LEASE_DIR NAME: a lease file as libvirt makes one:
# 1 MiB of zeros, then sanlock_init through the daemon (~5 ms).
make_lease() {
    _tf_zero_file "$1" "$2/$3" || return 1
    sanlock_at "$1" init -r "$(resource "$2" "$3")" >/dev/null
}

# hold_lease RUN_DIR LEASE_DIR NAME [SH]: a "guest" holding the lease as qemu
# holds its disk's under libvirt: `sanlock client command`, which acquires,
# then runs a sleep. Returns once sanlock granted it; its pid in $held_pid.
# The EXIT trap kills it; release_lease ends it earlier. (Not for a daemon
# started with -x: the holder and its marker file live here.)
held_pid=""
_tf_holds=0
hold_lease() {
    local run=$1 ready
    _tf_arm
    [ -z "${_tf_daemon_via[$run]:-}" ] || { echo "hold_lease: the daemon of $run lives elsewhere (-x)" >&2; return 2; }
    _tf_holds=$((_tf_holds + 1))
    ready=$run/held-$_tf_holds-$3
    (
        _tf_close_fds
        # shellcheck disable=SC2016  # expanded by that sh
        exec env SANLOCK_RUN_DIR="$run" sanlock client command -r "$(resource "$2" "$3" "${4:-}")" \
            -c /bin/sh -c 'touch "$0"; exec sleep 600' "$ready"
    ) >/dev/null 2>"$ready.log" </dev/null &
    held_pid=$!
    track_holder "$held_pid"
    for _ in $(seq "$tf_patience"); do
        [ -e "$ready" ] && return 0
        _tf_alive "$held_pid" || break
        sleep 0.05
    done
    echo "could not hold $3: $(cat "$ready.log" 2>/dev/null)" >&2
    return 1
}

# release_lease PID RUN_DIR: ends a holder (SIGTERM); returns once its daemon
# no longer lists the process, i.e. has released its leases, as when libvirt
# pauses a guest.
release_lease() {
    local status
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_holder "$1"
    for _ in $(seq "$tf_patience"); do
        status=$(sanlock_at "$2" status 2>/dev/null) || return 0
        grep -q "^p $1 " <<<"$status" || return 0
        sleep 0.05
    done
    echo "the sanlock daemon of $2 still lists process $1 after 60 s" >&2
    return 1
}

# files_present DIR NAME... / files_gone DIR NAME...: COMMANDs for check: each
# NAME in DIR is there (is not), with a note for each that is not (is).
files_present() {
    local dir=$1 name
    shift
    for name; do [ -e "$dir/$name" ] || { note "$name is gone"; return 1; }; done
}
files_gone() {
    local dir=$1 name
    shift
    for name; do [ ! -e "$dir/$name" ] || { note "$name is still there"; return 1; }; done
}

# track_holder PID / forget_holder PID: a lease holder the EXIT trap kills
# (hold_lease's, or a script's own, such as the bench's C holder).
track_holder() { _tf_holders+=("$1"); }
forget_holder() {
    local pid kept=()
    for pid in "${_tf_holders[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
    _tf_holders=("${kept[@]}")
}

# ------------------------------------------------------------ libvirt -----
# guest_xml [OPTION...] NAME: the guest XML every harness writes (these
# scripts, the fault harness, the bench and the Swift tests, through the
# command form below), so that there is one idea of what libvirt's files look
# like. By default the status XML of a guest libvirt runs
# (/run/libvirt/qemu/NAME.xml) in its real shape: the comment banner,
# <domstatus> with the private data (monitor, vcpus, a <qemuCaps> block as
# long as a real qemu's, libDir), then the live <domain> with each disk's
# backing chain.
#   --state STATE       <domstatus state=...> (default running)
#   --reason REASON     its reason (default booted when running, else user)
#   --pid PID           qemu's pid (a number; required for a status file)
#   --id N              the domain id (default 1)
#   --async-job JOB     <job async=JOB>: "migration in" on a live migration's
#                       destination
#   --capabilities N    <qemuCaps> flags (default 300)
#   --disk PATH         a file disk, vda, vdb, ... in order; the next three
#                       apply to the disk before them:
#   --readonly          <readonly/>
#   --shareable         <shareable/>
#   --backing PATH      a raw backing file (<backingStore> with a source)
#   --disk-xml XML      <disk> (or other device) elements written as given,
#                       after the --disk ones: a parser test's variants
#   --definition        the persistent definition (/etc/libvirt/qemu/NAME.xml)
#                       instead: no <domstatus>, no private data, no indexes
#   -- NAME             a name that begins with "-"
#   -o FILE             write FILE as libvirt does: FILE.new, then rename, so
#                       a reader sees the old file or the new one, never half
#                       (FILE.new does not end in .xml: libvirt and the tool
#                       skip it); default standard output
# Every name and path is escaped for XML, so a hostile one is written as
# libvirt would write it.
guest_xml() {
    local state=running reason="" pid="" id=1 job="" capabilities=300 definition=no output=""
    local raw_disks="" name="" disk_count=0
    local -a disk_path=() disk_flags=() disk_backing=()
    while [ $# -gt 0 ]; do
        case $1 in
            --state | --reason | --pid | --id | --async-job | --capabilities | --disk | --backing | --disk-xml | -o)
                [ $# -ge 2 ] || { echo "guest_xml: $1 needs a value" >&2; return 2; } ;;
        esac
        case $1 in
            --state) state=$2; shift ;;
            --reason) reason=$2; shift ;;
            --pid) pid=$2; shift ;;
            --id) id=$2; shift ;;
            --async-job) job=$2; shift ;;
            --capabilities) capabilities=$2; shift ;;
            --disk) disk_path+=("$2") disk_flags+=("") disk_backing+=(""); disk_count=$((disk_count + 1)); shift ;;
            --readonly | --shareable)
                [ "$disk_count" -gt 0 ] || { echo "guest_xml: $1 before any --disk" >&2; return 2; }
                disk_flags[disk_count - 1]+="<${1#--}/>" ;;
            --backing)
                [ "$disk_count" -gt 0 ] || { echo "guest_xml: --backing before any --disk" >&2; return 2; }
                disk_backing[disk_count - 1]=$2; shift ;;
            --disk-xml) raw_disks+=$2$'\n'; shift ;;
            --definition) definition=yes ;;
            -o) output=$2; shift ;;
            --) [ $# -eq 2 ] || { echo "guest_xml: -- takes the name, last" >&2; return 2; }
                set -- "$2" ;&
            [!-]* | -)
                [ -z "$name" ] || { echo "guest_xml: two names, '$name' and '$1'" >&2; return 2; }
                name=$1 ;;
            *) echo "guest_xml: unknown option $1" >&2; return 2 ;;
        esac
        shift
    done
    [ -n "$name" ] || { echo "guest_xml: no guest name" >&2; return 2; }
    local number
    for number in "$id" "$capabilities" ${pid:+"$pid"}; do
        [[ $number =~ ^[0-9]{1,9}$ ]] || { echo "guest_xml: '$number' is not a number" >&2; return 2; }
    done
    if [ "$definition" = no ] && [ -z "$pid" ]; then echo "guest_xml: a status file needs --pid" >&2; return 2; fi
    [ -n "$reason" ] || { [ "$state" = running ] && reason=booted || reason=user; }

    # A status file nests the <domain> one level deeper, and names its id.
    local xml_name pad="" domain_id="" indent index disks="" devices=""
    [ "$definition" = yes ] || pad="  " domain_id=" id='$id'"
    indent="$pad    "
    _tf_xml_escape "$name"
    xml_name=$_tf_escaped
    for ((index = 0; index < disk_count; index++)); do
        # vda..vdz, then vdaa..: libvirt's own naming past 26 disks.
        _tf_disk_letters "$index"
        _tf_xml_escape "${disk_path[index]}"
        disks+="$indent<disk type='file' device='disk'>"$'\n'
        disks+="$indent  <driver name='qemu' type='qcow2'/>"$'\n'
        if [ "$definition" = yes ]; then
            disks+="$indent  <source file='$_tf_escaped'/>"$'\n'
        else
            disks+="$indent  <source file='$_tf_escaped' index='$((index * 2 + 2))'/>"$'\n'
            if [ -n "${disk_backing[index]}" ]; then
                _tf_xml_escape "${disk_backing[index]}"
                disks+="$indent  <backingStore type='file' index='$((index * 2 + 1))'><format type='raw'/>"
                disks+="<source file='$_tf_escaped'/><backingStore/></backingStore>"$'\n'
            else
                disks+="$indent  <backingStore/>"$'\n'
            fi
        fi
        disks+="$indent  <target dev='vd$_tf_letters' bus='virtio'/>"$'\n'
        [ -z "${disk_flags[index]}" ] || disks+="$indent  ${disk_flags[index]}"$'\n'
        [ "$definition" = yes ] || disks+="$indent  <alias name='virtio-disk$index'/>"$'\n'
        disks+="$indent</disk>"$'\n'
        devices+="    <device alias='virtio-disk$index'/>"$'\n'
    done
    [ -z "$raw_disks" ] || disks+=$raw_disks

    local xml
    # The banner is libvirt's; a name with "--" would end the comment.
    xml="<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit ${xml_name//--/- -}
or other application using the libvirt API.
-->

"
    # The <domain>: the whole definition, or the last child of <domstatus>.
    local domain
    domain="$pad<domain type='kvm'$domain_id>
$pad  <name>$xml_name</name>
$pad  <memory unit='KiB'>65536</memory>
$pad  <os>
$pad    <type arch='x86_64' machine='pc'>hvm</type>
$pad  </os>
$pad  <devices>
$pad    <emulator>/usr/bin/qemu-system-x86_64</emulator>
$disks$pad  </devices>
$pad</domain>
"
    if [ "$definition" = yes ]; then
        xml+=$domain
    else
        _tf_xml_escape "$state"
        xml+="<domstatus state='$_tf_escaped'"
        _tf_xml_escape "$reason"
        xml+=" reason='$_tf_escaped' pid='$pid'>
  <taint flag='high-privileges'/>
  <monitor path='/var/lib/libvirt/qemu/domain-$id-$xml_name/monitor.sock' type='unix'/>
  <vcpus>
    <vcpu id='0' pid='$((pid + 1))'/>
  </vcpus>
"
        if [ -n "$job" ]; then
            _tf_xml_escape "$job"
            xml+="  <job type='none' async='$_tf_escaped' phase='begin'/>"$'\n'
        fi
        _tf_capabilities "$capabilities"
        xml+="  <qemuCaps>
$_tf_capabilities_xml  </qemuCaps>
  <devices>
$devices  </devices>
  <libDir path='/var/lib/libvirt/qemu/domain-$id-$xml_name'/>
  <blockjobs active='no'/>
$domain</domstatus>
"
    fi
    if [ -z "$output" ]; then
        printf %s "$xml"
    else
        printf %s "$xml" >"$output.new" && mv -f "$output.new" "$output"
    fi
}

# The helpers below set a variable instead of printing: $(...) would fork
# once per name and path, and a bench writes thousands.

# _tf_xml_escape TEXT: _tf_escaped is TEXT as XML text or a quoted attribute.
_tf_xml_escape() {
    # Quoted replacements: bash 5.2 reads a bare & there as "the match".
    _tf_escaped=${1//&/"&amp;"}
    _tf_escaped=${_tf_escaped//</"&lt;"} _tf_escaped=${_tf_escaped//>/"&gt;"}
    _tf_escaped=${_tf_escaped//\'/"&apos;"} _tf_escaped=${_tf_escaped//\"/"&quot;"}
}

# _tf_disk_letters INDEX: _tf_letters is a, b, ..., z, aa, ab, ... (vdX).
_tf_disk_letters() {
    local index=$1 alphabet=abcdefghijklmnopqrstuvwxyz
    _tf_letters=""
    while :; do
        _tf_letters=${alphabet:index % 26:1}$_tf_letters
        index=$((index / 26 - 1))
        [ "$index" -ge 0 ] || break
    done
}

# _tf_capabilities COUNT: _tf_capabilities_xml is that many <flag>s, made
# once per count (a bench writes hundreds of guests with the same block).
_tf_capabilities_count="" _tf_capabilities_xml=""
_tf_capabilities() {
    [ "$1" != "$_tf_capabilities_count" ] || return 0
    local index
    _tf_capabilities_xml=""
    for ((index = 0; index < $1; index++)); do
        _tf_capabilities_xml+="    <flag name='qemu-capability-$index'/>"$'\n'
    done
    _tf_capabilities_count=$1
}

# qemu_sanlock_conf LEASE_DIR HOST_ID [LINE...]: /etc/libvirt/qemu-sanlock.conf
# for automatic disk leases in LEASE_DIR; each LINE is added as it is.
qemu_sanlock_conf() {
    printf 'auto_disk_leases = 1\ndisk_lease_dir = "%s"\nhost_id = %s\n' "$1" "$2"
    [ $# -le 2 ] || printf '%s\n' "${@:3}"
}

# ------------------------------------------------------------ libvirt hosts
# (Added with the two-host test, Tests/EndToEnd/libvirt-two-hosts.sh.)
# A libvirt "host" on this machine (docs/testing.md, "End to end with libvirt", "Two hosts"), for tests that run one
# libvirtd or several sharing a lease directory. Host NAME, made in DIR, is:
#   - a mount and UTS namespace (hostname NAME) whose /etc/libvirt, /run and
#     /var are private (DIR/etc-libvirt, DIR/run, DIR/var), with copies of
#     /etc/passwd and /etc/group that have the accounts Debian's libvirtd
#     looks up; the lease directory and every SHARED directory (all under
#     /var, which the host replaces) appear inside at their own path, so the
#     caller and every host name a disk, and so its lease, alike;
#   - its sanlock daemon (start_sanlock, run directory DIR/run/sanlock: the
#     host's /run/sanlock, libvirt's and sanlock's default), in the caller's
#     mount namespace, which has the same lease paths;
#   - libvirtd with the sanlock lock manager (auto_disk_leases = 1, host_id
#     HOST_ID, io_timeout 2), a host_uuid of its own (live migration refuses
#     two hosts with one) and a debug log of its locking module in
#     DIR/var/log/libvirt/libvirtd.log.
# Every process stays in the caller's PID namespace: sanlock takes the pids
# libvirtd hands it (a resumed guest's qemu) as pids of its own namespace.
# Run the caller in a private PID and network namespace: qemu daemonizes and
# is reparented to its PID 1, and a migration listens on the loopback. The
# EXIT trap stops every host still running.
# run_in_namespaces UNSHARE_OPTION... -- COMMAND...: runs COMMAND as the
# first process of new namespaces (unshare OPTIONS --fork --kill-child; give
# --pid --mount-proc among them) and returns its exit status. If the caller
# ends first (interrupted), the EXIT trap kills that first process, and with
# it the kernel ends everything in its PID namespace: libvirtd, qemu, sanlock
# daemons, whatever it started. (Better than a signal trap inside: bash 5.2
# can run a trap while it parses a $(...) and then fails with a syntax error.)
_tf_ns_child=""
run_in_namespaces() {
    local options=() status=0
    while [ $# -gt 0 ] && [ "$1" != -- ]; do options+=("$1"); shift; done
    shift
    on_exit _tf_kill_namespaces
    unshare "${options[@]}" --fork --kill-child "$@" &
    _tf_ns_child=$!
    wait "$_tf_ns_child" || status=$?
    _tf_ns_child=""
    return "$status"
}

_tf_kill_namespaces() {
    local inner=""
    [ -n "$_tf_ns_child" ] && kill -0 "$_tf_ns_child" 2>/dev/null || return 0
    read -r inner _ 2>/dev/null <"/proc/$_tf_ns_child/task/$_tf_ns_child/children"
    # without a first process yet, --kill-child takes it along with unshare
    kill -KILL "${inner:-$_tf_ns_child}" 2>/dev/null
    wait "$_tf_ns_child" 2>/dev/null
    echo "interrupted: the test's namespaces were killed with everything in them" >&2
}

# libvirt_accounts DIR: DIR/passwd and DIR/group, copies of this machine's
# with what the Debian build of libvirtd needs before it reads qemu.conf: the
# user and group libvirt-qemu, and the group kvm as in Debian.
libvirt_accounts() {
    local group gid
    cp /etc/passwd "$1/passwd" && cp /etc/group "$1/group" || return 1
    for group in kvm libvirt-qemu; do
        grep -q "^$group:" "$1/group" || echo "$group:x:$(_tf_free_id "$1/group" 64055):" >>"$1/group"
    done
    grep -q '^libvirt-qemu:' "$1/passwd" && return 0
    gid=$(grep '^libvirt-qemu:' "$1/group" | cut -d: -f3)
    echo "libvirt-qemu:x:$(_tf_free_id "$1/passwd" 64055):$gid:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin" >>"$1/passwd"
}

# The first id from FIRST on that no entry of FILE uses. FILE FIRST
_tf_free_id() {
    local id=$2
    while cut -d: -f3 "$1" | grep -qx "$id"; do id=$((id + 1)); done
    echo "$id"
}

# libvirt_qemu_conf: /etc/libvirt/qemu.conf for a test libvirtd
# (docs/testing.md, "End to end with libvirt"): the sanlock lock manager, qemu as root with no security driver,
# cgroups, namespaces or ownership changes, qemu's output to a file.
libvirt_qemu_conf() {
    cat <<'CONF'
lock_manager = "sanlock"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
CONF
}

# libvirt_guest_xml NAME DISK_XML...: a guest definition libvirtd can run
# here (docs/testing.md, "End to end with libvirt"): TCG (<domain type='qemu'>), 64 MiB, one vCPU, no OS,
# no USB controller or balloon, with the <disk> elements given (see
# libvirt_disk_xml). Not the status XML of guest_xml: a real definition for
# virsh define.
libvirt_guest_xml() {
    printf '%s\n' "<domain type='qemu'>" "  <name>$1</name>" "  <memory unit='MiB'>64</memory>" "  <vcpu>1</vcpu>" \
        "  <os><type arch='x86_64' machine='pc'>hvm</type></os>" "  <devices>" \
        "    <emulator>/usr/bin/qemu-system-x86_64</emulator>" "${@:2}" \
        "    <controller type='usb' model='none'/>" "    <memballoon model='none'/>" "  </devices>" "</domain>"
}

# libvirt_disk_xml FILE TARGET FORMAT [readonly|shareable]: a virtio file
# disk for libvirt_guest_xml.
libvirt_disk_xml() {
    printf '%s\n' "    <disk type='file' device='disk'>" "      <driver name='qemu' type='$3'/>" \
        "      <source file='$1'/>" "      <target dev='$2' bus='virtio'/>" ${4:+"      <$4/>"} "    </disk>"
}

declare -A _tf_host_dir=() _tf_host_keeper=() _tf_host_libvirtd=()
_tf_host_hook=""

# What a host's first process runs in its new namespaces (see above), then
# it stays, so that the namespaces outlive libvirtd. ARGS: DIR NAME SHARED...
# shellcheck disable=SC2016  # expanded by that bash
_tf_host_setup='set -e
dir=$1 name=$2
shift 2
mount --bind "$dir/passwd" /etc/passwd
mount --bind "$dir/group" /etc/group
mount --bind "$dir/etc-libvirt" /etc/libvirt
mount --bind "$dir/run" /run
mkdir -p /run/lock "$dir/var/tmp" "$dir/var/lib/libvirt" "$dir/var/cache/libvirt" "$dir/var/log/libvirt"
ln -sfn /run "$dir/var/run"
ln -sfn /run/lock "$dir/var/lock"
# The shared directories go into the private /var tree before it covers
# /var, which hides their sources.
for shared; do mkdir -p "$dir$shared" && mount --bind "$shared" "$dir$shared"; done
mount --rbind "$dir/var" /var
hostname "$name"
touch /run/.host-ready
exec sleep infinity'

# start_libvirt_host NAME HOST_ID DIR LEASE_DIR [SHARED_DIR...]: starts host
# NAME (see above) and returns once its libvirtd answers and has joined the
# lockspace (5-8 s). The first libvirtd on a lease directory makes the
# lockspace file: start the hosts of one directory one after another.
start_libvirt_host() {
    local name=$1 id=$2 dir=$3 leases=$4 path keeper
    shift 4
    for path in "$leases" "$@"; do
        case $path in /var/?*) ;; *) echo "start_libvirt_host: $path is not under /var" >&2; return 2 ;; esac
    done
    [ -z "${_tf_host_dir[$name]:-}" ] || { echo "start_libvirt_host: host $name runs already" >&2; return 2; }
    [ -n "$_tf_host_hook" ] || { _tf_host_hook=1; on_exit _tf_stop_libvirt_hosts; }
    _tf_host_dir[$name]=$dir
    mkdir -p "$dir/etc-libvirt" "$dir/run" "$dir/var" && libvirt_accounts "$dir" || return 1
    libvirt_qemu_conf >"$dir/etc-libvirt/qemu.conf"
    qemu_sanlock_conf "$leases" "$id" 'io_timeout = 2' 'user = "root"' 'group = "root"' >"$dir/etc-libvirt/qemu-sanlock.conf"
    printf '%s\n' "host_uuid = \"5a1e0c4b-0000-4000-8000-$(printf %012d "$id")\"" 'log_filters = "1:locking"' \
        'log_outputs = "1:file:/var/log/libvirt/libvirtd.log"' >"$dir/etc-libvirt/libvirtd.conf"
    start_sanlock "$dir/run/sanlock" "$name" || return 1
    (
        _tf_close_fds
        exec unshare --mount --uts --propagation private bash -c "$_tf_host_setup" bash "$dir" "$name" "$leases" "$@"
    ) >"$dir/host.out" 2>&1 </dev/null &
    keeper=$!
    _tf_host_keeper[$name]=$keeper
    for _ in $(seq "$tf_patience"); do
        [ -e "$dir/run/.host-ready" ] && break
        _tf_alive "$keeper" || break
        sleep 0.05
    done
    [ -e "$dir/run/.host-ready" ] || { echo "host $name: its namespace could not be set up: $(cat "$dir/host.out")" >&2; return 1; }
    (
        _tf_close_fds
        exec nsenter -t "$keeper" -m -u --wd=/ -- env SANLOCK_RUN_DIR=/run/sanlock libvirtd
    ) >"$dir/libvirtd.out" 2>&1 </dev/null &
    _tf_host_libvirtd[$name]=$!
    for _ in $(seq 1200); do
        if virsh_at "$name" version >/dev/null 2>&1 &&
            sanlock_at "$dir/run/sanlock" status 2>/dev/null | grep -q "^s $ls_name:$id:"; then
            return 0
        fi
        _tf_alive "${_tf_host_libvirtd[$name]}" || break
        sleep 0.05
    done
    echo "host $name: libvirtd did not answer with the lockspace joined; libvirtd.out:" >&2
    sed 's/^/  | /' "$dir/libvirtd.out" >&2
    return 1
}

# in_libvirt_host NAME COMMAND...: COMMAND in host NAME's namespaces (its
# /etc/libvirt, /run, /var, hostname), with its sanlock daemon as
# SANLOCK_RUN_DIR.
in_libvirt_host() {
    local keeper=${_tf_host_keeper[$1]:-}
    [ -n "$keeper" ] || { echo "in_libvirt_host: no host $1" >&2; return 2; }
    shift
    nsenter -t "$keeper" -m -u --wd=/ -- env SANLOCK_RUN_DIR=/run/sanlock "$@"
}

# libvirt_uri NAME: the URI of host NAME's libvirtd, from the caller (its
# socket through the host's run directory), for virsh -c or as the
# destination of virsh migrate.
libvirt_uri() {
    [ -n "${_tf_host_dir[$1]:-}" ] || { echo "libvirt_uri: no host $1" >&2; return 2; }
    printf 'qemu+unix:///system?socket=%s/run/libvirt/libvirt-sock\n' "${_tf_host_dir[$1]}"
}

# virsh_at NAME ARGS...: virsh on host NAME's libvirtd, bounded to 60 s.
virsh_at() {
    local uri
    uri=$(libvirt_uri "$1") || return
    shift
    timeout 60 virsh -q -c "$uri" "$@"
}

# stop_libvirt_host NAME: stops libvirtd (SIGTERM, SIGKILL after 10 s), kills
# the host's qemu processes (SIGKILL), its sanlock daemon (kill_sanlock) and
# its first process, with which its namespaces go.
stop_libvirt_host() {
    local name=$1 dir=${_tf_host_dir[$1]:-} pid file
    [ -n "$dir" ] || return 0
    pid=${_tf_host_libvirtd[$name]:-}
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 200); do _tf_alive "$pid" || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    for file in "$dir"/run/libvirt/qemu/*.pid; do
        if read -r pid 2>/dev/null <"$file"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    kill_sanlock "$dir/run/sanlock"
    pid=${_tf_host_keeper[$name]:-}
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    unset "_tf_host_dir[$name]" "_tf_host_keeper[$name]" "_tf_host_libvirtd[$name]"
}

_tf_stop_libvirt_hosts() {
    local name
    for name in "${!_tf_host_dir[@]}"; do stop_libvirt_host "$name"; done
}

# ------------------------------------------------------------ as a command
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case ${1:-} in
        sanlock-daemon) shift; exec_sanlock "$@" ;;
        wait-sanlock) shift; wait_sanlock "$@" ;;
        guest-xml) shift; guest_xml "$@" ;;
        *) echo "usage: $0 sanlock-daemon [-N] [-u USER] [-l LOG_DIR] RUN_DIR HOST_NAME | wait-sanlock RUN_DIR [PID] | guest-xml [OPTION...] NAME" >&2; exit 2 ;;
    esac
fi
