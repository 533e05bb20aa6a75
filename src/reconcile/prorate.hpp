// Proration of a quantity change inside a billing cycle (product.md,
// "Changes"; docs/proration.md):
//
//   amount = unit price x delta x (days from the effective date to the cycle
//            end, both included) / (days in the cycle, both ends included)
//
// computed exactly (multiply first, divide once) and rounded half away from
// zero to cents. Negative deltas give credits.
#pragma once

#include "model/decimal.hpp"
#include "reconcile/billing_cycle.hpp"
#include "reconcile/civil_date.hpp"

namespace billrecon::reconcile {

// Days charged and days in the cycle, both ends included. Throws
// billrecon::Error (22023) when cycle_end < cycle_start or when the effective
// date lies outside [cycle_start, cycle_end].
struct ProrationDays {
	long charged;
	long in_cycle;
};
ProrationDays ProrationDaysFor(CivilDate effective_date, CivilDate cycle_start, CivilDate cycle_end);

// The prorated charge (credit when negative) of a quantity change, in cents.
// Effective on the cycle start: the full unit_price x qty_delta. Errors as
// ProrationDaysFor.
model::Decimal Prorate(const model::Decimal &unit_price, const model::Decimal &qty_delta, CivilDate effective_date,
                       CivilDate cycle_start, CivilDate cycle_end);

inline model::Decimal Prorate(const model::Decimal &unit_price, const model::Decimal &qty_delta,
                              CivilDate effective_date, const Cycle &cycle) {
	return Prorate(unit_price, qty_delta, effective_date, cycle.start, cycle.end);
}

} // namespace billrecon::reconcile

#include "core_only.hpp"
