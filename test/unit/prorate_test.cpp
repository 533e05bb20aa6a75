// Proration (product.md, "Changes"): unit price x delta x days left in the
// cycle (effective date to cycle end, both included) / days in the cycle
// (both ends included), rounded half away from zero to cents. Every expected
// value is worked out by hand in its comment.
#include "model/decimal.hpp"
#include "model/error.hpp"
#include "reconcile/billing_cycle.hpp"
#include "reconcile/civil_date.hpp"
#include "reconcile/prorate.hpp"

#include <gtest/gtest.h>

#include <string>

using billrecon::Error;
using billrecon::model::Decimal;
using namespace billrecon::reconcile;

namespace {

CivilDate D(const char *iso) {
	return CivilDate::Parse(iso);
}

// The prorated amount as SQL shows it: two decimals.
std::string P(const char *unit, const char *delta, const char *effective, const char *start, const char *end) {
	return Prorate(Decimal::Parse(unit), Decimal::Parse(delta), D(effective), D(start), D(end)).ToFixed(2);
}

// The error Prorate raises (or "no error").
Error E(const char *effective, const char *start, const char *end) {
	try {
		Prorate(Decimal::Parse("10"), Decimal::Parse("1"), D(effective), D(start), D(end));
	} catch (const Error &e) {
		return e;
	}
	return Error("", "no error");
}

} // namespace

TEST(Prorate, DaysCountBothEnds) {
	ProrationDays d = ProrationDaysFor(D("2026-03-16"), D("2026-03-01"), D("2026-03-31"));
	EXPECT_EQ(d.charged, 16); // Mar 16..31
	EXPECT_EQ(d.in_cycle, 31);
	d = ProrationDaysFor(D("2026-03-31"), D("2026-03-01"), D("2026-03-31"));
	EXPECT_EQ(d.charged, 1);
	d = ProrationDaysFor(D("2026-03-01"), D("2026-03-01"), D("2026-03-31"));
	EXPECT_EQ(d.charged, 31);
	d = ProrationDaysFor(D("2026-04-01"), D("2026-02-15"), D("2026-05-14"));
	EXPECT_EQ(d.charged, 44);  // Apr 1..30 (30) + May 1..14 (14)
	EXPECT_EQ(d.in_cycle, 89); // Feb 15..28 (14) + Mar (31) + Apr (30) + May 1..14 (14)
}

TEST(Prorate, ThirtyOneDayMonth) {
	// Start of cycle: the full amount, 45.00 x 3 = 135.00.
	EXPECT_EQ(P("45.00", "3", "2026-03-01", "2026-03-01", "2026-03-31"), "135.00");
	// Mid cycle: 135 x 16 (Mar 16..31) = 2160; 2160 / 31 = 69 rem 21; 21/31 = 0.677... -> 69.68.
	EXPECT_EQ(P("45.00", "3", "2026-03-16", "2026-03-01", "2026-03-31"), "69.68");
	// Last day: 135 x 1 / 31 = 4 rem 11; 11/31 = 0.354... -> 4.35.
	EXPECT_EQ(P("45.00", "3", "2026-03-31", "2026-03-01", "2026-03-31"), "4.35");
}

TEST(Prorate, ThirtyDayMonth) {
	// 22.00 x 2 = 44; x 10 (Apr 21..30) = 440; / 30 = 14.666... -> 14.67.
	EXPECT_EQ(P("22.00", "2", "2026-04-21", "2026-04-01", "2026-04-30"), "14.67");
	EXPECT_EQ(P("22.00", "2", "2026-04-01", "2026-04-01", "2026-04-30"), "44.00");
}

TEST(Prorate, FebruaryCommonYear) {
	// Feb 2027: 28 days. 10 x 1 x 14 (Feb 15..28) / 28 = 5.00 exactly.
	EXPECT_EQ(P("10", "1", "2027-02-15", "2027-02-01", "2027-02-28"), "5.00");
	// 29.99 x 9 (Feb 20..28) = 269.91; / 28 = 9 rem 17.91; 17.91/28 = 0.6396... -> 9.64.
	EXPECT_EQ(P("29.99", "1", "2027-02-20", "2027-02-01", "2027-02-28"), "9.64");
}

TEST(Prorate, FebruaryLeapYear) {
	// Feb 2028: 29 days. 10 x 15 (Feb 15..29) = 150; / 29 = 5 rem 5; 5/29 = 0.1724... -> 5.17.
	EXPECT_EQ(P("10", "1", "2028-02-15", "2028-02-01", "2028-02-29"), "5.17");
	// 29.99 x 10 (Feb 20..29) = 299.90; / 29 = 10 rem 9.9; 9.9/29 = 0.3413... -> 10.34.
	EXPECT_EQ(P("29.99", "1", "2028-02-20", "2028-02-01", "2028-02-29"), "10.34");
	// Leap day itself, last day of the cycle: 10 x 1 / 29 = 0.3448... -> 0.34.
	EXPECT_EQ(P("10", "1", "2028-02-29", "2028-02-01", "2028-02-29"), "0.34");
}

TEST(Prorate, QuarterlyCycle) {
	// Anchored Feb 15 2026: Feb 15..May 14 = 89 days; Apr 1..May 14 = 44 days.
	// 300.00 x 2 = 600; x 44 = 26400; / 89 = 296 rem 56; 56/89 = 0.6292... -> 296.63.
	EXPECT_EQ(P("300.00", "2", "2026-04-01", "2026-02-15", "2026-05-14"), "296.63");
	EXPECT_EQ(P("300.00", "2", "2026-02-15", "2026-02-15", "2026-05-14"), "600.00");
	// Last day: 600 / 89 = 6 rem 66; 66/89 = 0.7415... -> 6.74.
	EXPECT_EQ(P("300.00", "2", "2026-05-14", "2026-02-15", "2026-05-14"), "6.74");
	// The same through CycleContaining.
	EXPECT_EQ(Prorate(Decimal::Parse("300.00"), Decimal::Parse("2"), D("2026-04-01"),
	                  CycleContaining(CycleKind::kQuarterly, D("2026-02-15"), D("2026-04-01")))
	              .ToFixed(2),
	          "296.63");
}

TEST(Prorate, AnnualCycle) {
	// 2026: 365 days; Jul 1..Dec 31 = 31+31+30+31+30+31 = 184 days.
	// 1200 x 184 = 220800; / 365 = 604 rem 340; 340/365 = 0.9315... -> 604.93.
	EXPECT_EQ(P("1200", "1", "2026-07-01", "2026-01-01", "2026-12-31"), "604.93");
	// 2028: 366 days. 220800 / 366 = 603 rem 102; 102/366 = 0.2786... -> 603.28.
	EXPECT_EQ(P("1200", "1", "2028-07-01", "2028-01-01", "2028-12-31"), "603.28");
}

TEST(Prorate, MonthlyCycleAnchoredOnThe31st) {
	// Anchor Jan 31 2026: the cycle Feb 28..Mar 30 has 31 days; Mar 15..30 = 16.
	// 45 x 16 = 720; / 31 = 23 rem 7; 7/31 = 0.2258... -> 23.23.
	EXPECT_EQ(P("45", "1", "2026-03-15", "2026-02-28", "2026-03-30"), "23.23");
}

TEST(Prorate, NegativeDeltasAreCredits) {
	// Mirror of the 31-day cases: -135 x 16 / 31 = -69.677... -> -69.68.
	EXPECT_EQ(P("45.00", "-3", "2026-03-16", "2026-03-01", "2026-03-31"), "-69.68");
	EXPECT_EQ(P("45.00", "-3", "2026-03-01", "2026-03-01", "2026-03-31"), "-135.00");
	EXPECT_EQ(P("45.00", "-3", "2026-03-31", "2026-03-01", "2026-03-31"), "-4.35");
	// A negative unit price (a credit line) with a positive delta: also a credit.
	EXPECT_EQ(P("-45.00", "3", "2026-03-16", "2026-03-01", "2026-03-31"), "-69.68");
	// Both negative: a charge.
	EXPECT_EQ(P("-45.00", "-3", "2026-03-16", "2026-03-01", "2026-03-31"), "69.68");
}

TEST(Prorate, RoundingTiesGoAwayFromZero) {
	// 0.15 x 1 x 1 (Apr 30) / 30 = 0.005 exactly -> 0.01 (half-even would give 0.00).
	EXPECT_EQ(P("0.15", "1", "2026-04-30", "2026-04-01", "2026-04-30"), "0.01");
	EXPECT_EQ(P("0.15", "-1", "2026-04-30", "2026-04-01", "2026-04-30"), "-0.01");
	// 1.65 x 15 (Apr 16..30) = 24.75; / 30 = 0.825 exactly -> 0.83 (half-even: 0.82).
	EXPECT_EQ(P("1.65", "1", "2026-04-16", "2026-04-01", "2026-04-30"), "0.83");
	EXPECT_EQ(P("1.65", "-1", "2026-04-16", "2026-04-01", "2026-04-30"), "-0.83");
	// Full cycle: 0.125 -> 0.13, -0.125 -> -0.13.
	EXPECT_EQ(P("0.125", "1", "2026-03-01", "2026-03-01", "2026-03-31"), "0.13");
	EXPECT_EQ(P("0.125", "-1", "2026-03-01", "2026-03-01", "2026-03-31"), "-0.13");
	// Just below a tie: 0.1499 / 30 = 0.0049966... -> 0.00.
	EXPECT_EQ(P("0.1499", "1", "2026-04-30", "2026-04-01", "2026-04-30"), "0.00");
	EXPECT_EQ(P("0.1499", "-1", "2026-04-30", "2026-04-01", "2026-04-30"), "0.00");
}

TEST(Prorate, FractionalPricesAndQuantities) {
	// 12.3456789 x 7 = 86.4197523; x 22 (Mar 10..31) = 1901.2345506;
	// / 31 = 61 rem 10.2345506; 10.2345506/31 = 0.33014... -> 61.33.
	EXPECT_EQ(P("12.3456789", "7", "2026-03-10", "2026-03-01", "2026-03-31"), "61.33");
	// Multiply first, round once: 0.333333 x 3 = 0.999999 -> 1.00 (a price
	// rounded to cents first would give 0.33 x 3 = 0.99).
	EXPECT_EQ(P("0.333333", "3", "2026-03-01", "2026-03-01", "2026-03-31"), "1.00");
	// 4.995 x 0.5 = 2.4975 -> 2.50 (fractional quantity, e.g. half a TB).
	EXPECT_EQ(P("4.995", "0.5", "2026-03-01", "2026-03-01", "2026-03-31"), "2.50");
	// 0.004 x 10000 = 40; x 16 (Mar 16..31) = 640; / 31 = 20 rem 20; 20/31 = 0.645... -> 20.65.
	EXPECT_EQ(P("0.004", "10000", "2026-03-16", "2026-03-01", "2026-03-31"), "20.65");
	// 2.5 x 17.3333333333 = 43.33333333325; x 10 (Apr 21..30) = 433.3333333325;
	// / 30 = 14.44444444441... -> 14.44.
	EXPECT_EQ(P("17.3333333333", "2.5", "2026-04-21", "2026-04-01", "2026-04-30"), "14.44");
}

TEST(Prorate, LargeQuantitiesStayExact) {
	// 19.99 x 1,000,000 = 19,990,000; x 16 = 319,840,000; / 31: 31 x 10,317,419 =
	// 319,839,989, rem 11; 11/31 = 0.3548... -> 10,317,419.35.
	EXPECT_EQ(P("19.99", "1000000", "2026-03-16", "2026-03-01", "2026-03-31"), "10317419.35");
	// Beyond a double's 15-17 digits: 0.01 x 123456789012345678901 = 1234567890123456789.01.
	EXPECT_EQ(P("0.01", "123456789012345678901", "2026-03-01", "2026-03-01", "2026-03-31"),
	          "1234567890123456789.01");
	// Half of it (Apr 16..30 = 15 of 30 days): 617283945061728394.505 -> .51 (a tie).
	EXPECT_EQ(P("0.01", "123456789012345678901", "2026-04-16", "2026-04-01", "2026-04-30"),
	          "617283945061728394.51");
	EXPECT_EQ(P("0.01", "-123456789012345678901", "2026-04-16", "2026-04-01", "2026-04-30"),
	          "-617283945061728394.51");
}

TEST(Prorate, ZeroAndOneDayCycles) {
	EXPECT_EQ(P("45.00", "0", "2026-03-16", "2026-03-01", "2026-03-31"), "0.00");
	EXPECT_EQ(P("0", "5", "2026-03-16", "2026-03-01", "2026-03-31"), "0.00");
	// A one-day cycle: start = end = effective date -> the full 9.99 x 3 = 29.97.
	EXPECT_EQ(P("9.99", "3", "2026-03-16", "2026-03-16", "2026-03-16"), "29.97");
}

TEST(Prorate, EffectiveDateOutsideTheCycle) {
	for (const char *effective : {"2026-02-28", "2026-04-01", "2025-03-16"}) {
		Error e = E(effective, "2026-03-01", "2026-03-31");
		EXPECT_EQ(e.sqlstate(), "22023") << effective;
		EXPECT_EQ(e.message(), "effective date is outside the billing cycle");
		EXPECT_EQ(e.detail(), std::string("effective_date ") + effective +
		                          " is not between cycle_start 2026-03-01 and cycle_end 2026-03-31.");
		EXPECT_NE(e.hint().find("billrecon.billing_cycle("), std::string::npos);
	}
}

TEST(Prorate, CycleEndBeforeStart) {
	Error e = E("2026-03-15", "2026-03-31", "2026-03-01");
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "billing cycle ends before it starts");
	EXPECT_EQ(e.detail(), "cycle_start is 2026-03-31 and cycle_end is 2026-03-01.");
	EXPECT_FALSE(e.hint().empty());
	// Checked before the effective date.
	EXPECT_EQ(E("2027-01-01", "2026-03-31", "2026-03-01").message(), "billing cycle ends before it starts");
}
