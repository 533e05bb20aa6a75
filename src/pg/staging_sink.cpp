#include "pg/staging_sink.hpp"

#include <cstring>
#include <optional>

#include "pg/boundary.hpp"
#include "pg/sync_store.hpp"
#include "pg/sync_worker.hpp"

namespace billrecon::pg {

namespace {

constexpr size_t kMaxWarnings = 1000;

std::string JoinLines(const std::vector<std::string> &items) {
	std::string out;
	for (const std::string &s : items) {
		if (!out.empty())
			out.push_back('\n');
		out += s;
	}
	return out;
}

const char *Bool(bool b) {
	return b ? "true" : "false";
}

} // namespace

// Owns the text of one batch and hands PostgreSQL a flat array of pointers.
class StagingSink::Batch {
public:
	explicit Batch(int ncols) : ncols_(ncols) {
	}
	void Add(std::optional<std::string> cell) {
		cells_.push_back(std::move(cell));
	}
	void Add(const char *cell) {
		cells_.emplace_back(cell ? std::optional<std::string>(cell) : std::nullopt);
	}
	int ncols() const noexcept {
		return ncols_;
	}
	int nrows() const noexcept {
		return static_cast<int>(cells_.size() / static_cast<size_t>(ncols_));
	}
	std::vector<const char *> Pointers() const {
		std::vector<const char *> out;
		out.reserve(cells_.size());
		for (const auto &c : cells_)
			out.push_back(c ? c->c_str() : nullptr);
		return out;
	}
	size_t size() const noexcept {
		return cells_.size();
	}

private:
	int ncols_;
	std::vector<std::optional<std::string>> cells_;
};

void StagingSink::Write(int table, const Batch &batch) {
	if (batch.size() == 0)
		return;
	if (batch.size() % static_cast<size_t>(batch.ncols()) != 0 || batch.ncols() != StageColumns(table))
		throw Error(sqlstate::kInternal, "staging batch has the wrong shape");
	std::vector<const char *> cells = batch.Pointers();
	CallPg(StageBatch, table, static_cast<int64>(run_id_), batch.nrows(), static_cast<const char *const *>(cells.data()));
}

void StagingSink::PutCompanies(const std::vector<model::Company> &rows) {
	Batch b(StageColumns(kStageCompanies));
	for (const model::Company &r : rows) {
		b.Add(r.external_id);
		b.Add(r.name);
		b.Add(r.identifier);
		b.Add(r.status);
		b.Add(r.website);
		b.Add(r.domains.empty() ? std::nullopt : std::optional<std::string>(JoinLines(r.domains)));
		b.Add(Bool(r.deleted));
		b.Add(r.source_updated_at);
	}
	Write(kStageCompanies, b);
}

void StagingSink::PutAgreements(const std::vector<model::Agreement> &rows) {
	Batch b(StageColumns(kStageAgreements));
	for (const model::Agreement &r : rows) {
		b.Add(r.external_id);
		b.Add(r.company_external_id);
		b.Add(r.name);
		b.Add(r.type);
		b.Add(model::BillingCycleName(r.billing_cycle));
		b.Add(r.billing_cycle_label);
		b.Add(r.start_date);
		b.Add(r.end_date);
		b.Add(r.prorate ? Bool(*r.prorate) : nullptr);
		b.Add(r.status);
		b.Add(Bool(r.cancelled));
		b.Add(r.cancelled_date);
		b.Add(r.source_updated_at);
	}
	Write(kStageAgreements, b);
}

void StagingSink::PutLineItems(const std::vector<model::LineItem> &rows) {
	Batch b(StageColumns(kStageLineItems));
	for (const model::LineItem &r : rows) {
		b.Add(r.external_id);
		b.Add(r.agreement_external_id);
		b.Add(r.company_external_id);
		b.Add(r.product_code);
		b.Add(r.product_name);
		b.Add(r.description);
		b.Add(r.quantity.str());
		b.Add(r.unit_price ? std::optional<std::string>(r.unit_price->str()) : std::nullopt);
		b.Add(r.unit_cost ? std::optional<std::string>(r.unit_cost->str()) : std::nullopt);
		b.Add(r.billing_type);
		b.Add(r.quantity_source);
		b.Add(r.effective_date);
		b.Add(r.cancel_date);
		b.Add(r.parent_external_id);
		b.Add(r.source_updated_at);
	}
	Write(kStageLineItems, b);
}

void StagingSink::PutVendorAccounts(const std::vector<model::VendorAccount> &rows) {
	Batch b(StageColumns(kStageVendorAccounts));
	for (const model::VendorAccount &r : rows) {
		b.Add(r.external_id);
		b.Add(r.name);
		b.Add(r.domains.empty() ? std::nullopt : std::optional<std::string>(JoinLines(r.domains)));
		b.Add(r.status);
		b.Add(r.source_updated_at);
	}
	Write(kStageVendorAccounts, b);
	accounts_pending_ = accounts_pending_ || b.size() > 0;
}

void StagingSink::PutUsage(const std::vector<model::UsageRecord> &rows) {
	Batch b(StageColumns(kStageUsage));
	for (const model::UsageRecord &r : rows) {
		b.Add(r.external_id);
		b.Add(r.account_external_id);
		b.Add(model::UsageKindName(r.kind));
		b.Add(r.product);
		b.Add(r.product_name);
		b.Add(r.quantity.str());
		b.Add(r.device_class ? model::DeviceClassName(*r.device_class) : nullptr);
		b.Add(r.os_name);
		b.Add(r.device_name);
		b.Add(r.serial_number);
		b.Add(r.licensed ? Bool(*r.licensed) : nullptr);
		b.Add(r.enabled ? Bool(*r.enabled) : nullptr);
		b.Add(r.online ? Bool(*r.online) : nullptr);
		b.Add(r.last_active_at);
		b.Add(r.unit_cost ? std::optional<std::string>(r.unit_cost->str()) : std::nullopt);
		b.Add(r.purchased_quantity ? std::optional<std::string>(r.purchased_quantity->str()) : std::nullopt);
		b.Add(r.status);
		b.Add(r.billing_term);
		b.Add(r.term_end_date);
		b.Add(r.user_name);
		b.Add(r.source_updated_at);
	}
	if (b.size() == 0)
		return;
	if (b.size() % static_cast<size_t>(b.ncols()) != 0 || b.ncols() != StageColumns(kStageUsage))
		throw Error(sqlstate::kInternal, "staging batch has the wrong shape");
	// Usage is the bulk of a vendor sync: stored page by page in the live
	// table (no second copy through staging), once the accounts staged so
	// far are stored too. A database still at 0.1.0's schema (the library
	// is updated, ALTER EXTENSION UPDATE not run yet) stages it as 0.1.0 did.
	if (direct_usage_ < 0)
		direct_usage_ = CallPg(UsageUpsertAvailable) ? 1 : 0;
	if (direct_usage_ == 0) {
		Write(kStageUsage, b);
		return;
	}
	if (accounts_pending_) {
		CallPg(ApplyStagedAccounts, static_cast<int64>(run_id_));
		accounts_pending_ = false;
	}
	std::vector<const char *> cells = b.Pointers();
	CallPg(UpsertUsageBatch, static_cast<int64>(run_id_), b.nrows(), static_cast<const char *const *>(cells.data()));
}

void StagingSink::OnPage(std::string_view phase, size_t records) {
	// Live progress for billrecon.sync_jobs (background workers only).
	char name[32];
	size_t n = phase.size() < sizeof(name) - 1 ? phase.size() : sizeof(name) - 1;
	memcpy(name, phase.data(), n);
	name[n] = '\0';
	ReportSyncProgress(name, static_cast<long>(records));
	++pages_;
	records_ += static_cast<long>(records);
	if (!label_.empty())
		CallPg(ProgressNotice, label_.c_str(), static_cast<const char *>(name), pages_, records_);
	// Each page ends with an interrupt check, so a cancel never waits for
	// the whole listing.
	CallPg(CheckInterrupts);
}

void StagingSink::Warn(std::string message) {
	if (warnings_.size() < kMaxWarnings) {
		warnings_.push_back(std::move(message));
		return;
	}
	if (++dropped_warnings_ == 1)
		warnings_.back() = "more than " + std::to_string(kMaxWarnings) + " warnings; the rest were not recorded";
}

} // namespace billrecon::pg
