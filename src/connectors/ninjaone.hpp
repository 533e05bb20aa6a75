// NinjaOne (NinjaRMM) public API v2 (vendor-apis.md section 7).
//
// Reads organizations (vendor accounts) and devices-detailed (one usage
// record per device). Auth: OAuth2 client credentials at
// {base}/ws/oauth/token (or options.token_url), scope "monitoring management".
// The API has no modified-since filter, so quick syncs run as full syncs.
#pragma once

#include "connectors/connector.hpp"
#include "model/records.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

class NinjaOneConnector : public Connector {
public:
	static constexpr const char *kScope = "monitoring management";
	static constexpr const char *kQuickFallbackNote =
	    "ninjaone has no modified-since filter: quick sync ran as a full sync";

	struct Settings {
		std::string base_url;   // instance root, e.g. https://app.ninjarmm.com
		long page_size = 1000;  // 1..1000
		long max_pages = 100000;
	};

	explicit NinjaOneConnector(Settings settings);

	SyncOutcome Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) override;

	// nodeClass (+ system.chassisType, os.name) -> device class:
	//   *_SERVER, VMWARE_VM_HOST, HYPERV_VMM_HOST            -> server
	//   WINDOWS_WORKSTATION, MAC, LINUX_WORKSTATION          -> laptop when chassis is LAPTOP, else desktop
	//   VMWARE_VM_GUEST, HYPERV_VMM_GUEST                    -> server when os.name contains "server", else desktop
	//   anything else (ANDROID, APPLE_IOS, NMS_*, unknown)   -> other
	static model::DeviceClass MapDeviceClass(std::string_view node_class, std::optional<std::string_view> chassis_type,
	                                         std::optional<std::string_view> os_name);

	const Settings &settings() const noexcept {
		return settings_;
	}

private:
	Settings settings_;
};

// Registry factory: reads credentials/options, installs the OAuth2 auth on
// `client`. Throws billrecon::Error (22023) on unusable configuration.
std::unique_ptr<Connector> CreateNinjaOne(const IntegrationConfig &config, http::Client &client);

} // namespace billrecon::connectors

#include "core_only.hpp"
