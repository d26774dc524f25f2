# virt-sanlock-cleanup — see README.md.
SWIFT    ?= swift
PREFIX   ?= /usr/local
DESTDIR  ?=
# The in-process sanlock suite talks to the daemon named by SANLOCK_RUN_DIR,
# so it runs in a test process of its own with a private run directory.
INPROCESS_RUN_DIR := /var/tmp/vsc-inprocess-$(shell echo $$PPID)

.PHONY: all deps build release check test-unit test-integration demo man clean

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

test-unit:
	$(SWIFT) test --skip IntegrationTests

demo: deps
	$(SWIFT) build
	.ci/demo .build/debug/virt-sanlock-cleanup

# The man page is generated from man/virt-sanlock-cleanup.8.in and the
# command-line definition; a test fails when it is out of date.
man: build
	.ci/man .build/debug/virt-sanlock-cleanup

clean:
	rm -rf .build
