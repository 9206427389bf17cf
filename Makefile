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

# The dashboard's files, embedded into the binary (docs/dashboard.md): web/dist
# when the front end has a build step, else web/ minus what the page never
# loads. uPlot's browser build comes from web/node_modules (scripts/deps.sh
# installs it) and is served as /assets/vendor/NAME (vendor_name), in place
# of copies web/'s own build may have left in assets/vendor/.
WEB_ROOT  := $(if $(wildcard web/dist/index.html),web/dist,web)
UPLOT     := web/node_modules/uplot
WEB_VENDOR := $(wildcard $(UPLOT)/dist/uPlot.iife.min.js $(UPLOT)/dist/uPlot.min.css $(UPLOT)/LICENSE)
vendor_name = $(if $(filter %/LICENSE,$(1)),uPlot.LICENSE.txt,$(notdir $(1)))
WEB_FILES := $(filter-out $(foreach f,$(WEB_VENDOR),$(WEB_ROOT)/assets/vendor/$(call vendor_name,$(f))), \
               $(shell find $(WEB_ROOT) -type f ! -path '*/node_modules/*' ! -path '$(WEB_ROOT)/dist/*' \
               ! -path '*/tests/*' ! -name '*.test.*' ! -name 'package*.json' ! -name '*.md' \
               ! -path '$(WEB_ROOT)/build.mjs' ! -name '.*' 2>/dev/null | LC_ALL=C sort))
WEB_OBJ   := $(BUILD)/gen/web_assets.o

.PHONY: FORCE all deps run check unit integration asan bench query-bench profile-bench bench-clickhouse clean format fuzz

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

# The generated C file of the embedded dashboard (never edited, never
# committed). web_list changes when a file is added or removed, so the
# generator runs again then too.
$(BUILD)/tools/webembed: tools/webembed.c src/http/mime.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gen/web_list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(WEB_ROOT) $(WEB_FILES) $(WEB_VENDOR)' | cmp -s - $@ || \
		echo '$(WEB_ROOT) $(WEB_FILES) $(WEB_VENDOR)' > $@

$(BUILD)/gen/web_assets.c: $(BUILD)/tools/webembed $(BUILD)/gen/web_list $(WEB_FILES) $(WEB_VENDOR)
	$(if $(WEB_VENDOR),,@echo "warning: $(UPLOT) is missing (run scripts/deps.sh): the dashboard has no charts" >&2)
	$(BUILD)/tools/webembed $@ $(foreach f,$(WEB_FILES),$(patsubst $(WEB_ROOT)/%,/%,$(f))=$(f)) \
		$(foreach f,$(WEB_VENDOR),/assets/vendor/$(call vendor_name,$(f))=$(f))

$(WEB_OBJ): $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS) -c $< -o $@

# (the archive's recipe takes every prerequisite: $^)
$(BUILD)/libtandem.a: $(WEB_OBJ)

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
	clang-format -i $(LIB_SRCS) $(CLI_SRCS) $(wildcard tools/*.c) $(UNIT_SRCS) $(wildcard src/*/*.h) $(wildcard bench/*.c)

clean:
	rm -rf build

SHELL := /bin/bash
-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(UNIT_OBJS:.o=.d)
