// Exact decimal numbers for money and quantities. Vendor JSON is parsed with
// numbers as strings (src/json) and lands here; nothing passes through double.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace billrecon::model {

class Decimal {
public:
	Decimal() : text_("0") {
	}

	// Parses a JSON/SQL decimal literal: optional sign, digits, optional
	// fraction, optional exponent (e.g. "42", "-1.50", "2.2E1"). Throws
	// billrecon::Error (22P02) on anything else, and (22003-ish, 54000) on
	// absurd exponents. The result is canonical: no exponent, no leading
	// zeros, no trailing fractional zeros, "-0" becomes "0".
	static Decimal Parse(std::string_view text);

	// True when text is a literal Parse accepts.
	static bool IsValid(std::string_view text) noexcept;

	const std::string &str() const noexcept {
		return text_;
	}
	bool IsNegative() const noexcept {
		return !text_.empty() && text_[0] == '-';
	}
	bool IsZero() const noexcept {
		return text_ == "0";
	}

	friend bool operator==(const Decimal &a, const Decimal &b) noexcept {
		return a.text_ == b.text_;
	}
	friend bool operator!=(const Decimal &a, const Decimal &b) noexcept {
		return !(a == b);
	}

	// ---- Exact arithmetic (proration and cycle normalization, src/reconcile) ----

	// Upper bounds that keep every operation below a fraction of a second:
	// operands and results of more digits than kMaxDigits throw 54000, a scale
	// outside [0, kMaxScale] throws 22023.
	static constexpr std::size_t kMaxDigits = 20000;
	static constexpr int kMaxScale = 1000;

	// The exact value of an integer ("-42").
	static Decimal FromInteger(long long value);

	// The exact product, never rounded: as many fraction digits as both
	// operands have together (then canonical).
	friend Decimal operator*(const Decimal &a, const Decimal &b);

	// This value divided by a positive integer, rounded half away from zero to
	// `scale` fraction digits: exact until the one final rounding, so
	// (a * b).DivideRounded(n, 2) is a single correctly rounded division.
	// divisor 0 throws 22012; divisor above 10^18 or a bad scale throws 22023.
	Decimal DivideRounded(unsigned long long divisor, int scale) const;

	// Rounded half away from zero to `scale` fraction digits (2.345 -> 2.35,
	// -2.345 -> -2.35, 2.5 at scale 0 -> 3). Never adds zeros: canonical.
	Decimal Rounded(int scale) const {
		return DivideRounded(1, scale);
	}

	// Fixed-point text with exactly `scale` fraction digits, rounded half away
	// from zero first: "12.5" -> "12.50", "-0.001" -> "0.00", "7" at 0 -> "7".
	std::string ToFixed(int scale) const;

private:
	explicit Decimal(std::string canonical) : text_(std::move(canonical)) {
	}
	std::string text_;
};

} // namespace billrecon::model

#include "core_only.hpp"
