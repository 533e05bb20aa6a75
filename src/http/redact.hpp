// Secret redaction for every text the HTTP layer lets out (messages, details,
// hints): each known secret, in its raw, URL-encoded and JSON-escaped forms,
// becomes "[redacted]".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace billrecon::http {

inline constexpr std::string_view kRedacted = "[redacted]";

class Redactor {
public:
	Redactor() = default;
	explicit Redactor(const std::vector<std::string> &secrets);

	// Empty values are ignored; duplicates are harmless.
	void Add(std::string_view secret);

	// One left-to-right pass (longest secret wins, a replacement is never
	// rescanned). Stops once the output holds at least `max_out` bytes, so a
	// long body can be cut without ever exposing part of a secret.
	std::string Apply(std::string_view text, size_t max_out = std::string::npos) const;
	std::string operator()(std::string_view text) const {
		return Apply(text);
	}

private:
	void AddOne(std::string value);

	std::vector<std::string> secrets_; // longest first
	bool first_bytes_[256] = {};
};

} // namespace billrecon::http

#include "core_only.hpp"
