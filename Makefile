# tsrun build. `make` builds into build/: tsrun (the C front end, frontend/tsrun.c), tsrun-main
# (the Bun executable it hands every command to but a fast `start`) and tsrun-helper (the C helper).
PREFIX ?= /usr/local
BUN := node_modules/.bin/bun
CC ?= cc
CFLAGS ?= -O2 -g
HELPER_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE
HELPER_SRC := $(wildcard helper/*.c)
HELPER_HDR := $(wildcard helper/*.h)
TS_SRC := $(shell find src bin -name '*.ts' -not -path 'src/spec/generated/*' -not -path 'src/boundary/gen/*' 2>/dev/null)
SCHEMAS := $(wildcard schemas/*.json)
# The TypeScript-helper boundary, declared once (boundary/helper.proto): protobuf-c generates the
# helper's side into build/gen, ts-proto the TypeScript side into src/boundary/gen, and
# scripts/gen-boundary-doc.ts docs/boundary.md. google/protobuf/wrappers.proto comes with
# libprotobuf-dev.
PROTO := boundary/helper.proto
PROTO_INC := -I boundary -I /usr/include
GEN_C := build/gen/helper.pb-c.c build/gen/google/protobuf/wrappers.pb-c.c
TS_PROTO_OPT := forceLong=bigint,oneof=unions-value,useOptionals=messages,importSuffix=.ts,outputJsonMethods=false,outputPartialMethods=false,outputTypeRegistry=false,outputServices=false

.PHONY: FORCE all install test unit integration demo bench typecheck clean

all: build/tsrun build/tsrun-main build/tsrun-helper docs/boundary.md

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

src/spec/generated/.stamp: $(SCHEMAS) scripts/gen-spec.ts node_modules/.package-lock.json
	$(BUN) scripts/gen-spec.ts
	touch $@

build/gen/.stamp: $(PROTO)
	@mkdir -p build/gen
	protoc-c $(PROTO_INC) --c_out=build/gen $(PROTO) google/protobuf/wrappers.proto
	touch $@

src/boundary/gen/.stamp: $(PROTO) node_modules/.package-lock.json
	@rm -rf src/boundary/gen && mkdir -p src/boundary/gen
	protoc $(PROTO_INC) --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto --ts_proto_out=src/boundary/gen --ts_proto_opt=$(TS_PROTO_OPT) $(PROTO)
	touch $@

# Committed, so that the format can be read without building; tests/unit/boundary-doc.test.ts
# fails when it is stale.
docs/boundary.md: $(PROTO) scripts/gen-boundary-doc.ts node_modules/.package-lock.json
	@mkdir -p build/gen
	protoc $(PROTO_INC) --include_imports --include_source_info --descriptor_set_out=build/gen/helper.desc $(PROTO)
	$(BUN) scripts/gen-boundary-doc.ts build/gen/helper.desc > $@.tmp && mv $@.tmp $@

# The helper links protobuf-c statically: one shared library less to load at every start.
build/tsrun-helper: $(HELPER_SRC) $(HELPER_HDR) build/gen/.stamp
	@mkdir -p build
	$(CC) $(HELPER_CFLAGS) -Ibuild/gen -o $@ $(HELPER_SRC) $(GEN_C) -l:libprotobuf-c.a -lseccomp

# --no-compile-autoload-*: a Bun executable otherwise reads bunfig.toml (whose preload runs code)
# and .env (TSRUN_HELPER ...) from its current directory, which is the caller's, as root.
# --splitting --format=esm: each command's code is a chunk loaded by its import(), so `state`
# does not load the validators and create's code. --compile-jit-policy=10: tier-up thresholds
# ten times the default; a process that lives 10-40 ms gains little from compiling what it runs
# once (create about 3 ms less CPU, bench/analysis.md). The front end goes further and starts
# tsrun-main with the JIT off (BUN_JSC_useJIT=0, frontend/tsrun.c): the policy is for
# tsrun-main run on its own.
# The commit `tsrun --version` names (as runc's "commit:" line), "-dirty" with uncommitted changes.
COMMIT := $(shell git describe --always --dirty --abbrev=40 --match=NeVeRmAtCh 2>/dev/null || echo unknown)
BUN_COMPILE := --define 'TSRUN_COMMIT="$(COMMIT)"' --compile --bytecode --minify --no-compile-autoload-dotenv --no-compile-autoload-bunfig --splitting --format=esm --compile-jit-policy=10

# Rewritten only when the commit changes: tsrun and tsrun-main, which both print it in --version,
# are rebuilt together.
build/commit: FORCE
	@mkdir -p build
	@echo '$(COMMIT)' | cmp -s - $@ || echo '$(COMMIT)' > $@

build/tsrun-main: bin/tsrun.ts $(TS_SRC) src/spec/generated/.stamp src/boundary/gen/.stamp Makefile build/commit
	@mkdir -p build
	$(BUN) build $(BUN_COMPILE) --target=bun-linux-x64 bin/tsrun.ts --outfile $@

# The texts the front end prints itself (--version, features), made by the TypeScript that prints
# them in tsrun-main.
build/gen/frontend-text.h: scripts/gen-frontend-text.ts $(TS_SRC) src/spec/generated/.stamp src/boundary/gen/.stamp
	@mkdir -p build/gen
	$(BUN) scripts/gen-frontend-text.ts > $@.tmp && mv $@.tmp $@

# Static: every command starts here, and the dynamic loader was a quarter of the front end's own
# time (`tsrun state` 0.89 -> 0.70 ms wall, 100 runs; bench/analysis.md, section 7).
build/tsrun: frontend/tsrun.c Makefile build/gen/frontend-text.h build/commit
	@mkdir -p build
	$(CC) $(HELPER_CFLAGS) -static -Ibuild/gen '-DTSRUN_COMMIT="$(COMMIT)"' -o $@ frontend/tsrun.c

typecheck: src/spec/generated/.stamp src/boundary/gen/.stamp
	node_modules/.bin/tsc -p tsconfig.json

install: all
	install -D -m 0755 build/tsrun $(DESTDIR)$(PREFIX)/bin/tsrun
	install -D -m 0755 build/tsrun-main $(DESTDIR)$(PREFIX)/libexec/tsrun/tsrun-main
	install -D -m 0755 build/tsrun-helper $(DESTDIR)$(PREFIX)/libexec/tsrun/tsrun-helper

# Unit, integration and manager tests, then the conformance suite and the OCI runtime-tools suite
# against their committed results.
test: all typecheck
	node_modules/.bin/tap
	$(MAKE) --no-print-directory conformance-check
	$(MAKE) --no-print-directory runtime-tools-check

demo: all
	scripts/demo.sh

# Benchmarks against runc and crun (bench/bench.ts; writes docs/performance.md). BENCH_RUNS=3 for a
# quick smoke test (its report goes to build/bench/performance.md instead).
bench: all
	env -u NODE_EXTRA_CA_CERTS $(BUN) bench/bench.ts

clean:
	rm -rf build src/spec/generated src/boundary/gen

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

# The OCI runtime-tools validation suite (docs/conformance.md, "OCI runtime-tools validation
# suite"). Its source, with vendored Go modules, is kept beside the repository, in
# ../shared/runtime-tools (RUNTIME_TOOLS_SRC); it builds offline with golang-go into
# build/runtime-tools, and run-suite.sh needs jq.
#   make runtime-tools          build it, run it against build/tsrun; the per-program table is in
#                               build/runtime-tools-results/tsrun/summary.txt
#   make runtime-tools-report   run it against tsrun, runc and crun (crun-hybrid) and rewrite its
#                               section of docs/conformance.md and conformance/runtime-tools-expected.tsv
#   make runtime-tools-check    run it against build/tsrun and fail when a program that passes in
#                               conformance/runtime-tools-expected.tsv fails now (what CI runs)
.PHONY: runtime-tools runtime-tools-build runtime-tools-report runtime-tools-check
RUNTIME_TOOLS_SRC ?= ../shared/runtime-tools
RUNTIME_TOOLS_FILES := $(wildcard $(RUNTIME_TOOLS_SRC)/build.sh $(RUNTIME_TOOLS_SRC)/run-suite.sh $(RUNTIME_TOOLS_SRC)/runtime-tools-*.tar.gz)

runtime-tools-build: build/runtime-tools/.built

build/runtime-tools/.built: $(RUNTIME_TOOLS_FILES)
	@if [ ! -x "$(RUNTIME_TOOLS_SRC)/build.sh" ]; then \
		echo "runtime-tools: $(RUNTIME_TOOLS_SRC)/build.sh not found: the OCI runtime-tools source is kept beside the repository (../shared/runtime-tools); set RUNTIME_TOOLS_SRC to its directory" >&2; \
		exit 1; \
	fi
	@command -v go >/dev/null || { echo "runtime-tools: go not found (apt-get install golang-go)" >&2; exit 1; }
	@command -v jq >/dev/null || { echo "runtime-tools: jq not found (apt-get install jq); run-suite.sh needs it" >&2; exit 1; }
	@mkdir -p build
	"$(RUNTIME_TOOLS_SRC)/build.sh" build >build/runtime-tools-build.log 2>&1 || { tail -20 build/runtime-tools-build.log >&2; exit 1; }
	touch $@

runtime-tools: all runtime-tools-build
	$(BUN) conformance/runtime-tools.ts run tsrun=build/tsrun

runtime-tools-report: node_modules/.package-lock.json all runtime-tools-build
	$(BUN) conformance/runtime-tools.ts report

runtime-tools-check: node_modules/.package-lock.json all runtime-tools-build
	$(BUN) conformance/runtime-tools.ts check build/tsrun
