#!/bin/bash
# make check-reproducible: make deb gives the same bytes wherever the source
# tree is. make deb here, then in a copy of the source tree in another
# directory (the files git tracks or would add, as the work tree has them)
# with a build directory of its own; the .deb and the -dbgsym .deb must be
# identical (cmp). Root (make deb installs its build tools). Usage:
# Tests/Ops/check-reproducible.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. Tests/lib/test-functions.sh

need_root "check-reproducible: make deb installs its build tools"
command -v git >/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || { echo "check-reproducible: needs a git work tree (to know the source files)" >&2; exit 1; }
make_sandbox vsc-repro
name=virt-sanlock-cleanup
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
debs=("${name}_${version}_${arch}.deb" "${name}-dbgsym_${version}_${arch}.deb")

echo "-- make deb in $PWD"
make --no-print-directory deb >"$sandbox/here.log" 2>&1 || { tail -40 "$sandbox/here.log" >&2; echo "make deb failed" >&2; exit 1; }

# Another path, of another length.
copy=$sandbox/elsewhere/$name-copy
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    [ -e "$file" ] && printf '%s\0' "$file"
done | tar -c --null -T - | tar -x -C "$copy"
echo "-- make deb in $copy (a build directory of its own)"
started=$(date +%s)
(cd "$copy" && make --no-print-directory deb) >"$sandbox/copy.log" 2>&1 \
    || { tail -40 "$sandbox/copy.log" >&2; echo "make deb in $copy failed" >&2; exit 1; }
ok "make deb in $copy: $(($(date +%s) - started)) s"

for deb in "${debs[@]}"; do
    if cmp -s "dist/$deb" "$copy/dist/$deb"; then
        ok "$deb: identical ($(stat -c %s "dist/$deb") bytes, sha256 $(sha256sum "dist/$deb" | cut -c1-16)…)"
        continue
    fi
    fail "$deb differs between $PWD and $copy"
    # Which files, and for ELF files which sections.
    mkdir -p "$sandbox/a/$deb" "$sandbox/b/$deb"
    dpkg-deb -R "dist/$deb" "$sandbox/a/$deb" && dpkg-deb -R "$copy/dist/$deb" "$sandbox/b/$deb"
    diff -rq "$sandbox/a/$deb" "$sandbox/b/$deb" | sed 's/^/   | /' || true
    while read -r file; do
        readelf -SW "$sandbox/a/$deb/$file" >/dev/null 2>&1 || continue
        for section in $(readelf -SW "$sandbox/a/$deb/$file" | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .*/\1/p'); do
            objcopy -O binary --only-section="$section" "$sandbox/a/$deb/$file" "$sandbox/section.a" 2>/dev/null || continue
            objcopy -O binary --only-section="$section" "$sandbox/b/$deb/$file" "$sandbox/section.b" 2>/dev/null || continue
            cmp -s "$sandbox/section.a" "$sandbox/section.b" || echo "   | $file: section $section differs"
        done
    done < <(cd "$sandbox/a/$deb" && find . -type f)
done

finish check-reproducible
