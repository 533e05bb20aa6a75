// Helpers shared by the connectors and the registry (internal to
// src/connectors): URLs, paging guards, and the parsed form of an
// integration's credentials and options.
#pragma once

#include "connectors/connector.hpp"
#include "json/reader.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace billrecon::connectors {

// Hard cap on pages fetched from one endpoint (per agreement for additions):
// a vendor that never stops paging fails the sync instead of looping.
inline constexpr long kMaxPagesPerEndpoint = 100000;

// An absolute http(s) URL split into parts. host is lower-cased; port is
// empty when absent; path is "" or starts with "/".
struct UrlParts {
	std::string scheme; // "http" / "https"
	std::string host;
	std::string port;
	std::string path;
	std::string query; // without "?"
	bool has_userinfo = false;
	bool has_fragment = false;
};

// Parses scheme://host[:port][/path][?query][#fragment]; nullopt and a
// reason ("missing host") when it is not an absolute http(s) URL.
std::optional<UrlParts> ParseUrl(std::string_view url, std::string &why);

// The value of a URL for messages, with any user:password@ replaced.
std::string UrlForMessage(std::string_view url);

// "scheme://host[:port]" lower-cased, or "" when `url` is not absolute http(s).
std::string UrlOrigin(std::string_view url);

// base ("https://h/api/", "https://h/api") + path ("/x", "x") -> "https://h/api/x".
std::string JoinUrl(std::string_view base, std::string_view path);

// A Link target resolved against the URL of the response that carried it:
// absolute URLs as they are, "/path?query" and "?query" on the same origin.
// Returns "" when it cannot be resolved.
std::string ResolveUrl(std::string_view response_url, std::string_view ref);

// The path of a URL, without scheme, host and query ("/company/companies").
std::string UrlPath(std::string_view url);

// Throws billrecon::Error 22000 "pagination loop in vendor response".
[[noreturn]] void ThrowPaginationLoop(std::string_view endpoint, std::string_view detail);

// Throws billrecon::Error 54000 when an endpoint passes kMaxPagesPerEndpoint.
[[noreturn]] void ThrowTooManyPages(std::string_view endpoint);

// Credentials and options of an integration, parsed and checked the way
// ValidateConfig checks them (without the base_url rules).
struct ParsedConfig {
	json::Value credentials; // a JSON object
	json::Value options;     // a JSON object
	// The credential (validated non-empty); "" for an absent optional one.
	std::string Credential(std::string_view key) const;
	// An integer option (validated), or `fallback` when absent.
	long IntOption(std::string_view key, long fallback) const;
	// A string option, or nullopt when absent.
	std::optional<std::string> StringOption(std::string_view key) const;
};

// Defined in registry.cpp. Throws what ValidateConfig throws for the
// credentials and options.
ParsedConfig ParseConfig(const IntegrationConfig &config);

} // namespace billrecon::connectors

#include "core_only.hpp"
