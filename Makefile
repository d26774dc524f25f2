# virt-sanlock-cleanup — see README.md.
SWIFT    ?= swift
PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
# systemd looks in /usr/local/lib/systemd/system and /usr/lib/systemd/system
# (systemd-analyze unit-paths); with another PREFIX, set UNITDIR too.
UNITDIR  ?= $(PREFIX)/lib/systemd/system
CRONDIR  ?= /etc/cron.d
DOCDIR   ?= $(PREFIX)/share/doc/$(NAME)
# Shell completions, where bash-completion, zsh and fish look for them under
# PREFIX (Debian's zsh: site-functions in /usr/local, vendor-completions in /usr).
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
NAME     := virt-sanlock-cleanup
# Release builds link the Swift runtime statically: the installed binary needs
# only Debian's libraries, not the toolchain it was built with (and so no
# $ORIGIN run path either); relocations are resolved at start (-z now: full
# RELRO, as Debian builds its packages).
#
# Size: what each saves of the stripped binary, in the order applied (docs/performance.md,
# "Package size"): no dynamic symbol table of every public Swift symbol,
# which the toolchain's static-stdlib-args.lnk asks for (-export-dynamic)
# and nothing reads (0.45 MB); the toolchain's lld (0.06), to pack the PIE's
# relative relocations (DT_RELR, glibc >= 2.36: 0.97); -Osize (0.22); one
# section per function (0.12), and no public symbol kept for another link
# unit, since there is none (-internalize-at-link: 0.27), so that SwiftPM's
# --gc-sections drops what the packages' public API has unused.
SIZE     := -Xswiftc -Osize -Xswiftc -Xfrontend -Xswiftc -function-sections \
            -Xswiftc -Xfrontend -Xswiftc -internalize-at-link \
            -Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic
# Reproducible: the same binary from any source directory. Paths under it are
# written relative to it (".") in the debug information and in #file strings,
# of the Swift and the C targets alike. Without the debug information's
# references to the build's clang module cache (.build/.../ModuleCache/HASH/,
# the hash of the source directory; they serve only a debugger on the build
# machine), and without the hash of each object's LLVM module that Swift
# stamps into it (.swift_modhash, to skip unchanged code generation in
# incremental builds), which hashes the prefix map above and so the
# directory: zeros instead.
REPRODUCIBLE := -Xswiftc -file-prefix-map -Xswiftc $(CURDIR)=. -Xcc -ffile-prefix-map=$(CURDIR)=. \
                -Xswiftc -Xfrontend -Xswiftc -no-clang-module-breadcrumbs \
                -Xswiftc -Xfrontend -Xswiftc -disable-incremental-llvm-codegen
RELEASE  := -c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now $(SIZE) $(REPRODUCIBLE)
RELEASE_BINARY = $$($(SWIFT) build $(RELEASE) --show-bin-path)/$(NAME)
# The files in cron/ name /usr/local/sbin/virt-sanlock-cleanup, usable as they
# are for the default PREFIX; install rewrites that path to SBINDIR.
SUBST    := sed 's|/usr/local/sbin/$(NAME)|$(SBINDIR)/$(NAME)|g'
# The in-process sanlock suite talks to the daemon named by SANLOCK_RUN_DIR,
# so it runs in a test process of its own with a private run directory.
INPROCESS_RUN_DIR := /var/tmp/vsc-inprocess-$(shell echo $$PPID)
BENCH_BINARY ?=

# The end-to-end test's packages (libvirt with the sanlock plugin, qemu).
E2E_PACKAGES := libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-sanlock qemu-system-x86 qemu-utils jq
# What make deb needs besides the build's own packages (debian/control's
# Build-Depends, which dpkg-buildpackage checks).
DEB_PACKAGES := dpkg-dev debhelper
# The package build (debian/rules) runs make with DEPS=true: there
# dpkg-buildpackage has checked the Build-Depends.
DEPS     ?= .ci/deps

.PHONY: all deps build release test check check-e2e check-two-hosts check-ops check-deb check-reproducible check-faults check-fuzz faults fuzz test-unit \
        demo man version bench bench-smoke clean deb \
        install install-bin install-man install-doc install-completions install-units install-cron uninstall

all: build

deps:
	@$(DEPS)

build: deps
	$(SWIFT) build

# The command only: the test fixtures' module is not part of it.
release: deps
	$(SWIFT) build $(RELEASE) --product $(NAME)

# The fast tier, for every change: unit tests and the daemon tests (real
# sanlock daemons, the built binary). Swift Testing would start all ~40
# daemon tests at once; on a 2-core machine that starts ~50 sanlock daemons
# and their lockspace joins together and makes every process in them wait
# for a CPU. TEST_PARALLELISM bounds how many run at a time (docs/testing.md,
# "Waits, time and parallelism", says what it does to the time).
TEST_PARALLELISM ?= 8
test: deps
	$(SWIFT) build --build-tests
	@echo "== unit tests"
	$(SWIFT) test --skip-build --skip IntegrationTests
	@echo "== daemon tests (real sanlock daemons, $(TEST_PARALLELISM) at a time)"
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_PARALLELISM) \
	    $(SWIFT) test --skip-build --filter IntegrationTests --skip SanlockBehaviourTests

# Everything, as CI runs it: the fast tier, then the in-process sanlock
# suite, fault injection, fuzzing, libvirt end to end, the bench smoke and
# the ops checks, then the Debian package (last: the end-to-end test and the
# bench smoke use libvirt-sanlock's own /usr/sbin/virt-sanlock-cleanup) and
# whether another directory builds it bit for bit.
check: test
	@echo "== sanlock behaviour through the wrapper (in-process, own daemon)"
	SANLOCK_RUN_DIR=$(INPROCESS_RUN_DIR) $(SWIFT) test --skip-build --filter SanlockBehaviourTests; \
	    status=$$?; rm -rf $(INPROCESS_RUN_DIR); exit $$status
	@$(MAKE) --no-print-directory check-faults
	@$(MAKE) --no-print-directory check-fuzz
	@$(MAKE) --no-print-directory check-e2e
	@$(MAKE) --no-print-directory check-two-hosts
	@echo "== bench smoke (N=50: stock script, this tool, raw C loop; the latency lab on 10 leases)"
	.ci/bench --smoke .build/debug/$(NAME)
	@$(MAKE) --no-print-directory check-ops
	@$(MAKE) --no-print-directory check-deb
	@$(MAKE) --no-print-directory check-reproducible

# A real libvirtd, qemu guest and sanlock daemon in a private namespace
# (Tests/EndToEnd/libvirt-e2e.sh); as root.
check-e2e: build
	@.ci/deps $(E2E_PACKAGES)
	@echo "== end-to-end test with libvirt (libvirtd, a qemu guest, sanlock)"
	Tests/EndToEnd/libvirt-e2e.sh .build/debug/virt-sanlock-cleanup

# Two libvirt hosts sharing a lease directory, each with its sanlock daemon
# and libvirtd: live migrations under both hosts' audits and cleaning runs
# (Tests/EndToEnd/libvirt-two-hosts.sh); as root.
check-two-hosts: build
	@.ci/deps $(E2E_PACKAGES) iproute2
	@echo "== two-host test with libvirt (two libvirtds and sanlock daemons, live migrations, audits, cleaning runs)"
	Tests/EndToEnd/libvirt-two-hosts.sh .build/debug/virt-sanlock-cleanup

# The cron entry and systemd units (static checks, systemd-analyze verify);
# make install/uninstall, running the installed binary as the installed unit
# and cron entry would against a private sanlock daemon; the installed units
# under a private systemd with all their hardening. Root; touches nothing of
# the machine's own /usr/local, /etc, libvirt or sanlock.
check-ops: deps
	@echo "== cron entry and systemd units"
	Tests/Ops/check-units.sh
	@echo "== make install, the installed unit's command line, make uninstall"
	Tests/Ops/check-install.sh
	@echo "== the installed units under a private systemd"
	Tests/Ops/check-systemd.sh
	@echo "== Prometheus alert rules (promtool check and test)"
	Tests/Ops/check-alert-rules.sh

# make deb; lintian --pedantic; the sizes, and no ICU or Foundation in the
# binary; the package installed over libvirt-sanlock's script, checked,
# removed and purged, leaving libvirt-sanlock as it was. Root.
check-deb:
	@echo "== the Debian package: build, lintian, sizes, no ICU, install over libvirt-sanlock, remove, purge"
	Tests/Ops/check-deb.sh

# make deb here and in a copy of the source tree in another directory, with
# a build directory of its own: the .deb and the -dbgsym .deb must be the
# same bytes (about 2 minutes: one more release build). Root.
check-reproducible:
	@echo "== reproducible: make deb from another directory gives the same .deb and -dbgsym .deb"
	Tests/Ops/check-reproducible.sh

# Fault injection with strace (Tests/Faults/fault-injection.py): a small
# cleaning run killed, or given EIO/ENOSPC/EINTR/EACCES, at every occurrence
# of the system calls it makes, each followed by a normal run; and the sanlock
# daemon killed at random points. --quick is the make check sweep; make faults
# sweeps every occurrence of every system call (long).
check-faults: build
	@echo "== fault injection (strace): kills and errors at every system call of a cleaning run"
	Tests/Faults/fault-injection.py --quick --jobs 3 .build/debug/$(NAME)

faults: build
	Tests/Faults/fault-injection.py .build/debug/$(NAME)

# libFuzzer targets (Tests/Fuzz): a short smoke of every target in make check,
# FUZZ_SECONDS per target (default 300) with make fuzz.
FUZZ_SECONDS ?= 300
check-fuzz: deps
	@echo "== fuzz smoke (libFuzzer + ASan, every target)"
	Tests/Fuzz/run.sh smoke 10

fuzz: deps
	Tests/Fuzz/run.sh long $(FUZZ_SECONDS)

test-unit:
	$(SWIFT) test --skip IntegrationTests

demo: deps
	$(SWIFT) build
	.ci/demo .build/debug/virt-sanlock-cleanup

# The version is written once, in debian/changelog (dch -v VERSION): it is
# the package's, and make version copies it into the command's --version. A
# test fails when the two differ, and so does the package build.
version:
	@version=$$(dpkg-parsechangelog -S Version) && \
	printf '%s\n' '// Generated by `make version` from debian/changelog, where the version is' \
	    '// written. Do not edit.' 'extension VirtSanlockCleanup {' "    static let version = \"$$version\"" '}' \
	    >Sources/$(NAME)/Version.swift && echo "version $$version"

# The man page is generated from man/virt-sanlock-cleanup.8.in and the
# command-line definition; a test fails when it is out of date.
man: build
	.ci/man .build/debug/virt-sanlock-cleanup

# make install [PREFIX=/usr/local] [DESTDIR=]: the release binary, the man
# page, the JSON schema and alert rules, the shell completions, the systemd
# service and timer, and the cron entry (disabled: see the file). Enabling a
# schedule is left to the administrator.
install: install-bin install-man install-doc install-completions install-units install-cron
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@if [ -z "$(DESTDIR)" ]; then \
	    echo "installed; nothing is scheduled yet: systemctl enable --now $(NAME).timer $(NAME)-audit.timer"; \
	    echo "  (or, without systemd, uncomment the entry in $(CRONDIR)/$(NAME))"; \
	fi

install-bin: release
	install -D -m 0755 "$(RELEASE_BINARY)" "$(DESTDIR)$(SBINDIR)/$(NAME)"

install-man:
	@if [ -f man/$(NAME).8 ]; then \
	    echo "install -D -m 0644 man/$(NAME).8 $(DESTDIR)$(MANDIR)/man8/$(NAME).8"; \
	    install -D -m 0644 man/$(NAME).8 "$(DESTDIR)$(MANDIR)/man8/$(NAME).8"; \
	else echo "warning: man/$(NAME).8 is missing: no man page installed" >&2; fi

# The JSON report's schema (see OUTPUT in the man page) and the Prometheus
# alert rules for --metrics-file.
install-doc:
	install -D -m 0644 man/$(NAME)-report.schema.json "$(DESTDIR)$(DOCDIR)/$(NAME)-report.schema.json"
	install -D -m 0644 contrib/prometheus/$(NAME).rules.yml "$(DESTDIR)$(DOCDIR)/$(NAME).rules.yml"

# Generated by swift-argument-parser from the command-line definition. The
# bash file is sourced, not run: no #! line.
install-completions: release
	install -d "$(DESTDIR)$(BASHCOMPDIR)" "$(DESTDIR)$(ZSHCOMPDIR)" "$(DESTDIR)$(FISHCOMPDIR)"
	binary="$(RELEASE_BINARY)" && \
	"$$binary" --generate-completion-script bash | sed '1{/^#!/d}' >"$(DESTDIR)$(BASHCOMPDIR)/$(NAME)" && \
	"$$binary" --generate-completion-script zsh >"$(DESTDIR)$(ZSHCOMPDIR)/_$(NAME)" && \
	"$$binary" --generate-completion-script fish >"$(DESTDIR)$(FISHCOMPDIR)/$(NAME).fish"
	chmod 0644 "$(DESTDIR)$(BASHCOMPDIR)/$(NAME)" "$(DESTDIR)$(ZSHCOMPDIR)/_$(NAME)" "$(DESTDIR)$(FISHCOMPDIR)/$(NAME).fish"

# The weekly cleanup and the 5-minute audit, each a service and its timer.
UNITS := $(NAME) $(NAME)-audit
install-units:
	install -d "$(DESTDIR)$(UNITDIR)"
	for unit in $(UNITS); do \
	    $(SUBST) cron/$$unit.service >"$(DESTDIR)$(UNITDIR)/$$unit.service" && \
	    chmod 0644 "$(DESTDIR)$(UNITDIR)/$$unit.service" && \
	    install -m 0644 cron/$$unit.timer "$(DESTDIR)$(UNITDIR)/$$unit.timer" || exit 1; \
	done

# The cron entry is configuration the administrator enables by editing it: an
# existing one is kept.
install-cron:
	@if [ -e "$(DESTDIR)$(CRONDIR)/$(NAME)" ]; then \
	    echo "keeping $(DESTDIR)$(CRONDIR)/$(NAME)"; \
	else \
	    echo "install cron/$(NAME) $(DESTDIR)$(CRONDIR)/$(NAME)"; \
	    install -d "$(DESTDIR)$(CRONDIR)" && \
	    $(SUBST) cron/$(NAME) >"$(DESTDIR)$(CRONDIR)/$(NAME)" && \
	    chmod 0644 "$(DESTDIR)$(CRONDIR)/$(NAME)"; \
	fi

# Removes what install added (files only: the directories are shared). On the
# real root it first disables and stops the timer if the administrator enabled it.
uninstall:
	@for unit in $(UNITS); do \
	    if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -e "$(UNITDIR)/$$unit.timer" ]; then \
	        if [ -d /run/systemd/system ]; then systemctl disable --now $$unit.timer; \
	        else systemctl disable $$unit.timer; fi; \
	    fi; \
	done
	rm -f "$(DESTDIR)$(SBINDIR)/$(NAME)" "$(DESTDIR)$(MANDIR)/man8/$(NAME).8" \
	      "$(DESTDIR)$(DOCDIR)/$(NAME)-report.schema.json" "$(DESTDIR)$(DOCDIR)/$(NAME).rules.yml" \
	      "$(DESTDIR)$(BASHCOMPDIR)/$(NAME)" "$(DESTDIR)$(ZSHCOMPDIR)/_$(NAME)" "$(DESTDIR)$(FISHCOMPDIR)/$(NAME).fish" \
	      "$(DESTDIR)$(UNITDIR)/$(NAME).service" "$(DESTDIR)$(UNITDIR)/$(NAME).timer" \
	      "$(DESTDIR)$(UNITDIR)/$(NAME)-audit.service" "$(DESTDIR)$(UNITDIR)/$(NAME)-audit.timer" \
	      "$(DESTDIR)$(CRONDIR)/$(NAME)"
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# Speed against the stock script and a raw C loop on private sanlock daemons,
# on local disk, then in the latency lab (a lease directory on a FUSE mount
# that delays every request: docs/performance.md, "The latency lab"); about 15 minutes,
# prints Markdown tables. BENCH_BINARY=path skips the build.
bench: release
	.ci/bench $(or $(BENCH_BINARY),$(RELEASE_BINARY))

# Every path of the bench on 50 leases, and the latency lab on 10 (about
# 45 s); part of make check.
bench-smoke: build
	.ci/bench --smoke $(or $(BENCH_BINARY),.build/debug/$(NAME))

# make deb: dist/virt-sanlock-cleanup_VERSION_ARCH.deb (and its -dbgsym,
# .buildinfo and .changes) from debian/, with debhelper; dpkg-buildpackage
# alone would write them to the parent directory. As root it installs what it
# needs; otherwise it says what to install. debian/rules runs make release
# and make install PREFIX=/usr into the package.
DEB_BASENAME = $(NAME)_$$(dpkg-parsechangelog -S Version)_$$(dpkg-architecture -q DEB_HOST_ARCH)
deb:
	@$(DEPS) $(DEB_PACKAGES)
	mkdir -p dist
	DEB_OUTPUT_DIR=dist dpkg-buildpackage -b -us -uc \
	    --buildinfo-option=-udist --buildinfo-file=dist/$(DEB_BASENAME).buildinfo \
	    --changes-option=-udist --changes-file=dist/$(DEB_BASENAME).changes
	@echo "built dist/$(DEB_BASENAME).deb"

clean:
	rm -rf .build .build-fuzz dist debian/.debhelper debian/$(NAME) debian/files debian/*.substvars \
	       debian/debhelper-build-stamp debian/*.debhelper.log debian/*.debhelper
