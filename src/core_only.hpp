// Included last by every core header (no include guard on purpose: it re-checks each time)
// core code must never see PostgreSQL's headers, their macros or their types.
#ifdef POSTGRES_H
#error "core code (src/http, src/json, src/model, src/connectors, src/sync, src/crypto, ...) must not include postgres.h"
#endif
