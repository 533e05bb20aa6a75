// Background sync workers (see sync_worker.hpp). PostgreSQL-only code, C
// style: the worker's main loop catches errors with PG_TRY and must not hold
// C++ objects with destructors across it.
#include "pg/sync_worker.hpp"

#include <cstring>

#include "pg/guc.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"
}

#include <csignal>

namespace billrecon::pg {
namespace {

constexpr int kMaxSlots = 32;               // upper bound of billrecon.max_sync_workers
constexpr long kPollMs = 500;               // a worker looks for queued tasks this often
// and exits after this long without work: shorter than the 5 s DROP DATABASE
// waits for other sessions to leave, so an idle worker never blocks it.
constexpr long kIdleExitMs = 2 * 1000;
constexpr int kMaxDatabases = 64;           // databases with background work at once
constexpr long kStartingTimeoutMs = 15 * 1000;  // a started worker that never showed up
// What an interrupted background sync is marked with (SQL literals).
#define INTERRUPTED_ERROR_SQL                                                                                          \
	"'interrupted: the sync worker stopped before the sync finished (nothing was applied)'"
#define INTERRUPTED_DETAIL_SQL                                                                                         \
	"'The background worker was terminated, crashed or stopped with the server; the sync rolled back and the "       \
	"previous data is unchanged. Queue it again with billrecon.sync_async().'"

struct WorkerSlot {
	slock_t mutex;        // guards the progress fields below
	bool in_use;
	pid_t pid;
	Oid dboid;
	Latch *latch;
	int64 task_id;
	int64 job_id;
	char integration[NAMEDATALEN];
	char phase[32];
	int64 pages;
	int64 records;
	TimestampTz task_started;
};

// A database with background work: the launcher keeps workers running for
// it while `wanted` > 0.
struct DatabaseWant {
	Oid dboid;            // InvalidOid: free entry
	int wanted;           // tasks queued (approximate; 0 = none known)
	int starting;         // workers started but not yet in a slot
	TimestampTz started_at;
};

struct WorkerShared {
	LWLock *lock;         // guards everything but the slots' progress fields
	Latch *launcher_latch;
	WorkerSlot slots[kMaxSlots];
	DatabaseWant wants[kMaxDatabases];
};

WorkerShared *g_shared = nullptr;
bool g_available = false;
shmem_request_hook_type g_prev_request = nullptr;
shmem_startup_hook_type g_prev_startup = nullptr;
WorkerSlot *g_my_slot = nullptr;            // set in a worker process only
int g_pending_wake = 0;                     // tasks queued by this transaction
bool g_callback_registered = false;

void RequestShmem() {
	if (g_prev_request)
		g_prev_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
	RequestNamedLWLockTranche("billrecon_sync_workers", 1);
}

void StartupShmem() {
	if (g_prev_startup)
		g_prev_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bool found = false;
	g_shared = static_cast<WorkerShared *>(ShmemInitStruct("billrecon sync workers", sizeof(WorkerShared), &found));
	if (!found) {
		memset(g_shared, 0, sizeof(WorkerShared));
		g_shared->lock = &(GetNamedLWLockTranche("billrecon_sync_workers"))->lock;
		for (int i = 0; i < kMaxSlots; ++i)
			SpinLockInit(&g_shared->slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

int MaxWorkers() {
	int n = g_settings.max_sync_workers;
	return n < 1 ? 1 : (n > kMaxSlots ? kMaxSlots : n);
}

// Live workers of a database. Caller holds the lock.
int CountWorkers(Oid dboid) {
	int n = 0;
	for (int i = 0; i < kMaxSlots; ++i)
		if (g_shared->slots[i].in_use && g_shared->slots[i].dboid == dboid)
			++n;
	return n;
}

bool StartWorker(Oid dboid) {
	BackgroundWorker w;
	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	// The launcher, not the postmaster, replaces a worker that died: it knows
	// whether the database still exists and still has work.
	w.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "billrecon");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "billrecon_sync_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "billrecon sync worker");
	snprintf(w.bgw_type, BGW_MAXLEN, "billrecon sync worker");
	w.bgw_main_arg = ObjectIdGetDatum(dboid);
	w.bgw_notify_pid = 0;
	BackgroundWorkerHandle *handle = nullptr;
	return RegisterDynamicBackgroundWorker(&w, &handle);
}

// The want entry of a database, created when `create`. Caller holds the
// lock exclusively when creating.
DatabaseWant *FindWant(Oid dboid, bool create) {
	DatabaseWant *free_entry = nullptr;
	for (int i = 0; i < kMaxDatabases; ++i) {
		if (g_shared->wants[i].dboid == dboid)
			return &g_shared->wants[i];
		if (!free_entry && g_shared->wants[i].dboid == InvalidOid)
			free_entry = &g_shared->wants[i];
	}
	if (create && free_entry) {
		memset(free_entry, 0, sizeof(*free_entry));
		free_entry->dboid = dboid;
	}
	return create ? free_entry : nullptr;
}

// Records that a database has `tasks` more tasks and wakes the launcher and
// the database's workers. Safe in a commit callback (never raises).
void Want(Oid dboid, int tasks) {
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	DatabaseWant *w = FindWant(dboid, true);
	if (w)
		w->wanted += tasks;
	for (int i = 0; i < kMaxSlots; ++i)
		if (g_shared->slots[i].in_use && g_shared->slots[i].dboid == dboid && g_shared->slots[i].latch)
			SetLatch(g_shared->slots[i].latch);
	if (g_shared->launcher_latch)
		SetLatch(g_shared->launcher_latch);
	LWLockRelease(g_shared->lock);
}

// After the queuing transaction commits: tell the launcher and wake the
// database's workers (an aborted transaction queued nothing).
void WakeAtCommit(XactEvent event, void *) {
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
		g_pending_wake = 0;
		return;
	}
	if (event != XACT_EVENT_COMMIT || g_pending_wake == 0 || !g_shared)
		return;
	int tasks = g_pending_wake;
	g_pending_wake = 0;
	Want(MyDatabaseId, tasks);
}

// --- the worker ---------------------------------------------------------

void ReleaseSlot(int code, Datum) {
	if (!g_my_slot || !g_shared)
		return;
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	// Killed or failed in the middle of a task: a replacement marks the
	// interrupted task and goes on with the queue (the launcher starts it).
	if (code != 0 && g_my_slot->task_id != 0) {
		DatabaseWant *w = FindWant(g_my_slot->dboid, true);
		if (w && w->wanted < 1)
			w->wanted = 1;
		if (g_shared->launcher_latch)
			SetLatch(g_shared->launcher_latch);
	}
	g_my_slot->in_use = false;
	g_my_slot->pid = 0;
	g_my_slot->latch = nullptr;
	LWLockRelease(g_shared->lock);
	g_my_slot = nullptr;
}

bool ClaimSlot(Oid dboid) {
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	WorkerSlot *free_slot = nullptr;
	if (CountWorkers(dboid) < MaxWorkers()) {
		for (int i = 0; i < kMaxSlots && !free_slot; ++i)
			if (!g_shared->slots[i].in_use)
				free_slot = &g_shared->slots[i];
	}
	if (DatabaseWant *w = FindWant(dboid, false); w && w->starting > 0)
		--w->starting;
	if (free_slot) {
		free_slot->in_use = true;
		free_slot->pid = MyProcPid;
		free_slot->dboid = dboid;
		free_slot->latch = MyLatch;
		SpinLockAcquire(&free_slot->mutex);
		free_slot->task_id = 0;
		free_slot->job_id = 0;
		free_slot->integration[0] = '\0';
		free_slot->phase[0] = '\0';
		free_slot->pages = 0;
		free_slot->records = 0;
		SpinLockRelease(&free_slot->mutex);
		g_my_slot = free_slot;
	}
	LWLockRelease(g_shared->lock);
	return free_slot != nullptr;
}

void SetTask(int64 task_id, int64 job_id, const char *integration, const char *phase) {
	SpinLockAcquire(&g_my_slot->mutex);
	g_my_slot->task_id = task_id;
	g_my_slot->job_id = job_id;
	strlcpy(g_my_slot->integration, integration ? integration : "", sizeof(g_my_slot->integration));
	strlcpy(g_my_slot->phase, phase ? phase : "", sizeof(g_my_slot->phase));
	g_my_slot->pages = 0;
	g_my_slot->records = 0;
	g_my_slot->task_started = GetCurrentTimestamp();
	SpinLockRelease(&g_my_slot->mutex);
}

void BeginTx() {
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "billrecon sync worker: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

void CommitTx() {
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

// Text of column `col` of the first SPI result row, copied into `out`.
void CopyColumn(int col, char *out, size_t size) {
	bool isnull = false;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
	(void)d;
	char *s = isnull ? nullptr : SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
	strlcpy(out, s ? s : "", size);
}

// The extension must still be installed in this database; a worker of a
// database whose billrecon was dropped just leaves.
bool ExtensionInstalled() {
	BeginTx();
	int rc = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'billrecon'"
	                     "   AND pg_catalog.to_regclass('billrecon.sync_job_tasks') IS NOT NULL",
	                     true, 1);
	bool installed = rc == SPI_OK_SELECT && SPI_processed == 1;
	CommitTx();
	return installed;
}

// Tasks left 'running' by a worker that no longer exists (killed, crashed,
// server restarted) are marked failed: their sync rolled back with them, the
// sync_runs row of it included. Each gets a failed sync run of its own (the
// error also in sync_run_messages), so billrecon.sync_history shows the
// interrupted sync and billrecon.integration_status turns red, as for any
// failed sync. Two workers recovering at once: the row lock makes the second
// skip what the first marked (its nextval() is then only a gap).
void RecoverInterrupted() {
	BeginTx();
	SPI_execute("WITH dead AS ("
	            "  SELECT t.id, t.integration_id, t.started_at, j.mode, j.requested_by,"
	            "         pg_catalog.nextval('billrecon.sync_runs_id_seq') AS run_id"
	            "    FROM billrecon.sync_job_tasks t JOIN billrecon.sync_jobs_queue j ON j.id = t.job_id"
	            "   WHERE t.status = 'running'"
	            "     AND NOT EXISTS (SELECT 1 FROM billrecon._sync_progress() p WHERE p.pid = t.worker_pid)"
	            "     FOR UPDATE OF t),"
	            " runs AS ("
	            "  INSERT INTO billrecon.sync_runs (id, integration_id, requested_mode, status, started_at,"
	            "                                  finished_at, error, error_detail, error_sqlstate, started_by)"
	            "  SELECT d.run_id, d.integration_id, d.mode, 'failed', coalesce(d.started_at, clock_timestamp()),"
	            "         clock_timestamp(), " INTERRUPTED_ERROR_SQL ", " INTERRUPTED_DETAIL_SQL ", '57000', d.requested_by"
	            "    FROM dead d WHERE d.integration_id IS NOT NULL"
	            "  RETURNING id),"
	            " messages AS ("
	            "  INSERT INTO billrecon.sync_run_messages (run_id, seq, level, message)"
	            "  SELECT r.id, 1, 'error', " INTERRUPTED_ERROR_SQL " FROM runs r)"
	            " UPDATE billrecon.sync_job_tasks t"
	            "    SET status = 'failed', finished_at = clock_timestamp(), records = 0,"
	            "        error = " INTERRUPTED_ERROR_SQL ","
	            "        sync_run_id = CASE WHEN d.integration_id IS NOT NULL THEN d.run_id END"
	            "   FROM dead d WHERE t.id = d.id",
	            false, 0);
	CommitTx();
}

struct TaskRow {
	int64 task_id;
	int64 job_id;
	char integration[NAMEDATALEN];
	char mode[16];
	char role[NAMEDATALEN];
};

// Claims the oldest queued task whose integration no other worker syncs now.
bool ClaimTask(TaskRow *task) {
	BeginTx();
	// Claims are serialized: "no running task of this integration" cannot see
	// another worker's claim until it commits, and two workers would then
	// each claim a task of the same integration (the second's sync failing
	// with "another sync is running"). The lock is held for this short
	// transaction only: (billrecon's lock class, 0), integration ids start at 1.
	SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock(1651076204, 0)", false, 0);
	int rc = SPI_execute(
	    "UPDATE billrecon.sync_job_tasks t"
	    "   SET status = 'running', worker_pid = pg_catalog.pg_backend_pid(), started_at = clock_timestamp()"
	    "  FROM billrecon.sync_jobs_queue j"
	    " WHERE j.id = t.job_id AND t.id = ("
	    "   SELECT q.id FROM billrecon.sync_job_tasks q"
	    "    WHERE q.status = 'queued'"
	    "      AND NOT EXISTS (SELECT 1 FROM billrecon.sync_job_tasks r"
	    "                       WHERE r.status = 'running' AND r.integration_id = q.integration_id)"
	    "    ORDER BY q.id FOR UPDATE SKIP LOCKED LIMIT 1)"
	    " RETURNING t.id, t.job_id, t.integration, j.mode, j.requested_by",
	    false, 1);
	bool claimed = rc == SPI_OK_UPDATE_RETURNING && SPI_processed == 1;
	if (claimed) {
		char buf[32];
		CopyColumn(1, buf, sizeof(buf));
		task->task_id = strtoll(buf, nullptr, 10);
		CopyColumn(2, buf, sizeof(buf));
		task->job_id = strtoll(buf, nullptr, 10);
		CopyColumn(3, task->integration, sizeof(task->integration));
		CopyColumn(4, task->mode, sizeof(task->mode));
		CopyColumn(5, task->role, sizeof(task->role));
	}
	CommitTx();
	return claimed;
}

// Runs billrecon.sync() for the task as the role that queued it and records
// the outcome on the task. Raises on cancel (and on anything unexpected).
void RunTask(const TaskRow *task) {
	BeginTx();
	// The sync runs with the rights of the role that queued it, and its
	// sync_runs row names that role, as a foreground sync would.
	if (task->role[0]) {
		StringInfoData set;
		initStringInfo(&set);
		appendStringInfo(&set, "SET LOCAL ROLE %s", quote_identifier(task->role));
		SPI_execute(set.data, false, 0);
	}
	Oid types[2] = {TEXTOID, TEXTOID};
	Datum args[2] = {CStringGetTextDatum(task->integration), CStringGetTextDatum(task->mode)};
	int rc = SPI_execute_with_args("SELECT s.status, s.records, s.error, s.run_id FROM billrecon.sync($1, $2) s", 2,
	                               types, args, nullptr, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "billrecon sync worker: billrecon.sync() returned %lu rows", (unsigned long)SPI_processed);
	char status[16], records[32], error[2048], run_id[32];
	CopyColumn(1, status, sizeof(status));
	CopyColumn(2, records, sizeof(records));
	CopyColumn(3, error, sizeof(error));
	CopyColumn(4, run_id, sizeof(run_id));
	SPI_execute("RESET ROLE", false, 0);
	Oid utypes[5] = {INT8OID, TEXTOID, INT8OID, TEXTOID, INT8OID};
	Datum uargs[5] = {Int64GetDatum(task->task_id), CStringGetTextDatum(status),
	                  Int64GetDatum(strtoll(records, nullptr, 10)), CStringGetTextDatum(error),
	                  Int64GetDatum(strtoll(run_id, nullptr, 10))};
	char unulls[5] = {' ', ' ', ' ', error[0] ? ' ' : 'n', run_id[0] ? ' ' : 'n'};
	SPI_execute_with_args("UPDATE billrecon.sync_job_tasks SET status = $2, records = $3, error = $4,"
	                      "       sync_run_id = $5, finished_at = clock_timestamp() WHERE id = $1",
	                      5, utypes, uargs, unulls, false, 0);
	CommitTx();
}

// After a cancel or an unexpected error: the sync rolled back; record the
// task's end, and for a cancel a 'cancelled' sync run, as a foreground
// cancel reports it.
void RecordAbort(const TaskRow *task, bool cancelled, const char *message) {
	int64 pages = 0, records = 0;
	SpinLockAcquire(&g_my_slot->mutex);
	pages = g_my_slot->pages;
	records = g_my_slot->records;
	SpinLockRelease(&g_my_slot->mutex);
	BeginTx();
	Oid types[7] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID};
	Datum args[7] = {Int64GetDatum(task->task_id), CStringGetTextDatum(cancelled ? "cancelled" : "failed"),
	                 CStringGetTextDatum(message), CStringGetTextDatum(task->mode), Int64GetDatum(pages),
	                 Int64GetDatum(records), CStringGetTextDatum(task->role)};
	SPI_execute_with_args(
	    "WITH t AS (SELECT * FROM billrecon.sync_job_tasks WHERE id = $1),"
	    " r AS (INSERT INTO billrecon.sync_runs (integration_id, requested_mode, status, finished_at, pages, records,"
	    "                                        error, note, started_by)"
	    "       SELECT t.integration_id, $4, $2, clock_timestamp(), $5, $6,"
	    "              CASE WHEN $2 = 'failed' THEN $3 END,"
	    "              CASE WHEN $2 = 'cancelled' THEN $3 END, $7::name"
	    "         FROM t WHERE t.integration_id IS NOT NULL"
	    "       RETURNING id)"
	    " UPDATE billrecon.sync_job_tasks SET status = $2, error = $3, finished_at = clock_timestamp(),"
	    "        records = 0, sync_run_id = (SELECT id FROM r) WHERE id = $1",
	    7, types, args, nullptr, false, 0);
	CommitTx();
}

// One task: claim, run, record. Returns false when nothing was queued.
bool RunOneTask() {
	TaskRow task;
	memset(&task, 0, sizeof(task));
	if (!ClaimTask(&task))
		return false;
	SetTask(task.task_id, task.job_id, task.integration, "starting");
	pgstat_report_activity(STATE_RUNNING, "billrecon: background sync");
	MemoryContext oldcontext = CurrentMemoryContext;
	PG_TRY();
	{
		RunTask(&task);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		// The cancel has been delivered; do not let it hit the bookkeeping.
		QueryCancelPending = false;
		bool cancelled = edata->sqlerrcode == ERRCODE_QUERY_CANCELED;
		char message[1024];
		snprintf(message, sizeof(message), "%s",
		         cancelled ? "cancelled by billrecon.cancel_sync(); the previous data stays as it was"
		                   : (edata->message ? edata->message : "unknown error"));
		FreeErrorData(edata);
		RecordAbort(&task, cancelled, message);
	}
	PG_END_TRY();
	SetTask(0, 0, "", "");
	pgstat_report_activity(STATE_IDLE, nullptr);
	return true;
}

// The queue of this database is empty: the launcher need not start more.
void NothingQueued(Oid dboid) {
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	if (DatabaseWant *w = FindWant(dboid, false))
		w->wanted = 0;
	LWLockRelease(g_shared->lock);
}

// --- the launcher ---------------------------------------------------------

// Databases one can connect to, from the shared catalog (the launcher is
// connected to none). At server start each gets one worker, which finishes
// what a restart interrupted and leaves when billrecon is not installed.
void WantEveryDatabase() {
	StartTransactionCommand();
	Relation rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
	HeapTuple tup;
	int n = 0;
	Oid dbs[kMaxDatabases];
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr && n < kMaxDatabases) {
		Form_pg_database db = (Form_pg_database)GETSTRUCT(tup);
		if (db->datallowconn && !db->datistemplate)
			dbs[n++] = db->oid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	for (int i = 0; i < n; ++i)
		Want(dbs[i], 1);
}

bool DatabaseExists(Oid dboid) {
	StartTransactionCommand();
	bool exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dboid));
	CommitTransactionCommand();
	return exists;
}

// One pass: for each database with work, start workers up to
// min(wanted, billrecon.max_sync_workers); forget dropped databases.
void Supervise() {
	Oid dbs[kMaxDatabases];
	int n = 0;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (int i = 0; i < kMaxDatabases; ++i)
		if (g_shared->wants[i].dboid != InvalidOid && g_shared->wants[i].wanted > 0)
			dbs[n++] = g_shared->wants[i].dboid;
	LWLockRelease(g_shared->lock);
	for (int i = 0; i < n; ++i) {
		bool exists = DatabaseExists(dbs[i]);
		LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
		DatabaseWant *w = FindWant(dbs[i], false);
		if (!w) {
			LWLockRelease(g_shared->lock);
			continue;
		}
		if (!exists) {
			w->dboid = InvalidOid;   // dropped: nothing to do there any more
			LWLockRelease(g_shared->lock);
			continue;
		}
		TimestampTz now = GetCurrentTimestamp();
		if (w->starting > 0 && TimestampDifferenceExceeds(w->started_at, now, kStartingTimeoutMs))
			w->starting = 0;   // it never arrived (failed before taking a slot)
		int target = w->wanted < MaxWorkers() ? w->wanted : MaxWorkers();
		int start = target - CountWorkers(dbs[i]) - w->starting;
		int started = 0;
		for (int k = 0; k < start; ++k) {
			if (!StartWorker(dbs[i]))
				break;
			++started;
		}
		w->starting += started;
		if (started > 0)
			w->started_at = now;
		LWLockRelease(g_shared->lock);
		if (start > 0 && started < start)
			ereport(LOG, (errmsg("billrecon: could not start %d of %d sync workers", start - started, start),
			              errhint("Raise max_worker_processes; queued jobs wait for a free worker.")));
	}
}

void ClearLauncherLatch(int, Datum) {
	if (!g_shared)
		return;
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	g_shared->launcher_latch = nullptr;
	LWLockRelease(g_shared->lock);
}

void RegisterLauncher() {
	BackgroundWorker w;
	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 10;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "billrecon");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "billrecon_sync_launcher_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "billrecon sync launcher");
	snprintf(w.bgw_type, BGW_MAXLEN, "billrecon sync launcher");
	RegisterBackgroundWorker(&w);
}

} // namespace

bool InstallSyncWorkerHooks() {
	if (!process_shared_preload_libraries_in_progress)
		return false;
	g_prev_request = shmem_request_hook;
	shmem_request_hook = RequestShmem;
	g_prev_startup = shmem_startup_hook;
	shmem_startup_hook = StartupShmem;
	RegisterLauncher();
	g_available = true;
	return true;
}

bool SyncWorkersAvailable() {
	return g_available && g_shared != nullptr;
}

void ReportSyncProgress(const char *phase, long records) noexcept {
	if (!g_my_slot)
		return;
	SpinLockAcquire(&g_my_slot->mutex);
	if (phase)
		strlcpy(g_my_slot->phase, phase, sizeof(g_my_slot->phase));
	g_my_slot->pages += 1;
	g_my_slot->records += records;
	SpinLockRelease(&g_my_slot->mutex);
}

// --- SQL helpers (pg helpers: C-style) ------------------------------------

bool CheckSyncWorkers() {
	return SyncWorkersAvailable();
}

void QueueWake(int tasks) {
	if (!g_callback_registered) {
		RegisterXactCallback(WakeAtCommit, nullptr);
		g_callback_registered = true;
	}
	g_pending_wake += tasks;
}

void EmitProgressRows(FunctionCallInfo fcinfo) {
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	if (!g_shared)
		return;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (int i = 0; i < kMaxSlots; ++i) {
		WorkerSlot *s = &g_shared->slots[i];
		if (!s->in_use || s->dboid != MyDatabaseId)
			continue;
		WorkerSlot copy;
		SpinLockAcquire(&s->mutex);
		memcpy(&copy, s, sizeof(copy));
		SpinLockRelease(&s->mutex);
		Datum values[8];
		bool nulls[8] = {false};
		values[0] = Int32GetDatum(copy.pid);
		nulls[1] = copy.task_id == 0;
		values[1] = Int64GetDatum(copy.task_id);
		nulls[2] = copy.job_id == 0;
		values[2] = Int64GetDatum(copy.job_id);
		nulls[3] = copy.task_id == 0;
		values[3] = CStringGetTextDatum(copy.integration);
		nulls[4] = copy.task_id == 0;
		values[4] = CStringGetTextDatum(copy.phase);
		values[5] = Int64GetDatum(copy.pages);
		values[6] = Int64GetDatum(copy.records);
		nulls[7] = copy.task_id == 0;
		values[7] = TimestampTzGetDatum(copy.task_started);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(g_shared->lock);
}

bool SignalTaskCancel(int64 task_id) {
	if (!g_shared)
		return false;
	pid_t pid = 0;
	LWLockAcquire(g_shared->lock, LW_SHARED);
	for (int i = 0; i < kMaxSlots && pid == 0; ++i) {
		WorkerSlot *s = &g_shared->slots[i];
		if (!s->in_use || s->dboid != MyDatabaseId)
			continue;
		SpinLockAcquire(&s->mutex);
		if (s->task_id == task_id)
			pid = s->pid;
		SpinLockRelease(&s->mutex);
	}
	LWLockRelease(g_shared->lock);
	// The worker's SIGINT handler is PostgreSQL's statement cancel: the
	// running sync stops at its next interrupt check and rolls back.
	return pid != 0 && kill(pid, SIGINT) == 0;
}

} // namespace billrecon::pg

using namespace billrecon::pg;

void billrecon_sync_launcher_main(Datum) {
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);   // shared catalogs only
	pgstat_report_appname("billrecon sync launcher");
	if (!g_shared)
		proc_exit(0);
	LWLockAcquire(g_shared->lock, LW_EXCLUSIVE);
	g_shared->launcher_latch = MyLatch;
	LWLockRelease(g_shared->lock);
	on_shmem_exit(ClearLauncherLatch, (Datum)0);
	WantEveryDatabase();
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		Supervise();
		(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kPollMs, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void billrecon_sync_worker_main(Datum main_arg) {
	Oid dboid = DatumGetObjectId(main_arg);
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGINT, StatementCancelHandler);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, BOOTSTRAP_SUPERUSERID, 0);
	pgstat_report_appname("billrecon sync worker");
	if (!g_shared || !ClaimSlot(dboid))
		proc_exit(0);   // enough workers already serve this database
	on_shmem_exit(ReleaseSlot, (Datum)0);

	// An error outside a task (billrecon missing or older in this database, a
	// broken queue row) ends the worker quietly: nothing to replace it for.
	MemoryContext top = CurrentMemoryContext;
	PG_TRY();
	{
		if (!ExtensionInstalled()) {
			NothingQueued(dboid);
			proc_exit(0);
		}
		RecoverInterrupted();
		TimestampTz idle_since = GetCurrentTimestamp();
		for (;;) {
			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending) {
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
			// A cancel aimed at a task that already ended must not hit the next.
			QueryCancelPending = false;
			if (RunOneTask()) {
				idle_since = GetCurrentTimestamp();
				continue;
			}
			NothingQueued(dboid);
			// A worker of this database may have died mid-task while this one
			// idled: mark its task, since no replacement may be started for it.
			RecoverInterrupted();
			if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(), kIdleExitMs))
				break;
			(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kPollMs, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(top);
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		NothingQueued(dboid);
	}
	PG_END_TRY();
	proc_exit(0);
}
