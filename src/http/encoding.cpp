// Base64Encode and UrlEncode (declared in http/auth.hpp).
#include "http/auth.hpp"

namespace billrecon::http {

std::string Base64Encode(std::string_view in) {
	static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	std::string out;
	out.reserve((in.size() + 2) / 3 * 4);
	size_t i = 0;
	for (; i + 3 <= in.size(); i += 3) {
		const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
		                   static_cast<unsigned char>(in[i + 2]);
		out += kAlphabet[(v >> 18) & 63];
		out += kAlphabet[(v >> 12) & 63];
		out += kAlphabet[(v >> 6) & 63];
		out += kAlphabet[v & 63];
	}
	const size_t rest = in.size() - i;
	if (rest == 1) {
		const unsigned v = static_cast<unsigned char>(in[i]) << 16;
		out += kAlphabet[(v >> 18) & 63];
		out += kAlphabet[(v >> 12) & 63];
		out += "==";
	} else if (rest == 2) {
		const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
		out += kAlphabet[(v >> 18) & 63];
		out += kAlphabet[(v >> 12) & 63];
		out += kAlphabet[(v >> 6) & 63];
		out += '=';
	}
	return out;
}

// RFC 3986 unreserved characters stay; everything else (space included) is
// %XX with upper-case hex, which both query strings and form bodies accept.
std::string UrlEncode(std::string_view in) {
	static constexpr char kHex[] = "0123456789ABCDEF";
	std::string out;
	out.reserve(in.size());
	for (const char ch : in) {
		const auto c = static_cast<unsigned char>(ch);
		const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		                        c == '-' || c == '.' || c == '_' || c == '~';
		if (unreserved) {
			out += ch;
		} else {
			out += '%';
			out += kHex[c >> 4];
			out += kHex[c & 15];
		}
	}
	return out;
}

} // namespace billrecon::http
