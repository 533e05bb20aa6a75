// Microsoft Graph v1.0 (vendor-apis.md section 5): Microsoft 365 licences and
// users of each customer tenant (GDAP / consented multi-tenant app).
//
// Per customer tenant, in the order of options.customer_tenants:
//   GET /v1.0/organization    -> one vendor account (external id = tenant id)
//   GET /v1.0/subscribedSkus  -> one usage record of kind licence per SKU
//   GET /v1.0/users           -> one usage record of kind user per user
// following @odata.nextLink until it is absent.
//
// Auth: app-only tokens are issued per customer tenant, so the connector
// installs a fresh OAuth2 client-credentials auth on the http::Client before
// each tenant's requests (token URL = options.token_url with "{tenant}"
// replaced by the customer tenant id). Tenants are synced one after another,
// so one Auth at a time is all the client needs, and a 401 refresh always
// concerns the tenant being read. Graph has no modified-since filter for
// licences (users/delta needs a stored delta link): quick syncs run full.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::connectors {

class MsGraphConnector : public Connector {
public:
	static constexpr const char *kScope = "https://graph.microsoft.com/.default";
	static constexpr const char *kDefaultTokenUrl = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";
	// $select of /users without signInActivity (added when the tenant allows it).
	static constexpr const char *kUserSelect = "id,displayName,userPrincipalName,accountEnabled,assignedLicenses";
	static constexpr const char *kQuickFallbackNote =
	    "msgraph has no modified-since filter for licences and users: quick sync ran as a full sync";

	struct Settings {
		std::string base_url;                   // https://graph.microsoft.com
		std::vector<std::string> tenants;       // customer tenant ids, lower-case GUIDs
		std::string token_url_template = kDefaultTokenUrl; // "{tenant}" is replaced per tenant
		std::string client_id;
		std::string client_secret;
		long page_size = 999;                   // $top of /users (1..999)
		long max_pages = 100000;                // per endpoint and tenant
	};

	explicit MsGraphConnector(Settings settings);

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// The token URL for one tenant: every "{tenant}" in `url_template` replaced.
	static std::string TokenUrlFor(std::string_view url_template, std::string_view tenant);

	// Installs the OAuth2 client-credentials auth of `tenant` on `client`.
	void UseTenant(http::Client &client, const std::string &tenant) const;

	// subscribedSku.capabilityStatus -> licence enabled: Enabled and Warning
	// (grace period) are in use, Suspended, Deleted and LockedOut are not;
	// nullopt for a value Graph does not document (the sync then fails).
	static std::optional<bool> SkuEnabled(std::string_view capability_status);

	// True when `s` is a GUID (8-4-4-4-12 hex digits, any case).
	static bool IsGuid(std::string_view s);

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	Settings settings_;
};

// Registry factory: reads credentials and options (customer_tenants must be a
// non-empty array of GUIDs), installs the first tenant's auth on `client`.
// Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreateMsGraph(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
