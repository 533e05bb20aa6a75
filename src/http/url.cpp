#include "http/url.hpp"

#include <cctype>

namespace billrecon::http {

namespace {

std::string Lower(std::string_view s) {
	std::string out(s);
	for (char &c : out)
		c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return out;
}

int HexValue(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

} // namespace

std::optional<UrlParts> ParseUrl(std::string_view url) {
	const size_t sep = url.find("://");
	if (sep == std::string_view::npos)
		return std::nullopt;
	UrlParts parts;
	parts.scheme = Lower(url.substr(0, sep));
	if (parts.scheme != "http" && parts.scheme != "https")
		return std::nullopt;
	for (const char c : url) {
		if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
			return std::nullopt; // spaces and control characters are never valid in a URL
	}
	std::string_view rest = url.substr(sep + 3);
	const size_t auth_end = rest.find_first_of("/?#");
	std::string_view authority = rest.substr(0, auth_end);
	rest = auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
	const size_t at = authority.rfind('@');
	if (at != std::string_view::npos) {
		parts.userinfo = std::string(authority.substr(0, at));
		authority.remove_prefix(at + 1);
	}
	if (authority.empty() || authority.front() == ':')
		return std::nullopt;
	parts.host = std::string(authority);
	const size_t hash = rest.find('#');
	if (hash != std::string_view::npos)
		rest = rest.substr(0, hash);
	const size_t q = rest.find('?');
	if (q != std::string_view::npos) {
		parts.query = std::string(rest.substr(q + 1));
		rest = rest.substr(0, q);
	}
	parts.path = rest.empty() ? "/" : std::string(rest);
	return parts;
}

std::string DisplayUrl(const UrlParts &url) {
	return url.scheme + "://" + url.host + url.path;
}

std::string DisplayUrl(std::string_view url) {
	if (const std::optional<UrlParts> parts = ParseUrl(url))
		return DisplayUrl(*parts);
	std::string_view cut = url.substr(0, url.find_first_of("?#"));
	const size_t sep = cut.find("://");
	const size_t at = cut.find('@', sep == std::string_view::npos ? 0 : sep);
	if (at != std::string_view::npos) {
		const size_t start = sep == std::string_view::npos ? 0 : sep + 3;
		return std::string(cut.substr(0, start)) + std::string(cut.substr(at + 1));
	}
	return std::string(cut);
}

std::string PercentDecode(std::string_view in) {
	std::string out;
	out.reserve(in.size());
	for (size_t i = 0; i < in.size(); ++i) {
		if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
			out += static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
			i += 2;
		} else if (in[i] == '+') {
			out += ' ';
		} else {
			out += in[i];
		}
	}
	return out;
}

std::vector<std::string> SecretQueryValues(std::string_view query) {
	static constexpr const char *kSecretWords[] = {"secret", "password", "passwd", "token", "key", "signature"};
	std::vector<std::string> values;
	while (!query.empty()) {
		const size_t amp = query.find('&');
		const std::string_view pair = query.substr(0, amp);
		query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
		const size_t eq = pair.find('=');
		if (eq == std::string_view::npos || eq + 1 == pair.size())
			continue;
		const std::string key = Lower(PercentDecode(pair.substr(0, eq)));
		bool secret = false;
		for (const char *word : kSecretWords)
			secret = secret || key.find(word) != std::string::npos;
		if (!secret)
			continue;
		const std::string_view raw = pair.substr(eq + 1);
		values.emplace_back(raw);
		std::string decoded = PercentDecode(raw);
		if (decoded != raw)
			values.push_back(std::move(decoded));
	}
	return values;
}

} // namespace billrecon::http
