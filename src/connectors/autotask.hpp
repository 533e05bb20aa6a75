// Autotask PSA REST API (vendor-apis.md section 3).
//
// Reads Companies (PSA companies), their Contacts' e-mail domains (matching
// evidence), Contracts (agreements), ContractServices
// (line items), their ContractServiceUnits (the units billed in the period
// covering the as-of date become the line's quantity) and the Services
// catalogue (product names); writes a quantity back as a
// ContractServiceAdjustment (a signed unit change from an effective date).
// Auth: ApiIntegrationCode / UserName / Secret headers on every call. Lists
// are POST /V1.0/{Entity}/query, then pageDetails.nextPageUrl with GET.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

class AutotaskConnector : public Connector, public PsaWriter {
public:
	// The zone-independent host; a base_url on it triggers zone discovery.
	static constexpr const char *kGenericHost = "webservices.autotask.net";
	// Autotask allows 10,000 requests per rolling hour per database.
	static constexpr long kDefaultRequestsPerHour = 10000;
	// The client's default rate (KindInfo): that budget spread over the hour.
	static constexpr double kDefaultRequestsPerSecond = kDefaultRequestsPerHour / 3600.0;

	struct Settings {
		std::string base_url;    // zone URL, e.g. https://webservices5.autotask.net/ATServicesRest
		std::string username;    // the API user (zoneInformation?user=)
		long page_size = 500;    // MaxRecords, 1..500
		long max_pages = 100000; // per query
		long requests_per_hour = kDefaultRequestsPerHour; // hard cap on requests per connector run
		bool zone_lookup = false;                         // always ask zoneInformation for the zone URL
		std::string as_of_date;                           // YYYY-MM-DD for unit periods; empty: today (UTC)
	};

	explicit AutotaskConnector(Settings settings);

	PsaWriter *writer() override {
		return this;
	}

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// Units of the ContractServiceUnits row of the line (contract service)
	// whose period covers change.effective_date.
	model::Decimal ReadQuantity(http::Client &client, const QuantityChange &change) override;

	// Reads the contract service and its units on the effective date, then
	// POST /V1.0/ContractServiceAdjustments with unitChange = new - units on
	// that date (nothing is sent when they are equal, so a retry after a
	// lost answer does not adjust twice). Units are whole numbers.
	QuantityChangeResult UpdateQuantity(http::Client &client, const QuantityChange &change) override;

	// The API root to use: base_url, or the zone URL zoneInformation names
	// when zone_lookup is set or base_url is on the generic host. Cached.
	const std::string &ResolveBase(http::Client &client);

	// {"MaxRecords":N,"filter":<filter_json>}
	static std::string QueryBody(long max_records, std::string_view filter_json);
	// {"MaxRecords":N,"IncludeFields":<include_fields_json>,"filter":<filter_json>}
	static std::string QueryBody(long max_records, std::string_view filter_json, std::string_view include_fields_json);

	// A picklist label ("Monthly", "Quarterly", "Yearly", "Annual") -> cycle;
	// anything else kOther.
	static model::BillingCycle MapPeriodLabel(std::string_view label);

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	http::Response Send(http::Client &client, http::Request request, bool authenticated = true);

	Settings settings_;
	std::optional<std::string> base_;
	std::optional<long> budget_start_;
};

// Registry factory: reads credentials/options, installs the header auth on
// `client`. Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreateAutotask(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
