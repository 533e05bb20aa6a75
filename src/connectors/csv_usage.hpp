// Usage imported from CSV text (billrecon.import_usage_csv): RFC 4180, one
// usage record per row, with a fixed header. Parsing is strict: the first
// bad row fails the whole import with its line number, so a file is loaded
// entirely or not at all.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace billrecon::connectors {

// The header line the CSV must start with (after an optional UTF-8 BOM).
inline constexpr const char *kCsvUsageHeader =
    "account_id,account_name,kind,product,quantity,device_class,os_name,device_name,last_active_at";

struct CsvUsage {
	std::vector<model::VendorAccount> accounts; // one per distinct account_id, in first-seen order
	std::vector<model::UsageRecord> usage;      // one per data row
};

// Parses the whole text. Throws billrecon::Error 22P02 "invalid CSV usage
// data" with "line N: ..." in DETAIL and the expected header in HINT.
//
// Per row: account_id and account_name required (one name per account);
// kind device | licence (or license) | user | subscription; product required
// for licence and subscription; quantity a decimal >= 0, required for
// licence and subscription, default 1 for device and user; device_class
// (desktop, laptop, server, other) only for devices; last_active_at ISO 8601
// or empty. A record's id is account|kind|product|name (numbered #2, #3 ...
// when the same key repeats), stable from one import to the next.
CsvUsage ParseCsvUsage(std::string_view text);

// Splits RFC 4180 text into records of fields; `lines` receives the line
// number each record starts on. Throws 22P02 on an unterminated quote or
// text after a closing quote.
std::vector<std::vector<std::string>> SplitCsv(std::string_view text, std::vector<size_t> &lines);

// The connector behind kind "csv": nothing to fetch (rows come from
// import_usage_csv), so a sync succeeds at once, touching nothing.
std::unique_ptr<Connector> CreateCsv(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
