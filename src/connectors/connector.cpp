#include "connectors/connector.hpp"

#include "connectors/connector_util.hpp"
#include "model/error.hpp"

#include <cctype>
#include <cstdio>

namespace billrecon::connectors {

const char *SyncModeName(SyncMode m) noexcept {
	return m == SyncMode::kQuick ? "quick" : "full";
}

namespace {

std::string Lower(std::string_view s) {
	std::string out(s);
	for (char &c : out)
		c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return out;
}

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
	if (ref.front() == '?')
		return origin + UrlPath(response_url) + std::string(ref);
	return "";
}

std::string UrlPath(std::string_view url) {
	std::string why;
	std::optional<UrlParts> p = ParseUrl(url, why);
	if (!p)
		return "";
	return p->path.empty() ? "/" : p->path;
}

void ThrowPaginationLoop(std::string_view endpoint, std::string_view detail) {
	throw Error(sqlstate::kDataException, "pagination loop in vendor response",
	            std::string(endpoint) + ": " + std::string(detail),
	            "The vendor's API keeps returning pages already read; retry later, and report it to the vendor if "
	            "it persists.");
}

void ThrowTooManyPages(std::string_view endpoint) {
	throw Error(sqlstate::kProgramLimit, "too many pages in vendor response",
	            std::string(endpoint) + ": more than " + std::to_string(kMaxPagesPerEndpoint) + " pages",
	            "Raise the page_size option, or report the endpoint to the billrecon maintainers.");
}

} // namespace billrecon::connectors
