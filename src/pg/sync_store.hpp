// pg helpers behind billrecon.sync(): SPI reads and writes of integrations,
// sync runs and staging tables, and the subtransaction that makes a sync
// atomic. C style: POD in and out, palloc'd strings, ereport on failure.
// Call them from glue through CallPg only.
#pragma once

#include "pg/pg_prelude.hpp"

extern "C" {
#include "utils/resowner.h"
}

namespace billrecon::pg {

struct IntegrationRow {
	int32 id;
	char *name;
	char *kind;
	char *base_url;
	char *options_json;
	char *credentials_json; // plain credentials; "{}" when encrypted
	char *encrypted;        // the envelope of encrypted credentials, or nullptr
	int32 encrypted_len;
};

struct IntegrationList {
	int count;
	IntegrationRow *rows;
};

// Opens / closes the SPI connection of the calling SQL function.
void SpiConnect();
void SpiFinish();

// Integrations to sync: the one named (error 42704 when unknown, 55000 when
// disabled), or every enabled one when name is null (PSAs first, by name).
IntegrationList *LoadIntegrations(const char *name);

// The integration's options as a sync uses them now
// (billrecon._effective_options: e.g. Microsoft 365 tenants from Partner Center).
char *EffectiveOptions(int32 integration_id);

// Transaction-scoped advisory lock on the integration; false when another
// session is syncing it.
bool TryLockIntegration(int32 integration_id);

struct RunStart {
	int64 run_id;
	bool has_since;
	char since[40]; // ISO UTC when has_since
};

// Inserts a 'running' sync_runs row. For quick mode, `since` is the start of
// the last successful sync minus billrecon.quick_sync_overlap.
void StartRun(int32 integration_id, const char *requested_mode, RunStart *out);

struct RunFinish {
	int64 run_id;
	const char *status;        // succeeded / failed / cancelled
	const char *mode;          // effective mode, may be null
	bool keep_since;           // false: clear changes_since (ran as full)
	int64 pages, records, requests, retries, bytes;
	const char *error;         // null on success
	const char *error_detail;
	const char *error_sqlstate;
	const char *note;
	int nmessages;
	const char *const *messages; // warnings, in order
	const char *const *levels;   // "warning" / "error" per message
};
void FinishRun(const RunFinish *finish);

enum StageTable { kStageCompanies, kStageAgreements, kStageLineItems, kStageVendorAccounts, kStageUsage,
	              kStageTableCount };

// Number of text columns each staging insert takes (after the run id).
int StageColumns(int table);

// Inserts nrows staged rows: cells is row-major, ncols = StageColumns(table)
// per row, nullptr for SQL NULL. One prepared statement per table, arrays +
// unnest: one executor call per batch.
void StageBatch(int table, int64 run_id, int nrows, const char *const *cells);

// Whether this database's billrecon schema takes usage pages directly
// (0.2.0 on: billrecon._apply_staged_accounts exists). Between a restart on
// this library and ALTER EXTENSION billrecon UPDATE a 0.1.0 schema gets every
// usage record through staging, as 0.1.0 did.
bool SchemaStoresUsageDirectly();

// The vendor accounts (stored or removed) of the run's integration, for the
// sink's account lookup; integration_id is the run's integration.
struct AccountIds {
	int32 integration_id;
	int count;
	char **external_ids;
	int64 *ids;
};
AccountIds *LoadAccountIds(int64 run_id);

// Stores one page of usage records directly in billrecon.usage_records:
// cells as for StageBatch(kStageUsage) (account_external_id unused),
// account_ids[i] the stored vendor account of row i, no external id twice.
// One executor call with typed arrays: new rows are inserted, stored rows
// updated only when something but the sync bookkeeping changed. Returns the
// rows written; the others were stored and unchanged and are left alone (the
// caller passes their ids to ApplyStaged). The sync's subtransaction keeps
// this atomic.
int64 UpsertUsagePage(int64 run_id, int32 integration_id, int nrows, const int64 *account_ids,
                      const char *const *cells);

// Upserts the vendor accounts staged so far by the run into the live table
// (billrecon._apply_staged_accounts), so that usage pages can find them.
void ApplyStagedAccounts(int64 run_id);

struct ApplyResult {
	int64 skipped_agreements;
	int64 skipped_line_items;
	int64 skipped_usage;
};
// Moves the run's staged rows into the live tables (billrecon._apply_staged).
// unchanged: nunchanged external ids, each ended by '\0', of the usage
// records stored directly by this run, among them all that UpsertUsagePage
// found unchanged (a full sync must not mark those removed); 0 for none.
void ApplyStaged(int64 run_id, bool full, int64 nunchanged, const char *unchanged, ApplyResult *out);

// An internal subtransaction, as PL/pgSQL's exception blocks use.
struct Subxact {
	MemoryContext context;
	ResourceOwner owner;
};
void BeginSubxact(Subxact *sx);
void CommitSubxact(const Subxact *sx);
void RollbackSubxact(const Subxact *sx);

void CheckInterrupts();

// Text argument n as a palloc'd C string (the caller checked PG_ARGISNULL).
char *TextArg(FunctionCallInfo fcinfo, int n);

// Materialized result set of the calling set-returning function.
void InitResultSet(FunctionCallInfo fcinfo);

struct SyncResultRow {
	const char *integration;
	const char *status;
	int64 records;
	const char *error;   // null on success
	int64 run_id;        // 0: no run row
	const char *mode;    // null when unknown
	int64 pages, requests, retries;
	int32 warnings;
};
void EmitSyncRow(FunctionCallInfo fcinfo, const SyncResultRow *row);

struct LineForWrite {
	char *line_external_id;
	char *agreement_external_id;
	char *quantity; // numeric as text
};
// The current line item of a PSA integration, by its external id (error
// 42704 when there is none).
void LoadLineForWrite(int32 integration_id, const char *line_external_id, LineForWrite *out);

struct WriteResultRow {
	const char *quantity_before;
	const char *quantity_after;
	const char *reference;
	const char *note;
	int64 requests;
};
void EmitWriteRow(FunctionCallInfo fcinfo, const WriteResultRow *row);

// Rows of text (NULL as nullptr) from a query with at most one int4 parameter
// (has_arg false: none). Copied out of SPI into the caller's context.
struct TextRows {
	int nrows;
	int ncols;
	char **cells; // row-major
};
TextRows *QueryTextRows(const char *sql, bool has_arg, int32 arg);

// Replaces the client match suggestions of the integration's unmapped
// accounts by `nrows` rows of (vendor account id, PSA company id, score,
// evidence) text cells; returns how many were stored.
int64 StoreMatchSuggestions(int32 integration_id, int nrows, const char *const *cells);

// numeric from its text.
Datum NumericFromText(const char *text);

// Encrypted credentials (billrecon.integration_credentials.encrypted_credentials)
// for billrecon.rotate_credential_key() and billrecon.decrypt_credentials():
// every encrypted row, locked FOR UPDATE, by integration id.
struct EncryptedRows {
	int count;
	int32 *ids;
	char **names;
	char **envelopes;
	int32 *lengths;
};
EncryptedRows *LoadEncryptedRows();
// Replaces a row's envelope (a re-encryption; the credentials stay the same).
void StoreEnvelope(int32 integration_id, const char *envelope, int32 len);
// Stores a row's credentials in clear (JSON text), dropping its envelope.
void StorePlainCredentials(int32 integration_id, const char *json);
// A bytea Datum of len bytes (palloc'd in the current context).
Datum ByteaDatum(const char *data, int32 len);
// True for a superuser or a member of pg_read_server_files: who may make
// billrecon read a file named in a SQL call.
bool MayReadServerFiles();

// The role that called us, before SECURITY DEFINER switched (for started_by).
const char *OuterUserName();

// A progress NOTICE for a long foreground sync: none in its first 5 seconds,
// then at most one every 5 seconds (billrecon.progress_notices turns them off).
void ProgressNotice(const char *integration, const char *phase, long pages, long records);

} // namespace billrecon::pg
