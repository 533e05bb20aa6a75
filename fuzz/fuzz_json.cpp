// libFuzzer target: the JSON reader (src/json/reader.hpp) on arbitrary bytes:
// TryParse must never throw; ParseResponse / ParseConfigObject throw only
// billrecon::Error; the tree it builds is walked and read through
// json::Object's typed accessors.
#include "fuzz_support.hpp"
#include "json/reader.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace json = billrecon::json;

namespace {

// Every typed accessor on every member of every object (each may throw
// billrecon::Error; the next one is still tried).
void ReadObject(const json::Value &v) {
	json::Object obj(v, json::Where{"GET /fuzz", "record id 1", ""});
	for (size_t i = 0; i < v.size(); ++i) {
		const std::string &k = v.key(i);
		auto each = [&](auto &&read) {
			try {
				read();
			} catch (const billrecon::Error &) {
			}
		};
		each([&] { (void)obj.RequiredString(k); });
		each([&] { (void)obj.OptionalNonEmptyString(k); });
		each([&] { (void)obj.RequiredId(k); });
		each([&] { (void)obj.RequiredDecimal(k); });
		each([&] { (void)obj.RequiredBool(k); });
		each([&] { (void)obj.OptionalObject(k); });
		each([&] { (void)obj.OptionalArray(k); });
		each([&] { (void)obj.OptionalTimestamp(k); });
		each([&] { (void)obj.OptionalDate(k); });
		each([&] { (void)obj.OptionalEpochSeconds(k); });
	}
}

size_t Walk(const json::Value &v, size_t depth) {
	size_t n = v.text().size();
	(void)json::DescribeFound(v, true);
	if (v.IsObject()) {
		ReadObject(v);
		for (size_t i = 0; i < v.size(); ++i) {
			n += v.key(i).size();
			if (v.Find(v.key(i)) == nullptr)
				std::abort(); // a member's own name must find it
		}
	}
	if (depth < 64)
		for (size_t i = 0; i < v.size(); ++i)
			n += Walk(v.at(i), depth + 1);
	return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	std::string_view in(reinterpret_cast<const char *>(data), size);
	billrecon::fuzz::Guard("fuzz_json", [&] {
		json::Value v;
		json::ParseFailure failure;
		bool ok = json::TryParse(in, v, failure);
		if (ok)
			Walk(v, 0);
		std::string quoted;
		json::AppendQuoted(quoted, in);
		// Quoting then parsing gives the bytes back (the parse fails only on
		// invalid UTF-8, which AppendQuoted passes through unchanged).
		json::Value back;
		if (json::TryParse(quoted, back, failure) && (!back.IsString() || back.text() != in)) {
			std::fprintf(stderr, "FINDING in fuzz_json: AppendQuoted does not round-trip\n");
			std::abort();
		}
		try {
			json::Value r = json::ParseResponse(in, "GET /fuzz page 1");
			try {
				(void)json::ExpectArray(r, json::Where{"GET /fuzz", "", ""});
			} catch (const billrecon::Error &) {
			}
		} catch (const billrecon::Error &) {
		}
		(void)json::ParseConfigObject(in, "fuzz options");
	});
	return 0;
}
