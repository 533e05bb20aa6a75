# billrecon — PGXS build of record (see docs/architecture.md).
#   make / make install        the extension (billrecon.so + SQL scripts)
#   make installcheck          pg_regress against a running server (PGHOST/PGPORT/PGUSER)
#   make unit                  GoogleTest on the pure C++ core, through CMake + ctest
#   make test                  everything, on a throwaway cluster: test/bin/run-tests
EXTENSION   = billrecon
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" billrecon.control)

MODULE_big  = billrecon
SRCS       := $(sort $(shell find src -name '*.cpp'))
OBJS        = $(SRCS:.cpp=.o)

DATA_built  = billrecon--$(EXTVERSION).sql
DATA        = $(wildcard sql/upgrade/*.sql)
# The documentation goes with the extension: $(pg_config --docdir)/extension/.
DOCS        = $(sort $(wildcard docs/*.md docs/connectors/*.md))
INSTALL_FRAGMENTS := $(sort $(wildcard sql/install/*.sql))

# pg_regress: sql/<t>.sql against expected/<t>.out, in test/schedule's order.
REGRESS      := $(shell sed -n 's/^test: *//p' test/schedule)
REGRESS_OPTS  = --inputdir=. --outputdir=$(REGRESS_OUTPUTDIR) --encoding=UTF8 --no-locale
REGRESS_OUTPUTDIR ?= .

PG_CONFIG  ?= pg_config
PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-register -fvisibility=hidden -fvisibility-inlines-hidden $(EXTRA_CXXFLAGS)
# PostgreSQL's headers are not ours to warn about (-Wextra flags their unused parameters).
PG_CPPFLAGS += -isystem $(shell $(PG_CONFIG) --includedir-server) -Isrc -DBILLRECON_VERSION=\"$(EXTVERSION)\"
SHLIB_LINK  += -lcurl -lcrypto -lstdc++ -Wl,--version-script=$(srcdir)/exports.map
EXTRA_CLEAN  = build

# Debian's server is built with LLVM; PGXS would then also emit .bc bitcode
# with clang, without our C++ flags. We do not JIT-inline extension code.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): $(INSTALL_FRAGMENTS) billrecon.control Makefile
	@{ for f in $(INSTALL_FRAGMENTS); do cat "$$f"; echo; done; } > $@

# Headers are not tracked by PGXS; rebuild objects when any header changes.
$(OBJS): $(shell find src -name '*.hpp')

.PHONY: unit test demo
unit:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	cmake --build build -j2
	cd build && ctest --output-on-failure

test:
	bash test/bin/run-tests

demo:
	bash test/bin/demo
