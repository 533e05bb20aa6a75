// SQL: the C side of background sync — billrecon._sync_workers_available(),
// _wake_sync_workers(tasks), _sync_progress(), _cancel_sync_task(task_id).
// The SQL functions in sql/install/180_sync_jobs.sql wrap them.
#include "pg/boundary.hpp"
#include "pg/sync_worker.hpp"

using namespace billrecon;

BILLRECON_FUNCTION(billrecon_sync_workers_available) {
	PG_RETURN_BOOL(CallPg(pg::CheckSyncWorkers));
}

BILLRECON_FUNCTION(billrecon_wake_sync_workers) {
	int32 tasks = PG_GETARG_INT32(0);
	CallPg(pg::QueueWake, static_cast<int>(tasks));
	PG_RETURN_VOID();
}

BILLRECON_FUNCTION(billrecon_sync_progress) {
	CallPg(pg::EmitProgressRows, fcinfo);
	return (Datum)0;
}

BILLRECON_FUNCTION(billrecon_cancel_sync_task) {
	int64 task_id = PG_GETARG_INT64(0);
	PG_RETURN_BOOL(CallPg(pg::SignalTaskCancel, task_id));
}
