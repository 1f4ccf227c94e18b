# activerecord: Lua 5.4 ActiveRecord with a C core on libmysqlclient
# (MariaDB Connector/C or Oracle's libmysqlclient).
#
#   make            build the C core into build/
#   make demo       run the ORM quickstart (examples/quickstart.lua) and the
#                   C core tour (examples/core_tour.lua) against a private MariaDB
#   make db         start (or reuse) a persistent private MariaDB under .db/
#                   and print its AR_MYSQL_* export lines; make db-stop stops it
#   make test       run every spec against a private MariaDB
#   make check-memory   core specs under valgrind (fails on leaks/errors)
#   make bench      benchmarks against the C floor and LuaSQL, then coroutines
#                   on one thread against processes (bench/coroutines.lua)
#   make test-c     C harnesses (allocation-failure injection under ASan/LSan,
#                   8 threads under TSan) against a private MariaDB
#   make fuzz       libFuzzer targets, FUZZ_SECONDS (60) each; fuzz-quick: 10 s
#   make lint-c     clang-tidy (.clang-tidy) and cppcheck over src/
#   make install    used by luarocks (INST_LIBDIR, INST_LUADIR, INST_BINDIR)

LUA        ?= lua5.4
LUA_INCDIR ?= $(shell pkg-config --variable=includedir lua5.4 2>/dev/null || echo /usr/include)/lua5.4
CC         ?= cc
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared

# Locate the client library: Connector/C first, then Oracle's, then pkg-config.
MYSQL_CONFIG := $(shell command -v mariadb_config 2>/dev/null || command -v mysql_config 2>/dev/null)
ifneq ($(MYSQL_CONFIG),)
MYSQL_CFLAGS ?= $(shell $(MYSQL_CONFIG) --include)
MYSQL_LIBS   ?= $(shell $(MYSQL_CONFIG) --libs)
else
MYSQL_CFLAGS ?= $(shell pkg-config --cflags libmariadb 2>/dev/null || pkg-config --cflags mysqlclient 2>/dev/null)
MYSQL_LIBS   ?= $(shell pkg-config --libs libmariadb 2>/dev/null || pkg-config --libs mysqlclient 2>/dev/null)
endif

# Always applied, whatever CFLAGS luarocks passes.
AR_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -fPIC -Wall -Wextra -Werror \
            -Wmissing-prototypes -Wshadow -I$(LUA_INCDIR) $(MYSQL_CFLAGS)

BUILD   ?= build
CORE_SO := $(BUILD)/activerecord/backend/mysql/core.so
SRCS    := $(wildcard src/*.c)
OBJS    := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))

LUA_ENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;" \
          LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"

.PHONY: all deps demo db db-stop test test-core check-memory bench rock-check lint install clean \
        test-c fuzz fuzz-quick fuzz-build lint-c

all: $(CORE_SO)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AR_CFLAGS) -c $< -o $@

$(CORE_SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIBFLAG) -o $@ $(OBJS) $(MYSQL_LIBS)

deps:
	@scripts/ensure-deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh sh -c '$(LUA) examples/quickstart.lua && \
	  echo && $(LUA) examples/core_tour.lua'

# A server of your own for development: data under .db/ survives make db-stop
# and the next make db (which restarts it, or reuses it when it runs). The
# server outlives make (it runs in its own session). Use it with
#   eval "$$(make -s db)"     or     make -s db > .db/env && . .db/env
DB_DIR ?= .db
db: deps
	@if scripts/mariadb-server.sh status $(DB_DIR) >/dev/null 2>&1; then :; \
	elif [ -f $(DB_DIR)/my.cnf ] && [ -d $(DB_DIR)/data ] && [ -f $(DB_DIR)/env.sh ]; then \
	  scripts/mariadb-server.sh restart $(DB_DIR) >&2; \
	else scripts/mariadb-server.sh start $(DB_DIR) >/dev/null; fi
	@grep -v AR_TEST_SERVER_DIR $(DB_DIR)/env.sh
	@echo "# server: $(DB_DIR) (make db-stop stops it; rm -rf $(DB_DIR) drops its data)" >&2

db-stop:
	@scripts/mariadb-server.sh stop $(DB_DIR)
	@echo "stopped the server in $(DB_DIR) (its data stays; make db starts it again)"

test: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh scripts/run-specs.sh

# The core specs under valgrind, on an unoptimised build with symbols kept
# apart from the normal one.
check-memory: deps
	@$(MAKE) --no-print-directory all CFLAGS="-O0 -g" BUILD=build/memcheck
	@$(LUA_ENV) AR_CORE_CPATH="build/memcheck/?.so" scripts/with-test-server.sh scripts/check-memory.sh

bench: deps
	@scripts/ensure-deps.sh sysbench
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh bench/run.sh
	@if [ "$${BENCH_SUITE:-all}" = all ]; then $(LUA_ENV) scripts/with-test-server.sh $(LUA) bench/coroutines.lua; fi

rock-check: deps
	@$(MAKE) --no-print-directory all
	@scripts/with-test-server.sh scripts/rock-check.sh

lint:
	@scripts/ensure-deps.sh lua-check
	luacheck lua spec bench examples bin/ar-migrate

# ---- C harnesses, fuzzing and C lint (clang) ----------------------------
# The core's objects are rebuilt per sanitizer under $(BUILD)/<sanitizer>/ and
# linked into the harness (no dlopen); Lua and the client library stay the
# system's, uninstrumented.
CLANG       ?= clang
LUA_LIB     ?= -llua5.4
SAN_CFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer \
               -Wall -Wextra -Werror -I$(LUA_INCDIR) $(MYSQL_CFLAGS)
ASAN_FLAGS   = -fsanitize=address,undefined -fno-sanitize-recover=undefined
TSAN_FLAGS   = -fsanitize=thread
FUZZ_TARGETS = json version sql_keyword temporal text_value
FUZZ_SECONDS ?= 60

ASAN_OBJS   := $(patsubst src/%.c,$(BUILD)/asan/%.o,$(SRCS))
TSAN_OBJS   := $(patsubst src/%.c,$(BUILD)/tsan/%.o,$(SRCS))
FUZZ_OBJS   := $(patsubst src/%.c,$(BUILD)/fuzz/obj/%.o,$(SRCS))
OOM_BIN     := $(BUILD)/test-c/oom
THREADS_BIN := $(BUILD)/test-c/threads
FUZZ_BINS   := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
.SECONDARY: $(ASAN_OBJS) $(TSAN_OBJS) $(FUZZ_OBJS)

$(BUILD)/asan/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(ASAN_FLAGS) -c $< -o $@

$(BUILD)/tsan/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(TSAN_FLAGS) -c $< -o $@

$(BUILD)/fuzz/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(ASAN_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# The core's own malloc/calloc/realloc calls are wrapped so the harness can
# fail them too (only references from objects linked here are wrapped).
$(OOM_BIN): test/c/oom.c test/c/harness.h $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(ASAN_FLAGS) -Isrc -o $@ test/c/oom.c $(ASAN_OBJS) \
	  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc $(LUA_LIB) $(MYSQL_LIBS)

$(THREADS_BIN): test/c/threads.c test/c/harness.h $(TSAN_OBJS)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(TSAN_FLAGS) -Isrc -o $@ test/c/threads.c $(TSAN_OBJS) \
	  -pthread $(LUA_LIB) $(MYSQL_LIBS)

$(BUILD)/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz_common.h $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(ASAN_FLAGS) -fsanitize=fuzzer -Isrc -o $@ $< $(FUZZ_OBJS) \
	  $(LUA_LIB) $(MYSQL_LIBS)

# clang and its sanitizer runtimes (Debian packages), installed when missing.
.PHONY: c-deps
c-deps:
	@scripts/ensure-deps.sh clang libclang-rt-14-dev

# LUA_ENV: luaopen requires the neutral Lua modules (activerecord.null, .errors,
# .json, .clock) and adopts their values.
test-c: c-deps $(OOM_BIN) $(THREADS_BIN)
	@$(LUA_ENV) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 TSAN_OPTIONS=halt_on_error=1 \
	  scripts/with-test-server.sh sh -c '$(OOM_BIN) && $(OOM_BIN) --transient && $(THREADS_BIN)'

fuzz-build: c-deps $(FUZZ_BINS)

fuzz: fuzz-build
	@scripts/run-fuzz.sh $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-quick: fuzz-build
	@scripts/run-fuzz.sh $(BUILD)/fuzz 10 $(FUZZ_TARGETS)

# clang-tidy's checks are chosen in .clang-tidy; both fail on any finding.
# One clang-tidy process per file: clang-tidy 14 reports a spurious
# valist.Uninitialized in errors.c when given several files at once.
lint-c:
	@scripts/ensure-deps.sh clang-tidy cppcheck
	@for f in $(SRCS); do clang-tidy --quiet $$f -- $(AR_CFLAGS) || exit 1; done
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 src/
	@echo "lint-c: clang-tidy and cppcheck clean over src/"

install: $(CORE_SO)
	mkdir -p $(INST_LIBDIR)/activerecord/backend/mysql
	cp $(CORE_SO) $(INST_LIBDIR)/activerecord/backend/mysql/core.so
	cd lua && find activerecord -name '*.lua' | while read -r f; do \
	  mkdir -p "$(INST_LUADIR)/$$(dirname $$f)"; cp "$$f" "$(INST_LUADIR)/$$f"; done
# the ar-migrate command (luarocks wraps what lands in INST_BINDIR)
	if [ -n "$(INST_BINDIR)" ]; then mkdir -p "$(INST_BINDIR)" && \
	  cp bin/ar-migrate "$(INST_BINDIR)/ar-migrate" && chmod 755 "$(INST_BINDIR)/ar-migrate"; fi

clean:
	rm -rf $(BUILD)

# ---- reliability (issue 8) -------------------------------------------------
# test-faults: every spec in spec/reliability, including the #slow ones that
#   start, SIGKILL and restart private servers of their own (.busted "faults").
# test-load: 8 lua5.4 processes x 1,000 ORM transactions against one server.
# soak: 1,000,000 primary-key lookups through one pool, RSS must stay flat.
.PHONY: test-faults test-load soak

test-faults: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh scripts/run-specs.sh --run=faults

test-load: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh scripts/load-test.sh 8 1000 4

soak: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh $(LUA) spec/reliability/soak.lua 1000000 10240

# ---- clusters (issue 18) ---------------------------------------------------
# cluster-test: the specs in spec/cluster against a GTID primary + 2 replicas and
#   a 3-node Galera cluster, both private, on loopback (scripts/with-cluster.sh
#   starts them in a temp dir and stops only what it started).
.PHONY: cluster-test

cluster-test: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-cluster.sh scripts/run-specs.sh spec/cluster

# Every example in examples/, each against the same private MariaDB (or the
# server AR_MYSQL_* names); stops at the first one that fails.
EXAMPLES := quickstart core_tour json_features transactions relations associations bulk_and_upsert pool_and_logging \
            capabilities schema_evolution event_loop_load

.PHONY: examples
examples: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh sh -c 'for e in $(EXAMPLES); do \
	  echo "== examples/$$e.lua"; $(LUA) examples/$$e.lua || exit 1; done'

# The API reference, generated by LDoc from the source comments (config.ld)
# into build/docs (not committed). lua-ldoc is an optional package: only this
# target installs it. Fails on any LDoc warning.
.PHONY: docs
docs:
	@scripts/ensure-deps.sh lua-ldoc
	@ldoc --fatalwarnings . >/dev/null
	@# text in angle brackets must show (escaped), not vanish as an unknown tag
	@grep -q '&lt;target&gt;_id' build/docs/modules/activerecord.relations.html || \
	  { echo "docs: <target>_id does not show in the relations page" >&2; exit 1; }
	@grep -q 'db &lt;close&gt; = ar.connect' build/docs/modules/activerecord.html || \
	  { echo "docs: <close> does not show in the activerecord page" >&2; exit 1; }
	@echo "API reference: build/docs/index.html"
