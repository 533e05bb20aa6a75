// Small SPI helpers shared by the pg helpers (sync_store.cpp, usage_scan.cpp):
// C style, ereport on failure. Call them from pg helpers, never from core.
#pragma once

#include "pg/pg_prelude.hpp"

namespace billrecon::pg {

// ERROR (XX000, with a detail naming SPI's result) unless rc == expected;
// what says what was being done ("storing the counts").
void CheckSpi(int rc, int expected, const char *what);

// A text[] Datum of n values taken from values[i * stride + offset]
// (nullptr = SQL null); an empty array when n is 0.
Datum TextArray(int n, const char *const *values, int stride, int offset);

} // namespace billrecon::pg
