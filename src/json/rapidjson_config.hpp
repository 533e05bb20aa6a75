// The ONLY way core code includes RapidJSON (style.md section 10).
//
// PGXS does not define NDEBUG, so RapidJSON's default RAPIDJSON_ASSERT
// (assert()) would abort the whole backend on a wrong-typed vendor field.
// Here it throws instead; callers still check HasParseError() and every type
// (IsObject, FindMember, IsString) before each access, so an AssertError is
// always our bug, never the vendor's. Debian 12 ships RapidJSON 1.1.0, which
// has no RAPIDJSON_NOEXCEPT_ASSERT: destructors never assert there.
#pragma once

#include <stdexcept>

namespace billrecon::json {
struct AssertError : std::logic_error {
	using std::logic_error::logic_error;
};
} // namespace billrecon::json

#define RAPIDJSON_ASSERT(x)                                                                                            \
	do {                                                                                                               \
		if (!(x))                                                                                                      \
			throw ::billrecon::json::AssertError("RapidJSON assertion failed: " #x);                                   \
	} while (0)
#define RAPIDJSON_HAS_STDSTRING 1

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core_only.hpp"
