// libFuzzer target: the CSV usage reader (src/connectors/csv_usage.hpp),
// SplitCsv and ParseCsvUsage on arbitrary bytes, with their invariants.
#include "connectors/csv_usage.hpp"
#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace connectors = billrecon::connectors;

namespace {

[[noreturn]] void Finding(const char *what) {
	std::fprintf(stderr, "FINDING in fuzz_csv_usage: %s\n", what);
	std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	std::string_view in(reinterpret_cast<const char *>(data), size);
	billrecon::fuzz::Guard("fuzz_csv_usage", [&] {
		std::vector<size_t> lines;
		std::vector<std::vector<std::string>> records = connectors::SplitCsv(in, lines);
		if (lines.size() != records.size())
			Finding("SplitCsv: one line number per record expected");
		for (size_t i = 1; i < lines.size(); ++i)
			if (lines[i] <= lines[i - 1])
				Finding("SplitCsv: line numbers must increase");
	});
	billrecon::fuzz::Guard("fuzz_csv_usage", [&] {
		// The header, then the input: most inputs reach the row checks.
		connectors::ParseCsvUsage(std::string(connectors::kCsvUsageHeader) + "\n" + std::string(in));
	});
	billrecon::fuzz::Guard("fuzz_csv_usage", [&] {
		connectors::CsvUsage u = connectors::ParseCsvUsage(in);
		for (const auto &r : u.usage)
			if (r.external_id.empty())
				Finding("ParseCsvUsage: a usage record without an id");
	});
	return 0;
}
