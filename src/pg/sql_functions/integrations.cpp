// SQL: billrecon._validate_integration(kind, base_url, credentials, options),
// billrecon.version() and billrecon._acting_role().
#include "connectors/connector.hpp"
#include "connectors/registry.hpp"

#include <string>

#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/sync_store.hpp"

extern "C" {
#include "utils/jsonb.h"
}

namespace billrecon::pg {
namespace {

// jsonb argument n as JSON text ("null" when SQL NULL).
char *JsonbArg(FunctionCallInfo fcinfo, int n) {
	if (PG_ARGISNULL(n))
		return pstrdup("null");
	Jsonb *jb = PG_GETARG_JSONB_P(n);
	return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
}

char *TextArgOrNull(FunctionCallInfo fcinfo, int n) {
	return PG_ARGISNULL(n) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

Datum ActingRoleName() {
	return DirectFunctionCall1(namein, CStringGetDatum(OuterUserName()));
}

char *VersionText() {
	return pstrdup("billrecon " BILLRECON_VERSION);
}

} // namespace
} // namespace billrecon::pg

using namespace billrecon;

BILLRECON_FUNCTION(billrecon_validate_integration) {
	const char *kind = CallPg(pg::TextArgOrNull, fcinfo, 0);
	const char *base_url = CallPg(pg::TextArgOrNull, fcinfo, 1);
	const char *credentials = CallPg(pg::JsonbArg, fcinfo, 2);
	const char *options = CallPg(pg::JsonbArg, fcinfo, 3);
	connectors::IntegrationConfig config;
	config.kind = kind ? kind : "";
	config.base_url = base_url ? base_url : "";
	config.credentials_json = credentials;
	config.options_json = options;
	connectors::ValidateConfig(config, pg::g_settings.allow_http);
	PG_RETURN_VOID();
}

BILLRECON_FUNCTION(billrecon_version) {
	PG_RETURN_TEXT_P(cstring_to_text(CallPg(pg::VersionText)));
}

// The role the caller acts as (SET ROLE included), also inside SECURITY
// DEFINER functions, where current_user is the function's owner: audit rows
// and run rows name who asked, not who owns the code.
BILLRECON_FUNCTION(billrecon_acting_role) {
	PG_RETURN_DATUM(CallPg(pg::ActingRoleName));
}
