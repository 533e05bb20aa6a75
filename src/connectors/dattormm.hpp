// Datto RMM API v2 (vendor-apis.md section 8): sites and devices.
//
//   GET /api/v2/account/sites?page=0&max=N    -> vendor accounts (external id = site uid)
//   GET /api/v2/account/devices?page=0&max=N  -> usage records of kind device
// Paging: follow pageDetails.nextPageUrl (same server only) until it is null.
//
// Auth: OAuth2 password grant at {base}/auth/oauth/token, HTTP Basic
// public-client:public, username = API key, password = API secret. The API
// allows 600 requests per rolling minute for the whole account, so the kind
// defaults to 9 requests per second (registry). No modified-since filter:
// quick syncs run full.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

class DattoRmmConnector : public Connector {
public:
	static constexpr const char *kBasicUser = "public-client";
	static constexpr const char *kBasicPassword = "public";
	static constexpr double kDefaultRequestsPerSecond = 9;
	static constexpr const char *kQuickFallbackNote =
	    "dattormm has no modified-since filter: quick sync ran as a full sync";

	struct Settings {
		std::string base_url;  // https://{platform}-api.centrastage.net
		long page_size = 250;  // max= (1..250)
		long max_pages = 100000;
	};

	explicit DattoRmmConnector(Settings settings);

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// deviceType.category (case-insensitive) -> device class: Desktop ->
	// desktop, Laptop -> laptop, Server and ESXi Host -> server, anything
	// else -> other. Without a category, deviceClass "esxihost" -> server,
	// else other.
	static model::DeviceClass MapDeviceClass(std::optional<std::string_view> category,
	                                         std::optional<std::string_view> device_class);

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	Settings settings_;
};

// Registry factory: reads credentials and options, installs the OAuth2 auth
// on `client`. Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreateDattoRmm(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
