#include "model/decimal.hpp"

#include "model/error.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

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

// ---- Exact arithmetic ----------------------------------------------------------

namespace {

constexpr const char *kDivisionByZero = "22012"; // division_by_zero
constexpr unsigned long long kMaxDivisor = 1000000000000000000ULL; // r * 10 + 9 stays in 64 bits

// A canonical Decimal as sign, all its digits (no point) and how many of them
// are fraction digits: "-12.05" -> {true, "1205", 2}.
struct Unscaled {
	bool negative = false;
	std::string digits;
	std::size_t scale = 0;
};

Unscaled Unscale(const std::string &canonical) {
	Unscaled u;
	std::string_view s = canonical;
	if (!s.empty() && s[0] == '-') {
		u.negative = true;
		s.remove_prefix(1);
	}
	std::size_t point = s.find('.');
	if (point == std::string_view::npos) {
		u.digits = std::string(s);
	} else {
		u.digits = std::string(s.substr(0, point)) + std::string(s.substr(point + 1));
		u.scale = s.size() - point - 1;
	}
	return u;
}

// Back to text Decimal::Parse canonicalizes: digits with `scale` of them after the point.
std::string Rescale(bool negative, std::string digits, std::size_t scale) {
	if (digits.size() <= scale)
		digits.insert(0, scale - digits.size() + 1, '0');
	if (scale > 0)
		digits.insert(digits.size() - scale, 1, '.');
	if (negative)
		digits.insert(0, 1, '-');
	return digits;
}

void CheckDigits(std::size_t n, const char *what) {
	if (n > Decimal::kMaxDigits)
		throw Error(sqlstate::kProgramLimit, "decimal value too long",
		            std::string("The ") + what + " would have " + std::to_string(n) + " digits; the limit is " +
		                std::to_string(Decimal::kMaxDigits) + ".",
		            "Money and quantities of this size are not plausible; check the input values.");
}

void CheckScale(int scale) {
	if (scale < 0 || scale > Decimal::kMaxScale)
		throw Error(sqlstate::kInvalidParameter, "invalid decimal scale",
		            "The scale " + std::to_string(scale) + " is outside 0 to " + std::to_string(Decimal::kMaxScale) +
		                ".",
		            "Round to a number of fraction digits between 0 and " + std::to_string(Decimal::kMaxScale) +
		                ".");
}

// "0099" -> "100": adds one to a string of decimal digits (in place).
void Increment(std::string &digits) {
	for (std::size_t i = digits.size(); i-- > 0;) {
		if (digits[i] != '9') {
			++digits[i];
			return;
		}
		digits[i] = '0';
	}
	digits.insert(0, 1, '1');
}

} // namespace

Decimal Decimal::FromInteger(long long value) {
	return Parse(std::to_string(value));
}

Decimal operator*(const Decimal &a, const Decimal &b) {
	if (a.IsZero() || b.IsZero())
		return Decimal();
	Unscaled x = Unscale(a.text_), y = Unscale(b.text_);
	CheckDigits(x.digits.size() + y.digits.size(), "product");
	// Schoolbook multiplication, base 10, least significant digit first. A
	// column collects at most 81 * min(len) < 2^64: carries wait until the end.
	std::vector<unsigned long long> column(x.digits.size() + y.digits.size(), 0);
	for (std::size_t i = 0; i < x.digits.size(); ++i) {
		unsigned long long xi = static_cast<unsigned long long>(x.digits[x.digits.size() - 1 - i] - '0');
		if (xi == 0)
			continue;
		for (std::size_t j = 0; j < y.digits.size(); ++j)
			column[i + j] += xi * static_cast<unsigned long long>(y.digits[y.digits.size() - 1 - j] - '0');
	}
	std::string digits(column.size(), '0');
	unsigned long long carry = 0;
	for (std::size_t k = 0; k < column.size(); ++k) {
		unsigned long long v = column[k] + carry;
		digits[column.size() - 1 - k] = static_cast<char>('0' + v % 10);
		carry = v / 10;
	}
	// carry is 0: a product of an n- and an m-digit number has at most n + m digits.
	return Decimal::Parse(Rescale(x.negative != y.negative, std::move(digits), x.scale + y.scale));
}

Decimal Decimal::DivideRounded(unsigned long long divisor, int scale) const {
	CheckScale(scale);
	if (divisor == 0)
		throw Error(kDivisionByZero, "division by zero", "The value " + text_ + " was to be divided by zero.",
		            "This is a bug in billrecon; please report it with the statement that caused it.");
	if (divisor > kMaxDivisor)
		throw Error(sqlstate::kInvalidParameter, "divisor too large",
		            "The divisor " + std::to_string(divisor) + " is above 10^18.",
		            "This is a bug in billrecon; please report it with the statement that caused it.");
	if (IsZero())
		return Decimal();
	Unscaled u = Unscale(text_);
	// Quotient digits down to p fraction digits, p > scale: the first digit
	// past `scale` decides the rounding alone, because whatever follows it
	// (more digits, the remainder) adds less than one unit of that digit.
	// A tail of d... is >= one half exactly when d >= 5.
	const std::size_t s = static_cast<std::size_t>(scale);
	const std::size_t p = std::max(u.scale, s + 1);
	std::string dividend = u.digits;
	dividend.append(p - u.scale, '0');
	CheckDigits(dividend.size(), "quotient");
	std::string quotient(dividend.size(), '0');
	unsigned long long remainder = 0;
	for (std::size_t i = 0; i < dividend.size(); ++i) {
		remainder = remainder * 10 + static_cast<unsigned long long>(dividend[i] - '0');
		quotient[i] = static_cast<char>('0' + remainder / divisor);
		remainder %= divisor;
	}
	const std::size_t keep = quotient.size() - (p - s); // digits up to `scale` fraction digits
	const bool round_up = quotient[keep] >= '5';
	quotient.resize(keep);
	if (round_up)
		Increment(quotient);
	return Parse(Rescale(u.negative, std::move(quotient), s));
}

std::string Decimal::ToFixed(int scale) const {
	std::string text = Rounded(scale).text_;
	const std::size_t s = static_cast<std::size_t>(scale);
	std::size_t point = text.find('.');
	std::size_t have = point == std::string::npos ? 0 : text.size() - point - 1;
	if (s > 0 && point == std::string::npos)
		text.push_back('.');
	text.append(s - have, '0');
	return text;
}

} // namespace billrecon::model
