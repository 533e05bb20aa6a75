#include "reconcile/quantity.hpp"

#include "model/error.hpp"

#include <algorithm>

namespace billrecon::reconcile {
namespace {

constexpr const char *kOutOfRange = "22003"; // numeric_value_out_of_range
constexpr int kMaxIntegerDigits = 26;        // |units| < 10^38 fits in 127 bits

__int128 Pow10(int n) {
	__int128 p = 1;
	for (int i = 0; i < n; ++i)
		p *= 10;
	return p;
}

// The largest magnitude a sum may reach: 10^(26 + kScale).
const __int128 kLimit = Pow10(kMaxIntegerDigits + Quantity::kScale);

[[noreturn]] void Invalid(std::string_view text) {
	throw Error(sqlstate::kInvalidText, "invalid usage quantity \"" + std::string(text.substr(0, 64)) + "\"",
	            "Usage quantities are counted exactly; this one is not a finite decimal number.",
	            "Correct the usage record (billrecon.usage_records.quantity) and reconcile again.");
}

[[noreturn]] void TooLarge(const std::string &what) {
	throw Error(kOutOfRange, "usage quantity out of range for counting",
	            what + " Reconcile counts quantities exactly with at most " + std::to_string(kMaxIntegerDigits) +
	                " integer and " + std::to_string(Quantity::kScale) + " fraction digits.",
	            "Correct the usage record's quantity (billrecon.usage_records.quantity) and reconcile again.");
}

} // namespace

Quantity Quantity::Parse(std::string_view text) {
	std::size_t i = 0;
	bool negative = false;
	if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
		negative = text[i] == '-';
		++i;
	}
	__int128 units = 0;
	int integer_digits = 0, fraction_digits = 0;
	bool any = false, significant = false;
	for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
		any = true;
		if (text[i] != '0')
			significant = true;
		if (significant && ++integer_digits > kMaxIntegerDigits)
			TooLarge("The quantity " + std::string(text.substr(0, 64)) + " has too many integer digits.");
		units = units * 10 + (text[i] - '0');
	}
	if (i < text.size() && text[i] == '.') {
		++i;
		for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
			any = true;
			if (fraction_digits == kScale) {
				if (text[i] != '0') // trailing zeros beyond the scale are harmless
					TooLarge("The quantity " + std::string(text.substr(0, 64)) + " has more than " +
					         std::to_string(kScale) + " fraction digits.");
				continue;
			}
			units = units * 10 + (text[i] - '0');
			++fraction_digits;
		}
	}
	if (!any || i != text.size())
		Invalid(text);
	units *= Pow10(kScale - fraction_digits);
	Quantity q;
	q.units_ = negative ? -units : units;
	return q;
}

Quantity Quantity::FromInteger(long long value) {
	Quantity q;
	q.units_ = static_cast<__int128>(value) * Pow10(kScale);
	return q;
}

Quantity &Quantity::operator+=(const Quantity &other) {
	__int128 sum = units_ + other.units_; // both below 10^38 in magnitude: no overflow
	if (sum >= kLimit || sum <= -kLimit)
		TooLarge("A sum of usage quantities exceeds the counting range.");
	units_ = sum;
	return *this;
}

std::string Quantity::ToString() const {
	unsigned __int128 mag = units_ < 0 ? static_cast<unsigned __int128>(-units_) : static_cast<unsigned __int128>(units_);
	std::string digits;
	do {
		digits.push_back(static_cast<char>('0' + static_cast<int>(mag % 10)));
		mag /= 10;
	} while (mag != 0);
	while (digits.size() <= static_cast<std::size_t>(kScale))
		digits.push_back('0');
	std::reverse(digits.begin(), digits.end());
	std::string integer = digits.substr(0, digits.size() - kScale);
	std::string fraction = digits.substr(digits.size() - kScale);
	while (!fraction.empty() && fraction.back() == '0')
		fraction.pop_back();
	std::string out = units_ < 0 ? "-" : "";
	out += integer;
	if (!fraction.empty())
		out += "." + fraction;
	return out;
}

} // namespace billrecon::reconcile
