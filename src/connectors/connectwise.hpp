// ConnectWise Manage (ConnectWise PSA), REST API 3.0 (vendor-apis.md section 1).
//
// Reads companies, their contacts' e-mail domains (matching evidence),
// agreements, the product catalog (to name products) and every agreement's
// additions (the billed line items); writes an addition's
// quantity back. Auth: Basic "company+publicKey:privateKey" plus a clientId
// header; every request asks for API version 2022.1 in Accept.
#pragma once

#include "connectors/connector.hpp"
#include "model/decimal.hpp"
#include "model/records.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

class ConnectWiseConnector : public Connector, public PsaWriter {
public:
	static constexpr const char *kAccept = "application/vnd.connectwise.com+json; version=2022.1";

	struct Settings {
		std::string base_url;           // API root, e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0
		long page_size = 1000;          // 1..1000
		size_t additions_batch = 8;     // agreements whose additions are fetched at once (Client::SendAll)
		long max_pages = 100000;        // per endpoint (per agreement for additions)
	};

	explicit ConnectWiseConnector(Settings settings);

	PsaWriter *writer() override {
		return this;
	}

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// The quantity billed on change.effective_date: the addition's own
	// quantity, unless it is cancelled before that date; then the quantity of
	// the addition of the same product starting on that date (what
	// UpdateQuantity creates), or 0 when there is none.
	model::Decimal ReadQuantity(http::Client &client, const QuantityChange &change) override;

	// A dated change, as ConnectWise models one: the old addition gets
	// cancelledDate = effective_date - 1 day (PATCH) and a new addition with
	// the new quantity starts on effective_date (POST; product, unitPrice,
	// unitCost, billCustomer, description and any later cancelledDate copied).
	// When effective_date is on or before the addition's own effectiveDate,
	// the quantity is patched in place instead. Safe to retry: an addition of
	// the same product starting on effective_date is reused, not duplicated.
	QuantityChangeResult UpdateQuantity(http::Client &client, const QuantityChange &change) override;

	// Write-back: PATCH /finance/agreements/{agreement_id}/additions/{addition_id}
	// with [{"op":"replace","path":"quantity","value":<quantity>}]. Returns the
	// quantity the PSA reports in its answer (nullopt when the answer has no
	// body). Throws http::HttpError when the PSA refuses.
	std::optional<model::Decimal> UpdateAdditionQuantity(http::Client &client, std::string_view agreement_id,
	                                                     std::string_view addition_id, const model::Decimal &quantity);

	// "Monthly" -> kMonthly, "Quarterly" -> kQuarterly, "Annual"/"Annually"/
	// "Yearly" -> kAnnual (case-insensitive, surrounding spaces ignored),
	// anything else -> kOther.
	static model::BillingCycle MapBillingCycle(std::string_view name);

	// The condition text for quick mode: "lastUpdated > [2024-06-01T00:00:00Z]"
	// (fractions of a second dropped, i.e. rounded down).
	static std::string LastUpdatedCondition(std::string_view since_iso);

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	Settings settings_;
};

// Registry factory: reads credentials/options, installs the Basic auth on
// `client`. Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreateConnectWise(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
