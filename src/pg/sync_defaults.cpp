#include "pg/sync_defaults.hpp"

#include "pg/credential_key.hpp"
#include "pg/guc.hpp"
#include "pg/pg_prelude.hpp"
#include "pg/sync_store.hpp"

namespace billrecon::pg {

sync::Defaults CurrentDefaults() {
	// Plain reads of GUC globals: no PostgreSQL call, nothing to guard.
	sync::Defaults d;
	d.connect_timeout_ms = g_settings.http_connect_timeout_ms;
	d.timeout_ms = g_settings.http_timeout_ms;
	d.max_retries = g_settings.http_max_retries;
	d.retry_base_delay_ms = g_settings.http_retry_base_delay_ms;
	d.retry_max_delay_ms = g_settings.http_retry_max_delay_ms;
	d.max_response_bytes = static_cast<size_t>(g_settings.http_max_response_kb) * 1024u;
	d.max_in_flight = g_settings.http_max_in_flight;
	d.allow_http = g_settings.allow_http;
	d.ca_file = g_settings.ca_file ? g_settings.ca_file : "";
	d.user_agent = "billrecon/" BILLRECON_VERSION;
	return d;
}

connectors::IntegrationConfig ConfigFromRow(const IntegrationRow &row) {
	connectors::IntegrationConfig config;
	config.id = row.id;
	config.name = row.name;
	config.kind = row.kind;
	config.base_url = row.base_url;
	config.options_json = row.options_json;
	// Encrypted credentials are decrypted here, in memory, for this call only.
	config.credentials_json = RowCredentials(row).str();
	return config;
}

} // namespace billrecon::pg
