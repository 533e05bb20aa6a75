// Splitting request URLs into what the client checks (scheme), shows in
// messages (scheme://host/path, never the query or user info) and redacts
// (query values of secret-looking keys).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::http {

struct UrlParts {
	std::string scheme;   // lower-case: "http" or "https"
	std::string host;     // host[:port], without user info
	std::string path;     // starts with '/'; "/" when the URL has none
	std::string query;    // without '?', fragment dropped
	std::string userinfo; // "user:password" before '@', if any (a secret)
};

// Absolute http(s) URLs only; nullopt for anything else.
std::optional<UrlParts> ParseUrl(std::string_view url);

// scheme://host/path, safe for messages.
std::string DisplayUrl(const UrlParts &url);
// The same for any text: a URL that does not parse is cut at '?', '#' and
// anything that looks like user info is dropped.
std::string DisplayUrl(std::string_view url);

// Values (raw and percent-decoded) of query parameters whose key contains
// "secret", "password", "passwd", "token", "key" or "signature".
std::vector<std::string> SecretQueryValues(std::string_view query);

// %XX and '+' decoding of one query component.
std::string PercentDecode(std::string_view in);

} // namespace billrecon::http

#include "core_only.hpp"
