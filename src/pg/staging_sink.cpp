#include "pg/staging_sink.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_set>

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
	if (direct_usage_ < 0)
		direct_usage_ = CallPg(SchemaStoresUsageDirectly) ? 1 : 0;
	if (direct_usage_ == 0) {
		Write(kStageUsage, b);
		return;
	}
	// Usage is the bulk of a vendor sync: stored page by page in the live
	// table (no second copy through staging), once the accounts staged so
	// far are stored too.
	if (accounts_pending_) {
		CallPg(ApplyStagedAccounts, static_cast<int64>(run_id_));
		accounts_pending_ = false;
		accounts_loaded_ = false;
	}
	if (!accounts_loaded_)
		LoadAccounts();

	// Rows whose account is stored go in directly (the last of an id
	// repeated on the page wins, as a later page's would); the others are
	// staged: their account may still come later in the run.
	const size_t ncols = static_cast<size_t>(b.ncols());
	std::vector<const char *> cells = b.Pointers();
	std::vector<const char *> direct;
	std::vector<int64> account_ids;
	std::vector<const char *> staged;
	std::unordered_set<std::string_view> ids;
	direct.reserve(cells.size());
	account_ids.reserve(rows.size());
	for (size_t r = rows.size(); r-- > 0;) {
		const char *const *row = cells.data() + r * ncols;
		auto account = accounts_.find(rows[r].account_external_id);
		if (account == accounts_.end()) {
			staged.insert(staged.end(), row, row + ncols);
			continue;
		}
		if (!ids.insert(rows[r].external_id).second)
			continue; // a later row of the page has this id
		direct.insert(direct.end(), row, row + ncols);
		account_ids.push_back(static_cast<int64>(account->second));
	}
	if (!staged.empty()) {
		// Back in page order, row by row (staging keeps the last by its seq).
		std::vector<const char *> ordered;
		ordered.reserve(staged.size());
		for (size_t r = staged.size() / ncols; r-- > 0;)
			ordered.insert(ordered.end(), staged.begin() + r * ncols, staged.begin() + (r + 1) * ncols);
		CallPg(StageBatch, static_cast<int>(kStageUsage), static_cast<int64>(run_id_),
		       static_cast<int>(ordered.size() / ncols), static_cast<const char *const *>(ordered.data()));
	}
	if (account_ids.empty())
		return;
	// Page order again for the heap.
	const size_t n = account_ids.size();
	std::reverse(account_ids.begin(), account_ids.end());
	std::vector<const char *> ordered;
	ordered.reserve(direct.size());
	for (size_t r = n; r-- > 0;)
		ordered.insert(ordered.end(), direct.begin() + r * ncols, direct.begin() + (r + 1) * ncols);
	int64 written = CallPg(UpsertUsagePage, static_cast<int64>(run_id_), static_cast<int32>(integration_id_),
	                       static_cast<int>(n), static_cast<const int64 *>(account_ids.data()),
	                       static_cast<const char *const *>(ordered.data()));
	unchanged_ += static_cast<int64_t>(n) - written;
	for (size_t r = 0; r < n; ++r) {
		direct_ids_.append(ordered[r * ncols]);
		direct_ids_.push_back('\0');
	}
	direct_count_ += n;
}

void StagingSink::LoadAccounts() {
	AccountIds *loaded = CallPg(LoadAccountIds, static_cast<int64>(run_id_));
	integration_id_ = loaded->integration_id;
	accounts_.clear();
	accounts_.reserve(static_cast<size_t>(loaded->count));
	for (int i = 0; i < loaded->count; ++i)
		accounts_.emplace(loaded->external_ids[i], loaded->ids[i]);
	accounts_loaded_ = true;
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
