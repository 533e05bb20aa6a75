// The list of integration kinds and what each one needs.
#pragma once

#include "connectors/connector.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::connectors {

enum class Side { kPsa, kVendor };

enum class OptionType { kInteger, kNumber, kUrl, kString, kGuidArray };

// One option an integration kind accepts in its options object.
struct OptionSpec {
	const char *key;
	OptionType type;
	long long min;       // integers and numbers: inclusive range; kString: length; kGuidArray: element count
	long long max;
	const char *example; // kUrl: an example value for messages (may be nullptr)
	bool required = false; // ValidateConfig fails when the option is absent
};

struct KindInfo {
	const char *kind;                              // "connectwise"
	Side side;
	std::vector<const char *> required_credentials; // keys that must be non-empty strings
	std::vector<const char *> optional_credentials;
	const char *example_base_url;                   // the real service's API root
	bool supports_quick;                            // has a modified-since filter
	// Builds the connector, including its http::Auth from the credentials.
	// Throws billrecon::Error (22023) when credentials or options are unusable.
	std::unique_ptr<Connector> (*create)(const IntegrationConfig &config, http::Client &client);
	std::vector<OptionSpec> options; // kind-specific options (the common HTTP ones are implied)
	// The kind's request-rate limit when options.requests_per_second is not
	// set (0: none); ClientOptionsFor applies it.
	double default_requests_per_second = 0;
};

// Kinds this build implements, in documentation order.
const std::vector<KindInfo> &Kinds();

// nullptr when the kind is unknown.
const KindInfo *FindKind(std::string_view kind);

// Every kind product.md names, implemented or not (for messages).
const std::vector<const char *> &ProductKinds();

// Checks kind, base URL (absolute http(s) URL with a host; https unless
// allow_http), credentials (a JSON object with every required key as a
// non-empty string, no unknown keys) and options (a JSON object; known keys
// well-typed). Throws billrecon::Error with errcode, DETAIL and HINT.
void ValidateConfig(const IntegrationConfig &config, bool allow_http);

// The HTTP client settings an integration's options ask for (timeout_ms,
// connect_timeout_ms, max_retries, retry_base_delay_ms, retry_max_delay_ms,
// requests_per_second, max_in_flight, max_response_mb), applied over
// `defaults`. Throws billrecon::Error (22023) on bad options, as ValidateConfig.
http::ClientOptions ClientOptionsFor(const IntegrationConfig &config, http::ClientOptions defaults);

} // namespace billrecon::connectors

#include "core_only.hpp"
