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
#include "model/records.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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

// ---- e-mail domains (connector_util.cpp) ---------------------------------------------

// The domain of one e-mail address, lower-cased: " Jane.Doe@Harbor-Dental.COM "
// and "Jane <jane@harbor-dental.com>" give "harbor-dental.com". nullopt when
// the text is not a single address (no "@", empty local part, white space or
// a list inside) or the domain is not a plausible host name: labels of
// letters, digits and inner hyphens, at least two of them, an alphabetic
// top-level label (or "xn--"), at most 253 characters.
std::optional<std::string> EmailDomain(std::string_view address);

// True for mailbox providers anyone can sign up with (gmail.com, outlook.com,
// hotmail.co.uk, yahoo.*, gmx.*, web.de, icloud.com, proton.me, ISP mail such
// as comcast.net, ...): a contact's address there says nothing about which
// company the contact belongs to. Takes a lower-case domain. The matcher
// (src/match) keeps its own, longer list; this one keeps such domains out of
// the stored evidence.
bool IsFreeMailDomain(std::string_view domain);

// Appends `domain` unless `domains` already holds it.
void AddDomain(std::vector<std::string> &domains, const std::string &domain);

// The e-mail domains of a PSA's contacts, per company (external id), each in
// the order first seen; free-mail domains and unusable addresses are left out.
class ContactDomains {
public:
	// Adds the domain of `address` to the company's list. Returns true when
	// the address gave a usable domain (new or already known).
	bool Add(const std::string &company_id, std::string_view address);
	// Appends the company's contact domains to company.domains, after what is
	// there (the website's domain), without duplicates.
	void MergeInto(model::Company &company) const;
	// Companies with at least one domain.
	size_t size() const noexcept {
		return by_company_.size();
	}

private:
	std::unordered_map<std::string, std::vector<std::string>> by_company_;
};

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
