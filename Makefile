# activerecord: Lua 5.4 ActiveRecord with a C core on libmysqlclient
# (MariaDB Connector/C or Oracle's libmysqlclient).
#
#   make            build the C core into build/
#   make demo       run examples/quickstart.lua against a private MariaDB
#   make test       run every spec against a private MariaDB
#   make check-memory   core specs under valgrind (fails on leaks/errors)
#   make bench      benchmarks against the C floor and LuaSQL
#   make install    used by luarocks (INST_LIBDIR, INST_LUADIR)

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

.PHONY: all deps demo test test-core check-memory bench rock-check lint install clean

all: $(CORE_SO)

$(BUILD)/obj/%.o: src/%.c src/ar.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AR_CFLAGS) -c $< -o $@

$(CORE_SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIBFLAG) -o $@ $(OBJS) $(MYSQL_LIBS)

deps:
	@scripts/ensure-deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh $(LUA) examples/quickstart.lua

test: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh scripts/run-specs.sh

# The core specs under valgrind, on an unoptimised build with symbols kept
# apart from the normal one.
check-memory: deps
	@$(MAKE) --no-print-directory all CFLAGS="-O0 -g" BUILD=build/memcheck
	@$(LUA_ENV) AR_CORE_CPATH="build/memcheck/?.so" scripts/with-test-server.sh scripts/check-memory.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) scripts/with-test-server.sh bench/run.sh

rock-check: deps
	@scripts/rock-check.sh

lint:
	luacheck lua spec bench examples

install: $(CORE_SO)
	mkdir -p $(INST_LIBDIR)/activerecord/backend/mysql
	cp $(CORE_SO) $(INST_LIBDIR)/activerecord/backend/mysql/core.so
	cd lua && find activerecord -name '*.lua' | while read -r f; do \
	  mkdir -p "$(INST_LUADIR)/$$(dirname $$f)"; cp "$$f" "$(INST_LUADIR)/$$f"; done

clean:
	rm -rf $(BUILD)
