// Glue: the RecordSink that writes a sync's records into the staging tables,
// one batch (one executor call) per page, through CallPg.
#pragma once

#include "connectors/connector.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace billrecon::pg {

class StagingSink : public connectors::RecordSink {
public:
	// `label` names the sync in progress NOTICEs (the integration's name).
	explicit StagingSink(int64_t run_id, std::string label = {}) : run_id_(run_id), label_(std::move(label)) {
	}

	void PutCompanies(const std::vector<model::Company> &rows) override;
	void PutAgreements(const std::vector<model::Agreement> &rows) override;
	void PutLineItems(const std::vector<model::LineItem> &rows) override;
	void PutVendorAccounts(const std::vector<model::VendorAccount> &rows) override;
	void PutUsage(const std::vector<model::UsageRecord> &rows) override;
	void OnPage(std::string_view phase, size_t records) override;
	void Warn(std::string message) override;

	// Warnings in the order they came (capped; the cap itself is reported).
	const std::vector<std::string> &warnings() const noexcept {
		return warnings_;
	}

	// For ApplyStaged: the external ids of the usage records this sink
	// stored directly, each ended by '\0', when it found some of them stored
	// and unchanged (and left them alone); count 0 when it wrote every one.
	size_t UnchangedUsageCount() const noexcept {
		return unchanged_ > 0 ? direct_count_ : 0;
	}
	const std::string &UnchangedUsageIds() const noexcept {
		return direct_ids_;
	}

private:
	// Row-major cells of one batch; nullopt = SQL NULL.
	class Batch;
	void Write(int table, const Batch &batch);

	int64_t run_id_;
	std::string label_;
	long pages_ = 0;
	long records_ = 0;
	bool accounts_pending_ = false; // vendor accounts staged, not yet in the live table
	void LoadAccounts();
	int direct_usage_ = -1;          // -1 not asked yet; 0: a 0.1.0 schema, usage goes through staging
	bool accounts_loaded_ = false;   // accounts_ mirrors the stored vendor accounts
	int32_t integration_id_ = 0;
	std::unordered_map<std::string, int64_t> accounts_; // external id -> vendor_accounts.id
	std::string direct_ids_;         // ids stored directly, each ended by '\0'
	size_t direct_count_ = 0;
	int64_t unchanged_ = 0;          // rows found stored and unchanged
	std::vector<std::string> warnings_;
	size_t dropped_warnings_ = 0;
};

} // namespace billrecon::pg
