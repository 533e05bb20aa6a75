#include "connectors/registry.hpp"

#include "connectors/autotask.hpp"
#include "connectors/connectwise.hpp"
#include "connectors/csv_usage.hpp"
#include "connectors/connector_util.hpp"
#include "connectors/dattormm.hpp"
#include "connectors/halopsa.hpp"
#include "connectors/msgraph.hpp"
#include "connectors/ninjaone.hpp"
#include "connectors/partnercenter.hpp"
#include "connectors/pax8.hpp"
#include "json/reader.hpp"
#include "model/decimal.hpp"
#include "model/error.hpp"

#include <algorithm>
#include <cstdlib>

namespace billrecon::connectors {

const std::vector<KindInfo> &Kinds() {
	// Function-local static: built on first use, no global constructor.
	static const std::vector<KindInfo> kinds = {
	    {"connectwise", Side::kPsa, {"company_id", "public_key", "private_key", "client_id"}, {},
	     "https://api-na.myconnectwise.net/v4_6_release/apis/3.0", true, CreateConnectWise,
	     {{"page_size", OptionType::kInteger, 1, 1000, nullptr}}},
	    {"halopsa", Side::kPsa, {"client_id", "client_secret"}, {"tenant"}, "https://yourtenant.halopsa.com", false,
	     CreateHaloPsa,
	     {{"page_size", OptionType::kInteger, 1, 100, nullptr},
	      {"token_url", OptionType::kUrl, 0, 0, "https://yourtenant.halopsa.com/auth/token"}}},
	    {"autotask", Side::kPsa, {"integration_code", "username", "secret"}, {},
	     "https://webservices5.autotask.net/ATServicesRest", true, CreateAutotask,
	     {{"page_size", OptionType::kInteger, 1, 500, nullptr},
	      {"requests_per_hour", OptionType::kInteger, 1, 10000, nullptr},
	      {"zone_lookup", OptionType::kInteger, 0, 1, nullptr}},
	     AutotaskConnector::kDefaultRequestsPerSecond},
	    {"msgraph", Side::kVendor, {"tenant_id", "client_id", "client_secret"}, {}, "https://graph.microsoft.com", false,
	     CreateMsGraph,
	     {{"customer_tenants", OptionType::kGuidArray, 1, 1000, nullptr, false},
	      {"token_url", OptionType::kUrl, 0, 0, "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"}}},
	    {"partnercenter", Side::kVendor, {"tenant_id", "client_id", "client_secret"}, {},
	     "https://api.partnercenter.microsoft.com", false, CreatePartnerCenter,
	     {{"page_size", OptionType::kInteger, 1, 1000, nullptr},
	      {"token_url", OptionType::kUrl, 0, 0, "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"}}},
	    {"pax8", Side::kVendor, {"client_id", "client_secret"}, {}, "https://api.pax8.com", false, CreatePax8,
	     {{"page_size", OptionType::kInteger, 1, 200, nullptr},
	      {"token_url", OptionType::kUrl, 0, 0, "https://api.pax8.com/v1/token"},
	      {"audience", OptionType::kString, 1, 200, nullptr}}},
	    {"ninjaone", Side::kVendor, {"client_id", "client_secret"}, {}, "https://app.ninjarmm.com", false,
	     CreateNinjaOne,
	     {{"page_size", OptionType::kInteger, 1, 1000, nullptr},
	      {"token_url", OptionType::kUrl, 0, 0, "https://app.ninjarmm.com/ws/oauth/token"}}},
	    {"dattormm", Side::kVendor, {"api_key", "api_secret"}, {}, "https://merlot-api.centrastage.net", false,
	     CreateDattoRmm,
	     {{"page_size", OptionType::kInteger, 1, 250, nullptr},
	      {"token_url", OptionType::kUrl, 0, 0, "https://merlot-api.centrastage.net/auth/oauth/token"}},
	     DattoRmmConnector::kDefaultRequestsPerSecond},
	    {"csv", Side::kVendor, {}, {}, "", false, CreateCsv, {}},
	};
	return kinds;
}

const KindInfo *FindKind(std::string_view kind) {
	for (const KindInfo &k : Kinds())
		if (kind == k.kind)
			return &k;
	return nullptr;
}

const std::vector<const char *> &ProductKinds() {
	static const std::vector<const char *> kinds = {"connectwise", "halopsa",  "autotask", "msgraph", "partnercenter",
	                                                "pax8",        "ninjaone", "dattormm", "csv"};
	return kinds;
}

namespace {

// ---- option specs ---------------------------------------------------------------

// Options every HTTP-based kind accepts (they configure http::ClientOptions).
const OptionSpec kCommonOptions[] = {
    {"timeout_ms", OptionType::kInteger, 1, 3600000, nullptr},
    {"connect_timeout_ms", OptionType::kInteger, 1, 600000, nullptr},
    {"max_retries", OptionType::kInteger, 0, 20, nullptr},
    {"retry_base_delay_ms", OptionType::kInteger, 0, 600000, nullptr},
    {"retry_max_delay_ms", OptionType::kInteger, 0, 3600000, nullptr},
    {"requests_per_second", OptionType::kNumber, 0, 10000, nullptr},
    {"max_in_flight", OptionType::kInteger, 1, 32, nullptr},
    {"max_response_mb", OptionType::kInteger, 1, 1024, nullptr},
};

// The kind's own options, then the common ones.
std::vector<OptionSpec> AllOptions(const KindInfo &info) {
	std::vector<OptionSpec> all = info.options;
	all.insert(all.end(), std::begin(kCommonOptions), std::end(kCommonOptions));
	return all;
}

// A user-supplied name (key or kind) for a message: quoted, shortened.
std::string Quoted(std::string_view s) {
	std::string out;
	json::AppendQuoted(out, s.substr(0, 64));
	return out;
}

std::string KindList(const std::vector<const char *> &kinds) {
	std::vector<std::string> names(kinds.begin(), kinds.end());
	return Join(names, ", ");
}

std::string ImplementedKinds() {
	std::vector<std::string> names;
	for (const KindInfo &k : Kinds())
		names.push_back(k.kind);
	return Join(names, ", ");
}

std::string RequiredList(const KindInfo &info) {
	std::vector<std::string> names(info.required_credentials.begin(), info.required_credentials.end());
	if (names.size() <= 1)
		return Join(names, "");
	std::string last = names.back();
	names.pop_back();
	return Join(names, ", ") + " and " + last;
}

// An integer option's value, if `v` is an integral JSON number within range.
std::optional<long long> IntegerIn(const json::Value &v, long long min, long long max) {
	std::optional<long long> n = JsonInteger(v);
	if (!n || *n < min || *n > max)
		return std::nullopt;
	return n;
}

std::optional<double> NumberIn(const json::Value &v, long long min, long long max) {
	if (!v.IsNumber() || !model::Decimal::IsValid(v.text()))
		return std::nullopt;
	std::string canon = model::Decimal::Parse(v.text()).str();
	if (canon.size() > 30)
		return std::nullopt;
	double d = std::strtod(canon.c_str(), nullptr); // a rate, not money
	if (d < static_cast<double>(min) || d > static_cast<double>(max))
		return std::nullopt;
	return d;
}

// A non-empty array of min..max distinct GUID strings (8-4-4-4-12 hex digits,
// compared case-insensitively).
bool GuidArrayIn(const json::Value &v, long long min, long long max) {
	if (!v.IsArray() || static_cast<long long>(v.size()) < min || static_cast<long long>(v.size()) > max)
		return false;
	std::vector<std::string> seen;
	for (size_t i = 0; i < v.size(); ++i) {
		const json::Value &item = v.at(i);
		if (!item.IsString() || !IsGuid(item.text()))
			return false;
		std::string guid = Lower(item.text());
		if (std::find(seen.begin(), seen.end(), guid) != seen.end())
			return false;
		seen.push_back(std::move(guid));
	}
	return true;
}

// Checks an absolute http(s) URL for base_url or token_url. `what` names it
// in messages ("base_url", "option \"token_url\"").
void CheckUrl(const KindInfo &info, std::string_view what, std::string_view url, bool check_scheme, bool allow_http,
              const std::string &example) {
	std::string why;
	std::optional<UrlParts> parts = ParseUrl(url, why);
	if (parts) {
		if (parts->has_userinfo)
			why = "user name or password in the URL (put secrets in credentials)";
		else if (!parts->query.empty() || url.find('?') != std::string_view::npos)
			why = "has a query string";
		else if (parts->has_fragment)
			why = "has a fragment (#...)";
	}
	const std::string name(what);
	if (!parts || !why.empty())
		throw Error(sqlstate::kInvalidParameter, "invalid " + name + " for " + info.kind + " integration",
		            name + " " + Quoted(UrlForMessage(url)) + " is not a plain absolute http(s) URL: " + why + ".",
		            "Use an absolute URL such as " + example + ".");
	if (check_scheme && parts->scheme != "https" && !allow_http)
		throw Error(sqlstate::kInvalidParameter, name + " must use https",
		            name + " " + Quoted(UrlForMessage(url)) + " uses plain http.",
		            "Use https; plain http is accepted only when billrecon.allow_http is on (for loopback test "
		            "servers).");
}

void CheckCredentials(const KindInfo &info, const json::Value &credentials) {
	auto known = [&](const std::string &key) {
		for (const char *k : info.required_credentials)
			if (key == k)
				return true;
		for (const char *k : info.optional_credentials)
			if (key == k)
				return true;
		return false;
	};
	std::vector<std::string> accepted(info.required_credentials.begin(), info.required_credentials.end());
	accepted.insert(accepted.end(), info.optional_credentials.begin(), info.optional_credentials.end());
	const std::string kind = info.kind;
	for (size_t i = 0; i < credentials.size(); ++i) {
		const std::string &key = credentials.key(i);
		if (!known(key))
			throw Error(sqlstate::kInvalidParameter, "unknown credential " + Quoted(key) + " for " + kind + " integration",
			            kind + " integrations take the credentials " + Join(accepted, ", ") + ".",
			            "Remove " + Quoted(key) + " from the credentials, or check its spelling.");
		const json::Value &v = credentials.at(i);
		// null counts as absent (checked below for required keys); optional
		// credentials may be empty strings; never quote a value.
		if (!v.IsString() && !v.IsNull())
			throw Error(sqlstate::kInvalidParameter, "invalid credential " + Quoted(key) + " for " + kind + " integration",
			            "Credential " + Quoted(key) + " must be a string, found " + json::TypeName(v.type()) + ".",
			            "Set every credential as a JSON string.");
	}
	for (const char *key : info.required_credentials) {
		const json::Value *v = credentials.Find(key);
		if (v == nullptr || v->IsNull())
			throw Error(sqlstate::kInvalidParameter,
			            "missing credential \"" + std::string(key) + "\" for " + kind + " integration",
			            kind + " integrations need the credentials " + RequiredList(info) + ", each a non-empty string.",
			            "Add \"" + std::string(key) + "\" to the integration's credentials.");
		if (v->text().empty())
			throw Error(sqlstate::kInvalidParameter,
			            "invalid credential \"" + std::string(key) + "\" for " + kind + " integration",
			            "Credential \"" + std::string(key) + "\" is an empty string.",
			            "Set \"" + std::string(key) + "\" to the value the vendor issued.");
	}
}

void CheckOptions(const KindInfo &info, const json::Value &options, std::optional<bool> allow_http) {
	const std::string kind = info.kind;
	std::vector<OptionSpec> specs = AllOptions(info);
	for (size_t i = 0; i < options.size(); ++i) {
		const std::string &key = options.key(i);
		const OptionSpec *spec = nullptr;
		for (const OptionSpec &s : specs)
			if (key == s.key)
				spec = &s;
		if (spec == nullptr) {
			std::vector<std::string> names;
			for (const OptionSpec &s : specs)
				names.push_back(s.key);
			throw Error(sqlstate::kInvalidParameter, "unknown option " + Quoted(key) + " for " + kind + " integration",
			            "The options object has the key " + Quoted(key) + ", which " + kind +
			                " integrations do not use.",
			            "Known options for " + kind + ": " + Join(names, ", ") + ".");
		}
		const json::Value &v = options.at(i);
		std::string expected;
		bool ok = true;
		switch (spec->type) {
		case OptionType::kInteger:
			ok = IntegerIn(v, spec->min, spec->max).has_value();
			expected = "an integer from " + std::to_string(spec->min) + " to " + std::to_string(spec->max);
			break;
		case OptionType::kNumber:
			ok = NumberIn(v, spec->min, spec->max).has_value();
			expected = "a number from " + std::to_string(spec->min) + " to " + std::to_string(spec->max);
			break;
		case OptionType::kUrl:
			ok = v.IsString();
			expected = "a URL string";
			if (ok)
				CheckUrl(info, "option \"" + key + "\"", v.text(), allow_http.has_value(), allow_http.value_or(true),
				         spec->example ? spec->example : info.example_base_url);
			break;
		case OptionType::kString:
			ok = v.IsString() && static_cast<long long>(v.text().size()) >= spec->min &&
			     static_cast<long long>(v.text().size()) <= spec->max;
			expected = "a string of " + std::to_string(spec->min) + " to " + std::to_string(spec->max) + " characters";
			break;
		case OptionType::kGuidArray:
			ok = GuidArrayIn(v, spec->min, spec->max);
			expected = "an array of " + std::to_string(spec->min) + " to " + std::to_string(spec->max) +
			           " distinct GUID strings";
			break;
		}
		if (!ok)
			throw Error(sqlstate::kInvalidParameter, "invalid option " + Quoted(key) + " for " + kind + " integration",
			            key + " must be " + expected + ", found " + json::DescribeFound(v, true) + ".",
			            "Fix the value, or remove the option to use the default.");
	}
	for (const OptionSpec &s : specs)
		if (s.required && options.Find(s.key) == nullptr)
			throw Error(sqlstate::kInvalidParameter,
			            "missing option \"" + std::string(s.key) + "\" for " + kind + " integration",
			            kind + " integrations need the option \"" + std::string(s.key) + "\".",
			            "Add \"" + std::string(s.key) + "\" to the integration's options.");
}

const KindInfo &RequireKind(std::string_view kind) {
	if (const KindInfo *info = FindKind(kind))
		return *info;
	for (const char *k : ProductKinds())
		if (kind == k)
			throw Error(sqlstate::kFeatureNotSupported,
			            "integration kind \"" + std::string(kind) + "\" is not supported by this build",
			            "This build implements: " + ImplementedKinds() + ".",
			            "Use one of the implemented kinds, or install a billrecon version with the " +
			                std::string(kind) + " connector.");
	std::string known = "Known kinds: " + KindList(ProductKinds());
	if (Kinds().size() != ProductKinds().size())
		known += "; this build implements " + ImplementedKinds();
	throw Error(sqlstate::kInvalidParameter, "unknown integration kind " + Quoted(kind), known + ".",
	            "Use one of the kinds listed in DETAIL (lower case).");
}

ParsedConfig ParseChecked(const KindInfo &info, const IntegrationConfig &config, std::optional<bool> allow_http) {
	ParsedConfig parsed;
	parsed.credentials = json::ParseConfigObject(config.credentials_json, "credentials");
	CheckCredentials(info, parsed.credentials);
	parsed.options = json::ParseConfigObject(config.options_json, "options");
	CheckOptions(info, parsed.options, allow_http);
	return parsed;
}

} // namespace

ParsedConfig ParseConfig(const IntegrationConfig &config) {
	return ParseChecked(RequireKind(config.kind), config, std::nullopt);
}

std::string ParsedConfig::Credential(std::string_view key) const {
	const json::Value *v = credentials.Find(key);
	return v != nullptr && v->IsString() ? v->text() : std::string();
}

long ParsedConfig::IntOption(std::string_view key, long fallback) const {
	const json::Value *v = options.Find(key);
	if (v == nullptr)
		return fallback;
	std::optional<long long> n = IntegerIn(*v, -(1LL << 53), 1LL << 53);
	return n ? static_cast<long>(*n) : fallback;
}

std::optional<std::string> ParsedConfig::StringOption(std::string_view key) const {
	const json::Value *v = options.Find(key);
	if (v == nullptr || !v->IsString())
		return std::nullopt;
	return v->text();
}

void ValidateConfig(const IntegrationConfig &config, bool allow_http) {
	const KindInfo &info = RequireKind(config.kind);
	if (info.example_base_url[0] == '\0') {
		// Kinds without an API (csv): there is nothing to connect to.
		if (!config.base_url.empty())
			throw Error(sqlstate::kInvalidParameter, "a " + std::string(info.kind) + " integration has no base_url",
			            "base_url " + Quoted(UrlForMessage(config.base_url)) + " was given.",
			            "Pass an empty string as base_url.");
	} else {
		CheckUrl(info, "base_url", config.base_url, true, allow_http, info.example_base_url);
	}
	ParseChecked(info, config, allow_http);
}

http::ClientOptions ClientOptionsFor(const IntegrationConfig &config, http::ClientOptions defaults) {
	ParsedConfig parsed = ParseConfig(config);
	http::ClientOptions o = std::move(defaults);
	const KindInfo *info = FindKind(config.kind); // known: ParseConfig checked it
	if (info != nullptr && info->default_requests_per_second > 0 &&
	    (o.requests_per_second <= 0 || o.requests_per_second > info->default_requests_per_second))
		o.requests_per_second = info->default_requests_per_second;
	o.limits.timeout_ms = parsed.IntOption("timeout_ms", o.limits.timeout_ms);
	o.limits.connect_timeout_ms = parsed.IntOption("connect_timeout_ms", o.limits.connect_timeout_ms);
	o.max_retries = static_cast<int>(parsed.IntOption("max_retries", o.max_retries));
	o.retry_base_delay_ms = parsed.IntOption("retry_base_delay_ms", o.retry_base_delay_ms);
	o.retry_max_delay_ms = parsed.IntOption("retry_max_delay_ms", o.retry_max_delay_ms);
	// An hourly budget (Autotask's requests_per_hour) is spread evenly over
	// the hour unless requests_per_second says otherwise.
	if (parsed.options.Find("requests_per_hour") != nullptr && parsed.options.Find("requests_per_second") == nullptr)
		o.requests_per_second = static_cast<double>(parsed.IntOption("requests_per_hour", 10000)) / 3600.0;
	if (const json::Value *v = parsed.options.Find("requests_per_second"))
		o.requests_per_second = NumberIn(*v, 0, 10000).value_or(o.requests_per_second);
	o.max_in_flight = static_cast<int>(parsed.IntOption("max_in_flight", o.max_in_flight));
	if (parsed.options.Find("max_response_mb") != nullptr)
		o.limits.max_response_bytes = static_cast<size_t>(parsed.IntOption("max_response_mb", 64)) << 20;
	return o;
}

} // namespace billrecon::connectors
