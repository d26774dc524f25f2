#!/usr/bin/env python3
"""Fault injection for virt-sanlock-cleanup: every syscall, every occurrence.

Usage (as root; touches nothing of the machine's own sanlock, libvirt or /run):
    Tests/Faults/fault-injection.py BINARY [--quick] [--jobs N] [--report FILE]
        [--kill-iterations N] [--seed N] [--only REGEX] [--strict]

  --quick   the CI subset (about 3 minutes on 2 cores, see 3.)
  --jobs N  parallel slots, each a private sanlock daemon (default 2)
  --report  all results as JSON      --only REGEX  only the matching case ids
  --strict  also count dynamic-loader failures (exit 127), kept deletable
            leases (liveness, see 3.) and crashes inside glibc or the Swift
            runtime on errors from brk, mmap, munmap, mprotect or futex as
            violations
Exit status: 0 no violation, 1 violations, 2 the harness itself failed.

1. Fixture. Each slot is "host 1": a private sanlock daemon (own
   SANLOCK_RUN_DIR, SANLOCK_PRIVILEGED=0, -w 0, /var/log bound to a private
   directory in its own mount namespace, fixed -e faults-slotK-host1) that
   joins lockspace __LIBVIRT__DISKS__ of its own lease directory once
   (init/add_lockspace -o 1, io_timeout 1: ~3 s; a daemon joins a lockspace
   name only once, hence one daemon per slot). Leases are zeroed 1 MiB files
   initialised with `sanlock client init -r`, as libvirt makes them:
     free-1..3  never acquired                                  deletable
     released   acquired and released once by host 1            deletable
     running    held by `sanlock client command -r ... -c /bin/sh -c 'exec
                sleep 100000'`; status XML web1.xml: running, pid = holder
     paused     acquired and released by host 1 (libvirt releases on pause);
                db1.xml: paused, pid = a `sleep` we started
     held       held by a holder process, no XML
   All are back-dated 2 hours after the acquires/releases (the harness waits
   for sanlock's asynchronous release first), so the default --min-age (1h)
   allows deletions; --min-age is never passed. Every run gets
     --config /nonexistent/qemu-sanlock.conf --config-dir /nonexistent
     --lease-dir DIR --status-dir STATUS --format json --metrics-file M/metrics.prom
   plus the slot's SANLOCK_RUN_DIR and SWIFT_BACKTRACE=enable=no (Swift's
   crash backtracer is a child process that strace -f would trace and fault
   too: measured, it then hangs; a crash still prints its "Fatal error" line).
   Between cases the deletable leases are copied back from pristine copies
   that sanlock made (byte-identical, cheaper than asking the daemon) and
   back-dated, and metrics.prom is restored; damaged protected leases or a
   dead holder make the slot rebuild the protected leases from scratch.

2. Reference and injection points. The tool runs three times per
   configuration under `strace -f -o` (full trace, parsed per thread).

   strace 6.1 counts `when=N` PER THREAD (measured; the man page: "accounting
   ... is done per syscall and per tracee"). Each thread starts at 1:
   `inject=pwrite64:error=EIO:when=1` failed the run lock's pwrite64 in the
   main thread AND the leader rewrite of each of the four deletion workers;
   `when=2` injected nothing (no thread makes two). Therefore:
     - a point is (syscall S, N), N = 1 .. the largest number of S calls one
       thread makes (not the process total);
     - an error at (S, N) hits the N-th S of every thread that gets there, in
       one run;
     - a KILL at (S, N) lands on the first thread to reach its N-th S, so the
       workers' calls are shadowed by the main thread's earlier ones (a KILL
       at pwrite64 when=1 always hits the run lock write, never a leader
       rewrite). Hence a second configuration, "serial" = --jobs 1: the scan
       and the deletions then run on the main thread (same code), where
       per-thread is per-process counting and every occurrence can be killed
       exactly. Its points are only the main-thread calls after the prefix
       both configurations share (start-up, configuration, XML, lockspace
       read), which the parallel configuration already sweeps.
   Not injected: execve (strace's own exec of the tool; measured, strace 6.1
   ignores a KILL there). KILL only, no errors: exit, exit_group,
   rt_sigreturn, get*id, set_tid_address, ... (the kernel never fails them;
   exit_group "failing" makes glibc execute hlt: a SIGSEGV about nothing).
   --seccomp-bpf is not used: measured, it silently drops signal=KILL in the
   main thread.

3. Sweep. For every point and fault (KILL, EIO, ENOSPC, EINTR, EACCES):
     strace -f -qq -y -o TRACE -e trace=S,execve -e inject=S:signal=KILL:when=N
   (or error=E), then a normal follow-up run (no strace, same arguments).
   TRACE (only S is traced: short) tells whether the fault fired and which
   call it hit; it replaces `-o /dev/null` for that. Invariants:
     - no protected lease deleted or invalidated (first 4 bytes must be the
       paxos magic 0x06152010 LE), after each run;
     - after the follow-up, no file starting with the cleared magic
       0x11282016 (LE) in the lease directory [safety], and the deletable
       leases gone [liveness: a valid lease the follow-up kept, typically
       too-recent because the faulted run's acquire and sanlock's release
       rewrote it];
     - exit status documented: 0 1 2 3 64 129 130 143, for the injected run
       too unless our KILL killed it. strace exits with the tracee's status
       and re-raises a fatal signal on itself (measured: a tracee killed by
       SIGKILL gives returncode -9 to Python, 137 to a shell), so the wrapped
       status is the tool's. Crashes (132 SIGILL, 133 SIGTRAP, 134 SIGABRT,
       139 SIGSEGV), 141 SIGPIPE and the rest are violations; exit 127 is the
       dynamic loader giving up before main(): reported, counted only with
       --strict (nothing in the tool can avoid it);
     - stdout is JSON for every run not killed (unless the fault was a write
       to stdout and the run exited non-zero); metrics.prom, when present, is
       Prometheus text exposition (a regex per line);
     - no hang: a run is killed after RUN_TIMEOUT (60 s);
     - the command line was not lost: the default lease directory
       /var/lib/libvirt/sanlock showing up in the output means the tool ran
       with its built-in defaults (measured: then a --dry-run deletes).
       The harness hides /var/lib/libvirt and /etc/libvirt, if present,
       behind empty read-only mounts so that such a run cannot reach them.
   A temporary metrics file left behind is a note, not a violation.

   --quick: KILL at every point of both configurations; EIO, ENOSPC, EINTR
   and EACCES at every point of the parallel configuration for the syscalls
   in QUICK_ERROR_SYSCALLS (files, the sanlock socket, signals: openat read
   pread64 pwrite64 write newfstatat getdents64 lseek dup fcntl ioctl mkdir
   unlinkat rename ftruncate fsync flock close socket connect sendto recvfrom
   kill rt_sigaction signalfd4 ..., whichever the tool calls); EIO at every
   serial point of sendto/recvfrom (one sanlock connection carrying several
   requests). Not in --quick: errors on memory, thread, futex, epoll and
   other syscalls. And --quick skips the follow-up when the injected run
   left every file as it was (it died or failed before touching anything):
   the follow-up would just repeat the sanity run on the fresh fixture.
   Without --quick: all five faults at every point of both configurations,
   always a follow-up.

4. Daemon kills (10 with --quick, else 30; --kill-iterations): the fixture
   plus 60 deletable leases, a normal run, the slot's sanlock daemon and its
   helper SIGKILLed 0-300 ms into it (--seed); the daemon restarted with the
   same run directory and -e name, rejoined; the holders restarted (web1.xml
   gets the new pid). Invariants: documented status, JSON, protected leases
   intact; after a follow-up run, nothing invalidated left.

5. Output: one line per phase, one line per violation, violations grouped
   by syscall, fault and what broke, and
     fault injection: N injection points (K syscalls), M runs, V violations in T s
   Outputs (stdout, stderr, trace) of violating cases are kept under
   /var/tmp/vsc-faults-results-XXXXXX/ (printed).

Isolation: one `mktemp -d /var/tmp/vsc-faults-XXXXXX` directory, removed at
the end, also on failure, Ctrl-C, SIGTERM or SIGHUP; every daemon, holder and
run is in a session of its own and killed at the end. The harness re-executes
itself in a private mount namespace and binds a directory over /run there:
the tool's run lock (/run/virt-sanlock-cleanup) is private too. If the
harness itself is SIGKILLed, kill the `sanlock daemon ... -e faults-slot*`
processes and remove /var/tmp/vsc-faults-*.
"""

import argparse
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

LOCKSPACE = "__LIBVIRT__DISKS__"
PAXOS_MAGIC = 0x06152010
CLEARED_MAGIC = 0x11282016
LEASE_SIZE = 1 << 20
BACKDATE_SECONDS = 2 * 3600
RUNTIME_SYSCALLS = {"brk", "mmap", "munmap", "mprotect", "futex"}

# 5: the run completed but its report could not be written to stdout.
DOCUMENTED_STATUSES = {0, 1, 2, 3, 5, 64, 128 + signal.SIGHUP, 128 + signal.SIGINT, 128 + signal.SIGTERM}
ERRORS = ("EIO", "ENOSPC", "EINTR", "EACCES")
# Seconds before a run counts as hung, for every run. A hang guard, not a
# speed goal: a run here takes a fraction of a second, but on a shared, loaded
# CI machine a much tighter bound (it was 20 x the slowest reference run) can
# call a slow run hung. A run that passes never waits for it.
RUN_TIMEOUT = 60
REFERENCE_RUNS = 3        # per configuration: thread scheduling varies a little
BULK_LEASES = 60          # extra deletable leases for the daemon-kill phase

# The kernel never fails these (or failing them means the tool never ran):
# an injected error would only test glibc's reaction to the impossible.
KILL_ONLY_SYSCALLS = {
    "execve", "exit", "exit_group", "rt_sigreturn", "restart_syscall",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
    "set_tid_address", "sched_yield",
}
# strace's own exec of the tool: strace 6.1 does not inject there (measured:
# a KILL at execve#1 is ignored and the tool runs normally).
NOT_INJECTABLE = {"execve"}
# --quick injects the four errors only into these: files, the sanlock socket
# and signals (whichever of them the tool actually calls).
QUICK_ERROR_SYSCALLS = {
    "open", "openat", "openat2", "creat", "read", "pread64", "readv", "preadv", "preadv2",
    "write", "pwrite64", "writev", "pwritev", "pwritev2",
    "stat", "lstat", "fstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getdents64", "lseek", "dup", "dup2", "dup3", "fcntl", "ioctl",
    "mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "ftruncate", "fsync", "fdatasync", "flock", "close", "utimensat",
    "socket", "connect", "sendto", "sendmsg", "recvfrom", "recvmsg", "shutdown",
    "kill", "tgkill", "rt_sigaction", "signalfd4",
}
# --quick also fails these with EIO in the serial configuration: there one
# registered sanlock connection carries all four deletions, the only way to
# see what a failed request does to the next one on the same connection.
QUICK_SERIAL_SOCKET_SYSCALLS = {"sendto", "sendmsg", "recvfrom", "recvmsg"}
SIGNAL_NAMES = {s.value: s.name for s in signal.Signals}

# The shell test library: the one recipe for a private sanlock daemon.
TEST_FUNCTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib", "test-functions.sh")

IMAGES = "/var/lib/libvirt/images/"
# The tool's built-in lease directory: every run names another one, so seeing
# it means the command line was lost.
DEFAULT_LEASE_DIR = "/var/lib/libvirt/sanlock"
# What ld.so says when it exits 127 (measured with injected errors).
LOADER_MESSAGE = re.compile(r"error while loading shared libraries|cannot set up thread-local storage|"
                            r"(^|: )out of memory$|Fatal glibc error", re.M)


def lease_name(disk):
    """libvirt's lease name for a disk: MD5 of the path as written."""
    return hashlib.md5(disk.encode()).hexdigest()


# Role of each lease of the fixture, by name.
DELETABLE = {lease_name(IMAGES + f"free-{i}.qcow2"): f"free-{i}" for i in (1, 2, 3)}
RELEASED = lease_name(IMAGES + "old-guest.qcow2")
DELETABLE[RELEASED] = "released"
RUNNING_DISK = IMAGES + "web1.qcow2"
PAUSED_DISK = IMAGES + "db1.qcow2"
PROTECTED = {
    lease_name(RUNNING_DISK): "running",
    lease_name(PAUSED_DISK): "paused",
    lease_name(IMAGES + "no-xml-holder.qcow2"): "held",
}
BULK = [lease_name(IMAGES + f"bulk-{i:02}.qcow2") for i in range(BULK_LEASES)]
ROLE = {**DELETABLE, **PROTECTED, **{name: "bulk" for name in BULK}}

# Prometheus text exposition, one line at a time.
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
METRIC_LINE = re.compile(
    rf"^(#.*|{METRIC_NAME}(\{{([a-zA-Z_][a-zA-Z0-9_]*=\"(\\.|[^\"\\])*\",?)*\}})? "
    r"([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|NaN|[-+]?Inf)( -?\d+)?)?$")
METRIC_COMMENT = re.compile(rf"^# (HELP {METRIC_NAME} .*|TYPE {METRIC_NAME} (counter|gauge|histogram|summary|untyped))$")


# --------------------------------------------------------------------------
# Processes: everything started is registered so that cleanup can kill it.

class Children:
    """Every long-lived or in-flight child, each in a session of its own so
    that a terminal's Ctrl-C does not reach them and killpg gets all of a
    child's descendants (strace and the tool; a daemon and its helper)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = set()
        self.closed = False

    def start(self, argv, **kwargs):
        # Under the lock, so that nothing starts once kill_all has begun
        # (a slot thread may still be finishing its case).
        with self.lock:
            if self.closed:
                raise HarnessError("stopping: no new processes")
            process = subprocess.Popen(argv, start_new_session=True, **kwargs)
            self.live.add(process)
        return process

    def forget(self, process):
        with self.lock:
            self.live.discard(process)

    def kill(self, process):
        # Once reaped, its number may belong to someone else: leave it.
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.forget(process)

    def kill_all(self):
        with self.lock:
            self.closed = True
            processes = list(self.live)
        for process in processes:
            self.kill(process)


CHILDREN = Children()
STOP = threading.Event()       # set on Ctrl-C / SIGTERM: slots stop taking cases


class HarnessError(Exception):
    """The harness could not do its job (not a finding about the tool)."""


def run(argv, env=None, timeout=30, check=True):
    """A short command (sanlock client ...); its output as text."""
    result = subprocess.run(argv, env=env, timeout=timeout, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def status_text(returncode):
    """A run's status as a shell would say it: 128+N for signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def describe_status(status):
    if status > 128 and status - 128 in SIGNAL_NAMES:
        return f"{status} ({SIGNAL_NAMES[status - 128]})"
    return str(status)


# --------------------------------------------------------------------------
# Lease files.

def magic(path):
    """The first 4 bytes as a little-endian number, or None if unreadable."""
    try:
        with open(path, "rb") as file:
            data = file.read(4)
    except OSError:
        return None
    return int.from_bytes(data, "little") if len(data) == 4 else None


def backdate(path):
    then = time.time() - BACKDATE_SECONDS
    os.utime(path, (then, then))


def escape(path):
    """sanlock's resource strings use ':' as separator."""
    return path.replace(":", "\\:")


# --------------------------------------------------------------------------
# A run of the tool and what it left.

@dataclass
class RunResult:
    label: str
    status: int            # 128+N when killed by signal N
    signal: int | None
    hung: bool
    stdout: str
    stderr: str
    trace: str | None
    seconds: float
    report: dict | None = None
    json_error: str | None = None

    def verdicts(self):
        """name -> (action, reason) from the JSON report."""
        if not self.report:
            return {}
        return {lease.get("name"): (lease.get("action"), lease.get("reason"))
                for lease in self.report.get("leases", []) if isinstance(lease, dict)}


@dataclass
class Case:
    config: str            # "parallel" (default --jobs) or "serial" (--jobs 1)
    syscall: str
    occurrence: int
    fault: str             # KILL or an errno name

    @property
    def id(self):
        return f"{self.config}:{self.syscall}#{self.occurrence}:{self.fault}"

    def inject(self):
        action = "signal=KILL" if self.fault == "KILL" else f"error={self.fault}"
        return f"inject={self.syscall}:{action}:when={self.occurrence}"


@dataclass
class Violation:
    case: str
    syscall: str
    occurrence: int | str
    fault: str
    stage: str             # injected | follow-up | daemon-kill | fixture
    category: str          # safety | status | output | liveness | hang | runtime
    what: str
    hit: str = ""
    outputs: str = ""
    kind: str = ""         # what broke, without the details: for grouping

    def __post_init__(self):
        # A crash when memory management or a futex fails with an error:
        # glibc's malloc and ld.so, glibc's and Swift's locks abort or fault
        # there, before or between the tool's steps, like a KILL (which the
        # follow-up checks); no code of the tool runs in them, and kernels
        # fail futex and brk this way only under injection.
        if self.category == "status" and self.syscall in RUNTIME_SYSCALLS and self.fault != "KILL":
            self.category = "runtime"
        if not self.kind:
            kind = re.sub(r"\b[0-9a-f]{32}\b", "NAME", self.what)
            self.kind = re.sub(r"\d+(\.\d+)? s\b", "N s", kind)

    def line(self):
        hit = f" [hit: {self.hit}]" if self.hit else ""
        where = f" (outputs: {self.outputs})" if self.outputs else ""
        return f"VIOLATION {self.category}: {self.syscall}#{self.occurrence} {self.fault} ({self.case}), {self.stage}: {self.what}{hit}{where}"


# --------------------------------------------------------------------------
# A slot: one private sanlock daemon ("host 1") and its lease directory.

class Slot:
    def __init__(self, index, base, binary):
        self.index = index
        self.binary = binary
        self.dir = os.path.join(base, f"slot{index}")
        self.run_dir = os.path.join(self.dir, "sanlock")
        self.leases = os.path.join(self.dir, "leases")
        self.status_dir = os.path.join(self.dir, "status")
        self.metrics_dir = os.path.join(self.dir, "metrics")
        self.metrics = os.path.join(self.metrics_dir, "metrics.prom")
        self.pristine = os.path.join(self.dir, "pristine")
        self.out = os.path.join(self.dir, "out")
        self.host_name = f"faults-slot{index}-host1"   # fixed: a rejoin after a crash is then quick
        self.env = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
        self.env["SANLOCK_RUN_DIR"] = self.run_dir
        # Swift's crash backtracer is a child process: under strace -f it is
        # traced and faulted too (measured: it then hangs for its 30 s
        # timeout). Off for every run, so that the reference run's syscalls
        # are those of the injected runs; a crash still prints its
        # "Fatal error" line. (A statically linked release build has no
        # backtracer to start anyway.)
        self.env["SWIFT_BACKTRACE"] = "enable=no"
        self.daemon = None
        self.holders = {}      # lease name -> holder process
        self.paused_guest = None
        self.pristine_metrics = os.path.join(self.pristine, "metrics.prom")

    # -- sanlock daemon ----------------------------------------------------

    def sanlock(self, *args, check=True, timeout=30):
        return run(["sanlock", "client", *args], env=self.env, check=check, timeout=timeout)

    def start_daemon(self):
        # The recipe every test shares (Tests/lib/test-functions.sh): this
        # child becomes the daemon, in a mount namespace with its own /var/log.
        self.daemon = CHILDREN.start([TEST_FUNCTIONS, "sanlock-daemon", self.run_dir, self.host_name],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        waited = subprocess.run([TEST_FUNCTIONS, "wait-sanlock", self.run_dir, str(self.daemon.pid)],
                                env=self.env, capture_output=True, text=True)
        if waited.returncode == 0:
            return
        # What the daemon said, on its output and in its log.
        said = ""
        for name in ("daemon.out", "log/sanlock.log"):
            try:
                with open(os.path.join(self.run_dir, name), errors="replace") as out:
                    said += f"{name}: " + " | ".join(out.read().strip().splitlines()[-4:]) + "; "
            except OSError as error:
                said += f"{name}: {error}; "
        raise HarnessError(f"slot {self.index}: sanlock daemon did not start: {waited.stderr.strip()}; {said}")

    def lockspace_spec(self, host_id):
        return f"{LOCKSPACE}:{host_id}:{escape(os.path.join(self.leases, LOCKSPACE))}:0"

    def join(self):
        """Join as host 1, then wait until sanlock lists the host: for about
        a second after a join sanlock_get_hosts answers EAGAIN, and the
        tool's retries would change its syscalls from run to run."""
        self.sanlock("add_lockspace", "-o", "1", "-s", self.lockspace_spec(1), timeout=60)
        deadline = time.time() + 30
        while time.time() < deadline:
            if re.search(r"^1 timestamp [1-9]", self.sanlock("host_status", "-s", LOCKSPACE, check=False), re.M):
                return
            time.sleep(0.05)
        raise HarnessError(f"slot {self.index}: sanlock does not list host 1 after joining")

    def kill_daemon(self):
        """A crash of the daemon: SIGKILL to it and its helper process."""
        CHILDREN.kill(self.daemon)

    def client_status(self):
        """(registered client pids, {resource name: holder pid})."""
        clients, held = set(), {}
        for line in self.sanlock("status", check=False, timeout=10).splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "p" and fields[1] != "-1":
                clients.add(int(fields[1]))
            elif len(fields) >= 4 and fields[0] == "r" and fields[-2] == "p":
                held[fields[1].split(":")[1]] = int(fields[-1])
        return clients, held

    def wait_idle(self, timeout=15):
        """Wait until the daemon has forgotten every client but our holders.
        A killed or exiting tool's connections close at once, but the daemon
        releases the leases they held asynchronously: a run started before
        that would be refused (-EEXIST, "held by this host")."""
        ours = {process.pid for process in self.holders.values()}
        deadline = time.time() + timeout
        while True:
            clients, held = self.client_status()
            if clients <= ours and set(held.values()) <= ours:
                return held
            if time.time() > deadline:
                raise HarnessError(f"slot {self.index}: sanlock still has clients {sorted(clients - ours)} after {timeout} s")
            time.sleep(0.005)

    # -- leases --------------------------------------------------------------

    def make_lease(self, directory, name):
        """As libvirt does: a zeroed 1 MiB file, then sanlock_init."""
        path = os.path.join(directory, name)
        with open(path, "xb") as file:
            file.write(bytes(LEASE_SIZE))
        self.sanlock("init", "-r", f"{LOCKSPACE}:{name}:{escape(path)}:0")
        return path

    def resource(self, name, directory=None):
        return f"{LOCKSPACE}:{name}:{escape(os.path.join(directory or self.leases, name))}:0"

    def acquire_release(self, name, directory=None):
        """Acquire and release once, as a guest that stopped (or paused).
        The daemon releases after the command exits, asynchronously: wait
        for it, or its leader write would come after the back-dating."""
        self.sanlock("command", "-r", self.resource(name, directory), "-c", "/bin/true")
        self.wait_idle()

    def hold(self, name):
        """A guest holding its lease: sanlock client command acquires, then
        execs the command, so the holder's pid is the registered client. An
        acquire refused for a passing reason (an I/O that took longer than
        io_timeout 1 s on a loaded machine, a daemon killed a moment ago
        whose earlier incarnation still shows as owner) is tried again; the
        wait is a hang guard (RUN_TIMEOUT), not a speed goal."""
        output = os.path.join(self.out, f"hold-{name}.log")
        for attempt in range(3):
            with open(output, "w") as log:
                holder = CHILDREN.start(["sanlock", "client", "command", "-r", self.resource(name),
                                         "-c", "/bin/sh", "-c", "exec sleep 100000"],
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.time() + RUN_TIMEOUT
            while time.time() < deadline:
                if self.client_status()[1].get(name) == holder.pid:
                    self.holders[name] = holder
                    return holder
                if holder.poll() is not None:
                    break
                time.sleep(0.02)
            if holder.poll() is None:
                break
            time.sleep(1)
        raise HarnessError(f"slot {self.index}: could not hold {name}: {read_text(output)[-300:]}")

    def write_guest(self, guest, disk, state, reason, pid):
        # The one guest XML writer every harness shares; -o writes NAME.xml.new
        # and renames it, as libvirt does.
        run([TEST_FUNCTIONS, "guest-xml", "--state", state, "--reason", reason, "--pid", str(pid),
             "--disk", disk, "-o", os.path.join(self.status_dir, f"{guest}.xml"), guest])

    # -- fixture -------------------------------------------------------------

    def build(self):
        """Daemon, lockspace, pristine copies of the deletable leases, the
        protected leases with their holders and XML."""
        for directory in (self.leases, self.status_dir, self.metrics_dir, self.pristine, self.out):
            os.makedirs(directory, exist_ok=True)
        self.start_daemon()
        lockspace = os.path.join(self.leases, LOCKSPACE)
        with open(lockspace, "xb") as file:
            file.write(bytes(LEASE_SIZE))
        self.sanlock("init", "-o", "1", "-s", self.lockspace_spec(0))
        self.join()
        for name in list(DELETABLE) + BULK:
            self.make_lease(self.pristine, name)
        self.acquire_release(RELEASED, self.pristine)
        self.build_protected()
        self.restore_deletable()

    def build_protected(self):
        for name in PROTECTED:
            self.make_lease(self.leases, name)
        running, paused, held = PROTECTED
        self.hold(running)
        self.hold(held)
        self.acquire_release(paused)
        self.paused_guest = CHILDREN.start(["sleep", "100000"], stdout=subprocess.DEVNULL)
        self.write_guest("web1", RUNNING_DISK, "running", "booted", self.holders[running].pid)
        self.write_guest("db1", PAUSED_DISK, "paused", "user", self.paused_guest.pid)
        self.wait_idle()
        for name in PROTECTED:
            backdate(os.path.join(self.leases, name))
        time.sleep(0.05)
        fresh = [PROTECTED[name] for name in PROTECTED
                 if time.time() - os.stat(os.path.join(self.leases, name)).st_mtime < BACKDATE_SECONDS / 2]
        if fresh:
            raise HarnessError(f"slot {self.index}: sanlock wrote {fresh} after they were back-dated")

    def rebuild_protected(self):
        """After a protected lease was damaged (already recorded)."""
        for process in list(self.holders.values()) + [self.paused_guest]:
            if process:
                CHILDREN.kill(process)
        self.holders.clear()
        self.wait_idle()
        for name in PROTECTED:
            try:
                os.unlink(os.path.join(self.leases, name))
            except FileNotFoundError:
                pass
        self.build_protected()

    def restart_holders(self):
        """After a daemon restart the holders' registrations are gone."""
        for process in self.holders.values():
            CHILDREN.kill(process)
        names = list(self.holders)
        self.holders.clear()
        for name in names:
            self.hold(name)
        running = next(iter(PROTECTED))
        self.write_guest("web1", RUNNING_DISK, "running", "booted", self.holders[running].pid)

    def restore_deletable(self, bulk=False):
        """Everything but the lockspace and the protected leases goes; the
        deletable leases (and the bulk ones) come back from the pristine
        copies, two hours old; the metrics file as a successful run left it."""
        wanted = list(DELETABLE) + (BULK if bulk else [])
        for entry in os.listdir(self.leases):
            if entry != LOCKSPACE and entry not in PROTECTED:
                path = os.path.join(self.leases, entry)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        for name in wanted:
            path = os.path.join(self.leases, name)
            shutil.copyfile(os.path.join(self.pristine, name), path)
            backdate(path)
        leftovers = []
        for entry in os.listdir(self.metrics_dir):
            if entry != "metrics.prom":
                leftovers.append(entry)
            os.unlink(os.path.join(self.metrics_dir, entry))
        if os.path.exists(self.pristine_metrics):
            shutil.copyfile(self.pristine_metrics, self.metrics)
        return leftovers

    def snapshot(self):
        """What a run could have changed: every entry of the lease and
        metrics directories with inode, size and modification time (sanlock
        and the tool write what they touch, so a touched lease shows)."""
        state = []
        for directory in (self.leases, self.metrics_dir):
            for entry in sorted(os.listdir(directory)):
                if directory == self.leases and entry == LOCKSPACE:
                    continue            # the daemon renews its delta lease all the time
                status = os.lstat(os.path.join(directory, entry))
                state.append((directory, entry, status.st_ino, status.st_size, status.st_mtime_ns))
        return state

    def protected_damage(self):
        """What is wrong with the protected leases and their guests."""
        problems = []
        for name, role in PROTECTED.items():
            path = os.path.join(self.leases, name)
            if not os.path.lexists(path):
                problems.append(f"protected lease {role} ({name}) deleted")
                continue
            value = magic(path)
            if value == CLEARED_MAGIC:
                problems.append(f"protected lease {role} ({name}) invalidated (cleared magic 0x11282016)")
            elif value != PAXOS_MAGIC:
                problems.append(f"protected lease {role} ({name}) damaged: magic {value and hex(value)}")
        return problems

    def guests_alive(self):
        processes = list(self.holders.values()) + [self.paused_guest]
        return all(process and process.poll() is None for process in processes)

    def holders_hold(self, held):
        return all(held.get(name) == process.pid for name, process in self.holders.items())

    def invalidated_present(self):
        found = []
        for entry in sorted(os.listdir(self.leases)):
            path = os.path.join(self.leases, entry)
            if os.path.isfile(path) and not os.path.islink(path) and magic(path) == CLEARED_MAGIC:
                found.append(entry)
        return found

    # -- running the tool ----------------------------------------------------

    def tool_argv(self, config):
        argv = [self.binary, "--config", "/nonexistent/qemu-sanlock.conf", "--config-dir", "/nonexistent",
                "--lease-dir", self.leases, "--status-dir", self.status_dir, "--format", "json",
                "--metrics-file", self.metrics]
        return argv + (["--jobs", "1"] if config == "serial" else [])

    def run_tool(self, label, config="parallel", strace=None, trace_path=None, started=None, timeout=RUN_TIMEOUT):
        """One run; strace is the list of strace options (or None). `started`
        is called with the process right after it started (daemon kills)."""
        stdout = os.path.join(self.out, f"{label}.out")
        stderr = os.path.join(self.out, f"{label}.err")
        argv = self.tool_argv(config)
        if strace is not None:
            argv = ["strace", *strace, "-o", trace_path, "--", *argv]
        begin = time.time()
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = CHILDREN.start(argv, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            if started:
                started(process)
            hung = False
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                hung = True
                CHILDREN.kill(process)
                returncode = process.returncode
            CHILDREN.forget(process)
        result = RunResult(label=label, status=status_text(returncode),
                           signal=-returncode if returncode < 0 else None, hung=hung,
                           stdout=stdout, stderr=stderr, trace=trace_path, seconds=time.time() - begin)
        try:
            with open(stdout, "rb") as file:
                result.report = json.loads(file.read())
        except (ValueError, OSError) as error:
            result.json_error = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        return result


# --------------------------------------------------------------------------
# strace output.

LINE = re.compile(r"^(\d+)\s+(.*)$")
ENTRY = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)$")
RESUMED = re.compile(r"^<\.\.\. ([a-z_][a-z0-9_]*) resumed>(.*)$")


def strace_calls(path):
    """[(tid, syscall, full call text)] in order of entry, with strace's
    `<unfinished ...>` / `<... resumed>` halves put back together."""
    calls, pending = [], {}
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return calls
    for line in lines:
        match = LINE.match(line)
        if not match:
            continue
        tid, rest = int(match.group(1)), match.group(2)
        resumed = RESUMED.match(rest)
        if resumed:
            index = pending.pop(tid, None)
            if index is not None:
                calls[index] = (tid, calls[index][1], calls[index][2] + resumed.group(2))
            continue
        entry = ENTRY.match(rest)
        if not entry:
            continue
        if rest.endswith("<unfinished ...>"):
            pending[tid] = len(calls)
            rest = rest[: -len("<unfinished ...>")]
        calls.append((tid, entry.group(1), rest))
    return calls


def per_thread_counts(calls):
    """({syscall: largest count in one thread}, main thread's sequence)."""
    counts = defaultdict(Counter)
    for tid, name, _ in calls:
        counts[tid][name] += 1
    main = calls[0][0] if calls else None
    largest = Counter()
    for per_thread in counts.values():
        for name, count in per_thread.items():
            largest[name] = max(largest[name], count)
    return largest, [name for tid, name, _ in calls if tid == main]


def injection_hit(case, result):
    """(fired, description of the call it hit) from the run's trace."""
    calls = strace_calls(result.trace) if result.trace else []
    main = calls[0][0] if calls else None
    if case.fault == "KILL":
        if result.signal != signal.SIGKILL:
            return False, ""
        # The killed call never returns: strace shows it unfinished or "= ?".
        candidates = [call for call in calls if call[1] == case.syscall and (call[2].rstrip().endswith("= ?") or "=" not in call[2])]
    else:
        candidates = [call for call in calls if call[1] == case.syscall and "(INJECTED)" in call[2]]
    if not candidates:
        return case.fault == "KILL", ""
    tid, _, text = candidates[0]
    thread = "main" if tid == main else "worker"
    more = f" (+{len(candidates) - 1} more threads)" if len(candidates) > 1 and case.fault != "KILL" else ""
    text = re.sub(r"\s+", " ", text)
    return True, f"{thread}: {text[:150]}{more}"


def injected_stdout_write(result):
    """Did the injected error hit a write to stdout (which the report needs)?"""
    return any(re.match(r"writev?\(1[<,]", text) and "(INJECTED)" in text
               for _, _, text in (strace_calls(result.trace) if result.trace else []))


# --------------------------------------------------------------------------
# Checks.

def metrics_problem(path):
    try:
        text = open(path, errors="replace").read()
    except FileNotFoundError:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if not METRIC_LINE.match(line) or (line.startswith("# ") and line[2:6] in ("HELP", "TYPE") and not METRIC_COMMENT.match(line)):
            return f"metrics file line {number} is not text exposition: {line[:80]!r}"
    if text and not text.endswith("\n"):
        return "metrics file does not end with a newline"
    return None


def run_problems(result, slot, killed_on_purpose=False, stdout_write_failed=False):
    """[(category, what, kind)] about one run's status and outputs. `kind`
    is `what` without the run-specific details, to group violations."""
    if result.hung:
        return [("hang", f"no exit after {result.seconds:.0f} s (killed)", "no exit (hung)")]
    if killed_on_purpose and result.signal == signal.SIGKILL:
        return []
    stderr = read_text(result.stderr)
    if result.status == 127 and LOADER_MESSAGE.search(stderr):
        # The dynamic loader gave up before the tool's first instruction.
        return [("loader", f"exit status 127 from the dynamic loader: {last_line(stderr)}",
                 "exit status 127: the dynamic loader failed before main()")]
    problems = []
    if DEFAULT_LEASE_DIR in stderr or DEFAULT_LEASE_DIR in read_text(result.stdout):
        # Every run names --lease-dir: the command line was lost on the way.
        problems.append(("safety", f"command line lost: ran with the built-in defaults ({last_line(stderr)})",
                         "command line lost: the run used the built-in defaults (lease dir "
                         f"{DEFAULT_LEASE_DIR}, text report, no --status-dir): a --dry-run becomes a cleaning run"))
    elif result.status not in DOCUMENTED_STATUSES:
        message = crash_line(stderr)
        problems.append(("status", f"exit status {describe_status(result.status)} is not documented: {message}",
                         f"exit status {describe_status(result.status)}: {normalised(message)}"))
    elif result.json_error is not None and not (stdout_write_failed and result.status != 0):
        problems.append(("output", f"stdout is not JSON ({result.json_error}); exit {result.status}, stderr: {last_line(stderr)}",
                         f"stdout is not JSON (exit {result.status}): {normalised(last_line(stderr))}"))
    problem = metrics_problem(slot.metrics)
    if problem:
        problems.append(("output", problem, "metrics file is not text exposition"))
    return problems


def read_text(path):
    try:
        with open(path, errors="replace") as file:
            return file.read()
    except (OSError, TypeError):
        return ""


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "(nothing on stderr)"


def crash_line(stderr):
    """What a crashing Swift program said: its "Fatal error" line if any."""
    for line in stderr.splitlines():
        if "Fatal error" in line or "fatal error" in line:
            return line.strip()[:200]
    return last_line(stderr)


def normalised(text):
    """Without pids, fds, addresses and lease names: for grouping."""
    text = re.sub(r"\b[0-9a-f]{32}\b", "NAME", text)
    text = re.sub(r"0x[0-9a-f]+", "0x…", text)
    text = re.sub(r"/var/tmp/vsc-faults-[^/ ]+/slot\d+", "SLOT", text)
    return re.sub(r"\d+", "N", text)[:160]


# --------------------------------------------------------------------------
# The harness.

class Harness:
    def __init__(self, options):
        self.options = options
        self.binary = os.path.realpath(options.binary)
        self.base = None
        self.results_dir = None
        self.slots = []
        self.lock = threading.Lock()
        self.violations = []
        self.notes = Counter()
        self.runs = 0
        self.cases_done = 0
        self.followups_skipped = 0
        self.fired = 0
        self.not_fired = []
        self.case_results = []
        self.points = []
        self.case_timeout = RUN_TIMEOUT
        self.syscalls = set()
        self.timings = {}
        self.threads = []
        self.mounts = []

    # -- output --------------------------------------------------------------

    def say(self, text):
        with self.lock:
            print(text, flush=True)

    def record(self, violation, results=()):
        """Keep the violating case's outputs and print the violation."""
        counted = self.options.strict or violation.category not in self.NOT_COUNTED
        with self.lock:
            if results and counted and not violation.outputs:
                if self.results_dir is None:
                    self.results_dir = tempfile.mkdtemp(prefix="vsc-faults-results-", dir="/var/tmp")
                target = os.path.join(self.results_dir, re.sub(r"[^A-Za-z0-9_.#-]+", "_", violation.case))
                os.makedirs(target, exist_ok=True)
                for result in results:
                    for path in (result.stdout, result.stderr, result.trace):
                        if path and os.path.exists(path):
                            shutil.copy(path, os.path.join(target, os.path.basename(path)))
                violation.outputs = target
            self.violations.append(violation)
            if counted:
                print(violation.line(), flush=True)

    # -- set-up ----------------------------------------------------------------

    def set_up(self):
        start = time.time()
        self.base = tempfile.mkdtemp(prefix="vsc-faults-", dir="/var/tmp")
        # The tool's run lock lives in /run/virt-sanlock-cleanup: give it a
        # private /run (we are in a mount namespace of our own).
        private_run = os.path.join(self.base, "run-root")
        os.makedirs(private_run)
        run(["mount", "--bind", private_run, "/run"])
        self.mounts.append("/run")
        # A run that loses its command line falls back to libvirt's real
        # paths (measured: it happens): hide them from every run.
        for path in ("/var/lib/libvirt", "/etc/libvirt"):
            if os.path.isdir(path):
                run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "vsc-faults-mask", path])
                self.mounts.append(path)
        self.slots = [Slot(index, self.base, self.binary) for index in range(1, self.options.jobs + 1)]
        errors = []

        def build(slot):
            try:
                slot.build()
                self.sanity_run(slot)
            except Exception as error:      # reported below, in the main thread
                errors.append(f"slot {slot.index}: {error}")

        threads = [threading.Thread(target=build, args=(slot,), daemon=True) for slot in self.slots]
        self.threads = threads
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise HarnessError("; ".join(errors))
        self.timings["fixture"] = time.time() - start
        self.say(f"fixture: {len(self.slots)} private sanlock host(s), each joined once; 4 deletable + 3 protected leases "
                 f"({self.base}) in {self.timings['fixture']:.1f} s")

    def sanity_run(self, slot):
        """One normal run on the fresh fixture must delete exactly the four
        deletable leases and exit 0, or nothing below means anything. Its
        metrics file becomes the one every case starts from."""
        slot.wait_idle()
        result = slot.run_tool("sanity")
        slot.wait_idle()
        verdicts = result.verdicts()
        wrong = [f"{ROLE[name]}: {verdicts.get(name)}" for name in DELETABLE if verdicts.get(name, (None,))[0] != "deleted"]
        wrong += [f"{role}: {verdicts.get(name)}" for name, role in PROTECTED.items() if verdicts.get(name, (None,))[0] != "kept"]
        if result.status != 0 or wrong or slot.protected_damage():
            raise HarnessError(f"a normal run on the fresh fixture exited {result.status} and gave {wrong or 'damage'} "
                               f"(stderr: {open(result.stderr).read().strip()[:300]})")
        shutil.copyfile(slot.metrics, slot.pristine_metrics)
        slot.restore_deletable()

    # -- reference: which syscalls, how many per thread -----------------------

    def reference(self):
        start = time.time()
        slot = self.slots[0]
        largest = {"parallel": Counter(), "serial": Counter()}
        mains = {"parallel": [], "serial": []}
        for config in ("parallel", "serial"):
            for attempt in range(REFERENCE_RUNS):
                slot.wait_idle()
                slot.restore_deletable()
                trace = os.path.join(slot.out, f"reference-{config}-{attempt}.trace")
                result = slot.run_tool(f"reference-{config}-{attempt}", config, strace=["-f", "-qq"], trace_path=trace)
                self.runs += 1
                if result.status != 0:
                    raise HarnessError(f"reference run ({config}) exited {result.status}: {last_line(read_text(result.stderr))}")
                counts, main = per_thread_counts(strace_calls(trace))
                largest[config] |= counts          # the larger count of each syscall
                mains[config].append(main)
        slot.wait_idle()
        slot.restore_deletable()
        # The serial configuration repeats the parallel main thread's calls up
        # to where the scan starts: only the calls after that are new points.
        prefix = min(common_prefix(a, b) for a in mains["parallel"] for b in mains["serial"])
        already = Counter(mains["serial"][0][:prefix])
        serial_main = Counter()
        for main in mains["serial"]:
            serial_main |= Counter(main)
        points = [("parallel", name, n) for name, count in sorted(largest["parallel"].items())
                  if name not in NOT_INJECTABLE for n in range(1, count + 1)]
        points += [("serial", name, n) for name, count in sorted(serial_main.items()) if name not in NOT_INJECTABLE
                   for n in range(already[name] + 1, count + 1)]
        self.points = points
        self.syscalls = set(largest["parallel"]) | set(serial_main)
        self.reference_counts = {config: dict(counts) for config, counts in largest.items()}
        self.timings["reference"] = time.time() - start
        parallel = sum(1 for point in points if point[0] == "parallel")
        self.say(f"reference: {len(self.syscalls)} syscalls; parallel (--jobs default): {parallel} points "
                 f"(largest per-thread count of each syscall), serial (--jobs 1): {len(points) - parallel} points "
                 f"after the {prefix} main-thread calls both share; a run is hung after {self.case_timeout:.0f} s; "
                 f"in {self.timings['reference']:.1f} s")

    def cases(self):
        cases = []
        for config, name, occurrence in self.points:
            cases.append(Case(config, name, occurrence, "KILL"))
            if name in KILL_ONLY_SYSCALLS:
                continue
            if not self.options.quick:
                errors = ERRORS
            elif config == "parallel":
                errors = ERRORS if name in QUICK_ERROR_SYSCALLS else ()
            else:
                errors = ("EIO",) if name in QUICK_SERIAL_SOCKET_SYSCALLS else ()
            cases.extend(Case(config, name, occurrence, error) for error in errors)
        if self.options.only:
            cases = [case for case in cases if re.search(self.options.only, case.id)]
        return cases

    # -- the work queue ----------------------------------------------------------

    def on_slots(self, items, handle, every_second=None):
        """Runs handle(slot, item) for every item, one thread per slot taking
        the next item; stops everything at the first exception (a harness
        failure) or Ctrl-C."""
        work = queue.Queue()
        for item in items:
            work.put(item)
        errors = []

        def worker(slot):
            try:
                while not STOP.is_set():
                    try:
                        item = work.get_nowait()
                    except queue.Empty:
                        return
                    handle(slot, item)
            except Exception as error:
                errors.append(f"slot {slot.index}: {type(error).__name__}: {error}")
                STOP.set()

        threads = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in self.slots]
        self.threads = threads
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=1)
            if every_second:
                every_second()
        if errors:
            raise HarnessError("; ".join(errors))
        if STOP.is_set():
            raise KeyboardInterrupt

    # -- the sweep ---------------------------------------------------------------

    def sweep(self):
        start = time.time()
        cases = self.cases()
        # The cases in order, so each slot gets a mix (cheap start-up kills,
        # costly deletion-phase errors) and --jobs balances.
        progress = sys.stdout.isatty()

        def show():
            if progress:
                with self.lock:
                    print(f"\r  {self.cases_done}/{len(cases)} cases", end="", flush=True)

        self.on_slots(cases, self.run_case, every_second=show)
        if progress:
            print("\r", end="")
        self.timings["sweep"] = time.time() - start
        by_fault = Counter(case.fault for case in cases)
        self.say(f"sweep: {len(cases)} cases ({', '.join(f'{count} {fault}' for fault, count in sorted(by_fault.items()))}), "
                 f"{self.fired} fired, {len(self.not_fired)} not reached, "
                 f"{sum(1 for v in self.counted() if v.stage in ('injected', 'follow-up'))} violations, "
                 f"{self.followups_skipped} follow-ups skipped, in {self.timings['sweep']:.1f} s")

    def run_case(self, slot, case):
        """Reset, injected run, follow-up run, checks after each."""
        leftovers = self.reset(slot, case)
        before = slot.snapshot()
        trace = os.path.join(slot.out, "injected.trace")
        strace = ["-f", "-qq", "-y", "-e", f"trace={case.syscall},execve", "-e", case.inject()]
        injected = slot.run_tool("injected", case.config, strace=strace, trace_path=trace, timeout=self.case_timeout)
        fired, hit = injection_hit(case, injected)
        problems = [("injected", *problem) for problem in
                    run_problems(injected, slot, killed_on_purpose=case.fault == "KILL",
                                 stdout_write_failed=injected_stdout_write(injected))]
        slot.wait_idle()
        damage = slot.protected_damage()
        problems += [("injected", "safety", f"{what} by the injected run", normalised(what)) for what in damage]
        followup = None
        # --quick: a run that left every file as it found it (it died or
        # failed before touching anything) leaves the follow-up nothing but
        # the fixture, on which the sanity run already showed the result.
        if not self.options.quick or slot.snapshot() != before:
            followup = slot.run_tool("follow-up", timeout=self.case_timeout)
            problems += [("follow-up", *problem) for problem in run_problems(followup, slot)]
            slot.wait_idle()
            if not damage:
                problems += [("follow-up", "safety", f"{what} by the follow-up run", normalised(what))
                             for what in slot.protected_damage()]
            problems += [("follow-up", *problem) for problem in self.leftover_problems(slot, followup)]
        runs = [result for result in (injected, followup) if result]
        with self.lock:
            self.runs += len(runs)
            self.cases_done += 1
            self.followups_skipped += followup is None
            self.fired += fired
            if not fired:
                self.not_fired.append(case.id)
            for entry in leftovers:
                self.notes[f"temporary metrics file left behind ({re.sub(r'[0-9]+', 'PID', entry)})"] += 1
            self.case_results.append({"case": case.id, "fired": fired, "hit": hit, "injected_status": injected.status,
                                      "follow_up_status": followup.status if followup else None,
                                      "violations": [problem[2] for problem in problems]})
        for stage, category, what, kind in problems:
            self.record(Violation(case.id, case.syscall, case.occurrence, case.fault, stage, category, what, hit, kind=kind),
                        runs)

    def leftover_problems(self, slot, followup):
        """After the follow-up: nothing invalidated, no deletable lease left
        (one problem each, naming every lease concerned)."""
        problems = []
        verdicts = followup.verdicts()

        def named(names):
            return ", ".join(f"{ROLE.get(name, name)} ({'/'.join(map(str, verdicts.get(name, ('not in report',))))})"
                             for name in names)

        def seen(names):
            return ", ".join(sorted({"/".join(map(str, verdicts.get(name, ("not in report",)))) for name in names}))

        invalidated = slot.invalidated_present()
        if invalidated:
            problems.append(("safety", f"invalidated lease(s) still present after the follow-up: {named(invalidated)}",
                             f"invalidated lease left after the follow-up ({seen(invalidated)})"))
        left = [name for name in DELETABLE if name not in invalidated and os.path.lexists(os.path.join(slot.leases, name))]
        if left:
            problems.append(("liveness", f"deletable lease(s) not deleted by the follow-up: {named(left)}",
                             f"valid deletable lease not deleted by the follow-up ({seen(left)})"))
        return problems

    def reset(self, slot, case):
        """Back to the fixture: deletable leases and metrics restored; the
        protected ones rebuilt only if damaged (damage is recorded by the
        case that did it) or if a guest process died."""
        held = slot.wait_idle()
        if slot.protected_damage() or not slot.guests_alive() or not slot.holders_hold(held):
            if not slot.guests_alive() or not slot.holders_hold(held):
                self.record(Violation(case.id, case.syscall, case.occurrence, case.fault, "fixture", "safety",
                                      "a guest holder lost its lease or died before this case (fixture rebuilt)"))
            slot.rebuild_protected()
        return slot.restore_deletable()

    # -- daemon kills -------------------------------------------------------------

    def daemon_kills(self):
        start = time.time()
        iterations = self.options.kill_iterations
        rng = random.Random(self.options.seed)
        delays = [rng.uniform(0, 0.3) for _ in range(iterations)]
        statuses = Counter()

        def kill(slot, item):
            number, delay = item
            statuses[self.daemon_kill(slot, number, delay)] += 1

        self.on_slots(list(enumerate(delays, 1)), kill)
        self.timings["daemon-kills"] = time.time() - start
        self.say(f"daemon kills: {iterations} iterations (seed {self.options.seed}, kill 0-300 ms into a run over "
                 f"{BULK_LEASES + len(DELETABLE)} deletable leases), exit statuses "
                 f"{dict(sorted(statuses.items()))}, "
                 f"{sum(1 for v in self.violations if v.stage == 'daemon-kill')} violations in {self.timings['daemon-kills']:.1f} s")

    def daemon_kill(self, slot, number, delay):
        """A cleaning run over many leases; the daemon dies under it."""
        case_id = f"daemon-kill-{number}@{delay * 1000:.0f}ms"
        held = slot.wait_idle()
        if slot.protected_damage() or not slot.guests_alive() or not slot.holders_hold(held):
            slot.rebuild_protected()
        slot.restore_deletable(bulk=True)

        def kill_later(process):
            time.sleep(delay)
            slot.kill_daemon()

        killed = slot.run_tool("killed", started=kill_later)
        problems = [("daemon-kill", *problem) for problem in run_problems(killed, slot)]
        if slot.daemon.poll() is None:
            slot.kill_daemon()
        # The daemon comes back as the same host: same run directory and name.
        slot.start_daemon()
        slot.join()
        damage = slot.protected_damage()
        problems += [("daemon-kill", "safety", f"{what} by the run during the daemon kill", normalised(what)) for what in damage]
        slot.restart_holders()
        slot.wait_idle()
        followup = slot.run_tool("follow-up")
        problems += [("follow-up", *problem) for problem in run_problems(followup, slot)]
        slot.wait_idle()
        if not damage:
            problems += [("follow-up", "safety", f"{what} by the follow-up run", normalised(what))
                         for what in slot.protected_damage()]
        # Leases the killed run acquired are legitimately too recent now:
        # only invalidated leftovers count here.
        problems += [("follow-up", *problem) for problem in self.leftover_problems(slot, followup) if problem[0] == "safety"]
        with self.lock:
            self.runs += 2
            self.case_results.append({"case": case_id, "killed_status": killed.status, "follow_up_status": followup.status,
                                      "violations": [problem[2] for problem in problems]})
        for stage, category, what, kind in problems:
            self.record(Violation(case_id, "daemon", number, "SIGKILL", stage, category, what, kind=kind), (killed, followup))
        return killed.status

    # -- end ------------------------------------------------------------------------

    def tear_down(self):
        STOP.set()
        CHILDREN.kill_all()
        for thread in self.threads:     # they fail fast once nothing can start
            thread.join(timeout=10)
        CHILDREN.kill_all()
        for path in reversed(self.mounts):     # only in our mount namespace
            subprocess.run(["umount", "-l", path], capture_output=True)
        if self.base:
            shutil.rmtree(self.base, ignore_errors=True)

    # Not counted unless --strict: the dynamic loader's failures (no code of
    # the tool can avoid them) and liveness (a valid deletable lease the
    # follow-up kept: the faulted run acquired it, so sanlock rewrote it and
    # the minimum age now keeps it, as it must keep any lease a guest may
    # have just used; nothing unsafe, and a later run deletes it).
    NOT_COUNTED = ("loader", "liveness", "runtime")

    def counted(self):
        """The violations that fail the run."""
        return [v for v in self.violations if self.options.strict or v.category not in self.NOT_COUNTED]

    def summary(self, elapsed, failure=None):
        groups = defaultdict(list)
        loader = defaultdict(int)
        liveness = 0
        runtime = defaultdict(int)
        for violation in self.violations:
            if violation.category == "loader" and not self.options.strict:
                loader[violation.syscall] += 1      # one line for all of them, below
                continue
            if violation.category == "liveness" and not self.options.strict:
                liveness += 1
                continue
            if violation.category == "runtime" and not self.options.strict:
                runtime[violation.syscall] += 1
                continue
            groups[(violation.category, violation.syscall, violation.fault, violation.stage, violation.kind)].append(violation)
        if groups:
            print("violations by syscall, fault and what broke (count, examples):")
            for key in sorted(groups):
                category, syscall, fault, stage, kind = key
                members = groups[key]
                examples = ", ".join(f"#{v.occurrence}" for v in members[:5]) + (" ..." if len(members) > 5 else "")
                print(f"  {len(members):4} x {category}: {syscall} {fault}, {stage}: {kind} [{examples}]")
        for note, count in sorted(self.notes.items()):
            print(f"note: {count} x {note}")
        if self.results_dir:
            print(f"outputs of violating cases: {self.results_dir}")
        faults = ("KILL everywhere, 4 errors on file/socket/signal syscalls, EIO on the serial socket calls"
                  if self.options.quick else "KILL + 4 errors everywhere")
        if loader:
            print(f"not counted: {sum(loader.values())} dynamic-loader failures (exit 127 before main(); --strict counts them): "
                  + ", ".join(f"{syscall} {count}" for syscall, count in sorted(loader.items())))
        if runtime:
            print(f"not counted: {sum(runtime.values())} crashes inside glibc or the Swift runtime when memory management or "
                  "a futex failed with an error (--strict counts them): "
                  + ", ".join(f"{syscall} {count}" for syscall, count in sorted(runtime.items())))
        if liveness:
            print(f"not counted: {liveness} follow-up runs kept a valid deletable lease that the faulted run had "
                  "acquired (too recent now; a later run deletes it; --strict counts them)")
        if self.followups_skipped:
            print(f"follow-up runs skipped: {self.followups_skipped} (--quick: the injected run left every file untouched)")
        print(f"fault injection: {len(self.points)} injection points ({len(self.syscalls)} syscalls), {self.runs} runs, "
              f"{len(self.counted())} violations in {elapsed:.0f} s ({'--quick: ' if self.options.quick else ''}{faults})")
        if failure:
            print(f"fault injection: HARNESS FAILED: {failure}")
        if self.options.report:
            with open(self.options.report, "w") as file:
                json.dump({"binary": self.binary, "quick": self.options.quick, "seconds": round(elapsed, 1),
                           "timings": {k: round(v, 1) for k, v in self.timings.items()},
                           "points": len(self.points), "syscalls": sorted(self.syscalls),
                           "reference_per_thread_counts": getattr(self, "reference_counts", {}),
                           "runs": self.runs, "fired": self.fired, "not_reached": self.not_fired,
                           "violations_counted": len(self.counted()), "followups_skipped": self.followups_skipped,
                           "violations": [vars(v) for v in self.violations], "notes": dict(self.notes),
                           "results_dir": self.results_dir, "harness_failure": failure,
                           "cases": self.case_results}, file, indent=1)


def common_prefix(a, b):
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def in_private_namespace():
    """Re-run this script in a mount namespace of its own (then /run can be
    replaced there without the machine noticing)."""
    if os.environ.get("VSC_FAULTS_NAMESPACE") == str(os.getpid()):
        return
    os.environ["VSC_FAULTS_NAMESPACE"] = str(os.getpid())   # unshare execs: the pid stays
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "--",
                          sys.executable, os.path.abspath(__file__), *sys.argv[1:]])


def parse_options():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", help="the virt-sanlock-cleanup binary to test")
    parser.add_argument("--quick", action="store_true",
                        help="KILL at every point, errors only on file/socket/signal syscalls (CI: about 3 minutes)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel slots, each a private sanlock daemon (default 2)")
    parser.add_argument("--report", help="write every result as JSON to this file")
    parser.add_argument("--kill-iterations", type=int, help="daemon kills (default 10 with --quick, else 30)")
    parser.add_argument("--only", metavar="REGEX",
                        help="run only the cases whose id (e.g. parallel:unlinkat#1:KILL) matches")
    parser.add_argument("--strict", action="store_true",
                        help="also count dynamic-loader failures, kept deletable leases and crashes inside glibc or the Swift runtime on memory and futex errors as violations")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="for the daemon kill delays")
    options = parser.parse_args()
    if options.kill_iterations is None:
        options.kill_iterations = 10 if options.quick else 30
    if options.jobs < 1:
        parser.error("--jobs must be at least 1")
    if not os.access(options.binary, os.X_OK):
        parser.error(f"{options.binary}: not an executable")
    if options.report:
        options.report = os.path.abspath(options.report)
    return options


def main():
    options = parse_options()
    if os.geteuid() != 0:
        print("fault-injection: starts sanlock daemons and uses strace: run it as root", file=sys.stderr)
        return 2
    for tool in ("strace", "sanlock", "unshare", "mount"):
        if shutil.which(tool) is None:
            print(f"fault-injection: {tool} is not installed", file=sys.stderr)
            return 2
    in_private_namespace()

    def interrupted(number, frame):
        STOP.set()
        raise KeyboardInterrupt(SIGNAL_NAMES.get(number, number))

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupted)
    harness = Harness(options)
    start = time.time()
    failure = None
    try:
        harness.set_up()
        harness.reference()
        harness.sweep()
        harness.daemon_kills()
    except KeyboardInterrupt as stop:
        failure = f"interrupted ({stop or 'SIGINT'})"
    except HarnessError as error:
        failure = str(error)
    except Exception as error:
        failure = f"{type(error).__name__}: {error}"
        import traceback
        traceback.print_exc()
    finally:
        # Ctrl-C during clean-up must not leave daemons behind.
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
        harness.tear_down()
    harness.summary(time.time() - start, failure)
    if failure:
        return 2
    return 1 if harness.counted() else 0


if __name__ == "__main__":
    sys.exit(main())
