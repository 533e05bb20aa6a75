// pg helpers behind billrecon._count_usage(): the rules and lines of a
// reconcile run, the stream of usage records (the query's rows handed to a
// sink in batches by a DestReceiver of ours), PostgreSQL's ~* for patterns, and the batch write of the counts
// into the run's temporary tables. C style: POD in and out, palloc'd
// memory, ereport on failure. Call them from glue through CallPg only.
#pragma once

#include "pg/pg_prelude.hpp"

namespace billrecon::pg {

// A text cell: p == nullptr for SQL null; otherwise len bytes (not
// terminated); in a usage batch, valid while the sink has it.
struct Cell {
	const char *p;
	int len;
};

// Rows of text cells (the loaders below).
struct CellRows {
	int nrows;
	int ncols;
	Cell *cells; // row-major
};

// Runs a read-only query with $1 = run id and $2 = the run's client (null
// for a full run) and returns its rows as text.
CellRows *QueryRunRows(const char *sql, int64 run_id, bool has_company, int64 company_id);

// Runs a read-only query with $1 = the n texts as a text[] and returns its
// rows as text.
CellRows *QueryWithTexts(const char *sql, int n, const char *const *texts);

// One usage record as streamed (the query in usage_scan.cpp): the stored
// texts; lower() / upper() where the counting pass needs them come from
// CaseMap (or an equal ASCII mapping, see AsciiCaseIsPlain).
enum UsageText {
	kUtKind,
	kUtQuantity,
	kUtPurchased,
	kUtDeviceClass,
	kUtOsName,
	kUtDeviceName,
	kUtProduct,
	kUtProductName,
	kUtSerial,
	kUtDisplay, // _usage_display_name: the SKU's display name for licences
	kUtCount
};

struct UsageRow {
	int64 id;
	int64 account_id;
	int64 client_id;
	int32 integration_id;
	int8 enabled; // -1 null, 0 false, 1 true
	int8 licensed;
	bool integration_enabled;
	Cell text[kUtCount];
};

struct UsageBatch {
	int nrows;
	UsageRow *rows;
};

// Called with each batch of at most max_rows rows while the scan runs (the
// rows and their texts live until it returns). Returns false to stop the
// scan: ScanUsage then raises an ERROR, and the caller reports its own.
// A sink must not let a C++ exception out (it is called by the executor).
using UsageSink = bool (*)(void *arg, const UsageBatch *batch);

// Runs the query over the usage records of the mapped clients (one client
// when has_company) and hands them to sink batch by batch.
void ScanUsage(bool has_company, int64 company_id, int max_rows, UsageSink sink, void *arg);

// PostgreSQL's `value ~* pattern` (default collation). pattern is a text*
// from MakePattern, kept for the scan.
void *MakePattern(const char *pattern, int len);
bool MatchesPattern(void *pattern, const char *value, int len);
// PostgreSQL's lower(text) or upper(text) under the database's collation;
// during a scan the result lives as long as the batch being counted.
void CaseMap(bool upper, const char *p, int len, Cell *out);
// Whether lower() and upper() map the ASCII characters as plain ASCII does
// (no Turkish dotted I...): then ASCII texts may be mapped without asking.
bool AsciiCaseIsPlain();
// Which ASCII characters x (1..127) match the one-character pattern c under
// ~* (default collation): matches[x] = chr(x) ~* c.
void AsciiMatches(char c, bool *matches /* [128] */);

// Creates (once per session) or empties the temporary result tables:
// pg_temp.billrecon_group_counts, billrecon_unaccounted_parts and
// billrecon_client_seats.
void PrepareCountTables();

// Statistics for the joins that read them (a plan made for empty temporary
// tables re-reads them per row).
void AnalyzeCountTables();

// INSERT ... SELECT FROM unnest($1 .. $n) with text[] parameters:
// columns[c][r] is row r's cell of column c (nullptr for null).
void InsertTextColumns(const char *sql, int ncols, int nrows, const char *const *const *columns);

// A DEBUG1 message (the counting pass's timings).
void LogDebug(const char *message);

} // namespace billrecon::pg
