// SQL: billrecon.prorate(unit_price, qty_delta, effective_date, cycle_start,
// cycle_end), billrecon.billing_cycle(billing_cycle, on_date, anchor) and
// billrecon.monthly_amount(amount, billing_cycle): the pure arithmetic of
// src/reconcile (billing_cycle.hpp, prorate.hpp) with an SQL face.
//
// numeric crosses as text (numeric_out -> model::Decimal -> numeric_in, never
// a double); date as PostgreSQL's DateADT (days since 2000-01-01), shifted to
// reconcile::CivilDate's days since 1970-01-01.
#include "model/decimal.hpp"
#include "model/error.hpp"
#include "reconcile/billing_cycle.hpp"
#include "reconcile/civil_date.hpp"
#include "reconcile/prorate.hpp"

#include <optional>
#include <string>

#include "pg/boundary.hpp"
#include "pg/sync_store.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/date.h"
}

namespace billrecon::pg {
namespace {

// numeric argument n as palloc'd text ("12.50", "NaN", "Infinity"); the
// caller checked PG_ARGISNULL. numeric_out detoasts, hence a pg helper.
char *NumericArgText(FunctionCallInfo fcinfo, int n) {
	return DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(n)));
}

// The (cycle_start, cycle_end) record of billrecon.billing_cycle().
Datum CycleRecord(FunctionCallInfo fcinfo, DateADT start, DateADT end) {
	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("billing_cycle() called in a context that cannot accept a record"),
		                errdetail("The function returns (cycle_start date, cycle_end date)."),
		                errhint("Call it as SELECT * FROM billrecon.billing_cycle(...).")));
	tupdesc = BlessTupleDesc(tupdesc);
	Datum values[2] = {DateADTGetDatum(start), DateADTGetDatum(end)};
	bool nulls[2] = {false, false};
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

} // namespace
} // namespace billrecon::pg

using namespace billrecon;

namespace {

// DateADT counts from 2000-01-01, CivilDate from 1970-01-01.
constexpr long kPgEpochDays = POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE; // 10957
constexpr const char *kDatetimeOutOfRange = "22008";                    // datetime_field_overflow

reconcile::CivilDate DateArg(FunctionCallInfo fcinfo, int n, const char *name) {
	DateADT d = PG_GETARG_DATEADT(n);
	if (DATE_NOT_FINITE(d))
		throw Error(sqlstate::kInvalidParameter, std::string(name) + " must be a finite date",
		            std::string(name) + " is " + (DATE_IS_NOBEGIN(d) ? "-infinity" : "infinity") + ".",
		            "Billing cycles and proration count whole days between calendar dates.");
	return reconcile::CivilDate::FromDays(static_cast<long>(d) + kPgEpochDays);
}

DateADT ToDateADT(reconcile::CivilDate d, const char *name) {
	long v = d.days() - kPgEpochDays;
	if (!IS_VALID_DATE(v))
		throw Error(kDatetimeOutOfRange, "date out of range",
		            std::string("The billing cycle's ") + name + " falls outside the range of type date " +
		                "(4713 BC to 5874897 AD).",
		            "Pass an on_date and an anchor well inside the range of type date.");
	return static_cast<DateADT>(v);
}

model::Decimal NumericArg(FunctionCallInfo fcinfo, int n, const char *name) {
	const char *text = CallPg(pg::NumericArgText, fcinfo, n);
	if (!model::Decimal::IsValid(text)) // NaN, Infinity, -Infinity
		throw Error(sqlstate::kInvalidParameter, std::string(name) + " must be a finite number",
		            std::string(name) + " is " + text + ".", "Pass a decimal number such as 45.00.");
	return model::Decimal::Parse(text);
}

// numeric with exactly two decimals ("12.50").
Datum CentsResult(const model::Decimal &value) {
	std::string text = value.ToFixed(2);
	return CallPg(pg::NumericFromText, static_cast<const char *>(text.c_str()));
}

} // namespace

// STRICT: never called with a NULL argument.
BILLRECON_FUNCTION(billrecon_prorate) {
	model::Decimal unit_price = NumericArg(fcinfo, 0, "unit_price");
	model::Decimal qty_delta = NumericArg(fcinfo, 1, "qty_delta");
	reconcile::CivilDate effective = DateArg(fcinfo, 2, "effective_date");
	reconcile::CivilDate start = DateArg(fcinfo, 3, "cycle_start");
	reconcile::CivilDate end = DateArg(fcinfo, 4, "cycle_end");
	return CentsResult(reconcile::Prorate(unit_price, qty_delta, effective, start, end));
}

// Not STRICT (anchor may be NULL): NULL billing_cycle or on_date -> NULL.
BILLRECON_FUNCTION(billrecon_billing_cycle) {
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	const char *kind_text = CallPg(pg::TextArg, fcinfo, 0);
	reconcile::CycleKind kind = reconcile::ParseCycleKind(kind_text);
	reconcile::CivilDate on = DateArg(fcinfo, 1, "on_date");
	std::optional<reconcile::CivilDate> anchor;
	if (!PG_ARGISNULL(2))
		anchor = DateArg(fcinfo, 2, "anchor");
	reconcile::Cycle cycle = reconcile::CycleContaining(kind, anchor, on);
	DateADT start = ToDateADT(cycle.start, "cycle_start");
	DateADT end = ToDateADT(cycle.end, "cycle_end");
	return CallPg(pg::CycleRecord, fcinfo, start, end);
}

// STRICT.
BILLRECON_FUNCTION(billrecon_monthly_amount) {
	model::Decimal amount = NumericArg(fcinfo, 0, "amount");
	const char *kind_text = CallPg(pg::TextArg, fcinfo, 1);
	return CentsResult(reconcile::MonthlyAmount(amount, reconcile::ParseCycleKind(kind_text)));
}
