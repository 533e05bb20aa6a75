// Helpers shared by the connectors and the registry (internal to
// src/connectors): URLs, text, ids and dates, JSON requests and bodies, sync
// outcomes, OAuth2 settings, and the parsed form of an integration's
// credentials and options. Paging guards are in paging.hpp.
#pragma once

#include "connectors/connector.hpp"
#include "http/auth.hpp"
#include "http/types.hpp"
#include "json/reader.hpp"
#include "model/decimal.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::connectors {

// ---- URLs --------------------------------------------------------------------------

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

// ---- text --------------------------------------------------------------------------

// ASCII lower case.
std::string Lower(std::string_view s);

// Without leading and trailing white space.
std::string_view Trim(std::string_view s);

// `items` separated by `sep`.
std::string Join(const std::vector<std::string> &items, std::string_view sep);

// The first `max` items joined by ", ", then ", ..." when there are more.
std::string JoinFirst(const std::vector<std::string> &items, size_t max);

// `text` with every `placeholder` replaced by `value` (not rescanned).
std::string ReplaceAll(std::string_view text, std::string_view placeholder, std::string_view value);

// The registrable-looking host of a website or a bare domain
// ("https://www.Harbor.com/x", "harbor.com" -> "harbor.com"), or nullopt
// when it does not look like a domain.
std::optional<std::string> DomainOfWebsite(std::string_view website);

// "Monthly", "Quarterly", "Annual" / "Annually" / "Yearly" (any case, around
// white space) -> that cycle; any other label -> kOther.
model::BillingCycle BillingCycleFromLabel(std::string_view label);

// ---- numbers and ids ---------------------------------------------------------------

// 1 to `max_size` ASCII digits.
bool AllDigits(std::string_view s, size_t max_size = std::string_view::npos);

// A vendor id used in a URL path must be a positive integer of at most
// `max_digits` digits; otherwise throws 22023 "invalid <vendor> <what> id".
void CheckNumericId(std::string_view vendor, std::string_view what, std::string_view id, size_t max_digits);

// 8-4-4-4-12 hexadecimal digits (either case).
bool IsGuid(std::string_view s);

// The value of a decimal with no fraction and at most 15 characters, or nullopt.
std::optional<long long> WholeNumber(const model::Decimal &d);

// An integral JSON number (250, 2.5e2) as WholeNumber reads it, or nullopt.
std::optional<long long> JsonInteger(const json::Value &v);

// ---- dates -------------------------------------------------------------------------

// A strict YYYY-MM-DD date, or throws 22023 "invalid <what>".
std::string ValidDate(std::string_view date, std::string_view what);

// A valid YYYY-MM-DD date moved by `days` (negative: earlier).
std::string AddDays(const std::string &date, long days);

// ---- requests and bodies -----------------------------------------------------------

inline constexpr const char *kJsonMediaType = "application/json";

// A request that accepts `accept` (JSON unless the vendor has its own media
// type) and, unless it is a GET, sends `body` as application/json.
http::Request JsonRequest(http::Method method, std::string url, std::string body, std::string label,
                          std::string_view accept = kJsonMediaType);

// JsonRequest for a GET.
http::Request JsonGet(std::string url, std::string label, std::string_view accept = kJsonMediaType);

// Writes a parsed value back as JSON; numbers keep the vendor's literal.
void AppendJson(std::string &out, const json::Value &v);

// ---- syncs and auth ----------------------------------------------------------------

// The outcome of a kind without a modified-since filter: always a full sync,
// with `note` when quick mode was asked for.
SyncOutcome FullSyncOutcome(const SyncRequest &request, std::string_view note);

// The outcome of a kind with one: quick when quick mode was asked for and
// request.since is set; without a previous sync it runs full, and says so.
SyncOutcome QuickOrFullOutcome(const SyncRequest &request);

// An OAuth2 client-credentials grant (form body unless `body_style` says
// otherwise); the caller adds scope or audience.
http::OAuth2Config
ClientCredentialsGrant(std::string token_url, std::string client_id, std::string client_secret,
                       http::OAuth2Config::BodyStyle body_style = http::OAuth2Config::BodyStyle::kForm);

// ---- configuration -----------------------------------------------------------------

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

// The settings of a paged kind as its factory starts them: base_url from the
// integration, page_size from options.page_size or else the Settings' default.
template <typename Settings>
Settings PagedSettings(const IntegrationConfig &config, const ParsedConfig &parsed) {
	Settings settings;
	settings.base_url = config.base_url;
	settings.page_size = parsed.IntOption("page_size", settings.page_size);
	return settings;
}

} // namespace billrecon::connectors

#include "core_only.hpp"
