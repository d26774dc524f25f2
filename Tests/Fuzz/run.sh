#!/bin/bash
# Builds and runs the libFuzzer targets of Tests/Fuzz.
#
#   run.sh build                      build every target (ASan + libFuzzer)
#   run.sh smoke [SECONDS] [TARGET…]  each target for SECONDS (default 10),
#                                     from a throw-away copy of its seeds
#   run.sh long [SECONDS] [TARGET…]   each target for SECONDS (default 300),
#                                     growing a work corpus under .build-fuzz
#   run.sh repro TARGET FILE…         run a target on saved inputs only
#
# Prints each target's executions and findings; exits 1 when any target
# crashed, broke an invariant, leaked, timed out or ran out of memory, with
# the reproducer's path. Everything is built and written under
# .build-fuzz/ (git-ignored); the committed seeds are never changed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scratch=$root/.build-fuzz
bin=$scratch/debug
all_targets=(FuzzLeader FuzzClassifier FuzzVirConf FuzzGuestXML FuzzDuration FuzzRender FuzzDaemonStatus)

# Largest input per target: the seeds' sizes plus room to grow (a lease's
# first 16 KiB; the 100 kB nested-list seed; status XML of tens of kB).
declare -A max_len=([FuzzLeader]=20000 [FuzzClassifier]=20000 [FuzzVirConf]=131072
                    [FuzzGuestXML]=65536 [FuzzDuration]=256 [FuzzRender]=4096
                    [FuzzDaemonStatus]=32768)
declare -A dictionary=([FuzzLeader]=lease.dict [FuzzClassifier]=lease.dict [FuzzVirConf]=virconf.dict
                       [FuzzGuestXML]=guestxml.dict [FuzzDuration]=duration.dict [FuzzRender]=render.dict
                       [FuzzDaemonStatus]=status.dict)

# Swift's own crash backtracer runs inside the crashing process and trips
# ASan; libFuzzer's handler prints a symbolised stack instead.
export SWIFT_BACKTRACE=enable=no
export PATH=$PATH:/opt/swift/usr/bin

build() {
    # --sanitize fuzzer: SwiftPM then links libFuzzer's main instead of
    # renaming each target's entry point (with -Xswiftc alone the link fails:
    # "undefined symbol FuzzLeader_main"), and compiles the C targets with
    # -fsanitize. It passes each sanitizer to swiftc as its own -sanitize=
    # flag, in an order that changes from run to run, and swiftc keeps only
    # the last one: Swift code came out without coverage (or without ASan).
    # The one combined flag, passed last, gives Swift both every time.
    # gold warns once per ASan helper symbol ("Cannot export local symbol"):
    # hundreds of harmless lines, filtered out.
    # -O on top of the debug configuration (which keeps @testable imports
    # working): measured 20x the executions per second for FuzzLeader, 4x for
    # FuzzClassifier, 2x for FuzzRender, and a shorter build.
    # With pipefail the pipeline fails exactly when swift build does.
    # SwiftPM keeps the build plan of a path dependency (the project) when
    # only that package's manifest changed, and then misses its new targets
    # ("no such module"): plan again after Package.swift changes.
    if [ "$root/Package.swift" -nt "$scratch/debug.yaml" ]; then
        rm -f "$scratch/debug.yaml" "$scratch/build.db"
    fi
    swift build --package-path "$here" --scratch-path "$scratch" -c debug \
        --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address -Xswiftc -O 2>&1 \
        | { grep -v -e 'ld.gold: warning: Cannot export local symbol' || true; }
}

# The options every run shares. Leak detection stays on (libFuzzer's
# default with ASan): the Swift runtime's metadata caches, Foundation's and
# libxml2's globals stay reachable and are never reported (none in the runs
# measured), while a libxml2 document that XMLDocument failed to free, or a
# retain cycle in what the targets build, would be.
options() {
    local target=$1
    echo "-max_len=${max_len[$target]} -dict=$here/${dictionary[$target]}" \
         "-timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1"
}

# Runs one target; prints its summary; returns 1 on a finding.
run_target() {
    local target=$1 seconds=$2 corpus=$3 out=$4
    mkdir -p "$out"
    local log=$out/log.txt status=0
    # shellcheck disable=SC2046  # options() is a word list on purpose
    "$bin/$target" $(options "$target") -max_total_time="$seconds" \
        -artifact_prefix="$out/" "$corpus" >"$log" 2>&1 || status=$?
    local executions
    executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
    local findings=()
    for file in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* "$out"/slow-unit-*; do
        [[ -e $file ]] && findings+=("$file")
    done
    printf '%-15s %10s executions  %d findings  (%s)\n' "$target" "$executions" "${#findings[@]}" "$log"
    # A binary whose code reports no coverage fuzzes nothing (seen once
    # after an incremental rebuild; a rebuild of the target fixed it).
    if grep -q 'Is the code instrumented for coverage' "$log"; then
        echo "    no coverage: rebuild with 'touch $here/Sources/$target/$target.swift; $0 build'"
        return 1
    fi
    if ((status != 0 || ${#findings[@]} > 0)); then
        # What broke and where: the message, then the top of the stack.
        grep -m1 -E 'Fatal error|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)' "$log" | sed 's/^/    /' || true
        grep -E '^ +#[0-9]+ ' "$log" | grep -v -E 'libFuzzer|fuzzer::|compiler-rt|compiler-generated|__sanitizer|asan_|libc\.so|libswiftCore' \
            | head -6 | swift demangle --simplified | sed 's/^/  /' || true
        for file in "${findings[@]}"; do echo "    reproducer: $file"; done
        echo "    reproduce:  $0 repro $target ${findings[0]:-<input>}"
        return 1
    fi
}

# Runs the targets over a corpus directory each; the first argument says
# whether the corpus is a throw-away copy (smoke) or the kept work corpus.
run_all() {
    local mode=$1 seconds=$2
    shift 2
    local targets=("$@")
    ((${#targets[@]} > 0)) || targets=("${all_targets[@]}")
    build
    local stamp failed=0
    stamp=$(date +%Y%m%d-%H%M%S)
    echo "== $mode: ${seconds}s per target, output in $scratch/fuzz-out/$mode-$stamp"
    for target in "${targets[@]}"; do
        [[ -x $bin/$target ]] || { echo "unknown target $target" >&2; exit 2; }
        local out=$scratch/fuzz-out/$mode-$stamp/$target corpus
        if [[ $mode == smoke ]]; then
            # libFuzzer adds inputs to its corpus directory: give it a copy.
            corpus=$out/corpus
            mkdir -p "$corpus"
            cp "$here/Corpus/$target/." "$corpus/" -r
        else
            corpus=$scratch/fuzz-corpus/$target
            mkdir -p "$corpus"
            cp -rn "$here/Corpus/$target/." "$corpus/"
        fi
        run_target "$target" "$seconds" "$corpus" "$out" || failed=1
    done
    if ((failed)); then
        echo "== FAILED: see the findings above"
        return 1
    fi
    echo "== no findings"
}

case ${1:-} in
    build)
        build
        ;;
    smoke)
        shift
        run_all smoke "${1:-10}" "${@:2}"
        ;;
    long)
        shift
        run_all long "${1:-300}" "${@:2}"
        ;;
    repro)
        [[ $# -ge 3 ]] || { echo "usage: $0 repro TARGET FILE…" >&2; exit 2; }
        build >/dev/null
        target=$2
        shift 2
        # shellcheck disable=SC2046
        exec "$bin/$target" $(options "$target") "$@"
        ;;
    *)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
