// model::Decimal arithmetic: exact products, one correctly rounded division
// (half away from zero), fixed-point text. Expected values are worked out
// by hand in the comments.
#include "model/decimal.hpp"
#include "model/error.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <string>

using billrecon::Error;
using billrecon::model::Decimal;

namespace {

std::string Mul(const char *a, const char *b) {
	return (Decimal::Parse(a) * Decimal::Parse(b)).str();
}

std::string Div(const char *a, unsigned long long n, int scale) {
	return Decimal::Parse(a).DivideRounded(n, scale).str();
}

std::string Fixed(const char *a, int scale) {
	return Decimal::Parse(a).ToFixed(scale);
}

std::string SqlstateOf(void (*fn)()) {
	try {
		fn();
	} catch (const Error &e) {
		return e.sqlstate();
	}
	return "no error";
}

} // namespace

TEST(DecimalOps, FromInteger) {
	EXPECT_EQ(Decimal::FromInteger(0).str(), "0");
	EXPECT_EQ(Decimal::FromInteger(-42).str(), "-42");
	EXPECT_EQ(Decimal::FromInteger(LLONG_MAX).str(), "9223372036854775807");
	EXPECT_EQ(Decimal::FromInteger(LLONG_MIN).str(), "-9223372036854775808");
}

TEST(DecimalOps, ProductIsExactAndCanonical) {
	EXPECT_EQ(Mul("1.5", "-2"), "-3");           // 15 x 2 = 30, one fraction digit: -3.0
	EXPECT_EQ(Mul("-1.5", "-2"), "3");
	EXPECT_EQ(Mul("0.1", "0.2"), "0.02");        // 1 x 2, two fraction digits
	EXPECT_EQ(Mul("45.00", "3"), "135");         // 4500 x 3 = 13500, two fraction digits: 135.00
	EXPECT_EQ(Mul("12.3456789", "7"), "86.4197523"); // 123456789 x 7 = 864197523, 7 fraction digits
	EXPECT_EQ(Mul("0", "-5.5"), "0");
	EXPECT_EQ(Mul("-0.001", "0"), "0");          // no "-0"
	EXPECT_EQ(Mul("0.001", "0.001"), "0.000001");
	EXPECT_EQ(Mul("1000", "0.001"), "1");
	// (10^20 - 1)^2 = 10^40 - 2 x 10^20 + 1: nineteen 9s, an 8, nineteen 0s, a 1.
	EXPECT_EQ(Mul("99999999999999999999", "99999999999999999999"), "9999999999999999999800000000000000000001");
	// 0.01 x 123456789012345678901: the point moves two places, no digit lost to a double.
	EXPECT_EQ(Mul("0.01", "123456789012345678901"), "1234567890123456789.01");
	// 12345.6789 x -0.0001 = -1.23456789
	EXPECT_EQ(Mul("12345.6789", "-0.0001"), "-1.23456789");
}

TEST(DecimalOps, DivideRoundsHalfAwayFromZero) {
	EXPECT_EQ(Div("1", 3, 2), "0.33");     // 0.333...
	EXPECT_EQ(Div("2", 3, 2), "0.67");     // 0.666...
	EXPECT_EQ(Div("-2", 3, 2), "-0.67");
	EXPECT_EQ(Div("200", 3, 2), "66.67");  // 66.666...
	EXPECT_EQ(Div("1", 8, 2), "0.13");     // 0.125: tie, away from zero (half-even would give 0.12)
	EXPECT_EQ(Div("-1", 8, 2), "-0.13");
	EXPECT_EQ(Div("0.005", 1, 2), "0.01"); // tie
	EXPECT_EQ(Div("-0.005", 1, 2), "-0.01");
	EXPECT_EQ(Div("0.0049999", 1, 2), "0"); // below the tie: 0.00
	EXPECT_EQ(Div("-0.0049999", 1, 2), "0"); // no "-0"
	EXPECT_EQ(Div("9.995", 1, 2), "10");   // carries through every digit: 9.99 + 0.01
	EXPECT_EQ(Div("-9.995", 1, 2), "-10");
	EXPECT_EQ(Div("2.5", 1, 0), "3");      // scale 0: 2.5 -> 3, -2.5 -> -3
	EXPECT_EQ(Div("-2.5", 1, 0), "-3");
	EXPECT_EQ(Div("1.5", 1, 4), "1.5");    // fewer digits than the scale: unchanged
	EXPECT_EQ(Div("7", 7, 2), "1");
	EXPECT_EQ(Div("0", 7, 2), "0");
	// 0.15 / 30 = 0.005: a tie only an exact division sees (0.15/30 in binary is 0.00499999...).
	EXPECT_EQ(Div("0.15", 30, 2), "0.01");
	// 10^30 / 7 = 142857 repeated five times, then .142857...: .14
	EXPECT_EQ(Div("1000000000000000000000000000000", 7, 2), "142857142857142857142857142857.14");
	// 1234567890123456789.01 / 2 = 617283945061728394.505: tie beyond double precision -> .51
	EXPECT_EQ(Div("1234567890123456789.01", 2, 2), "617283945061728394.51");
	// A remainder that only shows far past the first dropped digit: 0.00500000001 -> 0.01,
	// 0.00499999999 -> 0.00.
	EXPECT_EQ(Div("0.00500000001", 1, 2), "0.01");
	EXPECT_EQ(Div("0.00499999999", 1, 2), "0");
	// Large divisor: 1 / 10^18 at 18 digits is 10^-18 exactly.
	EXPECT_EQ(Div("1", 1000000000000000000ULL, 18), "0.000000000000000001");
}

TEST(DecimalOps, Rounded) {
	EXPECT_EQ(Decimal::Parse("2.345").Rounded(2).str(), "2.35");
	EXPECT_EQ(Decimal::Parse("-2.345").Rounded(2).str(), "-2.35");
	EXPECT_EQ(Decimal::Parse("2.344999").Rounded(2).str(), "2.34");
	EXPECT_EQ(Decimal::Parse("99.5").Rounded(0).str(), "100");
}

TEST(DecimalOps, ToFixedPadsToTheScale) {
	EXPECT_EQ(Fixed("12.5", 2), "12.50");
	EXPECT_EQ(Fixed("0", 2), "0.00");
	EXPECT_EQ(Fixed("-0.001", 2), "0.00");
	EXPECT_EQ(Fixed("-0.005", 2), "-0.01");
	EXPECT_EQ(Fixed("7", 0), "7");
	EXPECT_EQ(Fixed("7.5", 0), "8");
	EXPECT_EQ(Fixed("1.005", 2), "1.01");
	EXPECT_EQ(Fixed("-135", 2), "-135.00");
	EXPECT_EQ(Fixed("3.14159", 4), "3.1416");
}

TEST(DecimalOps, Errors) {
	EXPECT_EQ(SqlstateOf([] { (void)Decimal::Parse("1").DivideRounded(0, 2); }), "22012");
	EXPECT_EQ(SqlstateOf([] { (void)Decimal::Parse("1").DivideRounded(1000000000000000001ULL, 2); }), "22023");
	EXPECT_EQ(SqlstateOf([] { (void)Decimal::Parse("1").DivideRounded(3, -1); }), "22023");
	EXPECT_EQ(SqlstateOf([] { (void)Decimal::Parse("1").DivideRounded(3, Decimal::kMaxScale + 1); }), "22023");
	EXPECT_EQ(SqlstateOf([] { (void)Decimal::Parse("1").ToFixed(-2); }), "22023");
	EXPECT_EQ(SqlstateOf([] {
		        std::string big(Decimal::kMaxDigits, '9');
		        (void)(Decimal::Parse(big) * Decimal::Parse("99"));
	        }),
	          "54000");
	// At the limit itself: fine. 10^9999 x (10^10000 - 1) = 10^19999 - 10^9999:
	// ten thousand 9s, then 9999 zeros (19999 digits).
	std::string nines(Decimal::kMaxDigits / 2, '9');
	std::string power = "1" + std::string(Decimal::kMaxDigits / 2 - 1, '0');
	EXPECT_EQ((Decimal::Parse(power) * Decimal::Parse(nines)).str(), nines + std::string(Decimal::kMaxDigits / 2 - 1, '0'));
}
