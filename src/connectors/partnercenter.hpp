// Microsoft Partner Center REST API v1 (vendor-apis.md section 6): the CSP
// partner's customers and their subscriptions.
//
//   GET /v1/customers?size=N                   -> vendor accounts (id = customer tenant id)
//       seek paging: links.next {uri, headers: [{key: MS-ContinuationToken, value}]}
//   GET /v1/customers/{id}/subscriptions       -> usage records of kind subscription
//       (unpaged; several customers in flight through SendAll)
//
// Auth: OAuth2 client credentials at the partner tenant's Entra token
// endpoint, scope https://api.partnercenter.microsoft.com/.default. Every
// request carries MS-RequestId (a fresh GUID, kept across retries),
// MS-CorrelationId (one GUID per sync), MS-Contract-Version: v1 and
// Accept: application/json. No modified-since filter: quick syncs run full.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

class PartnerCenterConnector : public Connector {
public:
	static constexpr const char *kScope = "https://api.partnercenter.microsoft.com/.default";
	static constexpr const char *kDefaultTokenUrl = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";
	static constexpr const char *kContractVersion = "v1";
	static constexpr const char *kQuickFallbackNote =
	    "partnercenter has no modified-since filter: quick sync ran as a full sync";

	struct Settings {
		std::string base_url;  // https://api.partnercenter.microsoft.com (the API root, without /v1)
		long page_size = 500;  // size= of /v1/customers
		long max_pages = 100000;
		// Customers whose subscriptions are requested at once; 0: the client's max_in_flight.
		size_t subscriptions_batch = 0;
		// New GUIDs for MS-RequestId / MS-CorrelationId; empty: random version-4 GUIDs.
		std::function<std::string()> new_guid;
	};

	explicit PartnerCenterConnector(Settings settings);

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// Subscription.status -> enabled: active -> true; none, pending,
	// suspended, deleted, expired, disabled -> false; nullopt for anything
	// else (the sync then fails). Case-insensitive.
	static std::optional<bool> SubscriptionEnabled(std::string_view status);

	// The absolute URL of a links.next / links.self "uri": "/v1/customers?..."
	// and "/customers?..." (the documented invoice examples leave out /v1)
	// are both taken relative to base_url; absolute URLs are returned as they
	// are. A second "?" in the query (seen in Microsoft's examples) becomes "&".
	static std::string LinkUrl(std::string_view base_url, std::string_view uri);

	// A random version-4 GUID in lower case.
	static std::string RandomGuid();

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	Settings settings_;
};

// Registry factory: reads credentials and options, installs the OAuth2 auth
// on `client`. Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreatePartnerCenter(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
