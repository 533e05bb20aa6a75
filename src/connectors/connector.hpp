// The one interface every connector implements. A connector turns one API's
// pages into model records and hands them to a RecordSink page by page; it
// never sees PostgreSQL. Adding a connector = one file here, one line in
// registry.cpp, one mock, one docs page.
#pragma once

#include "http/client.hpp"
#include "model/records.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::connectors {

enum class SyncMode { kFull, kQuick };

const char *SyncModeName(SyncMode m) noexcept; // "full" / "quick"

// An integration row as the connector needs it. Credentials and options are
// the raw JSON text of the row's jsonb columns.
struct IntegrationConfig {
	int64_t id = 0;
	std::string name;
	std::string kind;
	std::string base_url;
	std::string credentials_json = "{}";
	std::string options_json = "{}";
};

// Where records go. Glue implements it (staging tables); tests collect in
// memory. Each call is one page's worth; the sink may batch further.
class RecordSink {
public:
	virtual ~RecordSink() = default;
	virtual void PutCompanies(const std::vector<model::Company> &rows) = 0;
	virtual void PutAgreements(const std::vector<model::Agreement> &rows) = 0;
	virtual void PutLineItems(const std::vector<model::LineItem> &rows) = 0;
	virtual void PutVendorAccounts(const std::vector<model::VendorAccount> &rows) = 0;
	virtual void PutUsage(const std::vector<model::UsageRecord> &rows) = 0;
	// A page was fetched (progress: endpoint label, records on the page).
	virtual void OnPage(std::string_view phase, size_t records) = 0;
	// Something worth telling the user that does not fail the sync
	// (the run then ends "succeeded with warnings", status yellow).
	virtual void Warn(std::string message) = 0;
};

struct SyncRequest {
	SyncMode mode = SyncMode::kFull;
	// Start time (ISO UTC) of the last successful sync, for quick mode.
	// Quick mode without it is a full sync.
	std::optional<std::string> since;
};

struct SyncOutcome {
	SyncMode effective_mode = SyncMode::kFull; // what was really done
	std::string note;                          // e.g. why quick fell back to full
};

// A quantity change to write back to the PSA (billrecon.push_changes()).
struct QuantityChange {
	std::string line_item_external_id;
	std::string agreement_external_id;
	model::Decimal current_quantity; // what billrecon last synced (the PSA may differ now)
	model::Decimal new_quantity;
	std::string effective_date;      // YYYY-MM-DD: when the new quantity starts
};

struct QuantityChangeResult {
	model::Decimal quantity_after;   // the quantity the PSA reports after the change
	std::string reference;           // the PSA's id of what was written (addition, adjustment, line)
	std::string note;                // how it was done, for the audit trail
};

// Write-back of line-item quantities, for the PSA kinds. Implementations
// must be safe to retry: ReadQuantity lets the caller check whether an
// earlier attempt already took effect before sending the change again.
class PsaWriter {
public:
	virtual ~PsaWriter() = default;
	// The quantity the PSA holds now for the line on `effective_date`.
	virtual model::Decimal ReadQuantity(http::Client &client, const QuantityChange &change) = 0;
	// Applies the change the way the PSA's API does it; throws
	// billrecon::Error with the PSA's message on failure.
	virtual QuantityChangeResult UpdateQuantity(http::Client &client, const QuantityChange &change) = 0;
};

class Connector {
public:
	virtual ~Connector() = default;
	// PSA connectors return their writer; vendor connectors have none.
	virtual PsaWriter *writer() {
		return nullptr;
	}
	// Fetches everything (full) or what changed since request.since (quick)
	// and writes it to the sink. Throws billrecon::Error (with the endpoint
	// and record in DETAIL) on anything that must fail the sync.
	virtual SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) = 0;
};

} // namespace billrecon::connectors

#include "core_only.hpp"
