// Vendor time values -> canonical text PostgreSQL parses exactly.
// Timestamps become "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (UTC), dates "YYYY-MM-DD".
// Every function throws billrecon::Error (22007 invalid_datetime_format... we
// use 22P02 with the offending value in DETAIL) on malformed input.
#pragma once

#include <string>
#include <string_view>

namespace billrecon::model {

// "1718102312.514" (seconds since the epoch, fraction allowed) -> ISO UTC.
std::string TimestampFromEpochSeconds(std::string_view decimal_seconds);

// "1718102312514" (milliseconds since the epoch) -> ISO UTC.
std::string TimestampFromEpochMillis(std::string_view decimal_millis);

// ISO 8601 date-time with "Z" or "+HH:MM" offset, or without a zone (then
// assume_utc decides: true -> taken as UTC, false -> error). A bare date is
// accepted as midnight UTC. Returns the canonical UTC form.
std::string NormalizeTimestamp(std::string_view iso, bool assume_utc = true);

// A calendar date from "YYYY-MM-DD" or from the date part of an ISO
// date-time ("2024-01-01T00:00:00Z" -> "2024-01-01"). The time part is
// dropped without shifting zones: PSA dates are calendar dates that some APIs
// dress up as midnight UTC.
std::string NormalizeDate(std::string_view iso);

// Days since 1970-01-01 for a valid proleptic Gregorian date (used by tests
// and by range checks).
long DaysFromCivil(long y, unsigned m, unsigned d) noexcept;

// The inverse: the date `z` days after 1970-01-01 (negative: before).
void CivilFromDays(long z, long &y, unsigned &m, unsigned &d) noexcept;

} // namespace billrecon::model

#include "core_only.hpp"
