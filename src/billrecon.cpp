// Library entry: module magic and _PG_init.
#include "pg/guc.hpp"
#include "pg/pg_prelude.hpp"
#include "pg/sync_worker.hpp"

extern "C" {
#include "miscadmin.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {
	// Nothing to set up while pg_upgrade runs.
	if (IsBinaryUpgrade)
		return;
	billrecon::pg::DefineSettings();
	// Background sync needs shared memory: only when preloaded.
	billrecon::pg::InstallSyncWorkerHooks();
}
