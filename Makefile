# tsrun build. `make` builds into build/: tsrun (the C front end, frontend/tsrun.c), tsrun-main
# (the Bun executable it hands every command to but a fast `start`) and tsrun-helper (the C helper).
PREFIX ?= /usr/local
BUN := node_modules/.bin/bun
CC ?= cc
CFLAGS ?= -O2 -g
HELPER_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE
HELPER_SRC := $(wildcard helper/*.c)
HELPER_HDR := $(wildcard helper/*.h)
TS_SRC := $(shell find src bin -name '*.ts' -not -path 'src/spec/generated/*' 2>/dev/null)
SCHEMAS := $(wildcard schemas/*.json)

.PHONY: all install test unit integration demo bench typecheck clean

all: build/tsrun build/tsrun-main build/tsrun-helper

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

src/spec/generated/.stamp: $(SCHEMAS) scripts/gen-spec.ts node_modules/.package-lock.json
	$(BUN) scripts/gen-spec.ts
	touch $@

build/tsrun-helper: $(HELPER_SRC) $(HELPER_HDR)
	@mkdir -p build
	$(CC) $(HELPER_CFLAGS) -o $@ $(HELPER_SRC) -lseccomp

# --no-compile-autoload-*: a Bun executable otherwise reads bunfig.toml (whose preload runs code)
# and .env (TSRUN_HELPER ...) from its current directory, which is the caller's, as root.
# --splitting --format=esm: each command's code is a chunk loaded by its import(), so `state`
# does not load the validators and create's code. --compile-jit-policy=10: tier-up thresholds
# ten times the default; a process that lives 10-40 ms gains little from compiling what it runs
# once (create about 3 ms less CPU, bench/analysis.md).
# The commit `tsrun --version` names (as runc's "commit:" line), "-dirty" with uncommitted changes.
COMMIT := $(shell git describe --always --dirty --abbrev=40 --match=NeVeRmAtCh 2>/dev/null || echo unknown)
BUN_COMPILE := --define 'TSRUN_COMMIT="$(COMMIT)"' --compile --bytecode --minify --no-compile-autoload-dotenv --no-compile-autoload-bunfig --splitting --format=esm --compile-jit-policy=10

build/tsrun-main: bin/tsrun.ts $(TS_SRC) src/spec/generated/.stamp Makefile
	@mkdir -p build
	$(BUN) build $(BUN_COMPILE) --target=bun-linux-x64 bin/tsrun.ts --outfile $@

build/tsrun: frontend/tsrun.c
	@mkdir -p build
	$(CC) $(HELPER_CFLAGS) -o $@ frontend/tsrun.c

typecheck: src/spec/generated/.stamp
	node_modules/.bin/tsc -p tsconfig.json

install: all
	install -D -m 0755 build/tsrun $(DESTDIR)$(PREFIX)/bin/tsrun
	install -D -m 0755 build/tsrun-main $(DESTDIR)$(PREFIX)/libexec/tsrun/tsrun-main
	install -D -m 0755 build/tsrun-helper $(DESTDIR)$(PREFIX)/libexec/tsrun/tsrun-helper

# Unit, integration and manager tests, then the conformance suite against the committed results.
test: all typecheck
	node_modules/.bin/tap
	$(MAKE) --no-print-directory conformance-check

demo: all
	scripts/demo.sh

# Benchmarks against runc and crun (bench/bench.ts; writes docs/performance.md). BENCH_RUNS=3 for a
# quick smoke test (its report goes to build/bench/performance.md instead).
bench: all
	env -u NODE_EXTRA_CA_CERTS $(BUN) bench/bench.ts

clean:
	rm -rf build src/spec/generated

# OCI runtime-spec conformance suite (conformance/, docs/conformance.md).
#   make conformance [RUNTIME=/path/to/runtime]  run the suite against one runtime (TAP on stdout;
#                                                default: build/tsrun)
#   make conformance-report                     run it against tsrun, runc and crun (crun through
#                                                conformance/runtimes/crun-hybrid) and rewrite
#                                                docs/conformance.md and conformance/expected-tsrun.json
#   make conformance-check                      run it against build/tsrun and fail on any assertion
#                                                that passes in conformance/expected-tsrun.json but
#                                                not now (what CI runs)
.PHONY: conformance conformance-report conformance-check
RUNTIME ?= build/tsrun
CONFORMANCE_TESTS = $(sort $(wildcard conformance/*.test.ts))

conformance: node_modules/.package-lock.json $(if $(filter build/tsrun,$(RUNTIME)),all)
	$(BUN) conformance/lib/build.ts >/dev/null
	RUNTIME=$(abspath $(RUNTIME)) node_modules/.bin/tap --reporter=tap --disable-coverage --timeout=900 $(CONFORMANCE_TESTS)

conformance-report: node_modules/.package-lock.json all
	$(BUN) conformance/report.ts report

conformance-check: node_modules/.package-lock.json all
	$(BUN) conformance/report.ts check build/tsrun
