#include "http/redact.hpp"

#include "http/auth.hpp"

#include <algorithm>

namespace billrecon::http {

Redactor::Redactor(const std::vector<std::string> &secrets) {
	for (const std::string &s : secrets)
		Add(s);
}

void Redactor::Add(std::string_view secret) {
	if (secret.empty())
		return;
	AddOne(std::string(secret));
	std::string url_encoded = UrlEncode(secret); // as echoed in form bodies and query strings
	std::string plus_for_space;                  // the same with '+' for ' '
	for (size_t i = 0; i < url_encoded.size(); ++i) {
		if (url_encoded.compare(i, 3, "%20") == 0) {
			plus_for_space += '+';
			i += 2;
		} else {
			plus_for_space += url_encoded[i];
		}
	}
	AddOne(std::move(url_encoded));
	AddOne(std::move(plus_for_space));
	std::string json;          // as echoed inside JSON strings
	for (const char c : secret) {
		if (c == '"' || c == '\\')
			json += '\\';
		if (c == '/') {
			json += "\\/";
			continue;
		}
		json += c;
	}
	AddOne(std::move(json));
	std::string json_plain_slash; // JSON escapes without the optional "\/"
	for (const char c : secret) {
		if (c == '"' || c == '\\')
			json_plain_slash += '\\';
		json_plain_slash += c;
	}
	AddOne(std::move(json_plain_slash));
}

void Redactor::AddOne(std::string value) {
	if (value.empty() || std::find(secrets_.begin(), secrets_.end(), value) != secrets_.end())
		return;
	first_bytes_[static_cast<unsigned char>(value.front())] = true;
	const auto pos = std::find_if(secrets_.begin(), secrets_.end(),
	                              [&](const std::string &s) { return s.size() < value.size(); });
	secrets_.insert(pos, std::move(value));
}

std::string Redactor::Apply(std::string_view text, size_t max_out) const {
	std::string out;
	out.reserve(std::min(text.size(), max_out == std::string::npos ? text.size() : max_out + kRedacted.size()));
	size_t i = 0;
	while (i < text.size() && out.size() < max_out) {
		if (first_bytes_[static_cast<unsigned char>(text[i])]) {
			bool matched = false;
			for (const std::string &s : secrets_) {
				if (text.compare(i, s.size(), s) == 0) {
					out += kRedacted;
					i += s.size();
					matched = true;
					break;
				}
			}
			if (matched)
				continue;
		}
		out += text[i++];
	}
	return out;
}

} // namespace billrecon::http
