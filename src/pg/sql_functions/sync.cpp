// SQL: billrecon.sync(integration text, mode text) -> one row per sync run.
//
// Per integration: lock it, record a 'running' run, then inside a
// subtransaction fetch every page into staging and apply the run to the live
// tables. Any failure rolls the subtransaction back (the previous data stays
// exactly as it was), and the run is recorded as failed: an expected remote
// failure is data, not an ERROR. A cancel rolls back and raises.
#include "connectors/connector.hpp"
#include "model/error.hpp"
#include "sync/runner.hpp"

#include <string>
#include <vector>

#include "pg/boundary.hpp"
#include "pg/sync_defaults.hpp"
#include "pg/staging_sink.hpp"
#include "pg/sync_store.hpp"

namespace billrecon::pg {
namespace {

struct Outcome {
	std::string status = "failed";
	std::string mode;
	std::string error, detail, sqlstate, note;
	sync::Stats stats;
	std::vector<std::string> warnings;
	int64_t run_id = 0;
};

bool IsCancel(const Error &e) {
	return e.sqlstate() == sqlstate::kCanceled || e.sqlstate().rfind("57P", 0) == 0;
}

Outcome SyncOne(const IntegrationRow &row, connectors::SyncMode mode) {
	Outcome out;
	const char *requested = connectors::SyncModeName(mode);
	if (!CallPg(TryLockIntegration, row.id)) {
		RunStart start;
		CallPg(StartRun, row.id, requested, &start);
		out.run_id = start.run_id;
		out.error = "another sync of integration \"" + std::string(row.name) + "\" is running";
		out.detail = "Only one sync of an integration runs at a time; this one did not start.";
		out.sqlstate = sqlstate::kLockNotAvailable;
		return out;
	}
	RunStart start;
	CallPg(StartRun, row.id, requested, &start);
	out.run_id = start.run_id;

	// Read again now: an earlier sync of this call may have changed what the
	// options derive from (Partner Center's customers for Microsoft 365).
	const char *options_json = CallPg(EffectiveOptions, row.id);
	connectors::IntegrationConfig config;

	connectors::SyncRequest request;
	request.mode = mode;
	if (start.has_since)
		request.since = std::string(start.since);

	StagingSink sink(start.run_id, row.name);
	Subxact sx;
	CallPg(BeginSubxact, &sx);
	std::unique_ptr<sync::Runner> runner;
	try {
		// Inside the try: credentials that cannot be decrypted (no key, another
		// key) fail this integration's run, recorded like any other failure.
		config = ConfigFromRow(row);
		config.options_json = options_json;
		runner = std::make_unique<sync::Runner>(config, CurrentDefaults(), InterruptRequested);
		connectors::SyncOutcome result = runner->Run(request, sink);
		bool full = result.effective_mode == connectors::SyncMode::kFull;
		ApplyResult applied;
		CallPg(ApplyStaged, static_cast<int64>(start.run_id), full, static_cast<int64>(sink.UnchangedUsageCount()),
		       static_cast<const char *>(sink.UnchangedUsageIds().data()), &applied);
		CallPg(CommitSubxact, static_cast<const Subxact *>(&sx));
		if (applied.skipped_agreements > 0)
			sink.Warn(std::to_string(applied.skipped_agreements) +
			                " agreement(s) skipped: their company was not returned by the PSA");
		if (applied.skipped_line_items > 0)
			sink.Warn(std::to_string(applied.skipped_line_items) +
			                " line item(s) skipped: their agreement was not returned by the PSA");
		if (applied.skipped_usage > 0)
			sink.Warn(std::to_string(applied.skipped_usage) +
			                " usage record(s) skipped: their account was not returned by the vendor");
		out.status = "succeeded";
		out.mode = connectors::SyncModeName(result.effective_mode);
		out.note = result.note;
	} catch (const Cancelled &) {
		CallPg(RollbackSubxact, static_cast<const Subxact *>(&sx));
		throw;
	} catch (const Error &e) {
		CallPg(RollbackSubxact, static_cast<const Subxact *>(&sx));
		if (IsCancel(e))
			throw;
		out.status = "failed";
		out.error = runner ? runner->Redact(e.message()) : e.message();
		out.detail = runner ? runner->Redact(e.detail()) : e.detail();
		out.sqlstate = e.sqlstate();
	} catch (const std::exception &e) {
		CallPg(RollbackSubxact, static_cast<const Subxact *>(&sx));
		out.status = "failed";
		out.error = "internal error in billrecon";
		out.detail = runner ? runner->Redact(e.what()) : e.what();
		out.sqlstate = sqlstate::kInternal;
	}
	if (runner)
		out.stats = runner->stats();
	out.warnings = sink.warnings();
	return out;
}

void Record(const Outcome &o, const IntegrationRow &row, FunctionCallInfo fcinfo) {
	std::vector<const char *> messages, levels;
	for (const std::string &w : o.warnings) {
		messages.push_back(w.c_str());
		levels.push_back("warning");
	}
	if (o.status == "failed") {
		messages.push_back(o.error.c_str());
		levels.push_back("error");
	}
	RunFinish f{};
	f.run_id = o.run_id;
	f.status = o.status.c_str();
	f.mode = o.mode.empty() ? nullptr : o.mode.c_str();
	f.keep_since = o.mode == "quick";
	f.pages = o.stats.pages;
	f.records = o.stats.records;
	f.requests = o.stats.requests;
	f.retries = o.stats.retries;
	f.bytes = o.stats.bytes;
	f.error = o.status == "failed" ? o.error.c_str() : nullptr;
	f.error_detail = o.detail.c_str();
	f.error_sqlstate = o.sqlstate.c_str();
	f.note = o.note.c_str();
	f.nmessages = static_cast<int>(messages.size());
	f.messages = messages.data();
	f.levels = levels.data();
	CallPg(FinishRun, static_cast<const RunFinish *>(&f));

	std::string error_text = o.error;
	if (o.status == "failed" && !o.detail.empty())
		error_text += ": " + o.detail;
	SyncResultRow r{};
	r.integration = row.name;
	r.status = o.status.c_str();
	r.records = o.stats.records;
	r.error = o.status == "failed" ? error_text.c_str() : nullptr;
	r.run_id = o.run_id;
	r.mode = o.mode.empty() ? nullptr : o.mode.c_str();
	r.pages = o.stats.pages;
	r.requests = o.stats.requests;
	r.retries = o.stats.retries;
	r.warnings = static_cast<int32>(o.warnings.size());
	CallPg(EmitSyncRow, fcinfo, static_cast<const SyncResultRow *>(&r));
}

connectors::SyncMode ParseMode(const char *mode) {
	std::string m = mode;
	if (m == "full")
		return connectors::SyncMode::kFull;
	if (m == "quick")
		return connectors::SyncMode::kQuick;
	throw Error(sqlstate::kInvalidParameter, "invalid sync mode \"" + m.substr(0, 40) + "\"",
	            "The mode must be \"full\" or \"quick\".",
	            "Use 'quick' for the daily refresh and 'full' after large changes in the source system.");
}

} // namespace
} // namespace billrecon::pg

using namespace billrecon;

BILLRECON_FUNCTION(billrecon_sync) {
	const char *name = PG_ARGISNULL(0) ? nullptr : CallPg(pg::TextArg, fcinfo, 0);
	connectors::SyncMode mode =
	    pg::ParseMode(PG_ARGISNULL(1) ? "quick" : CallPg(pg::TextArg, fcinfo, 1));
	CallPg(pg::InitResultSet, fcinfo);
	CallPg(pg::SpiConnect);
	pg::IntegrationList *list = CallPg(pg::LoadIntegrations, name);
	for (int i = 0; i < list->count; ++i) {
		CallPg(pg::CheckInterrupts);
		pg::Outcome outcome = pg::SyncOne(list->rows[i], mode);
		pg::Record(outcome, list->rows[i], fcinfo);
	}
	CallPg(pg::SpiFinish);
	return (Datum)0;
}
