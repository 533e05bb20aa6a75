#include "reconcile/billing_cycle.hpp"

#include "model/error.hpp"

#include <cctype>
#include <string>

namespace billrecon::reconcile {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) noexcept {
	if (a.size() != b.size())
		return false;
	for (std::size_t i = 0; i < a.size(); ++i)
		if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
			return false;
	return true;
}

// floor(a / b) for b > 0.
long FloorDiv(long a, long b) noexcept {
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

} // namespace

CycleKind ParseCycleKind(std::string_view text) {
	for (CycleKind kind : {CycleKind::kMonthly, CycleKind::kQuarterly, CycleKind::kAnnual, CycleKind::kOther,
	                       CycleKind::kUnknown})
		if (EqualsIgnoreCase(text, CycleKindName(kind)))
			return kind;
	throw Error(sqlstate::kInvalidParameter, "invalid billing cycle \"" + std::string(text.substr(0, 64)) + "\"",
	            "Billing cycles are monthly, quarterly, annual, other and unknown.",
	            "Pass the agreement's billing_cycle column (billrecon.psa_agreements).");
}

std::string_view CycleKindName(CycleKind kind) noexcept {
	switch (kind) {
	case CycleKind::kMonthly:
		return "monthly";
	case CycleKind::kQuarterly:
		return "quarterly";
	case CycleKind::kAnnual:
		return "annual";
	case CycleKind::kOther:
		return "other";
	case CycleKind::kUnknown:
		break;
	}
	return "unknown";
}

bool IsNormalizable(CycleKind kind) noexcept {
	return kind == CycleKind::kMonthly || kind == CycleKind::kQuarterly || kind == CycleKind::kAnnual;
}

int MonthsPerCycle(CycleKind kind) noexcept {
	switch (kind) {
	case CycleKind::kQuarterly:
		return 3;
	case CycleKind::kAnnual:
		return 12;
	default:
		return 1;
	}
}

CivilDate CycleStart(CycleKind kind, CivilDate anchor, long index) noexcept {
	// Always from the anchor itself, never from the previous start: a start
	// clamped to Feb 28 must not drag the next one off the 31st.
	return CivilDate::Clamped(anchor.year(), static_cast<long>(anchor.month()) + index * MonthsPerCycle(kind),
	                          anchor.day());
}

Cycle CycleContaining(CycleKind kind, std::optional<CivilDate> anchor, CivilDate on) noexcept {
	if (!IsNormalizable(kind)) {
		kind = CycleKind::kMonthly;
		anchor.reset();
	}
	// Calendar cycles are the ones anchored on January 1 (of any year).
	const CivilDate a = anchor ? *anchor : CivilDate::Clamped(on.year(), 1, 1);
	const long months = MonthsPerCycle(kind);
	const long month_diff = (on.year() - a.year()) * 12 + (static_cast<long>(on.month()) - static_cast<long>(a.month()));
	// Cycle k starts in month a + k*months; the one starting in on's month or
	// before it is k, or k - 1 when on lies before that start's day.
	long k = FloorDiv(month_diff, months);
	CivilDate start = CycleStart(kind, a, k);
	if (on < start)
		start = CycleStart(kind, a, --k);
	return Cycle{start, CycleStart(kind, a, k + 1).AddDays(-1)};
}

model::Decimal MonthlyAmount(const model::Decimal &cycle_amount, CycleKind kind) {
	return cycle_amount.DivideRounded(static_cast<unsigned long long>(MonthsPerCycle(kind)), 2);
}

} // namespace billrecon::reconcile
