# virt-sanlock-cleanup — see README.md.
SWIFT    ?= swift
PREFIX   ?= /usr/local
DESTDIR  ?=
# The in-process sanlock suite talks to the daemon named by SANLOCK_RUN_DIR,
# so it runs in a test process of its own with a private run directory.
INPROCESS_RUN_DIR := /var/tmp/vsc-inprocess-$(shell echo $$PPID)

# The end-to-end test's packages (libvirt with the sanlock plugin, qemu).
E2E_PACKAGES := libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-sanlock qemu-system-x86 qemu-utils jq

.PHONY: all deps build release check check-e2e test-unit test-integration demo clean

all: build

deps:
	@.ci/deps

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

check: deps
	$(SWIFT) build --build-tests
	@echo "== unit tests"
	$(SWIFT) test --skip-build --skip IntegrationTests
	@echo "== daemon tests (real sanlock daemons)"
	$(SWIFT) test --skip-build --filter IntegrationTests --skip SanlockBehaviourTests
	@echo "== sanlock behaviour through the wrapper (in-process, own daemon)"
	SANLOCK_RUN_DIR=$(INPROCESS_RUN_DIR) $(SWIFT) test --skip-build --filter SanlockBehaviourTests
	@$(MAKE) --no-print-directory check-e2e

# A real libvirtd, qemu guest and sanlock daemon in a private namespace
# (Tests/EndToEnd/libvirt-e2e.sh); as root.
check-e2e: build
	@.ci/deps $(E2E_PACKAGES)
	@echo "== end-to-end test with libvirt (libvirtd, a qemu guest, sanlock)"
	Tests/EndToEnd/libvirt-e2e.sh .build/debug/virt-sanlock-cleanup

test-unit:
	$(SWIFT) test --skip IntegrationTests

demo: deps
	$(SWIFT) build
	.ci/demo .build/debug/virt-sanlock-cleanup

clean:
	rm -rf .build
