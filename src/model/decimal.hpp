// Exact decimal numbers for money and quantities. Vendor JSON is parsed with
// numbers as strings (src/json) and lands here; nothing passes through double.
#pragma once

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

private:
	explicit Decimal(std::string canonical) : text_(std::move(canonical)) {
	}
	std::string text_;
};

} // namespace billrecon::model

#include "core_only.hpp"
