# virt-sanlock-cleanup — see README.md.
SWIFT    ?= swift
PREFIX   ?= /usr/local
DESTDIR  ?=
# The in-process sanlock suite talks to the daemon named by SANLOCK_RUN_DIR,
# so it runs in a test process of its own with a private run directory.
INPROCESS_RUN_DIR := /var/tmp/vsc-inprocess-$(shell echo $$PPID)
BENCH_BINARY ?=

.PHONY: all deps build release check test-unit test-integration demo bench bench-smoke clean

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

# Speed against the stock script and a raw C loop on private sanlock daemons
# (about 10 minutes; prints a Markdown table). BENCH_BINARY=path skips the build.
bench: deps
	.ci/bench $(BENCH_BINARY)

bench-smoke: deps
	.ci/bench --smoke $(BENCH_BINARY)

clean:
	rm -rf .build
