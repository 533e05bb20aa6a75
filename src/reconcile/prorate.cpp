#include "reconcile/prorate.hpp"

#include "model/error.hpp"

#include <string>

namespace billrecon::reconcile {

ProrationDays ProrationDaysFor(CivilDate effective_date, CivilDate cycle_start, CivilDate cycle_end) {
	if (cycle_end < cycle_start)
		throw Error(sqlstate::kInvalidParameter, "billing cycle ends before it starts",
		            "cycle_start is " + cycle_start.ToString() + " and cycle_end is " + cycle_end.ToString() + ".",
		            "Pass the first and the last day of the cycle, both included; billrecon.billing_cycle() gives "
		            "them.");
	if (effective_date < cycle_start || effective_date > cycle_end)
		throw Error(sqlstate::kInvalidParameter, "effective date is outside the billing cycle",
		            "effective_date " + effective_date.ToString() + " is not between cycle_start " +
		                cycle_start.ToString() + " and cycle_end " + cycle_end.ToString() + ".",
		            "Prorate against the cycle that contains the effective date; billrecon.billing_cycle(cycle, "
		            "effective_date, anchor) gives it.");
	return ProrationDays{cycle_end - effective_date + 1, cycle_end - cycle_start + 1};
}

model::Decimal Prorate(const model::Decimal &unit_price, const model::Decimal &qty_delta, CivilDate effective_date,
                       CivilDate cycle_start, CivilDate cycle_end) {
	const ProrationDays days = ProrationDaysFor(effective_date, cycle_start, cycle_end);
	// Exact numerator, one division, one rounding. Both day counts are
	// positive and small: a cycle of a million years still has fewer than 10^9 days.
	const model::Decimal numerator =
	    unit_price * qty_delta * model::Decimal::FromInteger(static_cast<long long>(days.charged));
	return numerator.DivideRounded(static_cast<unsigned long long>(days.in_cycle), 2);
}

} // namespace billrecon::reconcile
