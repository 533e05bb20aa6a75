// Included last by every core header (src/http, json, model, connectors, sync):
// core code must never see PostgreSQL's headers, their macros or their types.
#pragma once
#ifdef POSTGRES_H
#error "core code (src/http, src/json, src/model, src/connectors, src/sync) must not include postgres.h"
#endif
