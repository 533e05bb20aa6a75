// Runs one integration's connector: builds its HTTP client from the settings
// and the integration's options, counts pages and records on the way to the
// sink, and keeps the request statistics even when the sync fails.
#pragma once

#include "connectors/connector.hpp"
#include "http/client.hpp"

#include <functional>
#include <memory>
#include <string>

namespace billrecon::sync {

// Server-wide defaults (the billrecon.* settings); options override them.
struct Defaults {
	long connect_timeout_ms = 10000;
	long timeout_ms = 120000;
	int max_retries = 5;
	long retry_base_delay_ms = 500;
	long retry_max_delay_ms = 60000;
	size_t max_response_bytes = 64u << 20;
	int max_in_flight = 4;
	bool allow_http = false;
	std::string ca_file;
	std::string user_agent = "billrecon";
};

struct Stats {
	long pages = 0;
	long records = 0;
	long requests = 0;
	long retries = 0;
	long bytes = 0;
};

// The settings' defaults, overridden by the integration's options
// (connectors::ClientOptionsFor).
http::ClientOptions ClientOptionsFor(const connectors::IntegrationConfig &config, const Defaults &defaults);

class Runner {
public:
	// `transport` null: libcurl.
	Runner(connectors::IntegrationConfig config, Defaults defaults, std::function<bool()> cancel,
	       std::unique_ptr<http::Transport> transport = nullptr);
	~Runner();

	// Validates the configuration again (settings may have changed since it
	// was stored: allow_http), builds the connector and runs it. Throws
	// billrecon::Error on failure, billrecon::Cancelled on cancel.
	connectors::SyncOutcome Run(const connectors::SyncRequest &request, connectors::RecordSink &sink);

	// Writes one line item's quantity back to the PSA through the kind's
	// PsaWriter; with `check_first`, reads the PSA's quantity first and sends
	// nothing when it already equals the new one (a retry after a lost
	// answer). Throws 0A000 for kinds without write-back.
	connectors::QuantityChangeResult WriteQuantity(const connectors::QuantityChange &change, bool check_first);

	// Statistics so far; valid after Run returned or threw.
	Stats stats() const;

	// Removes the integration's secrets from a message (for errors that did
	// not come through the HTTP client).
	std::string Redact(std::string text) const;

private:
	connectors::IntegrationConfig config_;
	Defaults defaults_;
	Stats counted_;
	std::unique_ptr<http::Client> client_;
};

} // namespace billrecon::sync

#include "core_only.hpp"
