// pg helpers behind billrecon._count_usage(): the rules and lines of a
// reconcile run, the stream of usage records (an SPI cursor read in
// batches), PostgreSQL's ~* for patterns, and the batch write of the counts
// into the run's temporary tables. C style: POD in and out, palloc'd
// memory, ereport on failure. Call them from glue through CallPg only.
#pragma once

#include "pg/pg_prelude.hpp"

namespace billrecon::pg {

// A text cell: p == nullptr for SQL null; otherwise len bytes (not
// terminated), valid until the next FetchUsageBatch / EndUsageScan.
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

// One usage record as streamed (the query in usage_scan.cpp).
enum UsageText {
	kUtKind,
	kUtQuantity,
	kUtPurchased,
	kUtDeviceClass,
	kUtOsName,
	kUtDeviceName,
	kUtDeviceNameLower,
	kUtProduct,
	kUtProductName,
	kUtProductUpper,
	kUtProductNameUpper,
	kUtProductNameLower,
	kUtSerialUpper,
	kUtDisplay,
	kUtDisplayLower,
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
	bool excluded;
	Cell text[kUtCount];
};

struct UsageBatch {
	int nrows;
	UsageRow *rows;
};

// Opens the cursor over the usage records of the mapped clients (one client
// when has_company). Then FetchUsageBatch until it returns 0 rows.
void BeginUsageScan(bool has_company, int64 company_id);
UsageBatch *FetchUsageBatch(int max_rows);
void EndUsageScan();

// PostgreSQL's `value ~* pattern` (default collation). pattern is a text*
// from MakePattern, kept for the scan.
void *MakePattern(const char *pattern, int len);
bool MatchesPattern(void *pattern, const char *value, int len);
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

} // namespace billrecon::pg
