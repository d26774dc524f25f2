#!/bin/bash
# make check-deb: the Debian package as an administrator meets it. make deb;
# lintian --pedantic; its sizes; no ICU or Foundation linked in;
# libvirt-sanlock installed, then our .deb with apt-get install: the
# stock script and man page diverted and intact, ours in their place and
# working without the Swift toolchain, completions for bash, zsh and fish
# found by the shells, units verified and not enabled, a dry run against a
# private sanlock daemon; dpkg -r puts the stock files back; dpkg -P leaves
# nothing behind.
#
# It installs packages on this machine (libvirt-sanlock, lintian, zsh, fish;
# systemd; make deb: dpkg-dev, debhelper) and leaves it as it found it otherwise:
# libvirt-sanlock installed with its own script and man page, our package
# purged, also when a check fails or the script is interrupted (a package of
# ours already installed is purged first). Run as root, after the tests that
# use the stock script (make check runs it last). Usage: Tests/Ops/check-deb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=SCRIPTDIR/../lib/test-functions.sh
. Tests/lib/test-functions.sh

need_root "check-deb: installs and removes packages"
.ci/deps libvirt-sanlock lintian systemd zsh fish

name=virt-sanlock-cleanup
sbin=/usr/sbin/$name
man8=/usr/share/man/man8/$name.8.gz
# Where the preinst diverts libvirt-sanlock's files to.
stock_sbin=/usr/sbin/$name.libvirt-sanlock
stock_man8=/usr/share/man/man8/$name.libvirt-sanlock.8.gz
# Where the package's files would be found by name, besides dpkg's list.
search=(/etc /lib/systemd /usr/sbin /usr/share /var/lib/systemd /var/lib/dpkg/info)

make_sandbox vsc-deb
base=$sandbox

# Installed, or removed with its configuration (second letter not "n").
installed() { dpkg-query -W -f='${db:Status-Abbrev}' "$name" 2>/dev/null | grep -q '^.[^n]'; }
# libvirt-sanlock's two files as dpkg recorded them ("missing" or a changed
# checksum is a line of dpkg --verify).
stock_intact() { ! dpkg --verify libvirt-sanlock 2>&1 | grep -qE " ($sbin|$man8)\$"; }
restore() {
    if installed; then
        echo "-- restoring: dpkg -P $name"
        dpkg -P "$name" >"$base/restore.log" 2>&1 || cat "$base/restore.log" >&2
    fi
    # Diversions a failed postrm left.
    local from to
    while read -r _ _ from _ to _; do
        dpkg-divert --package "$name" --remove --rename --divert "$to" "$from" >/dev/null || true
    done < <(dpkg-divert --list "$name")
    if ! stock_intact; then
        echo "-- restoring libvirt-sanlock's files: apt-get install --reinstall libvirt-sanlock"
        apt-get install -y -qq --reinstall libvirt-sanlock >/dev/null 2>&1 || echo "reinstalling libvirt-sanlock failed" >&2
    fi
}
on_exit restore

if installed; then echo "note: $name was installed: purging it first"; dpkg -P "$name" >/dev/null; fi
stock_intact || { echo "libvirt-sanlock's $sbin or $man8 is not as the package installed it" >&2; exit 1; }
sums_before=$(sha256sum "$sbin" "$man8")
[[ $(head -c 2 "$sbin") == '#!' ]] || { echo "$sbin is not libvirt-sanlock's script" >&2; exit 1; }
find "${search[@]}" -name "*$name*" 2>/dev/null | sort >"$base/found-before"

# --- 1. make deb, lintian, size, what is linked in ----------------------------
version=$(dpkg-parsechangelog -S Version)
deb=dist/${name}_${version}_$(dpkg --print-architecture).deb
dbgsym=dist/${name}-dbgsym_${version}_$(dpkg --print-architecture).deb
started=$(date +%s)
check "make deb" quietly make --no-print-directory deb
check "make deb made $deb and $dbgsym" test -f "$deb" -a -f "$dbgsym"
# Nothing to check without them.
if [ ! -f "$deb" ] || [ ! -f "$dbgsym" ]; then finish check-deb; fi
note "$(du -h "$deb" | cut -f1) in $(($(date +%s) - started)) s; Depends: $(dpkg-deb -f "$deb" Depends)"

# --pedantic too. What the toolchain's static libraries bring is overridden in
# debian/virt-sanlock-cleanup.lintian-overrides, each with its reason.
lintian_out=$(lintian --pedantic --display-info "$deb" "$dbgsym" 2>&1 | grep -v '^running with root privileges' || true)
check "lintian --pedantic $(lintian --version | cut -d' ' -f2) on both packages: no error, warning or pedantic tag" \
    same "$(grep -E '^[EWP]: ' <<<"$lintian_out" || true)" ""
[ -z "$lintian_out" ] || note "$lintian_out"

# Sizes, against the limits of issue 22 (docs/performance.md, "Package size"). The stripped
# binary's goal was 12 MB; 13.4 MB is the floor of any program using
# swift-argument-parser with this toolchain. The .deb goal, 4 MB, was met
# at issue 22 and is missed by 0.5 % since issues 19-21 (0.12 MB of code);
# each limit is the size measured on 2026-12-07 plus 1-2 %: they catch ICU
# or a large dependency coming back.
deb_limit=4100000 installed_limit=15360 binary_limit=14700000
deb_size=$(stat -c %s "$deb")
installed_size=$(dpkg-deb -f "$deb" Installed-Size)
binary_size=$(dpkg-deb --fsys-tarfile "$deb" | tar -tvf - "./usr/sbin/$name" | awk '{print $3}')
check "sizes: binary $binary_size bytes (limit $binary_limit), .deb $deb_size bytes (limit $deb_limit), Installed-Size $installed_size KiB (limit $installed_limit)" \
    test "$binary_size" -le "$binary_limit" -a "$deb_size" -le "$deb_limit" -a "$installed_size" -le "$installed_limit"

# No ICU and no swift-corelibs-foundation: one `import Foundation` anywhere in
# what the binary links, even in a dependency, brings both back (43 MB). The
# -dbgsym package's symbol table is the shipped binary's.
mkdir -p "$base/dbgsym"
dpkg-deb -x "$dbgsym" "$base/dbgsym"
debug=$(find "$base/dbgsym/usr/lib/debug" -name '*.debug' | head -1)
symbols() { nm "$debug" >"$base/symbols" 2>&1 || { note "$(head -3 "$base/symbols")"; return 1; }; }
check "nm $(basename "$debug"): the shipped binary's symbol table" symbols
icu=$(grep -cE ' (icudt[0-9]+_dat|swift_u(col|brk|loc|cal|num|trans)_open)$' "$base/symbols" || true)
# shellcheck disable=SC2016  # Swift's mangled names start with $s
foundation=$(grep -cE ' \$s(10Foundation|30FoundationInternationalization|14FoundationXML|19FoundationNetworking)' "$base/symbols" || true)
# shellcheck disable=SC2016  # the same
essentials=$(grep -c ' \$s20FoundationEssentials' "$base/symbols" || true)
check "linked in: FoundationEssentials ($essentials symbols), no ICU ($icu), no Foundation (corelibs: $foundation) symbol" \
    test "$icu" = 0 -a "$foundation" = 0 -a "$essentials" -gt 0

# --- 2. install over libvirt-sanlock -------------------------------------------
# apt reads a local .deb as the _apt user where it can: a copy it may read.
cp "$deb" "$base/" && chmod 755 "$base" && chmod 644 "$base/$(basename "$deb")"
check "apt-get install ./$deb" quietly apt-get install -y "$base/$(basename "$deb")"
check "installed $name $version" installed
installed || finish check-deb
dpkg -L "$name" | sort >"$base/files"

# --- 3. the installed package --------------------------------------------------
diversions=$(dpkg-divert --list "$name" | sort)
expected=$(printf 'diversion of %s to %s by %s\n' "$man8" "$stock_man8" "$name" "$sbin" "$stock_sbin" "$name" | sort)
check "dpkg-divert: $sbin and $man8 diverted to *.libvirt-sanlock*" same "$diversions" "$expected"
sums_diverted=$(sha256sum "$stock_sbin" "$stock_man8" | sed "s|$stock_sbin|$sbin|; s|$stock_man8|$man8|")
check "libvirt-sanlock's script and man page kept byte for byte under the diverted names" same "$sums_diverted" "$sums_before"
check "dpkg --verify libvirt-sanlock: clean" same "$(dpkg --verify libvirt-sanlock 2>&1)" ""

# Run only what is ours: the stock script ignores its arguments and cleans.
ours() { [[ $(head -c 4 "$sbin") == $'\x7fELF' ]] && grep -qx "$sbin" "$base/files"; }
check "$sbin is this package's binary" ours
if ours; then
    said=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$name" --version 2>&1) || true
    check "env -i PATH=/usr/sbin:... $name --version: $version (debian/changelog)" same "$said" "$version"
fi

toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
libraries=$(ldd "$sbin" 2>&1)
toolchain_libs=$(grep -E 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|libXCTest|not found' <<<"$libraries" || true)
toolchain_libs+=$(grep -F "$toolchain" <<<"$libraries" || true)
check "ldd $sbin: nothing from the Swift toolchain ($toolchain): $(awk '/=>/ {print $1}' <<<"$libraries" | tr '\n' ' ')" \
    same "$toolchain_libs" ""

check "man -l --warnings $man8: no warnings" same "$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l --warnings "$man8" 2>&1 >/dev/null)" ""
check "man $name finds ours, man $name.libvirt-sanlock libvirt's" \
    same "$(man -w "$name" 2>&1) $(man -w "$name.libvirt-sanlock" 2>&1)" "$man8 $stock_man8"

# Completions: each shell finds the file where the package put it, and it
# completes an option.
bash_file=/usr/share/bash-completion/completions/$name
# shellcheck disable=SC2016  # expanded by that bash
reply=$(bash -c 'source "$1" && complete -p "$2" && function=$(complete -p "$2" | sed -n "s/.* -F \([^ ]*\) .*/\1/p") &&
        COMP_LINE="$2 --dry" COMP_POINT=${#COMP_LINE} COMP_WORDS=("$2" --dry) COMP_CWORD=1 && { "$function" "$2" --dry "$2"; } ;
        echo "reply: ${COMPREPLY[*]}"' bash "$bash_file" "$name" 2>&1) || true
bash_completes() { [[ $reply == *"complete "*" $name"* && $reply == *"reply: --dry-run"* ]] || { note "$reply"; return 1; }; }
check "bash: $(head -1 <<<"$reply"); '$name --dry<TAB>' completes --dry-run" bash_completes
zsh_file=/usr/share/zsh/vendor-completions/_$name
if ! command -v zsh >/dev/null; then echo "note: no zsh: $zsh_file not checked"
else
    # shellcheck disable=SC2016  # expanded by zsh
    out=$(zsh -n "$zsh_file" 2>&1 && zsh -f -c 'autoload -Uz compinit && compinit -u -D && print -r -- "$_comps[$1]"' zsh "$name" 2>&1) || true
    check "zsh: $zsh_file parses, compinit registers _$name" same "$out" "_$name"
fi
fish_file=/usr/share/fish/vendor_completions.d/$name.fish
if ! command -v fish >/dev/null; then echo "note: no fish: $fish_file not checked"
else
    out=$(fish --no-execute "$fish_file" 2>&1 && HOME=$base/home fish -c "complete -C'$name --format '" 2>&1) || true
    check "fish: $fish_file parses, '$name --format <TAB>' completes text json" same "$(cut -f1 <<<"$out" | tr '\n' ' ')" "text json "
fi

# The cleanup's and the audit's service and timer.
units=()
for unit in "$name" "$name-audit"; do units+=("$unit.service" "$unit.timer"); done
check "the package has ${units[*]} in /lib/systemd/system" \
    same "$(grep -xE "/lib/systemd/system/($name|$name-audit)[.](service|timer)" "$base/files" | sort)" \
    "$(printf '/lib/systemd/system/%s\n' "${units[@]}" | sort)"
for unit in "$name" "$name-audit"; do
    check "$unit.service: ExecStart=$sbin..." grep -qE "^ExecStart=$sbin( |\$)" "/lib/systemd/system/$unit.service"
done
check "the installed units name no /usr/local" same "$(grep -l /usr/local "${units[@]/#//lib/systemd/system/}" || true)" ""
out=$(systemd-analyze verify "${units[@]}" 2>&1) && rc=0 || rc=$?
check "systemd-analyze verify ${units[*]} (found by name): clean" same "exit $rc: $out" "exit 0: "
# Shipped, not enabled: no symlink, and systemctl (offline) agrees.
check "no unit of $name linked in /etc/systemd/system" same "$(find /etc/systemd/system -name "$name*" 2>/dev/null)" ""
for unit in "${units[@]}"; do
    want=disabled; [[ $unit == *.service ]] && want=static   # services start from their timers only
    check "systemctl is-enabled $unit: $want" same "$(systemctl is-enabled "$unit" 2>&1 || true)" "$want"
done
check "no conffiles (no cron file: README.Debian)" same "$(dpkg-query -W -f='${Conffiles}' "$name")" ""

# One dry run of the installed binary against a private sanlock daemon.
echo "-- a dry run of $sbin against a private sanlock daemon"
run=$base/run leases=$base/leases
mkdir -p "$leases" "$base/status" "$base/definitions"
start_sanlock "$run" check-deb-host1
init_lockspace "$run" "$leases"
join_lockspace "$run" "$leases" 1
free=$(lease_name /var/lib/libvirt/images/old.qcow2); make_lease "$run" "$leases" "$free"
busy=$(lease_name /var/lib/libvirt/images/busy.qcow2); make_lease "$run" "$leases" "$busy"
hold_lease "$run" "$leases" "$busy"
qemu_sanlock_conf "$leases" 1 >"$base/qemu-sanlock.conf"
status=0
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SANLOCK_RUN_DIR="$run" "$name" --dry-run --config "$base/qemu-sanlock.conf" \
    --status-dir "$base/status" --config-dir "$base/definitions" --min-age 0 >"$base/dry.out" 2>&1 || status=$?
sed 's/^/   | /' "$base/dry.out"
dry_run_as_expected() { grep -q "^would-delete *$free " "$base/dry.out" && grep -q "^kept *$busy " "$base/dry.out" && [ -e "$leases/$free" ]; }
check "dry run: exit status 0" same "$status" 0
check "dry run: would delete the free lease, keeps the held one, deletes nothing" dry_run_as_expected

# --- 4. dpkg -r: the stock files back ------------------------------------------
check "dpkg -r $name" quietly dpkg -r "$name"
check "dpkg -r: libvirt-sanlock's $sbin and $man8 back, same checksums" same "$(sha256sum "$sbin" "$man8")" "$sums_before"
check "dpkg -r: no diversion left, no *.libvirt-sanlock* file" \
    same "$(dpkg-divert --list "$name"; ls -d "$stock_sbin" "$stock_man8" 2>/dev/null)" ""
check "dpkg --verify libvirt-sanlock: clean" same "$(dpkg --verify libvirt-sanlock 2>&1)" ""

# --- 5. dpkg -P: nothing left --------------------------------------------------
check "dpkg -P $name" quietly dpkg -P "$name"
check "dpkg -P: $name no longer known to dpkg" same "$(installed && dpkg-query -W -f='${db:Status-Abbrev}' "$name")" ""
left=""
while read -r path; do
    # Directories stay when another package uses them; the two diverted
    # paths are libvirt-sanlock's again (checked above).
    [ -d "$path" ] || [ "$path" = "$sbin" ] || [ "$path" = "$man8" ] || [ ! -e "$path" ] || left+=" $path"
done <"$base/files"
check "dpkg -P: none of the $(wc -l <"$base/files") paths of dpkg -L is left (but directories others use)" same "$left" ""
find "${search[@]}" -name "*$name*" 2>/dev/null | sort >"$base/found-after"
check "dpkg -P: nothing in /var/lib/dpkg/info" same "$(ls /var/lib/dpkg/info/"$name".* 2>/dev/null)" ""
check "dpkg -P: the same files named *$name* as before the install in ${search[*]} (systemd's state, /etc included)" \
    same "$(comm -13 "$base/found-before" "$base/found-after" | tr '\n' ' ')" ""

finish check-deb
