// SQL: billrecon._write_back_quantity_c(integration, line_item_id, quantity,
// effective_date, check_first): one quantity change written to the PSA
// through its connector's PsaWriter. The building block of
// billrecon.push_changes(); wrapped by billrecon._write_back_quantity().
#include "connectors/connector.hpp"
#include "model/decimal.hpp"
#include "model/error.hpp"
#include "sync/runner.hpp"

#include <string>

#include "pg/boundary.hpp"
#include "pg/sync_defaults.hpp"
#include "pg/sync_store.hpp"

using namespace billrecon;

BILLRECON_FUNCTION(billrecon_write_back_quantity) {
	const char *name = CallPg(pg::TextArg, fcinfo, 0);
	const char *line_id = CallPg(pg::TextArg, fcinfo, 1);
	const char *quantity = CallPg(pg::TextArg, fcinfo, 2);
	const char *effective_date = CallPg(pg::TextArg, fcinfo, 3);
	bool check_first = PG_GETARG_BOOL(4);

	CallPg(pg::InitResultSet, fcinfo);
	CallPg(pg::SpiConnect);
	pg::IntegrationList *list = CallPg(pg::LoadIntegrations, name);
	const pg::IntegrationRow &row = list->rows[0];
	pg::LineForWrite line;
	CallPg(pg::LoadLineForWrite, row.id, line_id, &line);

	connectors::IntegrationConfig config = pg::ConfigFromRow(row);

	connectors::QuantityChange change;
	change.line_item_external_id = line.line_external_id;
	change.agreement_external_id = line.agreement_external_id;
	change.current_quantity = model::Decimal::Parse(line.quantity);
	change.new_quantity = model::Decimal::Parse(quantity);
	change.effective_date = effective_date;

	sync::Runner runner(config, pg::CurrentDefaults(), pg::InterruptRequested);
	connectors::QuantityChangeResult result;
	try {
		result = runner.WriteQuantity(change, check_first);
	} catch (const Cancelled &) {
		throw;
	} catch (const Error &e) {
		// Same redaction as a sync: nothing the PSA or curl said may carry a secret.
		throw Error(e.sqlstate(), runner.Redact(e.message()), runner.Redact(e.detail()), e.hint());
	}
	std::string after = result.quantity_after.str();
	pg::WriteResultRow out{};
	out.quantity_before = line.quantity;
	out.quantity_after = after.c_str();
	out.reference = result.reference.c_str();
	out.note = result.note.c_str();
	out.requests = runner.stats().requests;
	CallPg(pg::EmitWriteRow, fcinfo, static_cast<const pg::WriteResultRow *>(&out));
	CallPg(pg::SpiFinish);
	return (Datum)0;
}
