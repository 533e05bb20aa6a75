// Billing cycles of PSA agreements: the cycle that contains a date, and the
// factor that normalizes a cycle's amount to one month.
//
// Anchoring rule (docs/proration.md): with an anchor (the agreement's start
// date), cycle k starts k cycle lengths (1, 3 or 12 months) after the anchor,
// on the anchor's day of month, or on the month's last day when that month
// is shorter; k may be negative, so dates before the anchor fall in cycles
// that extend the same sequence backwards (no error). A cycle ends the day
// before the next one starts. Quarterly from 2026-02-15: Feb 15 - May 14,
// May 15 - Aug 14, ...; monthly from Jan 31: Jan 31 - Feb 27, Feb 28 - Mar 30,
// Mar 31 - Apr 29 (2026). Without an anchor: calendar months, calendar
// quarters (Jan/Apr/Jul/Oct) and calendar years.
#pragma once

#include "model/decimal.hpp"
#include "reconcile/civil_date.hpp"

#include <optional>
#include <string_view>

namespace billrecon::reconcile {

// psa_agreements.billing_cycle. other / unknown are cycles billrecon cannot
// normalize: they are treated as calendar months, and callers mark whatever
// they derive from them as estimated.
enum class CycleKind { kMonthly, kQuarterly, kAnnual, kOther, kUnknown };

// "monthly", "quarterly", "annual", "other", "unknown" (ASCII case ignored);
// throws billrecon::Error (22023) on anything else.
CycleKind ParseCycleKind(std::string_view text);

// The lower-case name ParseCycleKind accepts.
std::string_view CycleKindName(CycleKind kind) noexcept;

// True for monthly, quarterly and annual: the kinds whose cycles and
// normalization are hard values rather than a calendar-month assumption.
bool IsNormalizable(CycleKind kind) noexcept;

// Months per cycle: 1, 3, 12; other and unknown count as 1 (a month).
int MonthsPerCycle(CycleKind kind) noexcept;

// First and last day of a cycle, both included.
struct Cycle {
	CivilDate start;
	CivilDate end;

	// Days in the cycle, both ends included (28..366 for real cycles).
	long Days() const noexcept {
		return end - start + 1;
	}
	bool Contains(CivilDate d) const noexcept {
		return start <= d && d <= end;
	}
};

// The first day of cycle `index` of an anchored sequence: index 0 starts on
// the anchor, 1 the cycle after, -1 the cycle before.
CivilDate CycleStart(CycleKind kind, CivilDate anchor, long index) noexcept;

// The cycle that contains `on`: anchored when `anchor` is set (monthly,
// quarterly, annual), calendar otherwise; other and unknown always give the
// calendar month (the anchor is ignored).
Cycle CycleContaining(CycleKind kind, std::optional<CivilDate> anchor, CivilDate on) noexcept;

// A cycle's amount for one month: amount x 1 (monthly, other, unknown),
// x 1/3 (quarterly), x 1/12 (annual), rounded half away from zero to cents.
model::Decimal MonthlyAmount(const model::Decimal &cycle_amount, CycleKind kind);

} // namespace billrecon::reconcile

#include "core_only.hpp"
