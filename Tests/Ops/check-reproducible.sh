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
if ! command -v git >/dev/null || ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "check-reproducible: needs a git work tree (to know the source files)" >&2
    exit 1
fi
make_sandbox vsc-repro
name=virt-sanlock-cleanup
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
debs=("${name}_${version}_${arch}.deb" "${name}-dbgsym_${version}_${arch}.deb")

make_deb_in() { (cd "$1" && make --no-print-directory deb); }
started=$(date +%s)
check "make deb in $PWD" quietly make_deb_in "$PWD"
note "in $(($(date +%s) - started)) s"
# Nothing to compare without it.
[ -f "dist/${debs[0]}" ] || finish check-reproducible

# Another path, of another length.
copy=$sandbox/elsewhere/$name-copy
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    [ -e "$file" ] && printf '%s\0' "$file"
done | tar -c --null -T - | tar -x -C "$copy"
started=$(date +%s)
check "make deb in $copy (a build directory of its own)" quietly make_deb_in "$copy"
note "in $(($(date +%s) - started)) s"
[ -f "$copy/dist/${debs[0]}" ] || finish check-reproducible

for deb in "${debs[@]}"; do
    check "$deb: the same bytes from $PWD and from $copy" cmp -s "dist/$deb" "$copy/dist/$deb"
    if cmp -s "dist/$deb" "$copy/dist/$deb"; then
        note "$(stat -c %s "dist/$deb") bytes, sha256 $(sha256sum "dist/$deb" | cut -c1-16)…"
        continue
    fi
    # Which files, and for ELF files which sections.
    mkdir -p "$sandbox/a/$deb" "$sandbox/b/$deb"
    dpkg-deb -R "dist/$deb" "$sandbox/a/$deb" && dpkg-deb -R "$copy/dist/$deb" "$sandbox/b/$deb"
    note "$(diff -rq "$sandbox/a/$deb" "$sandbox/b/$deb" || true)"
    while read -r file; do
        readelf -SW "$sandbox/a/$deb/$file" >/dev/null 2>&1 || continue
        for section in $(readelf -SW "$sandbox/a/$deb/$file" | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .*/\1/p'); do
            objcopy -O binary --only-section="$section" "$sandbox/a/$deb/$file" "$sandbox/section.a" 2>/dev/null || continue
            objcopy -O binary --only-section="$section" "$sandbox/b/$deb/$file" "$sandbox/section.b" 2>/dev/null || continue
            cmp -s "$sandbox/section.a" "$sandbox/section.b" || note "$file: section $section differs"
        done
    done < <(cd "$sandbox/a/$deb" && find . -type f)
done

finish check-reproducible
