// HaloPSA REST API (vendor-apis.md section 2).
//
// Reads clients (PSA companies), their users' e-mail domains (matching
// evidence) and recurring invoices with their lines (agreements and line
// items); writes a line's quantity back by posting the
// whole recurring invoice with every line. Auth: OAuth2 client credentials
// at {base}/auth/token (?tenant= for hosted tenants), scope "all". No list
// endpoint used here has a modified-since filter, so quick syncs run as full
// syncs.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

class HaloPsaConnector : public Connector, public PsaWriter {
public:
	static constexpr const char *kScope = "all";
	static constexpr const char *kQuickFallbackNote =
	    "halopsa has no modified-since filter on clients, users or recurring invoices: quick sync ran as a full sync";

	struct Settings {
		std::string base_url;    // instance root, e.g. https://acme.halopsa.com (the API is under /api)
		long page_size = 50;     // 1..100
		long max_pages = 100000; // per list
	};

	explicit HaloPsaConnector(Settings settings);

	PsaWriter *writer() override {
		return this;
	}

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// qty_order of the line on GET /api/RecurringInvoice/{agreement}?includelines=true.
	model::Decimal ReadQuantity(http::Client &client, const QuantityChange &change) override;

	// Reads the recurring invoice, then POST /api/RecurringInvoice with
	// [{"id": <invoice>, "lines": [every line as read, the changed one with
	// the new qty_order]}]. Halo has no dated quantity change: the new
	// quantity applies from the next invoice Halo creates; the note says so.
	QuantityChangeResult UpdateQuantity(http::Client &client, const QuantityChange &change) override;

	// The recurring invoice "period" code: 2 -> kMonthly (the only code seen
	// with a known schedule, vendor-apis.md); any other code -> kOther.
	static model::BillingCycle MapPeriod(long long code);
	// "Monthly" for 2, "period code N" otherwise.
	static std::string PeriodLabel(long long code);

	// The token endpoint: token_url (option) or {base}/auth/token; "{tenant}"
	// in it is replaced by the URL-encoded tenant, otherwise a non-empty
	// tenant is appended as ?tenant=<tenant>.
	static std::string TokenUrl(std::string_view base_url, const std::optional<std::string> &token_url,
	                            std::string_view tenant);

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	Settings settings_;
};

// Registry factory: reads credentials/options, installs the OAuth2 auth on
// `client`. Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreateHaloPsa(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
