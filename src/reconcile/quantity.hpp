// An exact running sum of usage quantities for the counting pass of
// reconcile (src/reconcile/usage_counter.hpp). PostgreSQL hands each
// quantity over as numeric text; it is held as a 128-bit integer of
// 10^-kScale units, so a million additions cost a million integer adds and
// nothing passes through a double. A quantity with more fraction digits
// than kScale, or a sum beyond ±10^26, is refused (billrecon::Error 22003),
// never rounded.
#pragma once

#include <string>
#include <string_view>

namespace billrecon::reconcile {

class Quantity {
public:
	static constexpr int kScale = 12;

	Quantity() = default;

	// Parses numeric text as numeric_out writes it ("3", "-1.50", "0.000001").
	// Throws billrecon::Error: 22P02 for anything else (NaN and infinities
	// included), 22003 beyond kScale fraction digits or 26 integer digits.
	static Quantity Parse(std::string_view text);
	static Quantity FromInteger(long long value);

	Quantity &operator+=(const Quantity &other);
	friend Quantity operator+(Quantity a, const Quantity &b) {
		a += b;
		return a;
	}
	friend bool operator==(const Quantity &a, const Quantity &b) noexcept {
		return a.units_ == b.units_;
	}
	friend bool operator!=(const Quantity &a, const Quantity &b) noexcept {
		return !(a == b);
	}
	bool IsZero() const noexcept {
		return units_ == 0;
	}
	bool IsPositive() const noexcept {
		return units_ > 0;
	}

	// Canonical numeric text: no exponent, no trailing fraction zeros ("2.5", "-3", "0").
	std::string ToString() const;

private:
	__int128 units_ = 0;
};

} // namespace billrecon::reconcile
