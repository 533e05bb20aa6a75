#include "pg/usage_scan.hpp"

#include "pg/spi_util.hpp"

extern "C" {
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "nodes/params.h"
#include "utils/memutils.h"
}

namespace billrecon::pg {
namespace {

// The usage records of the mapped clients as stored, with the display name
// (_usage_display_name). Case mapping and exclusions are the counting pass's
// (count_usage.cpp), record by record where they matter: computing them here
// for every record was half the cost of the scan.
const char *const kUsageQuery =
    "SELECT u.id, u.account_id, m.psa_company_id, u.integration_id, u.enabled, u.licensed, i.enabled,"
    "       u.kind, u.quantity::text, u.purchased_quantity::text, u.device_class, u.os_name, u.device_name,"
    "       u.product, u.product_name, u.serial_number,"
    "       CASE WHEN u.kind = 'licence' THEN coalesce(k.display_name, u.product_name) ELSE u.product_name END"
    "  FROM billrecon.client_mappings m"
    "  JOIN billrecon.psa_companies c ON c.id = m.psa_company_id AND c.removed_at IS NULL"
    "  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL"
    "  JOIN billrecon.integrations i ON i.id = va.integration_id"
    "  JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL"
    "  LEFT JOIN billrecon.microsoft_skus k ON u.kind = 'licence' AND k.part_number = upper(u.product)"
    " WHERE $1::bigint IS NULL OR m.psa_company_id = $1";
constexpr int kFixedColumns = 7; // id .. integration enabled, then the texts of UsageText

// The running scan's batch context: what CaseMap returns lives as long as
// the batch it was asked for (null outside ScanUsage).
MemoryContext g_scan_context = nullptr;

int8 Flag(Datum d, bool isnull) {
	return isnull ? -1 : (DatumGetBool(d) ? 1 : 0);
}

CellRows *TextRows() {
	TupleDesc desc = SPI_tuptable->tupdesc;
	CellRows *out = static_cast<CellRows *>(palloc(sizeof(CellRows)));
	out->nrows = static_cast<int>(SPI_processed);
	out->ncols = desc->natts;
	out->cells = static_cast<Cell *>(palloc(sizeof(Cell) * (out->nrows * out->ncols + 1)));
	for (int r = 0; r < out->nrows; ++r)
		for (int c = 0; c < out->ncols; ++c) {
			char *v = SPI_getvalue(SPI_tuptable->vals[r], desc, c + 1);
			out->cells[r * out->ncols + c] = Cell{v, v ? static_cast<int>(strlen(v)) : 0};
		}
	return out;
}

} // namespace

CellRows *QueryRunRows(const char *sql, int64 run_id, bool has_company, int64 company_id) {
	Oid types[2] = {INT8OID, INT8OID};
	Datum args[2] = {Int64GetDatum(run_id), Int64GetDatum(company_id)};
	char nulls[2] = {' ', has_company ? ' ' : 'n'};
	int rc = SPI_execute_with_args(sql, 2, types, args, nulls, true, 0);
	CheckSpi(rc, SPI_OK_SELECT, "reading the run's rules");
	return TextRows();
}

CellRows *QueryWithTexts(const char *sql, int n, const char *const *texts) {
	Oid types[1] = {TEXTARRAYOID};
	Datum args[1] = {TextArray(n, texts, 1, 0)};
	int rc = SPI_execute_with_args(sql, 1, types, args, nullptr, true, 0);
	CheckSpi(rc, SPI_OK_SELECT, "reading the run's rules");
	return TextRows();
}

namespace {

// The scan's receiver: the executor hands each row's slot here; its values
// are copied into the batch (the slot's memory is the next row's soon) and
// every max_rows rows the sink gets the batch. No tuple is formed and
// deformed again, as SPI's own receiver and a cursor would do per row.
struct UsageReceiver {
	DestReceiver pub; // first: the executor sees a DestReceiver
	MemoryContext context;
	int max_rows;
	UsageBatch batch;
	char *arena;      // the batch's texts, carved from chunks of the context
	std::size_t room; // bytes left in the current chunk
	UsageSink sink;
	void *arg;
};

constexpr std::size_t kChunk = 256 * 1024;

Cell CopyText(UsageReceiver *r, Datum d, bool isnull) {
	if (isnull)
		return Cell{nullptr, 0};
	struct varlena *v = PG_DETOAST_DATUM_PACKED(d); // a copy in r->context when it was toasted
	const std::size_t len = VARSIZE_ANY_EXHDR(v);
	if (r->arena == nullptr || len > r->room) { // (never a null p for a text: null p is SQL null)
		const std::size_t size = len > kChunk ? len : kChunk;
		r->arena = static_cast<char *>(palloc(size));
		r->room = size;
	}
	char *p = r->arena;
	memcpy(p, VARDATA_ANY(v), len);
	r->arena += len;
	r->room -= len;
	return Cell{p, static_cast<int>(len)};
}

void StartBatch(UsageReceiver *r) {
	MemoryContextReset(r->context);
	r->batch.nrows = 0;
	r->batch.rows = static_cast<UsageRow *>(MemoryContextAlloc(r->context, sizeof(UsageRow) * r->max_rows));
	r->arena = nullptr;
	r->room = 0;
}

void FlushBatch(UsageReceiver *r) {
	if (r->batch.nrows == 0)
		return;
	if (!r->sink(r->arg, &r->batch))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("billrecon: the counting pass stopped the usage scan"),
		                errdetail("The counting pass reports its own error."),
		                errhint("This message should not reach a user; if it does, please report it.")));
	StartBatch(r);
}

bool ReceiveUsage(TupleTableSlot *slot, DestReceiver *self) {
	UsageReceiver *r = reinterpret_cast<UsageReceiver *>(self);
	slot_getallattrs(slot);
	const Datum *values = slot->tts_values;
	const bool *isnull = slot->tts_isnull;
	MemoryContext old = MemoryContextSwitchTo(r->context);
	UsageRow &row = r->batch.rows[r->batch.nrows];
	row.id = DatumGetInt64(values[0]);
	row.account_id = DatumGetInt64(values[1]);
	row.client_id = DatumGetInt64(values[2]);
	row.integration_id = DatumGetInt32(values[3]);
	row.enabled = Flag(values[4], isnull[4]);
	row.licensed = Flag(values[5], isnull[5]);
	row.integration_enabled = !isnull[6] && DatumGetBool(values[6]);
	for (int t = 0; t < kUtCount; ++t)
		row.text[t] = CopyText(r, values[kFixedColumns + t], isnull[kFixedColumns + t]);
	MemoryContextSwitchTo(old);
	if (++r->batch.nrows == r->max_rows)
		FlushBatch(r);
	return true;
}

void StartupUsage(DestReceiver *, int, TupleDesc) {
}

void ShutdownUsage(DestReceiver *self) {
	FlushBatch(reinterpret_cast<UsageReceiver *>(self)); // the last, partial batch
}

void DestroyUsage(DestReceiver *) {
}

} // namespace

void ScanUsage(bool has_company, int64 company_id, int max_rows, UsageSink sink, void *arg) {
	UsageReceiver *r = static_cast<UsageReceiver *>(palloc0(sizeof(UsageReceiver)));
	r->pub.receiveSlot = ReceiveUsage;
	r->pub.rStartup = StartupUsage;
	r->pub.rShutdown = ShutdownUsage;
	r->pub.rDestroy = DestroyUsage;
	r->pub.mydest = DestTuplestore; // any but DestNone: SPI reports SPI_OK_UTILITY for a discarded SELECT
	r->context = AllocSetContextCreate(CurrentMemoryContext, "billrecon usage batch", ALLOCSET_DEFAULT_SIZES);
	r->max_rows = max_rows > 0 ? max_rows : 1;
	r->sink = sink;
	r->arg = arg;
	StartBatch(r);

	ParamListInfo params = makeParamList(1);
	params->params[0].ptype = INT8OID;
	params->params[0].value = Int64GetDatum(company_id);
	params->params[0].isnull = !has_company;
	params->params[0].pflags = PARAM_FLAG_CONST;
	SPIExecuteOptions options;
	memset(&options, 0, sizeof options);
	options.params = params;
	options.read_only = true;
	options.dest = &r->pub;
	g_scan_context = r->context;
	int rc = 0;
	PG_TRY();
	{
		rc = SPI_execute_extended(kUsageQuery, &options);
	}
	PG_FINALLY();
	{
		g_scan_context = nullptr;
	}
	PG_END_TRY();
	CheckSpi(rc, SPI_OK_SELECT, "scanning the usage records");
	MemoryContextDelete(r->context);
	pfree(r);
}

namespace {

void CaseMapInto(MemoryContext context, bool upper, const char *p, int len, Cell *result) {
	MemoryContext old = MemoryContextSwitchTo(context);
	text *in = cstring_to_text_with_len(p, len);
	text *out = DatumGetTextPP(DirectFunctionCall1Coll(upper ? ::upper : ::lower, DEFAULT_COLLATION_OID,
	                                                   PointerGetDatum(in)));
	MemoryContextSwitchTo(old);
	*result = Cell{VARDATA_ANY(out), static_cast<int>(VARSIZE_ANY_EXHDR(out))};
}

} // namespace

void *MakePattern(const char *pattern, int len) {
	return cstring_to_text_with_len(pattern, len);
}

bool MatchesPattern(void *pattern, const char *value, int len) {
	text *v = cstring_to_text_with_len(value, len);
	bool r = DatumGetBool(DirectFunctionCall2Coll(texticregexeq, DEFAULT_COLLATION_OID, PointerGetDatum(v),
	                                              PointerGetDatum(static_cast<text *>(pattern))));
	pfree(v);
	return r;
}

void CaseMap(bool upper, const char *p, int len, Cell *result) {
	CaseMapInto(g_scan_context != nullptr ? g_scan_context : CurrentMemoryContext, upper, p, len, result);
}

bool AsciiCaseIsPlain() {
	char all[127];
	for (int c = 1; c < 128; ++c)
		all[c - 1] = static_cast<char>(c);
	for (int i = 0; i < 2; ++i) {
		const bool upper = i == 1;
		Cell mapped;
		CaseMap(upper, all, 127, &mapped);
		if (mapped.len != 127)
			return false;
		for (int c = 1; c < 128; ++c) {
			int want = c;
			if (upper && c >= 'a' && c <= 'z')
				want = c - 'a' + 'A';
			if (!upper && c >= 'A' && c <= 'Z')
				want = c - 'A' + 'a';
			if (static_cast<unsigned char>(mapped.p[c - 1]) != want)
				return false;
		}
	}
	return true;
}

void AsciiMatches(char c, bool *matches) {
	text *pattern = cstring_to_text_with_len(&c, 1);
	matches[0] = false;
	for (int x = 1; x < 128; ++x) {
		char v = static_cast<char>(x);
		text *value = cstring_to_text_with_len(&v, 1);
		matches[x] = DatumGetBool(DirectFunctionCall2Coll(texticregexeq, DEFAULT_COLLATION_OID, PointerGetDatum(value),
		                                                  PointerGetDatum(pattern)));
		pfree(value);
	}
	pfree(pattern);
}

void PrepareCountTables() {
	struct Table {
		const char *name;
		const char *create;
	};
	// Never IF NOT EXISTS: a table of the caller's of that name would be kept
	// and written with the extension owner's rights (062_session_tables.sql).
	const Table tables[] = {
	    {"billrecon_group_counts",
	     "CREATE TEMP TABLE billrecon_group_counts ("
	     " psa_company_id bigint, rule_id bigint, integration_id integer, quantity numeric, machines bigint)"
	     " ON COMMIT DELETE ROWS"},
	    {"billrecon_unaccounted_parts",
	     "CREATE TEMP TABLE billrecon_unaccounted_parts ("
	     " psa_company_id bigint, integration_id integer, kind text, product text, display_name text,"
	     " account_id bigint, quantity numeric, min_usage_id bigint) ON COMMIT DELETE ROWS"},
	    {"billrecon_client_seats",
	     "CREATE TEMP TABLE billrecon_client_seats ("
	     " psa_company_id bigint, seats numeric, devices numeric, users numeric, licences numeric,"
	     " subscriptions numeric) ON COMMIT DELETE ROWS"}};
	// Created once per session; billrecon._session_table() says whether this
	// session has billrecon's own already and refuses anyone else's.
	Oid argtypes[1] = {TEXTOID};
	for (const Table &t : tables) {
		Datum arg[1] = {CStringGetTextDatum(t.name)};
		int rc = SPI_execute_with_args("SELECT billrecon._session_table($1)", 1, argtypes, arg, nullptr, true, 1);
		CheckSpi(rc, SPI_OK_SELECT, "looking for the count tables");
		bool isnull = true;
		Datum exists = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull && DatumGetBool(exists))
			continue;
		rc = SPI_execute(t.create, false, 0);
		if (rc != SPI_OK_UTILITY)
			CheckSpi(rc, SPI_OK_UTILITY, "preparing the count tables");
	}
	// Kept for the session, emptied at commit; a second run in one
	// transaction starts from empty tables too.
	const char *const empty[] = {"DELETE FROM pg_temp.billrecon_group_counts",
	                             "DELETE FROM pg_temp.billrecon_unaccounted_parts",
	                             "DELETE FROM pg_temp.billrecon_client_seats"};
	for (const char *sql : empty)
		CheckSpi(SPI_execute(sql, false, 0), SPI_OK_DELETE, "emptying the count tables");
}

void AnalyzeCountTables() {
	int rc = SPI_execute("ANALYZE pg_temp.billrecon_group_counts, pg_temp.billrecon_unaccounted_parts,"
	                     " pg_temp.billrecon_client_seats",
	                     false, 0);
	if (rc != SPI_OK_UTILITY)
		CheckSpi(rc, SPI_OK_UTILITY, "analyzing the count tables");
}

void InsertTextColumns(const char *sql, int ncols, int nrows, const char *const *const *columns) {
	Oid *types = static_cast<Oid *>(palloc(sizeof(Oid) * ncols));
	Datum *args = static_cast<Datum *>(palloc(sizeof(Datum) * ncols));
	for (int c = 0; c < ncols; ++c) {
		types[c] = TEXTARRAYOID;
		args[c] = TextArray(nrows, columns[c], 1, 0);
	}
	int rc = SPI_execute_with_args(sql, ncols, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_INSERT, "storing the counts");
}

void LogDebug(const char *message) {
	elog(DEBUG1, "%s", message);
}

} // namespace billrecon::pg
