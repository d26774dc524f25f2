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
echo "-- make deb"
started=$(date +%s)
make --no-print-directory deb >"$base/deb.log" 2>&1 || { tail -40 "$base/deb.log" >&2; echo "make deb failed" >&2; exit 1; }
version=$(dpkg-parsechangelog -S Version)
deb=dist/${name}_${version}_$(dpkg --print-architecture).deb
dbgsym=dist/${name}-dbgsym_${version}_$(dpkg --print-architecture).deb
[ -f "$deb" ] && [ -f "$dbgsym" ] || { echo "make deb made no $deb or no $dbgsym" >&2; exit 1; }
ok "make deb: $deb, $(du -h "$deb" | cut -f1) in $(($(date +%s) - started)) s; Depends: $(dpkg-deb -f "$deb" Depends)"

# --pedantic too. What the toolchain's static libraries bring is overridden in
# debian/virt-sanlock-cleanup.lintian-overrides, each with its reason.
lintian_out=$(lintian --pedantic --display-info "$deb" "$dbgsym" 2>&1 | grep -v '^running with root privileges' || true)
[ -z "$lintian_out" ] || sed 's/^/   | /' <<<"$lintian_out"
if grep -qE '^[EWP]: ' <<<"$lintian_out"; then fail "lintian --pedantic: errors, warnings or pedantic tags (above)"
else ok "lintian --pedantic $(lintian --version | cut -d' ' -f2) on both packages: no error, warning or pedantic tag"; fi

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
sizes="binary $binary_size bytes (limit $binary_limit), .deb $deb_size bytes (limit $deb_limit), Installed-Size $installed_size KiB (limit $installed_limit)"
if [ "$binary_size" -le "$binary_limit" ] && [ "$deb_size" -le "$deb_limit" ] && [ "$installed_size" -le "$installed_limit" ]; then
    ok "sizes: $sizes"
else fail "too large: $sizes"; fi

# No ICU and no swift-corelibs-foundation: one `import Foundation` anywhere in
# what the binary links, even in a dependency, brings both back (43 MB). The
# -dbgsym package's symbol table is the shipped binary's.
mkdir -p "$base/dbgsym"
dpkg-deb -x "$dbgsym" "$base/dbgsym"
debug=$(find "$base/dbgsym/usr/lib/debug" -name '*.debug' | head -1)
nm "$debug" >"$base/symbols" 2>&1 || fail "nm $debug: $(head -3 "$base/symbols")"
icu=$(grep -cE ' (icudt[0-9]+_dat|swift_u(col|brk|loc|cal|num|trans)_open)$' "$base/symbols" || true)
foundation=$(grep -cE ' \$s(10Foundation|30FoundationInternationalization|14FoundationXML|19FoundationNetworking)' "$base/symbols" || true)
essentials=$(grep -c ' \$s20FoundationEssentials' "$base/symbols" || true)
if [ "$icu" = 0 ] && [ "$foundation" = 0 ] && [ "$essentials" -gt 0 ]; then
    ok "linked in: FoundationEssentials ($essentials symbols), no ICU, no Foundation (corelibs) symbol ($(basename "$debug"))"
else fail "ICU symbols: $icu, Foundation (corelibs) symbols: $foundation (both must be 0; FoundationEssentials: $essentials)"; fi

# --- 2. install over libvirt-sanlock -------------------------------------------
echo "-- apt-get install ./$deb"
# apt reads a local .deb as the _apt user where it can: a copy it may read.
cp "$deb" "$base/" && chmod 755 "$base" && chmod 644 "$base/$(basename "$deb")"
apt-get install -y "$base/$(basename "$deb")" >"$base/install.log" 2>&1 \
    || { cat "$base/install.log" >&2; echo "apt-get install failed" >&2; exit 1; }
installed && ok "installed $name $version" || fail "$name is not installed"
dpkg -L "$name" | sort >"$base/files"

# --- 3. the installed package --------------------------------------------------
diversions=$(dpkg-divert --list "$name" | sort)
expected=$(printf 'diversion of %s to %s by %s\n' "$man8" "$stock_man8" "$name" "$sbin" "$stock_sbin" "$name" | sort)
[ "$diversions" = "$expected" ] && ok "dpkg-divert: $sbin and $man8 diverted to *.libvirt-sanlock*" \
    || fail "diversions: '$diversions', expected '$expected'"
sums_diverted=$(sha256sum "$stock_sbin" "$stock_man8" | sed "s|$stock_sbin|$sbin|; s|$stock_man8|$man8|")
[ "$sums_diverted" = "$sums_before" ] && ok "libvirt-sanlock's script and man page kept byte for byte under the diverted names" \
    || fail "the diverted files differ from libvirt-sanlock's: $sums_diverted"
stock_intact && ok "dpkg --verify libvirt-sanlock: clean" || fail "dpkg --verify libvirt-sanlock: $(dpkg --verify libvirt-sanlock 2>&1)"

# Run only what is ours: the stock script ignores its arguments and cleans.
if [[ $(head -c 4 "$sbin") == $'\x7fELF' ]] && grep -qx "$sbin" "$base/files"; then
    said=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$name" --version 2>&1) || true
    [ "$said" = "$version" ] && ok "env -i PATH=/usr/sbin:... $name --version: $said (debian/changelog)" \
        || fail "$name --version said '$said', the package is $version"
else
    fail "$sbin is not this package's binary"
fi

toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
libraries=$(ldd "$sbin" 2>&1)
toolchain_libs=$(grep -E 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|libXCTest|not found' <<<"$libraries" || true)
toolchain_libs+=$(grep -F "$toolchain" <<<"$libraries" || true)
[ -z "$toolchain_libs" ] && ok "ldd $sbin: nothing from the Swift toolchain ($toolchain): $(awk '/=>/ {print $1}' <<<"$libraries" | tr '\n' ' ')" \
    || fail "ldd $sbin names the toolchain's libraries: $toolchain_libs"

warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l --warnings "$man8" 2>&1 >/dev/null)
[ -z "$warnings" ] && ok "man -l --warnings $man8: no warnings" || fail "man page warnings: $warnings"
[ "$(man -w "$name" 2>&1)" = "$man8" ] && [ "$(man -w "$name.libvirt-sanlock" 2>&1)" = "$stock_man8" ] \
    && ok "man $name finds ours, man $name.libvirt-sanlock libvirt's" || fail "man -w: $(man -w "$name" 2>&1), $(man -w "$name.libvirt-sanlock" 2>&1)"

# Completions: each shell finds the file where the package put it, and it
# completes an option.
bash_file=/usr/share/bash-completion/completions/$name
# shellcheck disable=SC2016  # expanded by that bash
reply=$(bash -c 'source "$1" && complete -p "$2" && function=$(complete -p "$2" | sed -n "s/.* -F \([^ ]*\) .*/\1/p") &&
        COMP_LINE="$2 --dry" COMP_POINT=${#COMP_LINE} COMP_WORDS=("$2" --dry) COMP_CWORD=1 && { "$function" "$2" --dry "$2"; } ;
        echo "reply: ${COMPREPLY[*]}"' bash "$bash_file" "$name" 2>&1) || true
[[ $reply == *"complete "*" $name"* && $reply == *"reply: --dry-run"* ]] \
    && ok "bash: $(head -1 <<<"$reply"); '$name --dry<TAB>' completes --dry-run" || fail "bash completion: $reply"
zsh_file=/usr/share/zsh/vendor-completions/_$name
if ! command -v zsh >/dev/null; then echo "note: no zsh: $zsh_file not checked"
elif out=$(zsh -n "$zsh_file" 2>&1 && zsh -f -c 'autoload -Uz compinit && compinit -u -D && print -r -- "$_comps[$1]"' zsh "$name" 2>&1) \
        && [ "$out" = "_$name" ]; then ok "zsh: $zsh_file parses, compinit registers _$name"
else fail "zsh completion: $out"; fi
fish_file=/usr/share/fish/vendor_completions.d/$name.fish
if ! command -v fish >/dev/null; then echo "note: no fish: $fish_file not checked"
elif out=$(fish --no-execute "$fish_file" 2>&1 && HOME=$base/home fish -c "complete -C'$name --format '" 2>&1) \
        && [ "$(cut -f1 <<<"$out" | tr '\n' ' ')" = "text json " ]; then ok "fish: $fish_file parses, '$name --format <TAB>' completes text json"
else fail "fish completion: $out"; fi

# The cleanup's and the audit's service and timer.
units=()
for unit in "$name" "$name-audit"; do units+=("$unit.service" "$unit.timer"); done
for unit in "${units[@]}"; do grep -qx "/lib/systemd/system/$unit" "$base/files" || fail "$unit not in the package"; done
for unit in "$name" "$name-audit"; do
    grep -qE "^ExecStart=$sbin( |\$)" "/lib/systemd/system/$unit.service" && ok "$unit.service: ExecStart=$sbin..." \
        || fail "$unit.service does not run $sbin"
done
! grep -q /usr/local "${units[@]/#//lib/systemd/system/}" || fail "the installed units name /usr/local"
out=$(systemd-analyze verify "${units[@]}" 2>&1) && [ -z "$out" ] \
    && ok "systemd-analyze verify ${units[*]} (found by name): clean" || fail "systemd-analyze verify: $out"
# Shipped, not enabled: no symlink, and systemctl (offline) agrees.
links=$(find /etc/systemd/system -name "$name*" 2>/dev/null)
[ -z "$links" ] && ok "no unit of $name linked in /etc/systemd/system" || fail "enabled: $links"
for unit in "${units[@]}"; do
    want=disabled; [[ $unit == *.service ]] && want=static   # services start from their timers only
    state=$(systemctl is-enabled "$unit" 2>&1 || true)
    [ "$state" = "$want" ] && ok "systemctl is-enabled $unit: $state" || fail "systemctl is-enabled $unit: $state, expected $want"
done
[ -z "$(dpkg-query -W -f='${Conffiles}' "$name")" ] && ok "no conffiles (no cron file: README.Debian)" \
    || fail "conffiles: $(dpkg-query -W -f='${Conffiles}' "$name")"

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
[ "$status" = 0 ] && grep -q "^would-delete *$free " "$base/dry.out" && grep -q "^kept *$busy " "$base/dry.out" \
    && [ -e "$leases/$free" ] && ok "dry run: exit 0, would delete the free lease, keeps the held one, deletes nothing" \
    || fail "dry run: exit status $status"

# --- 4. dpkg -r: the stock files back ------------------------------------------
echo "-- dpkg -r $name"
dpkg -r "$name" >"$base/remove.log" 2>&1 || { cat "$base/remove.log" >&2; fail "dpkg -r failed"; }
[ "$(sha256sum "$sbin" "$man8")" = "$sums_before" ] && ok "dpkg -r: libvirt-sanlock's $sbin and $man8 back, same checksums" \
    || fail "dpkg -r: $sbin or $man8 is not libvirt-sanlock's"
[ -z "$(dpkg-divert --list "$name")" ] && [ ! -e "$stock_sbin" ] && [ ! -e "$stock_man8" ] \
    && ok "dpkg -r: no diversion left, no *.libvirt-sanlock* file" || fail "dpkg -r: diversions or diverted files left: $(dpkg-divert --list "$name")"
stock_intact && ok "dpkg --verify libvirt-sanlock: clean" || fail "dpkg --verify libvirt-sanlock: $(dpkg --verify libvirt-sanlock 2>&1)"

# --- 5. dpkg -P: nothing left --------------------------------------------------
echo "-- dpkg -P $name"
dpkg -P "$name" >"$base/purge.log" 2>&1 || { cat "$base/purge.log" >&2; fail "dpkg -P failed"; }
installed && fail "dpkg -P: $name still known to dpkg: $(dpkg-query -W -f='${db:Status-Abbrev}' "$name")"
left=""
while read -r path; do
    # Directories stay when another package uses them; the two diverted
    # paths are libvirt-sanlock's again (checked above).
    [ -d "$path" ] || [ "$path" = "$sbin" ] || [ "$path" = "$man8" ] || [ ! -e "$path" ] || left+=" $path"
done <"$base/files"
[ -z "$left" ] && ok "dpkg -P: none of the $(wc -l <"$base/files") paths of dpkg -L is left (but directories others use)" \
    || fail "dpkg -P left:$left"
find "${search[@]}" -name "*$name*" 2>/dev/null | sort >"$base/found-after"
[ -z "$(ls /var/lib/dpkg/info/"$name".* 2>/dev/null)" ] && ok "dpkg -P: nothing in /var/lib/dpkg/info" \
    || fail "left in /var/lib/dpkg/info: $(ls /var/lib/dpkg/info/"$name".*)"
cmp -s "$base/found-before" "$base/found-after" \
    && ok "dpkg -P: the same files named *$name* as before the install in ${search[*]} (systemd's state, /etc included)" \
    || fail "files named *$name* that were not there before: $(comm -13 "$base/found-before" "$base/found-after" | tr '\n' ' ')"

finish check-deb
