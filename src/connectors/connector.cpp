#include "connectors/connector.hpp"

#include "connectors/connector_util.hpp"
#include "http/url.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace billrecon::connectors {

const char *SyncModeName(SyncMode m) noexcept {
	return m == SyncMode::kQuick ? "quick" : "full";
}

// ---- URLs --------------------------------------------------------------------------

namespace {

bool HostChar(char c) {
	return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

} // namespace

std::optional<UrlParts> ParseUrl(std::string_view url, std::string &why) {
	for (char c : url) {
		if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
			why = "contains spaces or control characters";
			return std::nullopt;
		}
	}
	size_t sep = url.find("://");
	if (sep == std::string_view::npos) {
		why = "not an absolute URL (no scheme://)";
		return std::nullopt;
	}
	UrlParts p;
	p.scheme = Lower(url.substr(0, sep));
	if (p.scheme != "http" && p.scheme != "https") {
		why = "scheme must be http or https";
		return std::nullopt;
	}
	std::string_view rest = url.substr(sep + 3);
	size_t auth_end = rest.find_first_of("/?#");
	std::string_view authority = rest.substr(0, auth_end);
	std::string_view tail = auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
	size_t at = authority.rfind('@');
	if (at != std::string_view::npos) {
		p.has_userinfo = true;
		authority = authority.substr(at + 1);
	}
	std::string_view host = authority, port;
	if (!authority.empty() && authority[0] == '[') {
		size_t close = authority.find(']');
		if (close == std::string_view::npos) {
			why = "unterminated IPv6 address";
			return std::nullopt;
		}
		host = authority.substr(0, close + 1);
		std::string_view after = authority.substr(close + 1);
		if (!after.empty()) {
			if (after[0] != ':') {
				why = "malformed host";
				return std::nullopt;
			}
			port = after.substr(1);
		} else {
			port = std::string_view();
		}
		for (char c : host.substr(1, host.size() - 2))
			if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
				why = "malformed IPv6 address";
				return std::nullopt;
			}
	} else {
		size_t colon = authority.find(':');
		if (colon != std::string_view::npos) {
			host = authority.substr(0, colon);
			port = authority.substr(colon + 1);
			if (port.empty()) {
				why = "empty port";
				return std::nullopt;
			}
		}
		for (char c : host)
			if (!HostChar(c)) {
				why = "malformed host";
				return std::nullopt;
			}
	}
	if (host.empty() || host == "[]") {
		why = "missing host";
		return std::nullopt;
	}
	if (!port.empty() || (authority.size() > host.size())) {
		if (port.empty() || port.size() > 5) {
			why = "malformed port";
			return std::nullopt;
		}
		long n = 0;
		for (char c : port) {
			if (!std::isdigit(static_cast<unsigned char>(c))) {
				why = "malformed port";
				return std::nullopt;
			}
			n = n * 10 + (c - '0');
		}
		if (n < 1 || n > 65535) {
			why = "port out of range";
			return std::nullopt;
		}
	}
	p.host = Lower(host);
	p.port = std::string(port);
	size_t hash = tail.find('#');
	if (hash != std::string_view::npos) {
		p.has_fragment = true;
		tail = tail.substr(0, hash);
	}
	size_t q = tail.find('?');
	p.path = std::string(tail.substr(0, q));
	if (q != std::string_view::npos)
		p.query = std::string(tail.substr(q + 1));
	return p;
}

std::string UrlForMessage(std::string_view url) {
	std::string s(url.substr(0, 300));
	size_t sep = s.find("://");
	if (sep == std::string::npos)
		return s;
	size_t auth_end = s.find_first_of("/?#", sep + 3);
	size_t at = s.rfind('@', auth_end == std::string::npos ? std::string::npos : auth_end);
	if (at != std::string::npos && at > sep)
		s.replace(sep + 3, at - (sep + 3), "[redacted]");
	return s;
}

std::string UrlOrigin(std::string_view url) {
	std::string why;
	std::optional<UrlParts> p = ParseUrl(url, why);
	if (!p)
		return "";
	std::string port = p->port;
	if ((p->scheme == "https" && port == "443") || (p->scheme == "http" && port == "80"))
		port.clear();
	return p->scheme + "://" + p->host + (port.empty() ? "" : ":" + port);
}

std::string JoinUrl(std::string_view base, std::string_view path) {
	while (!base.empty() && base.back() == '/')
		base.remove_suffix(1);
	while (!path.empty() && path.front() == '/')
		path.remove_prefix(1);
	return std::string(base) + "/" + std::string(path);
}

std::string ResolveUrl(std::string_view response_url, std::string_view ref) {
	if (ref.empty())
		return "";
	if (ref.find("://") != std::string_view::npos)
		return std::string(ref);
	std::string origin = UrlOrigin(response_url);
	if (origin.empty())
		return "";
	if (ref.front() == '/') {
		if (ref.size() > 1 && ref[1] == '/') // "//host/path": scheme-relative
			return origin.substr(0, origin.find("://") + 1) + std::string(ref);
		return origin + std::string(ref);
	}
	if (ref.front() == '?') {
		const std::optional<http::UrlParts> parts = http::ParseUrl(response_url);
		return parts ? origin + parts->path + std::string(ref) : "";
	}
	return "";
}

// ---- text --------------------------------------------------------------------------

std::string Lower(std::string_view s) {
	std::string out(s);
	for (char &c : out)
		c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return out;
}

std::string_view Trim(std::string_view s) {
	while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
		s.remove_prefix(1);
	while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
		s.remove_suffix(1);
	return s;
}

std::string Join(const std::vector<std::string> &items, std::string_view sep) {
	std::string out;
	for (size_t i = 0; i < items.size(); ++i) {
		if (i > 0)
			out += sep;
		out += items[i];
	}
	return out;
}

std::string JoinFirst(const std::vector<std::string> &items, size_t max) {
	std::string out;
	for (size_t i = 0; i < items.size() && i < max; ++i)
		out += (i ? ", " : "") + items[i];
	if (items.size() > max)
		out += ", ...";
	return out;
}

std::string ReplaceAll(std::string_view text, std::string_view placeholder, std::string_view value) {
	std::string out;
	size_t i = 0;
	for (;;) {
		size_t at = text.find(placeholder, i);
		if (at == std::string_view::npos) {
			out += text.substr(i);
			return out;
		}
		out += text.substr(i, at - i);
		out += value;
		i = at + placeholder.size();
	}
}

std::optional<std::string> DomainOfWebsite(std::string_view website) {
	std::string s = Lower(Trim(website));
	size_t sep = s.find("://");
	if (sep != std::string::npos)
		s = s.substr(sep + 3);
	s = s.substr(0, s.find_first_of("/?#:"));
	if (s.compare(0, 4, "www.") == 0)
		s = s.substr(4);
	if (s.empty() || s.find('.') == std::string::npos || s.front() == '.' || s.back() == '.')
		return std::nullopt;
	for (char c : s)
		if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.')
			return std::nullopt;
	return s;
}

model::BillingCycle BillingCycleFromLabel(std::string_view label) {
	std::string n = Lower(Trim(label));
	if (n == "monthly")
		return model::BillingCycle::kMonthly;
	if (n == "quarterly")
		return model::BillingCycle::kQuarterly;
	if (n == "annual" || n == "annually" || n == "yearly")
		return model::BillingCycle::kAnnual;
	return model::BillingCycle::kOther;
}

// ---- numbers and ids ---------------------------------------------------------------

bool AllDigits(std::string_view s, size_t max_size) {
	if (s.empty() || s.size() > max_size)
		return false;
	for (char c : s)
		if (!std::isdigit(static_cast<unsigned char>(c)))
			return false;
	return true;
}

void CheckNumericId(std::string_view vendor, std::string_view what, std::string_view id, size_t max_digits) {
	if (!AllDigits(id, max_digits))
		throw Error(sqlstate::kInvalidParameter, "invalid " + std::string(vendor) + " " + std::string(what) + " id",
		            "The " + std::string(what) + " id \"" + std::string(id.substr(0, 40)) +
		                "\" is not a positive integer.",
		            "Use the id " + std::string(vendor) + " shows for the " + std::string(what) + " (a number).");
}

bool IsGuid(std::string_view s) {
	if (s.size() != 36)
		return false;
	for (size_t i = 0; i < s.size(); ++i) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
			return false;
		}
	}
	return true;
}

std::optional<long long> WholeNumber(const model::Decimal &d) {
	const std::string &s = d.str();
	if (s.find('.') != std::string::npos || s.size() > 15)
		return std::nullopt;
	return std::strtoll(s.c_str(), nullptr, 10);
}

std::optional<long long> JsonInteger(const json::Value &v) {
	if (!v.IsNumber() || !model::Decimal::IsValid(v.text()))
		return std::nullopt;
	return WholeNumber(model::Decimal::Parse(v.text()));
}

// ---- dates -------------------------------------------------------------------------

std::string ValidDate(std::string_view date, std::string_view what) {
	bool ok = date.size() == 10;
	if (ok) {
		try {
			ok = model::NormalizeDate(date) == date;
		} catch (const Error &) {
			ok = false;
		}
	}
	if (!ok)
		throw Error(sqlstate::kInvalidParameter, "invalid " + std::string(what),
		            "\"" + std::string(date.substr(0, 40)) + "\" is not a date in the form YYYY-MM-DD.",
		            "Pass a calendar date such as 2024-07-01.");
	return std::string(date);
}

std::string AddDays(const std::string &date, long days) {
	long y = std::strtol(date.substr(0, 4).c_str(), nullptr, 10);
	unsigned m = static_cast<unsigned>(std::strtoul(date.substr(5, 2).c_str(), nullptr, 10));
	unsigned d = static_cast<unsigned>(std::strtoul(date.substr(8, 2).c_str(), nullptr, 10));
	model::CivilFromDays(model::DaysFromCivil(y, m, d) + days, y, m, d);
	char buf[48]; // room for any long year: no truncation warning at -O2
	std::snprintf(buf, sizeof buf, "%04ld-%02u-%02u", y, m, d);
	return buf;
}

// ---- requests and bodies -----------------------------------------------------------

http::Request JsonRequest(http::Method method, std::string url, std::string body, std::string label,
                          std::string_view accept) {
	http::Request r;
	r.method = method;
	r.url = std::move(url);
	r.headers.push_back({"Accept", std::string(accept)});
	if (method != http::Method::kGet)
		r.headers.push_back({"Content-Type", kJsonMediaType});
	r.body = std::move(body);
	r.label = std::move(label);
	return r;
}

http::Request JsonGet(std::string url, std::string label, std::string_view accept) {
	return JsonRequest(http::Method::kGet, std::move(url), "", std::move(label), accept);
}

void AppendJson(std::string &out, const json::Value &v) {
	switch (v.type()) {
	case json::Type::kNull:
		out += "null";
		break;
	case json::Type::kBool:
		out += v.GetBool() ? "true" : "false";
		break;
	case json::Type::kNumber:
		out += v.text();
		break;
	case json::Type::kString:
		json::AppendQuoted(out, v.text());
		break;
	case json::Type::kArray:
		out += '[';
		for (size_t i = 0; i < v.size(); ++i) {
			if (i > 0)
				out += ',';
			AppendJson(out, v.at(i));
		}
		out += ']';
		break;
	case json::Type::kObject:
		out += '{';
		for (size_t i = 0; i < v.size(); ++i) {
			if (i > 0)
				out += ',';
			json::AppendQuoted(out, v.key(i));
			out += ':';
			AppendJson(out, v.at(i));
		}
		out += '}';
		break;
	}
}

// ---- syncs and auth ----------------------------------------------------------------

SyncOutcome FullSyncOutcome(const SyncRequest &request, std::string_view note) {
	SyncOutcome outcome;
	outcome.effective_mode = SyncMode::kFull;
	if (request.mode == SyncMode::kQuick)
		outcome.note = std::string(note);
	return outcome;
}

SyncOutcome QuickOrFullOutcome(const SyncRequest &request) {
	SyncOutcome outcome;
	const bool quick = request.mode == SyncMode::kQuick && request.since.has_value();
	outcome.effective_mode = quick ? SyncMode::kQuick : SyncMode::kFull;
	if (request.mode == SyncMode::kQuick && !quick)
		outcome.note = "no previous successful sync: quick sync ran as a full sync";
	return outcome;
}

http::OAuth2Config ClientCredentialsGrant(std::string token_url, std::string client_id, std::string client_secret,
                                          http::OAuth2Config::BodyStyle body_style) {
	http::OAuth2Config oauth;
	oauth.token_url = std::move(token_url);
	oauth.grant = http::OAuth2Config::Grant::kClientCredentials;
	oauth.body_style = body_style;
	oauth.client_id = std::move(client_id);
	oauth.client_secret = std::move(client_secret);
	return oauth;
}

} // namespace billrecon::connectors
