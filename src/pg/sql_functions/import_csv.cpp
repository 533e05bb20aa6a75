// SQL: billrecon.import_usage_csv(integration text, csv text) -> rows loaded.
//
// The rows of a csv integration come from here instead of an API. The text
// is parsed completely first (a bad row raises with its line number, and
// nothing is stored); then it replaces the integration's usage like a full
// sync: staging, one apply, a sync run recorded with mode full.
#include "connectors/csv_usage.hpp"
#include "model/error.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "pg/boundary.hpp"
#include "pg/staging_sink.hpp"
#include "pg/sync_store.hpp"

using namespace billrecon;

namespace {

constexpr size_t kBatch = 1000;

template <typename Record, typename Put>
void PutInBatches(const std::vector<Record> &rows, Put put) {
	for (size_t i = 0; i < rows.size(); i += kBatch) {
		std::vector<Record> batch(rows.begin() + static_cast<long>(i),
		                          rows.begin() + static_cast<long>(std::min(rows.size(), i + kBatch)));
		put(batch);
		CallPg(pg::CheckInterrupts);
	}
}

} // namespace

BILLRECON_FUNCTION(billrecon_import_usage_csv) {
	const char *name = CallPg(pg::TextArg, fcinfo, 0);
	const char *text = CallPg(pg::TextArg, fcinfo, 1);
	CallPg(pg::SpiConnect);
	pg::IntegrationList *list = CallPg(pg::LoadIntegrations, name);
	const pg::IntegrationRow &row = list->rows[0];
	if (std::string(row.kind) != "csv")
		throw Error(sqlstate::kInvalidParameter, "integration \"" + std::string(row.name) + "\" is not a csv integration",
		            "Its kind is " + std::string(row.kind) + "; its data comes from its API through billrecon.sync().",
		            "Add a csv integration for imported usage: SELECT billrecon.add_integration('name', 'csv', '', '{}').");
	if (!CallPg(pg::TryLockIntegration, row.id))
		throw Error(sqlstate::kLockNotAvailable, "integration \"" + std::string(row.name) + "\" is being loaded",
		            "Another session is importing into or syncing this integration right now.",
		            "Wait for it to finish, then import again.");

	connectors::CsvUsage parsed = connectors::ParseCsvUsage(text);

	pg::RunStart start;
	CallPg(pg::StartRun, row.id, "full", &start);
	pg::StagingSink sink(start.run_id);
	PutInBatches(parsed.accounts, [&](const std::vector<model::VendorAccount> &b) { sink.PutVendorAccounts(b); });
	PutInBatches(parsed.usage, [&](const std::vector<model::UsageRecord> &b) { sink.PutUsage(b); });
	pg::ApplyResult applied;
	CallPg(pg::ApplyStaged, static_cast<int64>(start.run_id), true, static_cast<int64>(sink.UnchangedUsageCount()),
	       static_cast<const char *>(sink.UnchangedUsageIds().data()), &applied);

	std::string note = "imported from CSV: " + std::to_string(parsed.usage.size()) + " usage row(s) of " +
	                   std::to_string(parsed.accounts.size()) + " account(s)";
	pg::RunFinish f{};
	f.run_id = start.run_id;
	f.status = "succeeded";
	f.mode = "full";
	f.keep_since = false;
	f.pages = 1;
	f.records = static_cast<int64>(parsed.accounts.size() + parsed.usage.size());
	f.note = note.c_str();
	CallPg(pg::FinishRun, static_cast<const pg::RunFinish *>(&f));
	CallPg(pg::SpiFinish);
	PG_RETURN_INT64(static_cast<int64>(parsed.usage.size()));
}
