// The one way C++ files include PostgreSQL headers: after every C++ and
// third-party header (PG's macros such as Min, Max, printf and gettext must
// not see them), inside one extern "C" block, postgres.h first.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

// PostgreSQL 15 defines PGDLLEXPORT empty on Linux; we build with hidden
// visibility, so every symbol PostgreSQL looks up must be exported here.
#if PG_VERSION_NUM < 160000
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
#endif
