# tandem - build, test, run. See README.md for the two commands a user needs.
CC      ?= cc
BUILD   ?= build
PKGS    := libmicrohttpd libcjson sqlite3 zlib libxxhash libzstd libcrypto libmaxminddb
OPT     ?= -O2
SAN     ?=
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Isrc $(SAN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS += $(SAN)

LIB_SRCS  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRCS  := $(sort $(wildcard src/cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
# CLI files with unit tests (tests/unit/cli/); the rest of src/cli/ is main()'s
CLI_UNIT_OBJS := $(BUILD)/src/cli/qformat.o
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

.PHONY: all deps run check unit integration asan bench query-bench profile-bench bench-clickhouse clean format fuzz

all: $(BUILD)/tandem

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# data files embedded with .incbin (src/enrich/data.c)
$(BUILD)/src/enrich/data.o: data/referrers.txt

$(BUILD)/libtandem.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tandem: $(CLI_OBJS) $(BUILD)/libtandem.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(CLI_UNIT_OBJS) $(BUILD)/libtandem.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

$(BUILD)/bench/%: bench/%.c $(BUILD)/libtandem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests --jobs 2 2>&1 | tee $(BUILD)/unit.log; exit $${PIPESTATUS[0]}

integration: $(BUILD)/tandem
	TANDEM_BIN=$(abspath $(BUILD)/tandem) scripts/integration.sh

# `make check`: set up, build, run every test; ends with one summary line.
# The fuzz harnesses replay their seed corpora (past crashes included) first.
check: deps
	$(MAKE) all $(BUILD)/unit-tests
	scripts/fuzz.sh 0
	scripts/check.sh $(BUILD)

# `make fuzz`: fuzz every reader of outside input (FUZZ_SECONDS each, default 60).
FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The same suites under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build/asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" \
		all build/asan/unit-tests
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 scripts/check.sh build/asan

# `make run`: set up, build, serve a demo workspace on http://127.0.0.1:8080.
run: deps
	$(MAKE) all
	scripts/run-demo.sh $(BUILD)/tandem

bench: all $(BENCH_BINS)
	bench/run.sh $(BUILD)

# tandem against ClickHouse on the same data (skipped without clickhouse-server);
# CHCMP_ARGS="--events 20m" and so on.
bench-clickhouse: all $(BUILD)/bench/chcmp
	bench/clickhouse/compare.sh --build $(BUILD) $(CHCMP_ARGS)

# `make profile-bench`: profile lookups over HTTP at scale (bench/profiles.sh).
profile-bench: all $(BUILD)/bench/profile_bench
	bench/profiles.sh --build $(BUILD)

# `make query-bench`: builds $(BUILD)/query-bench (see bench/README.md).
query-bench: $(BUILD)/query-bench

$(BUILD)/query-bench: bench/query_bench.c $(BUILD)/libtandem.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

format:
	clang-format -i $(LIB_SRCS) $(CLI_SRCS) $(UNIT_SRCS) $(wildcard src/*/*.h) $(wildcard bench/*.c)

clean:
	rm -rf build

SHELL := /bin/bash
-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(UNIT_OBJS:.o=.d)
