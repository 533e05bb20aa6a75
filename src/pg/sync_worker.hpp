// Background sync: billrecon.sync_async() queues a job; dynamic background
// workers of the job's database claim its integrations one task at a time
// and run billrecon.sync() for each, so a job's integrations sync in
// parallel, one process per integration, at most billrecon.max_sync_workers
// per database. A static launcher (registered at server start) starts the
// workers a database needs, replaces one that died, and at server start
// gives every database one worker to finish what a restart interrupted
// (docs/architecture.md, "Background sync").
//
// Shared memory holds one slot per running worker: its database, latch and
// the live progress of the task it runs (phase, pages, records), which
// billrecon._sync_progress() reads for the billrecon.sync_jobs view.
#pragma once

#include "pg/pg_prelude.hpp"

namespace billrecon::pg {

// Called from _PG_init: installs the shared memory hooks when the library is
// in shared_preload_libraries. Returns whether it did.
bool InstallSyncWorkerHooks();

// Whether background sync is available in this server (loaded at start).
bool SyncWorkersAvailable();

// Progress of the current task, from the staging sink: one call per page.
// A no-op outside a sync worker.
void ReportSyncProgress(const char *phase, long records) noexcept;

// pg helpers behind the SQL functions (src/pg/sql_functions/sync_jobs.cpp).
bool CheckSyncWorkers();
void QueueWake(int tasks);                        // wake / start workers when this transaction commits
void EmitProgressRows(FunctionCallInfo fcinfo);   // one row per worker of this database
bool SignalTaskCancel(int64 task_id);             // SIGINT to the worker running the task

} // namespace billrecon::pg

extern "C" {
PGDLLEXPORT void billrecon_sync_launcher_main(Datum main_arg);
PGDLLEXPORT void billrecon_sync_worker_main(Datum main_arg);
}
