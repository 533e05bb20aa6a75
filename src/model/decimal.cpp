#include "model/decimal.hpp"

#include "model/error.hpp"

#include <cctype>
#include <cstdlib>

namespace billrecon::model {

namespace {

constexpr long kMaxExponent = 1000; // numeric's own range is far smaller than any sane vendor value

struct Parts {
	bool negative = false;
	std::string digits; // integer and fraction digits, no point
	long point = 0;     // position of the decimal point within digits
};

bool Split(std::string_view s, Parts &out) noexcept {
	size_t i = 0;
	if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
		out.negative = s[i] == '-';
		++i;
	}
	size_t int_digits = 0, frac_digits = 0;
	while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
		out.digits.push_back(s[i++]);
		++int_digits;
	}
	if (i < s.size() && s[i] == '.') {
		++i;
		while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
			out.digits.push_back(s[i++]);
			++frac_digits;
		}
	}
	if (int_digits + frac_digits == 0)
		return false;
	long exponent = 0;
	if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
		++i;
		bool exp_negative = false;
		if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
			exp_negative = s[i] == '-';
			++i;
		}
		size_t start = i;
		while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
			if (exponent > kMaxExponent)
				return false;
			exponent = exponent * 10 + (s[i++] - '0');
		}
		if (i == start || exponent > kMaxExponent)
			return false;
		if (exp_negative)
			exponent = -exponent;
	}
	if (i != s.size())
		return false;
	out.point = static_cast<long>(int_digits) + exponent;
	return true;
}

} // namespace

bool Decimal::IsValid(std::string_view text) noexcept {
	Parts p;
	return Split(text, p);
}

Decimal Decimal::Parse(std::string_view text) {
	Parts p;
	if (!Split(text, p))
		throw Error(sqlstate::kInvalidText, "invalid decimal number",
		            "The value \"" + std::string(text.substr(0, 64)) + "\" is not a decimal number.",
		            "Quantities and prices must be plain decimal numbers such as 42 or 19.99.");
	std::string digits = p.digits;
	long point = p.point;
	// Pad so that 0 <= point <= digits.size().
	if (point < 0) {
		digits.insert(0, static_cast<size_t>(-point), '0');
		point = 0;
	}
	if (static_cast<size_t>(point) > digits.size())
		digits.append(static_cast<size_t>(point) - digits.size(), '0');
	std::string int_part = digits.substr(0, static_cast<size_t>(point));
	std::string frac_part = digits.substr(static_cast<size_t>(point));
	size_t nz = int_part.find_first_not_of('0');
	int_part = nz == std::string::npos ? "0" : int_part.substr(nz);
	size_t last = frac_part.find_last_not_of('0');
	frac_part = last == std::string::npos ? "" : frac_part.substr(0, last + 1);
	std::string out;
	bool zero = int_part == "0" && frac_part.empty();
	if (p.negative && !zero)
		out.push_back('-');
	out += int_part;
	if (!frac_part.empty()) {
		out.push_back('.');
		out += frac_part;
	}
	return Decimal(std::move(out));
}

} // namespace billrecon::model
