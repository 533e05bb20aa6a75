// Billing cycles: anchored and calendar cycle bounds, month-end clamping,
// dates before the anchor, monthly normalization. Expected bounds are
// worked out on a calendar by hand.
#include "model/error.hpp"
#include "reconcile/billing_cycle.hpp"
#include "reconcile/civil_date.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>

using billrecon::Error;
using billrecon::model::Decimal;
using namespace billrecon::reconcile;

namespace {

CivilDate D(const char *iso) {
	return CivilDate::Parse(iso);
}

// "start..end" of the cycle containing `on`.
std::string Bounds(CycleKind kind, const char *anchor, const char *on) {
	Cycle c = CycleContaining(kind, anchor ? std::optional<CivilDate>(D(anchor)) : std::nullopt, D(on));
	return c.start.ToString() + ".." + c.end.ToString();
}

std::string Monthly(const char *amount, CycleKind kind) {
	return MonthlyAmount(Decimal::Parse(amount), kind).str();
}

} // namespace

// ---- CivilDate -----------------------------------------------------------------

TEST(CivilDate, DaysAndFields) {
	EXPECT_EQ(D("1970-01-01").days(), 0);
	EXPECT_EQ(D("2000-01-01").days(), 10957); // 30 years x 365 + 7 leap days (72 76 80 84 88 92 96)
	EXPECT_EQ(D("1969-12-31").days(), -1);
	CivilDate d = D("2028-02-29");
	EXPECT_EQ(d.year(), 2028);
	EXPECT_EQ(d.month(), 2u);
	EXPECT_EQ(d.day(), 29u);
	EXPECT_EQ(d.AddDays(1).ToString(), "2028-03-01");
	EXPECT_EQ(D("2027-03-01").AddDays(-1).ToString(), "2027-02-28");
	EXPECT_EQ(D("2026-03-31") - D("2026-03-01"), 30);
	EXPECT_EQ(D("2027-01-01") - D("2026-01-01"), 365);
	EXPECT_EQ(D("2029-01-01") - D("2028-01-01"), 366);
	EXPECT_EQ(CivilDate::FromDays(10957).ToString(), "2000-01-01");
	EXPECT_EQ(CivilDate().ToString(), "1970-01-01");
	// Before year 1, as PostgreSQL writes dates: astronomical year 0 is 1 BC.
	EXPECT_EQ(CivilDate::FromYmd(0, 12, 31).ToString(), "0001-12-31 BC");
	EXPECT_EQ(D("-0001-03-01").ToString(), "0002-03-01 BC");
	EXPECT_EQ(CivilDate::FromYmd(0, 12, 31).AddDays(1).ToString(), "0001-01-01");
	EXPECT_EQ(CivilDate::FromYmd(12345, 6, 7).ToString(), "12345-06-07");
	EXPECT_TRUE(D("2026-02-15") < D("2026-02-16"));
	EXPECT_TRUE(D("2026-02-15") == CivilDate::FromYmd(2026, 2, 15));
}

TEST(CivilDate, MonthLengths) {
	EXPECT_EQ(DaysInMonth(2027, 2), 28u);
	EXPECT_EQ(DaysInMonth(2028, 2), 29u);
	EXPECT_EQ(DaysInMonth(1900, 2), 28u); // divisible by 100, not by 400
	EXPECT_EQ(DaysInMonth(2000, 2), 29u); // divisible by 400
	EXPECT_EQ(DaysInMonth(2026, 4), 30u);
	EXPECT_EQ(DaysInMonth(2026, 12), 31u);
}

TEST(CivilDate, ClampedRollsMonthsAndClampsDays) {
	EXPECT_EQ(CivilDate::Clamped(2026, 2, 31).ToString(), "2026-02-28");
	EXPECT_EQ(CivilDate::Clamped(2028, 2, 31).ToString(), "2028-02-29");
	EXPECT_EQ(CivilDate::Clamped(2026, 4, 31).ToString(), "2026-04-30");
	EXPECT_EQ(CivilDate::Clamped(2026, 14, 15).ToString(), "2027-02-15"); // month 14 = Feb next year
	EXPECT_EQ(CivilDate::Clamped(2026, 0, 31).ToString(), "2025-12-31");  // month 0 = Dec before
	EXPECT_EQ(CivilDate::Clamped(2026, -11, 1).ToString(), "2025-01-01"); // -11 = Jan of the year before
	EXPECT_EQ(CivilDate::Clamped(2026, -12, 1).ToString(), "2024-12-01");
}

TEST(CivilDate, InvalidDates) {
	EXPECT_THROW(CivilDate::FromYmd(2027, 2, 29), Error);
	EXPECT_THROW(CivilDate::FromYmd(2026, 4, 31), Error);
	EXPECT_THROW(CivilDate::FromYmd(2026, 13, 1), Error);
	EXPECT_THROW(CivilDate::FromYmd(2026, 1, 0), Error);
	EXPECT_THROW(D("2026-2-15"), Error);
	EXPECT_THROW(D("2026-02-15T00:00:00Z"), Error);
	EXPECT_THROW(D(""), Error);
	try {
		CivilDate::FromYmd(2027, 2, 29);
	} catch (const Error &e) {
		EXPECT_EQ(e.sqlstate(), "22023");
		EXPECT_EQ(e.message(), "invalid date");
		EXPECT_EQ(e.detail(), "There is no day 2027-02-29 in the calendar.");
	}
}

// ---- Cycle kinds ---------------------------------------------------------------

TEST(BillingCycle, ParseKinds) {
	EXPECT_EQ(ParseCycleKind("monthly"), CycleKind::kMonthly);
	EXPECT_EQ(ParseCycleKind("Quarterly"), CycleKind::kQuarterly);
	EXPECT_EQ(ParseCycleKind("ANNUAL"), CycleKind::kAnnual);
	EXPECT_EQ(ParseCycleKind("other"), CycleKind::kOther);
	EXPECT_EQ(ParseCycleKind("unknown"), CycleKind::kUnknown);
	EXPECT_EQ(CycleKindName(CycleKind::kQuarterly), "quarterly");
	EXPECT_TRUE(IsNormalizable(CycleKind::kAnnual));
	EXPECT_FALSE(IsNormalizable(CycleKind::kOther));
	EXPECT_EQ(MonthsPerCycle(CycleKind::kMonthly), 1);
	EXPECT_EQ(MonthsPerCycle(CycleKind::kQuarterly), 3);
	EXPECT_EQ(MonthsPerCycle(CycleKind::kAnnual), 12);
	EXPECT_EQ(MonthsPerCycle(CycleKind::kUnknown), 1);
	try {
		ParseCycleKind("weekly");
		FAIL() << "weekly accepted";
	} catch (const Error &e) {
		EXPECT_EQ(e.sqlstate(), "22023");
		EXPECT_EQ(e.message(), "invalid billing cycle \"weekly\"");
		EXPECT_FALSE(e.detail().empty());
		EXPECT_FALSE(e.hint().empty());
	}
	EXPECT_THROW(ParseCycleKind(""), Error);
	EXPECT_THROW(ParseCycleKind(" monthly"), Error);
}

// ---- Anchored cycles -----------------------------------------------------------

TEST(BillingCycle, QuarterlyAnchoredMidMonth) {
	// product.md's example: a quarterly agreement starting 2026-02-15.
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-02-15"), "2026-02-15..2026-05-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-03-31"), "2026-02-15..2026-05-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-05-14"), "2026-02-15..2026-05-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-05-15"), "2026-05-15..2026-08-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-08-14"), "2026-05-15..2026-08-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-08-15"), "2026-08-15..2026-11-14");
	// Across the year: Nov 15 2026 .. Feb 14 2027.
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-12-01"), "2026-11-15..2027-02-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2027-02-15"), "2027-02-15..2027-05-14");
	// 89 days: Feb 15-28 (14) + Mar (31) + Apr (30) + May 1-14 (14).
	EXPECT_EQ(CycleContaining(CycleKind::kQuarterly, D("2026-02-15"), D("2026-04-01")).Days(), 89);
}

TEST(BillingCycle, MonthlyAnchoredOnThe31st) {
	// Starts on the 31st, or on the month's last day: Jan 31, Feb 28, Mar 31, Apr 30, May 31.
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-01-31"), "2026-01-31..2026-02-27");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-02-10"), "2026-01-31..2026-02-27");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-02-27"), "2026-01-31..2026-02-27");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-02-28"), "2026-02-28..2026-03-30");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-03-30"), "2026-02-28..2026-03-30");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-03-31"), "2026-03-31..2026-04-29");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-04-30"), "2026-04-30..2026-05-30");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-01-31", "2026-05-31"), "2026-05-31..2026-06-29");
	// Leap year: Feb 29 2028 starts a cycle.
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2028-01-31", "2028-02-28"), "2028-01-31..2028-02-28");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2028-01-31", "2028-02-29"), "2028-02-29..2028-03-30");
	// Lengths: Jan 31..Feb 27 2026 = 28 days; Feb 28..Mar 30 = 31 days; Mar 31..Apr 29 = 30 days.
	EXPECT_EQ(CycleContaining(CycleKind::kMonthly, D("2026-01-31"), D("2026-02-01")).Days(), 28);
	EXPECT_EQ(CycleContaining(CycleKind::kMonthly, D("2026-01-31"), D("2026-03-01")).Days(), 31);
	EXPECT_EQ(CycleContaining(CycleKind::kMonthly, D("2026-01-31"), D("2026-04-01")).Days(), 30);
}

TEST(BillingCycle, MonthlyAnchoredOnThe30thAnd29th) {
	// Anchor Jan 30 2027: Feb 2027 has 28 days, so Feb 28; March is back on the 30th.
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2027-01-30", "2027-02-28"), "2027-02-28..2027-03-29");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2027-01-30", "2027-03-30"), "2027-03-30..2027-04-29");
	// Anchor Jan 29: Feb 2027 clamps to 28, Feb 2028 keeps the 29th.
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2027-01-29", "2027-02-28"), "2027-02-28..2027-03-28");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2027-01-29", "2028-02-28"), "2028-01-29..2028-02-28");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2027-01-29", "2028-02-29"), "2028-02-29..2028-03-28");
}

TEST(BillingCycle, MonthlyAnchoredOnTheFirstIsTheCalendarMonth) {
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2025-06-01", "2027-02-14"), "2027-02-01..2027-02-28");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2025-06-01", "2028-02-14"), "2028-02-01..2028-02-29");
}

TEST(BillingCycle, AnnualAnchored) {
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2026-07-01", "2026-07-01"), "2026-07-01..2027-06-30");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2026-07-01", "2027-06-30"), "2026-07-01..2027-06-30");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2026-07-01", "2027-07-01"), "2027-07-01..2028-06-30");
	// Anchor on a leap day: Feb 28 in common years, Feb 29 again in 2028.
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2024-02-29", "2025-03-01"), "2025-02-28..2026-02-27");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2024-02-29", "2028-02-28"), "2027-02-28..2028-02-28");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2024-02-29", "2028-02-29"), "2028-02-29..2029-02-27");
	// 366 days: Jul 1 2027 .. Jun 30 2028 holds Feb 29 2028.
	EXPECT_EQ(CycleContaining(CycleKind::kAnnual, D("2026-07-01"), D("2027-12-25")).Days(), 366);
	EXPECT_EQ(CycleContaining(CycleKind::kAnnual, D("2026-07-01"), D("2026-12-25")).Days(), 365);
}

TEST(BillingCycle, DatesBeforeTheAnchorExtendBackwards) {
	// The same sequence, continued into the past: no error.
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-02-14"), "2025-11-15..2026-02-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2026-01-01"), "2025-11-15..2026-02-14");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, "2026-02-15", "2025-11-14"), "2025-08-15..2025-11-14");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-03-31", "2026-03-01"), "2026-02-28..2026-03-30");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, "2026-03-31", "2026-02-27"), "2026-01-31..2026-02-27");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2026-07-01", "2026-06-30"), "2025-07-01..2026-06-30");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, "2026-07-01", "2019-01-01"), "2018-07-01..2019-06-30");
	EXPECT_EQ(CycleStart(CycleKind::kMonthly, D("2026-03-31"), -1).ToString(), "2026-02-28");
	EXPECT_EQ(CycleStart(CycleKind::kMonthly, D("2026-03-31"), -2).ToString(), "2026-01-31");
	EXPECT_EQ(CycleStart(CycleKind::kQuarterly, D("2026-02-15"), -1).ToString(), "2025-11-15");
	EXPECT_EQ(CycleStart(CycleKind::kQuarterly, D("2026-02-15"), 4).ToString(), "2027-02-15");
}

// ---- Calendar cycles (no anchor) and cycles billrecon does not normalize --------

TEST(BillingCycle, CalendarCyclesWithoutAnchor) {
	EXPECT_EQ(Bounds(CycleKind::kMonthly, nullptr, "2027-02-10"), "2027-02-01..2027-02-28");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, nullptr, "2028-02-10"), "2028-02-01..2028-02-29");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, nullptr, "2026-04-30"), "2026-04-01..2026-04-30");
	EXPECT_EQ(Bounds(CycleKind::kMonthly, nullptr, "2026-12-31"), "2026-12-01..2026-12-31");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, nullptr, "2026-01-01"), "2026-01-01..2026-03-31");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, nullptr, "2026-05-20"), "2026-04-01..2026-06-30");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, nullptr, "2026-09-30"), "2026-07-01..2026-09-30");
	EXPECT_EQ(Bounds(CycleKind::kQuarterly, nullptr, "2026-12-31"), "2026-10-01..2026-12-31");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, nullptr, "2028-06-15"), "2028-01-01..2028-12-31");
	EXPECT_EQ(Bounds(CycleKind::kAnnual, nullptr, "1999-12-31"), "1999-01-01..1999-12-31");
	// Q1 2028 = 31 + 29 + 31 = 91 days; Q1 2027 = 90.
	EXPECT_EQ(CycleContaining(CycleKind::kQuarterly, std::nullopt, D("2028-02-01")).Days(), 91);
	EXPECT_EQ(CycleContaining(CycleKind::kQuarterly, std::nullopt, D("2027-02-01")).Days(), 90);
}

TEST(BillingCycle, OtherAndUnknownAreTheCalendarMonth) {
	EXPECT_EQ(Bounds(CycleKind::kOther, nullptr, "2026-05-20"), "2026-05-01..2026-05-31");
	EXPECT_EQ(Bounds(CycleKind::kUnknown, nullptr, "2027-02-10"), "2027-02-01..2027-02-28");
	// The anchor is ignored: billrecon does not know how such a cycle runs.
	EXPECT_EQ(Bounds(CycleKind::kOther, "2026-02-15", "2026-05-20"), "2026-05-01..2026-05-31");
	EXPECT_EQ(Bounds(CycleKind::kUnknown, "2026-02-15", "2026-05-10"), "2026-05-01..2026-05-31");
}

TEST(BillingCycle, CyclesTileTheCalendar) {
	// Every day of 2024..2029 lies in exactly one cycle, and each cycle ends the
	// day before the next starts, whatever the anchor day (1st, 15th, 28th..31st).
	const char *anchors[] = {"2026-01-01", "2026-02-15", "2024-02-29", "2026-01-28", "2026-01-29",
	                         "2026-01-30", "2026-01-31", "2026-08-31"};
	for (CycleKind kind : {CycleKind::kMonthly, CycleKind::kQuarterly, CycleKind::kAnnual}) {
		for (const char *anchor : anchors) {
			Cycle previous = CycleContaining(kind, D(anchor), D("2024-01-01"));
			for (CivilDate d = D("2024-01-01"); d <= D("2029-12-31"); d = d.AddDays(1)) {
				Cycle c = CycleContaining(kind, D(anchor), d);
				ASSERT_TRUE(c.Contains(d)) << anchor << " " << d.ToString();
				if (c.start != previous.start) {
					ASSERT_EQ(c.start, previous.end.AddDays(1)) << anchor << " " << d.ToString();
					// Every start is the anchor's day of month, or the month's last day.
					ASSERT_TRUE(c.start.day() == D(anchor).day() ||
					            (c.start.day() < D(anchor).day() &&
					             c.start.day() == DaysInMonth(c.start.year(), c.start.month())))
					    << anchor << " " << c.start.ToString();
					previous = c;
				}
				ASSERT_GE(c.Days(), kind == CycleKind::kMonthly ? 28 : kind == CycleKind::kQuarterly ? 89 : 365);
				ASSERT_LE(c.Days(), kind == CycleKind::kMonthly ? 31 : kind == CycleKind::kQuarterly ? 92 : 366);
			}
		}
	}
}

// ---- Monthly normalization -----------------------------------------------------

TEST(BillingCycle, MonthlyAmount) {
	EXPECT_EQ(Monthly("135.00", CycleKind::kMonthly), "135");
	EXPECT_EQ(Monthly("12.345", CycleKind::kMonthly), "12.35");     // monthly still rounds to cents: tie
	EXPECT_EQ(Monthly("-12.345", CycleKind::kMonthly), "-12.35");
	EXPECT_EQ(Monthly("300.00", CycleKind::kQuarterly), "100");     // 300 / 3
	EXPECT_EQ(Monthly("100", CycleKind::kQuarterly), "33.33");      // 33.333...
	EXPECT_EQ(Monthly("200", CycleKind::kQuarterly), "66.67");      // 66.666...
	EXPECT_EQ(Monthly("-200", CycleKind::kQuarterly), "-66.67");
	EXPECT_EQ(Monthly("0.015", CycleKind::kQuarterly), "0.01");     // 0.005: tie, away from zero
	EXPECT_EQ(Monthly("-0.015", CycleKind::kQuarterly), "-0.01");
	EXPECT_EQ(Monthly("1200", CycleKind::kAnnual), "100");          // 1200 / 12
	EXPECT_EQ(Monthly("1000", CycleKind::kAnnual), "83.33");        // 83.333...
	EXPECT_EQ(Monthly("1", CycleKind::kAnnual), "0.08");            // 0.08333...
	EXPECT_EQ(Monthly("0.06", CycleKind::kAnnual), "0.01");         // 0.005: tie
	EXPECT_EQ(Monthly("-0.06", CycleKind::kAnnual), "-0.01");
	EXPECT_EQ(Monthly("0.05", CycleKind::kAnnual), "0");            // 0.004166...
	EXPECT_EQ(Monthly("1234.56", CycleKind::kOther), "1234.56");    // other / unknown: as a month
	EXPECT_EQ(Monthly("1234.56", CycleKind::kUnknown), "1234.56");
}
