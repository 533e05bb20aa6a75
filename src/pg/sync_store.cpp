#include "pg/sync_store.hpp"

#include "pg/guc.hpp"
#include "pg/spi_util.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "catalog/pg_authid.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace billrecon::pg {

namespace {

// Advisory lock key space of billrecon ("bill"), second key = integration id.
constexpr int32 kLockClass = 0x62696c6c;

char *CopyUpper(const char *s) {
	if (!s)
		return nullptr;
	size_t n = strlen(s);
	char *out = static_cast<char *>(SPI_palloc(n + 1));
	memcpy(out, s, n + 1);
	return out;
}

char *Value(int row, int col) {
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

// A bytea cell copied out of SPI (nullptr, 0 for NULL).
void CopyBytea(int row, int col, char **out, int32 *len) {
	bool isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	*out = nullptr;
	*len = 0;
	if (isnull)
		return;
	bytea *b = DatumGetByteaPP(d);
	*len = static_cast<int32>(VARSIZE_ANY_EXHDR(b));
	*out = static_cast<char *>(SPI_palloc(*len > 0 ? *len : 1));
	memcpy(*out, VARDATA_ANY(b), *len);
}

// Staging columns: name and how the text becomes the column's type.
struct StageColumn {
	const char *name;
	const char *cast; // SQL type, "" for text, "lines" for a newline-joined text[]
};

const StageColumn kCompanyCols[] = {{"external_id", ""}, {"name", ""},        {"identifier", ""},
                                    {"status", ""},      {"website", ""},     {"domains", "lines"},
                                    {"deleted", "bool"}, {"source_updated_at", "timestamptz"}};
const StageColumn kAgreementCols[] = {
    {"external_id", ""},         {"company_external_id", ""}, {"name", ""},           {"type", ""},
    {"billing_cycle", ""},       {"billing_cycle_label", ""}, {"start_date", "date"}, {"end_date", "date"},
    {"prorate", "bool"},      {"status", ""},              {"cancelled", "bool"}, {"cancelled_date", "date"},
    {"source_updated_at", "timestamptz"}};
const StageColumn kLineItemCols[] = {
    {"external_id", ""},        {"agreement_external_id", ""}, {"company_external_id", ""},
    {"product_code", ""},       {"product_name", ""},          {"description", ""},
    {"quantity", "numeric"},    {"unit_price", "numeric"},     {"unit_cost", "numeric"},
    {"billing_type", ""},       {"quantity_source", ""},       {"effective_date", "date"},
    {"cancel_date", "date"},    {"parent_external_id", ""},    {"source_updated_at", "timestamptz"}};
const StageColumn kAccountCols[] = {{"external_id", ""}, {"name", ""}, {"domains", "lines"}, {"status", ""},
                                    {"source_updated_at", "timestamptz"}};
const StageColumn kUsageCols[] = {
    {"external_id", ""},         {"account_external_id", ""},   {"kind", ""},
    {"product", ""},             {"product_name", ""},          {"quantity", "numeric"},
    {"device_class", ""},        {"os_name", ""},               {"device_name", ""},
    {"serial_number", ""},       {"licensed", "bool"},       {"enabled", "bool"},
    {"online", "bool"},       {"last_active_at", "timestamptz"}, {"unit_cost", "numeric"},
    {"purchased_quantity", "numeric"}, {"status", ""}, {"billing_term", ""}, {"term_end_date", "date"},
    {"user_name", ""},        {"source_updated_at", "timestamptz"}};

struct StageSpec {
	const char *table;
	const StageColumn *cols;
	int ncols;
};

const StageSpec kStageSpecs[kStageTableCount] = {
    {"billrecon._stage_companies", kCompanyCols, lengthof(kCompanyCols)},
    {"billrecon._stage_agreements", kAgreementCols, lengthof(kAgreementCols)},
    {"billrecon._stage_line_items", kLineItemCols, lengthof(kLineItemCols)},
    {"billrecon._stage_vendor_accounts", kAccountCols, lengthof(kAccountCols)},
    {"billrecon._stage_usage_records", kUsageCols, lengthof(kUsageCols)},
};

// Prepared once per backend and kept (SPI_keepplan); the plan cache
// replans them if the tables change.
SPIPlanPtr g_stage_plans[kStageTableCount];

SPIPlanPtr StagePlan(int table) {
	if (g_stage_plans[table])
		return g_stage_plans[table];
	const StageSpec &spec = kStageSpecs[table];
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (run_id", spec.table);
	for (int i = 0; i < spec.ncols; ++i)
		appendStringInfo(&sql, ", %s", spec.cols[i].name);
	appendStringInfoString(&sql, ") SELECT $1");
	for (int i = 0; i < spec.ncols; ++i) {
		const char *cast = spec.cols[i].cast;
		if (cast[0] == '\0')
			appendStringInfo(&sql, ", u.c%d", i + 1);
		else if (strcmp(cast, "lines") == 0)
			appendStringInfo(&sql, ", pg_catalog.string_to_array(u.c%d, E'\\n')", i + 1);
		else
			appendStringInfo(&sql, ", u.c%d::pg_catalog.%s", i + 1, cast);
	}
	// Unqualified on purpose: only plain "unnest" takes several arrays (a FROM
	// clause special case); search_path is pinned to pg_catalog here.
	appendStringInfoString(&sql, " FROM unnest(");
	for (int i = 0; i < spec.ncols; ++i)
		appendStringInfo(&sql, "%s$%d::pg_catalog.text[]", i ? ", " : "", i + 2);
	appendStringInfoString(&sql, ") AS u(");
	for (int i = 0; i < spec.ncols; ++i)
		appendStringInfo(&sql, "%sc%d", i ? ", " : "", i + 1);
	appendStringInfoChar(&sql, ')');

	Oid types[1 + 32];
	types[0] = INT8OID;
	for (int i = 0; i < spec.ncols; ++i)
		types[i + 1] = TEXTARRAYOID;
	SPIPlanPtr plan = SPI_prepare(sql.data, spec.ncols + 1, types);
	if (!plan)
		CheckSpi(SPI_result, SPI_OK_SELECT, "preparing the staging insert");
	SPI_keepplan(plan);
	pfree(sql.data);
	g_stage_plans[table] = plan;
	return plan;
}

// One page of usage records straight into billrecon.usage_records, as typed
// arrays (no text casts in SQL): the sink has resolved each row's vendor
// account and kept the last of an id repeated on the page. New rows are
// inserted; a stored row is updated only when the vendor's fields, its
// account or its removal changed (record image equality, so that 1 and 1.0
// differ as they do on screen): the nightly full sync that finds nothing
// new writes nothing but the rows that changed.
struct UsageColumn {
	int cell;    // index into kUsageCols (-1: the account id array)
	Oid type;    // element type of the parameter array
};

const UsageColumn kUsageLive[] = {
    {0, TEXTOID},        {-1, INT8OID},       {2, TEXTOID},         {3, TEXTOID},   {4, TEXTOID},
    {5, NUMERICOID},     {6, TEXTOID},        {7, TEXTOID},         {8, TEXTOID},   {9, TEXTOID},
    {10, BOOLOID},       {11, BOOLOID},       {12, BOOLOID},        {13, TIMESTAMPTZOID}, {14, NUMERICOID},
    {15, NUMERICOID},    {16, TEXTOID},       {17, TEXTOID},        {18, DATEOID},  {19, TEXTOID},
    {20, TIMESTAMPTZOID}};
constexpr int kUsageLiveCount = lengthof(kUsageLive);

const char *UsageLiveName(int i) {
	return kUsageLive[i].cell < 0 ? "account_id" : kUsageCols[kUsageLive[i].cell].name;
}

SPIPlanPtr g_usage_plan;

SPIPlanPtr UsagePlan() {
	if (g_usage_plan)
		return g_usage_plan;
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "INSERT INTO billrecon.usage_records AS t (integration_id");
	for (int i = 0; i < kUsageLiveCount; ++i)
		appendStringInfo(&sql, ", %s", UsageLiveName(i));
	// unnest in the target list (ProjectSet) streams the rows; in FROM it
	// would first copy the page into a tuplestore. Equal lengths: zipped.
	appendStringInfoString(&sql, ", first_seen_at, last_seen_at, removed_at, last_sync_run_id) SELECT $2");
	for (int i = 0; i < kUsageLiveCount; ++i)
		appendStringInfo(&sql, ", pg_catalog.unnest($%d)", i + 4);
	appendStringInfoString(&sql, ", $3, $3, NULL::pg_catalog.timestamptz, $1");
	appendStringInfoString(&sql, " ON CONFLICT (integration_id, external_id) DO UPDATE SET ");
	for (int i = 1; i < kUsageLiveCount; ++i)
		appendStringInfo(&sql, "%s = excluded.%s, ", UsageLiveName(i), UsageLiveName(i));
	appendStringInfoString(&sql, "last_seen_at = excluded.last_seen_at, removed_at = NULL,"
	                             " last_sync_run_id = excluded.last_sync_run_id"
	                             " WHERE t.removed_at IS NOT NULL OR NOT pg_catalog.record_image_eq(ROW(");
	for (int i = 1; i < kUsageLiveCount; ++i)
		appendStringInfo(&sql, "%st.%s", i > 1 ? ", " : "", UsageLiveName(i));
	appendStringInfoString(&sql, "), ROW(");
	for (int i = 1; i < kUsageLiveCount; ++i)
		appendStringInfo(&sql, "%sexcluded.%s", i > 1 ? ", " : "", UsageLiveName(i));
	appendStringInfoString(&sql, "))");

	Oid types[3 + kUsageLiveCount];
	types[0] = INT8OID;
	types[1] = INT4OID;
	types[2] = TIMESTAMPTZOID;
	for (int i = 0; i < kUsageLiveCount; ++i)
		types[3 + i] = get_array_type(kUsageLive[i].type);
	SPIPlanPtr plan = SPI_prepare(sql.data, 3 + kUsageLiveCount, types);
	if (!plan)
		CheckSpi(SPI_result, SPI_OK_INSERT, "preparing the usage upsert");
	SPI_keepplan(plan);
	pfree(sql.data);
	g_usage_plan = plan;
	return plan;
}

int Digits(const char *s, int n) {
	int v = 0;
	for (int i = 0; i < n; ++i) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

// The model's ISO UTC form, YYYY-MM-DDTHH:MM:SS[.ffffff]Z, without the
// general date parser; false for anything else (the caller falls back to
// timestamptz_in, which also gives the error for bad input).
bool FastIsoUtc(const char *s, TimestampTz *out) {
	size_t n = strlen(s);
	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[n - 1] != 'Z')
		return false;
	struct pg_tm tm = {};
	tm.tm_year = Digits(s, 4);
	tm.tm_mon = Digits(s + 5, 2);
	tm.tm_mday = Digits(s + 8, 2);
	tm.tm_hour = Digits(s + 11, 2);
	tm.tm_min = Digits(s + 14, 2);
	tm.tm_sec = Digits(s + 17, 2);
	if (tm.tm_year < 1 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_hour < 0 || tm.tm_hour > 23 ||
	    tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 59)
		return false;
	if (tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1])
		return false;
	fsec_t fsec = 0;
	size_t pos = 19;
	if (s[pos] == '.') {
		size_t digits = n - 1 - (pos + 1);
		if (digits < 1 || digits > 6)
			return false;
		int frac = Digits(s + pos + 1, static_cast<int>(digits));
		if (frac < 0)
			return false;
		for (size_t i = digits; i < 6; ++i)
			frac *= 10;
		fsec = frac;
	} else if (pos != n - 1) {
		return false;
	}
	return tm2timestamp(&tm, fsec, nullptr, out) == 0 && IS_VALID_TIMESTAMP(*out);
}

// Input function of each parameter element type, looked up once.
struct TypeIn {
	Oid type;
	FmgrInfo fn;
	Oid ioparam;
	int16 len;
	bool byval;
	char align;
};

TypeIn *UsageTypeIn(Oid type) {
	static TypeIn cache[8];
	static int used = 0;
	for (int i = 0; i < used; ++i)
		if (cache[i].type == type)
			return &cache[i];
	TypeIn *t = &cache[used];
	Oid infn;
	getTypeInputInfo(type, &infn, &t->ioparam);
	fmgr_info_cxt(infn, &t->fn, TopMemoryContext);
	get_typlenbyvalalign(type, &t->len, &t->byval, &t->align);
	t->type = type;
	++used;
	return t;
}

Datum TypedArray(const UsageColumn &col, int n, const int64 *account_ids, const char *const *cells, int stride) {
	TypeIn *in = UsageTypeIn(col.type);
	Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
	bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * (n > 0 ? n : 1)));
	for (int i = 0; i < n; ++i) {
		if (col.cell < 0) {
			nulls[i] = false;
			elems[i] = Int64GetDatum(account_ids[i]);
			continue;
		}
		const char *v = cells[i * stride + col.cell];
		nulls[i] = v == nullptr;
		if (!v) {
			elems[i] = (Datum)0;
			continue;
		}
		TimestampTz ts;
		switch (col.type) {
		case TEXTOID:
			elems[i] = CStringGetTextDatum(v);
			break;
		case BOOLOID:
			if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
				elems[i] = BoolGetDatum(v[0] == 't');
			else
				elems[i] = InputFunctionCall(&in->fn, const_cast<char *>(v), in->ioparam, -1);
			break;
		case TIMESTAMPTZOID:
			if (FastIsoUtc(v, &ts))
				elems[i] = TimestampTzGetDatum(ts);
			else
				elems[i] = InputFunctionCall(&in->fn, const_cast<char *>(v), in->ioparam, -1);
			break;
		default:
			elems[i] = InputFunctionCall(&in->fn, const_cast<char *>(v), in->ioparam, -1);
			break;
		}
	}
	int dims[1] = {n};
	int lbs[1] = {1};
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, col.type, in->len, in->byval, in->align));
}

} // namespace

void SpiConnect() {
	CheckSpi(SPI_connect(), SPI_OK_CONNECT, "SPI_connect");
}

void SpiFinish() {
	CheckSpi(SPI_finish(), SPI_OK_FINISH, "SPI_finish");
}

IntegrationList *LoadIntegrations(const char *name) {
	Oid types[1] = {TEXTOID};
	Datum args[1] = {name ? CStringGetTextDatum(name) : (Datum)0};
	char nulls[1] = {name ? ' ' : 'n'};
	/* encrypted_credentials came in 0.2.0. Between a restart on this library
	   and ALTER EXTENSION billrecon UPDATE the database still has the 0.1.0
	   table (clear credentials only), and scheduled syncs keep running: the
	   column is read through the row's jsonb, NULL when it does not exist
	   (bytea -> text -> bytea is lossless in either bytea_output). */
	int rc = SPI_execute_with_args(
	    "SELECT i.id, i.name, i.kind, i.base_url, billrecon._effective_options(i.id)::text,"
	    "       coalesce(c.credentials, '{}')::text, i.enabled,"
	    "       (to_jsonb(c) ->> 'encrypted_credentials')::bytea"
	    "  FROM billrecon.integrations i"
	    "  LEFT JOIN billrecon.integration_credentials c ON c.integration_id = i.id"
	    " WHERE CASE WHEN $1 IS NULL THEN i.enabled ELSE i.name = $1 END"
	    /* PSAs first; Partner Center before the Microsoft 365 tenants it lists. */
	    " ORDER BY i.side = 'psa' DESC, i.kind = 'partnercenter' DESC, i.name",
	    1, types, args, nulls, true, 0);
	CheckSpi(rc, SPI_OK_SELECT, "reading billrecon.integrations");
	if (name && SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("integration \"%s\" does not exist", name),
		                errdetail("No row of billrecon.integrations has name \"%s\".", name),
		                errhint("SELECT name FROM billrecon.integrations lists the integrations; "
		                        "billrecon.add_integration() adds one.")));
	if (name && strcmp(Value(0, 7), "f") == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("integration \"%s\" is disabled", name),
		                errdetail("Its enabled flag is off, so it is not synced."),
		                errhint("Enable it with SELECT billrecon.update_integration('%s', enabled => true).", name)));
	IntegrationList *list = static_cast<IntegrationList *>(SPI_palloc(sizeof(IntegrationList)));
	list->count = static_cast<int>(SPI_processed);
	list->rows = static_cast<IntegrationRow *>(SPI_palloc(sizeof(IntegrationRow) * (list->count + 1)));
	for (int i = 0; i < list->count; ++i) {
		IntegrationRow *r = &list->rows[i];
		r->id = pg_strtoint32(Value(i, 1));
		r->name = CopyUpper(Value(i, 2));
		r->kind = CopyUpper(Value(i, 3));
		r->base_url = CopyUpper(Value(i, 4));
		r->options_json = CopyUpper(Value(i, 5));
		r->credentials_json = CopyUpper(Value(i, 6));
		CopyBytea(i, 8, &r->encrypted, &r->encrypted_len);
	}
	return list;
}

bool TryLockIntegration(int32 integration_id) {
	Oid types[2] = {INT4OID, INT4OID};
	Datum args[2] = {Int32GetDatum(kLockClass), Int32GetDatum(integration_id)};
	int rc = SPI_execute_with_args("SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)", 2, types, args, nullptr,
	                               false, 1);
	CheckSpi(rc, SPI_OK_SELECT, "locking the integration");
	bool isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

void StartRun(int32 integration_id, const char *requested_mode, RunStart *out) {
	Oid types[4] = {INT4OID, TEXTOID, FLOAT8OID, TEXTOID};
	Datum args[4] = {Int32GetDatum(integration_id), CStringGetTextDatum(requested_mode),
	                 Float8GetDatum(static_cast<double>(g_settings.quick_sync_overlap_s)),
	                 CStringGetTextDatum(OuterUserName())};
	int rc = SPI_execute_with_args(
	    "INSERT INTO billrecon.sync_runs (integration_id, requested_mode, changes_since, started_by)"
	    " VALUES ($1, $2, CASE WHEN $2 = 'quick' THEN"
	    "   (SELECT max(r.started_at) - make_interval(secs => $3) FROM billrecon.sync_runs r"
	    "     WHERE r.integration_id = $1 AND r.status = 'succeeded') END, $4::name)"
	    " RETURNING id, to_char(changes_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
	    4, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_INSERT_RETURNING, "recording the sync run");
	out->run_id = pg_strtoint64(Value(0, 1));
	const char *since = Value(0, 2);
	out->has_since = since != nullptr;
	strlcpy(out->since, since ? since : "", sizeof out->since);
}

void FinishRun(const RunFinish *f) {
	int warnings = 0;
	for (int i = 0; i < f->nmessages; ++i)
		if (strcmp(f->levels[i], "warning") == 0)
			++warnings;
	Oid types[14] = {INT8OID, TEXTOID, TEXTOID, BOOLOID, INT8OID, INT8OID, INT8OID,
	                 INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum args[14];
	char nulls[14];
	memset(nulls, ' ', sizeof nulls);
	args[0] = Int64GetDatum(f->run_id);
	args[1] = CStringGetTextDatum(f->status);
	args[2] = f->mode ? CStringGetTextDatum(f->mode) : (Datum)0;
	nulls[2] = f->mode ? ' ' : 'n';
	args[3] = BoolGetDatum(f->keep_since);
	args[4] = Int64GetDatum(f->pages);
	args[5] = Int64GetDatum(f->records);
	args[6] = Int64GetDatum(f->requests);
	args[7] = Int64GetDatum(f->retries);
	args[8] = Int64GetDatum(f->bytes);
	args[9] = Int32GetDatum(warnings);
	const char *texts[4] = {f->error, f->error_detail, f->error_sqlstate, f->note};
	for (int i = 0; i < 4; ++i) {
		bool present = texts[i] && texts[i][0];
		args[10 + i] = present ? CStringGetTextDatum(texts[i]) : (Datum)0;
		nulls[10 + i] = present ? ' ' : 'n';
	}
	int rc = SPI_execute_with_args(
	    "UPDATE billrecon.sync_runs SET status = $2, mode = $3, finished_at = clock_timestamp(),"
	    " changes_since = CASE WHEN $4 THEN changes_since END, pages = $5, records = $6, requests = $7,"
	    " retries = $8, bytes = $9, warnings = $10, error = $11, error_detail = $12, error_sqlstate = $13,"
	    " note = $14 WHERE id = $1",
	    14, types, args, nulls, false, 0);
	CheckSpi(rc, SPI_OK_UPDATE, "recording the end of the sync run");
	if (f->nmessages > 0) {
		Oid mtypes[3] = {INT8OID, TEXTARRAYOID, TEXTARRAYOID};
		Datum margs[3] = {Int64GetDatum(f->run_id), TextArray(f->nmessages, f->levels, 1, 0),
		                  TextArray(f->nmessages, f->messages, 1, 0)};
		rc = SPI_execute_with_args("INSERT INTO billrecon.sync_run_messages (run_id, seq, level, message)"
		                           " SELECT $1, u.seq, u.level, u.message"
		                           "   FROM unnest($2, $3) WITH ORDINALITY AS u(level, message, seq)",
		                           3, mtypes, margs, nullptr, false, 0);
		CheckSpi(rc, SPI_OK_INSERT, "recording sync messages");
	}
}

int StageColumns(int table) {
	return kStageSpecs[table].ncols;
}

void StageBatch(int table, int64 run_id, int nrows, const char *const *cells) {
	const StageSpec &spec = kStageSpecs[table];
	MemoryContext batch = AllocSetContextCreate(CurrentMemoryContext, "billrecon staging batch",
	                                            ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(batch);
	Datum args[1 + 32];
	args[0] = Int64GetDatum(run_id);
	for (int c = 0; c < spec.ncols; ++c)
		args[c + 1] = TextArray(nrows, cells, spec.ncols, c);
	MemoryContextSwitchTo(old);
	int rc = SPI_execute_plan(StagePlan(table), args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_INSERT, "staging synced rows");
	MemoryContextDelete(batch);
}

int64 UpsertUsagePage(int64 run_id, int32 integration_id, int nrows, const int64 *account_ids,
                      const char *const *cells) {
	const int stride = lengthof(kUsageCols);
	MemoryContext batch = AllocSetContextCreate(CurrentMemoryContext, "billrecon usage batch", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(batch);
	Datum args[3 + kUsageLiveCount];
	args[0] = Int64GetDatum(run_id);
	args[1] = Int32GetDatum(integration_id);
	args[2] = TimestampTzGetDatum(GetCurrentTimestamp()); // clock_timestamp(), once per page
	for (int c = 0; c < kUsageLiveCount; ++c)
		args[3 + c] = TypedArray(kUsageLive[c], nrows, account_ids, cells, stride);
	MemoryContextSwitchTo(old);
	int rc = SPI_execute_plan(UsagePlan(), args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_INSERT, "storing synced usage records");
	int64 written = static_cast<int64>(SPI_processed);
	MemoryContextDelete(batch);
	return written;
}

bool SchemaStoresUsageDirectly() {
	int rc = SPI_execute("SELECT pg_catalog.to_regprocedure('billrecon._apply_staged_accounts(bigint,timestamptz)')"
	                     " IS NOT NULL",
	                     true, 1);
	CheckSpi(rc, SPI_OK_SELECT, "reading the billrecon schema version");
	bool isnull;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

AccountIds *LoadAccountIds(int64 run_id) {
	Oid types[1] = {INT8OID};
	Datum args[1] = {Int64GetDatum(run_id)};
	// Not read-only: a fresh snapshot sees the accounts this sync just stored.
	int rc = SPI_execute_with_args("SELECT r.integration_id, va.external_id, va.id FROM billrecon.sync_runs r"
	                               " LEFT JOIN billrecon.vendor_accounts va"
	                               "   ON va.integration_id OPERATOR(pg_catalog.=) r.integration_id"
	                               " WHERE r.id OPERATOR(pg_catalog.=) $1",
	                               1, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_SELECT, "reading the synced vendor accounts");
	AccountIds *out = static_cast<AccountIds *>(SPI_palloc(sizeof(AccountIds)));
	int n = static_cast<int>(SPI_processed);
	out->integration_id = 0;
	out->count = 0;
	out->external_ids = static_cast<char **>(SPI_palloc(sizeof(char *) * (n + 1)));
	out->ids = static_cast<int64 *>(SPI_palloc(sizeof(int64) * (n + 1)));
	for (int i = 0; i < n; ++i) {
		bool isnull;
		out->integration_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		Datum id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);
		if (isnull)
			continue; // no accounts yet: the LEFT JOIN's one row
		out->external_ids[out->count] = CopyUpper(Value(i, 2));
		out->ids[out->count] = DatumGetInt64(id);
		++out->count;
	}
	return out;
}

void ApplyStagedAccounts(int64 run_id) {
	Oid types[1] = {INT8OID};
	Datum args[1] = {Int64GetDatum(run_id)};
	int rc = SPI_execute_with_args("SELECT billrecon._apply_staged_accounts($1)", 1, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_SELECT, "storing the synced vendor accounts");
}

// A text[] of n '\0'-ended strings laid end to end, built in place: no
// Datum per element (a nightly full sync passes a million ids).
Datum PackedTextArray(int64 n, const char *packed) {
	Size bytes = 0;
	const char *p = packed;
	for (int64 i = 0; i < n; ++i) {
		size_t len = strlen(p);
		bytes += INTALIGN(VARHDRSZ + len);
		p += len + 1;
	}
	Size header = ARR_OVERHEAD_NONULLS(1);
	ArrayType *arr = static_cast<ArrayType *>(palloc0(header + bytes));
	SET_VARSIZE(arr, header + bytes);
	arr->ndim = 1;
	arr->dataoffset = 0;
	arr->elemtype = TEXTOID;
	ARR_DIMS(arr)[0] = static_cast<int>(n);
	ARR_LBOUND(arr)[0] = 1;
	char *out = ARR_DATA_PTR(arr);
	p = packed;
	for (int64 i = 0; i < n; ++i) {
		size_t len = strlen(p);
		SET_VARSIZE(out, VARHDRSZ + len);
		memcpy(VARDATA(out), p, len);
		out += INTALIGN(VARHDRSZ + len);
		p += len + 1;
	}
	return PointerGetDatum(arr);
}

void ApplyStaged(int64 run_id, bool full, int64 nunchanged, const char *unchanged, ApplyResult *out) {
	Oid types[3] = {INT8OID, BOOLOID, TEXTARRAYOID};
	Datum args[3] = {Int64GetDatum(run_id), BoolGetDatum(full), (Datum)0};
	// Without unchanged rows the two-argument call, which a 0.1.0 schema
	// (library updated, ALTER EXTENSION not yet run) also has.
	if (nunchanged > 0)
		args[2] = PackedTextArray(nunchanged, unchanged);
	int rc = SPI_execute_with_args(nunchanged > 0
	                                   ? "SELECT skipped_agreements, skipped_line_items, skipped_usage_records"
	                                     "  FROM billrecon._apply_staged($1, $2, $3)"
	                                   : "SELECT skipped_agreements, skipped_line_items, skipped_usage_records"
	                                     "  FROM billrecon._apply_staged($1, $2)",
	                               nunchanged > 0 ? 3 : 2, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_SELECT, "applying the synced rows");
	out->skipped_agreements = pg_strtoint64(Value(0, 1));
	out->skipped_line_items = pg_strtoint64(Value(0, 2));
	out->skipped_usage = pg_strtoint64(Value(0, 3));
}

void BeginSubxact(Subxact *sx) {
	sx->context = CurrentMemoryContext;
	sx->owner = CurrentResourceOwner;
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(sx->context);
}

void CommitSubxact(const Subxact *sx) {
	ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(sx->context);
	CurrentResourceOwner = sx->owner;
}

void RollbackSubxact(const Subxact *sx) {
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(sx->context);
	CurrentResourceOwner = sx->owner;
}

void CheckInterrupts() {
	CHECK_FOR_INTERRUPTS();
}

char *TextArg(FunctionCallInfo fcinfo, int n) {
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

void InitResultSet(FunctionCallInfo fcinfo) {
	InitMaterializedSRF(fcinfo, 0);
}

void EmitSyncRow(FunctionCallInfo fcinfo, const SyncResultRow *row) {
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	Datum values[10];
	bool nulls[10] = {false};
	values[0] = CStringGetTextDatum(row->integration);
	values[1] = CStringGetTextDatum(row->status);
	values[2] = Int64GetDatum(row->records);
	nulls[3] = row->error == nullptr;
	values[3] = row->error ? CStringGetTextDatum(row->error) : (Datum)0;
	nulls[4] = row->run_id == 0;
	values[4] = Int64GetDatum(row->run_id);
	nulls[5] = row->mode == nullptr;
	values[5] = row->mode ? CStringGetTextDatum(row->mode) : (Datum)0;
	values[6] = Int64GetDatum(row->pages);
	values[7] = Int64GetDatum(row->requests);
	values[8] = Int64GetDatum(row->retries);
	values[9] = Int32GetDatum(row->warnings);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

char *EffectiveOptions(int32 integration_id) {
	Oid types[1] = {INT4OID};
	Datum args[1] = {Int32GetDatum(integration_id)};
	// Not read-only: a fresh snapshot sees what earlier syncs of this call wrote.
	int rc = SPI_execute_with_args("SELECT billrecon._effective_options($1)::text", 1, types, args, nullptr, false, 1);
	CheckSpi(rc, SPI_OK_SELECT, "reading the integration's options");
	return CopyUpper(Value(0, 1));
}

void LoadLineForWrite(int32 integration_id, const char *line_external_id, LineForWrite *out) {
	Oid types[2] = {INT4OID, TEXTOID};
	Datum args[2] = {Int32GetDatum(integration_id), CStringGetTextDatum(line_external_id)};
	int rc = SPI_execute_with_args("SELECT l.external_id, a.external_id, l.quantity::text"
	                               "  FROM billrecon.psa_line_items l"
	                               "  JOIN billrecon.psa_agreements a ON a.id = l.agreement_id"
	                               " WHERE l.integration_id = $1 AND l.external_id = $2 AND l.removed_at IS NULL",
	                               2, types, args, nullptr, true, 1);
	CheckSpi(rc, SPI_OK_SELECT, "reading the line item");
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
		                errmsg("line item \"%s\" does not exist", line_external_id),
		                errdetail("No current row of billrecon.psa_line_items of this integration has external_id \"%s\".",
		                          line_external_id),
		                errhint("Sync the PSA first; line items the PSA no longer returns cannot be written back.")));
	out->line_external_id = CopyUpper(Value(0, 1));
	out->agreement_external_id = CopyUpper(Value(0, 2));
	out->quantity = CopyUpper(Value(0, 3));
}

void EmitWriteRow(FunctionCallInfo fcinfo, const WriteResultRow *row) {
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	Datum values[5];
	bool nulls[5] = {false};
	const char *texts[4] = {row->quantity_before, row->quantity_after, row->reference, row->note};
	for (int i = 0; i < 4; ++i) {
		nulls[i] = texts[i] == nullptr || (i >= 2 && texts[i][0] == '\0');
		values[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(texts[i]);
	}
	values[4] = Int64GetDatum(row->requests);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

TextRows *QueryTextRows(const char *sql, bool has_arg, int32 arg) {
	Oid types[1] = {INT4OID};
	Datum args[1] = {Int32GetDatum(arg)};
	int rc = SPI_execute_with_args(sql, has_arg ? 1 : 0, types, args, nullptr, true, 0);
	CheckSpi(rc, SPI_OK_SELECT, "reading rows");
	TextRows *out = static_cast<TextRows *>(SPI_palloc(sizeof(TextRows)));
	out->nrows = static_cast<int>(SPI_processed);
	out->ncols = SPI_tuptable->tupdesc->natts;
	out->cells = static_cast<char **>(SPI_palloc(sizeof(char *) * (out->nrows * out->ncols + 1)));
	for (int r = 0; r < out->nrows; ++r)
		for (int c = 0; c < out->ncols; ++c)
			out->cells[r * out->ncols + c] = CopyUpper(Value(r, c + 1));
	return out;
}

int64 StoreMatchSuggestions(int32 integration_id, int nrows, const char *const *cells) {
	Oid dtypes[1] = {INT4OID};
	Datum dargs[1] = {Int32GetDatum(integration_id)};
	int rc = SPI_execute_with_args(
	    "DELETE FROM billrecon.client_match_candidates c USING billrecon.vendor_accounts va"
	    " WHERE va.id = c.vendor_account_id AND va.integration_id = $1"
	    "   AND NOT EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = va.id)",
	    1, dtypes, dargs, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_DELETE, "clearing old suggestions");
	if (nrows == 0)
		return 0;
	Oid types[4] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum args[4];
	for (int c = 0; c < 4; ++c)
		args[c] = TextArray(nrows, cells, 4, c);
	rc = SPI_execute_with_args("INSERT INTO billrecon.client_match_candidates"
	                           " (vendor_account_id, psa_company_id, score, evidence)"
	                           " SELECT u.a::bigint, u.p::bigint, u.s::numeric, u.e"
	                           "   FROM unnest($1, $2, $3, $4) AS u(a, p, s, e)",
	                           4, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_INSERT, "storing suggestions");
	return static_cast<int64>(SPI_processed);
}

Datum NumericFromText(const char *text) {
	return DirectFunctionCall3(numeric_in, CStringGetDatum(text), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

void ProgressNotice(const char *integration, const char *phase, long pages, long records) {
	static TimestampTz started = 0;
	static TimestampTz last = 0;
	static char current[NAMEDATALEN] = "";
	if (!g_settings.progress_notices || IsBackgroundWorker)
		return;
	TimestampTz now = GetCurrentTimestamp();
	if (strcmp(current, integration) != 0 || pages <= 1) {
		strlcpy(current, integration, sizeof current);
		started = now;
		last = now;
		return;
	}
	if (!TimestampDifferenceExceeds(started, now, 5000) || !TimestampDifferenceExceeds(last, now, 5000))
		return;
	last = now;
	ereport(NOTICE, (errmsg("billrecon: syncing %s: %s, %ld page(s) and %ld record(s) so far", integration, phase,
	                        pages, records),
	                 errhint("SET billrecon.progress_notices = off silences these; billrecon.sync_async() syncs in "
	                         "the background instead.")));
}

EncryptedRows *LoadEncryptedRows() {
	int rc = SPI_execute("SELECT c.integration_id, i.name, c.encrypted_credentials"
	                     "  FROM billrecon.integration_credentials c"
	                     "  JOIN billrecon.integrations i ON i.id = c.integration_id"
	                     " WHERE c.encrypted_credentials IS NOT NULL"
	                     " ORDER BY c.integration_id FOR UPDATE OF c",
	                     false, 0);
	CheckSpi(rc, SPI_OK_SELECT, "reading encrypted credentials");
	EncryptedRows *out = static_cast<EncryptedRows *>(SPI_palloc(sizeof(EncryptedRows)));
	int n = static_cast<int>(SPI_processed);
	out->count = n;
	out->ids = static_cast<int32 *>(SPI_palloc(sizeof(int32) * (n + 1)));
	out->names = static_cast<char **>(SPI_palloc(sizeof(char *) * (n + 1)));
	out->envelopes = static_cast<char **>(SPI_palloc(sizeof(char *) * (n + 1)));
	out->lengths = static_cast<int32 *>(SPI_palloc(sizeof(int32) * (n + 1)));
	for (int i = 0; i < n; ++i) {
		out->ids[i] = pg_strtoint32(Value(i, 1));
		out->names[i] = CopyUpper(Value(i, 2));
		CopyBytea(i, 3, &out->envelopes[i], &out->lengths[i]);
	}
	return out;
}

Datum ByteaDatum(const char *data, int32 len) {
	bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + len));
	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}

void StoreEnvelope(int32 integration_id, const char *envelope, int32 len) {
	Oid types[2] = {INT4OID, BYTEAOID};
	Datum args[2] = {Int32GetDatum(integration_id), ByteaDatum(envelope, len)};
	int rc = SPI_execute_with_args("UPDATE billrecon.integration_credentials SET encrypted_credentials = $2"
	                               " WHERE integration_id = $1",
	                               2, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_UPDATE, "storing re-encrypted credentials");
}

void StorePlainCredentials(int32 integration_id, const char *json) {
	Oid types[2] = {INT4OID, TEXTOID};
	Datum args[2] = {Int32GetDatum(integration_id), CStringGetTextDatum(json)};
	int rc = SPI_execute_with_args("UPDATE billrecon.integration_credentials"
	                               "   SET credentials = $2::pg_catalog.jsonb, encrypted_credentials = NULL,"
	                               "       credential_keys = NULL"
	                               " WHERE integration_id = $1",
	                               2, types, args, nullptr, false, 0);
	CheckSpi(rc, SPI_OK_UPDATE, "storing decrypted credentials");
	// The text Datum held the credentials: overwrite it before it is freed.
	text *t = DatumGetTextPP(args[1]);
	memset(VARDATA_ANY(t), 0, VARSIZE_ANY_EXHDR(t));
}

bool MayReadServerFiles() {
	return superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES);
}

const char *OuterUserName() {
	return GetUserNameFromId(GetOuterUserId(), false);
}

} // namespace billrecon::pg
