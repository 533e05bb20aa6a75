// billrecon.* settings (docs/settings.md documents each one).
#pragma once

namespace billrecon::pg {

// Values as PostgreSQL keeps them (plain globals GUC machinery writes).
struct Settings {
	bool allow_http;
	int stale_after_s;
	int http_connect_timeout_ms;
	int http_timeout_ms;
	int http_max_retries;
	int http_retry_base_delay_ms;
	int http_retry_max_delay_ms;
	int http_max_response_kb;
	int http_max_in_flight;
	int quick_sync_overlap_s;
	char *ca_file;
	int inactive_after_s;
	int spot_check_min_delta;
	double spot_check_ratio;
	int max_sync_workers;
	bool progress_notices;
	char *credential_key_file;
	double max_removed_share;     // read by billrecon._apply_staged through current_setting
	int removal_guard_min_rows;
};

extern Settings g_settings;

// Registers every setting; called once from _PG_init.
void DefineSettings();

} // namespace billrecon::pg
