#include "pg/guc.hpp"

#include <climits>

#include "pg/pg_prelude.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace billrecon::pg {

Settings g_settings = {
    false,        // allow_http
    24 * 3600,    // stale_after_s
    10000,        // http_connect_timeout_ms
    120000,       // http_timeout_ms
    5,            // http_max_retries
    500,          // http_retry_base_delay_ms
    60000,        // http_retry_max_delay_ms
    64 * 1024,    // http_max_response_kb
    4,            // http_max_in_flight
    300,          // quick_sync_overlap_s
    nullptr,      // ca_file
    21 * 86400,   // inactive_after_s
    10,           // spot_check_min_delta
    0.5,          // spot_check_ratio
    4,            // max_sync_workers
    true,         // progress_notices
    nullptr,      // credential_key_file
    0.5,          // max_removed_share
    20,           // removal_guard_min_rows
};

namespace {

// billrecon.credential_key_file: empty or an absolute path. The file itself
// is checked when used (a reload must not be refused, nor the server's start
// fail, because a key file is briefly missing); the error then names it.
bool CheckCredentialKeyFile(char **newval, void **, GucSource) {
	const char *v = *newval;
	if (v == nullptr || v[0] == '\0' || v[0] == '/')
		return true;
	GUC_check_errdetail("billrecon.credential_key_file must be an absolute path (or empty: no encryption).");
	GUC_check_errhint("Name the key file by its full path, e.g. '/etc/billrecon/credential.key'.");
	return false;
}

} // namespace

void DefineSettings() {
	DefineCustomBoolVariable("billrecon.allow_http", "Allows integrations with plain http:// base URLs.",
	                         "Off by default: credentials must not travel unencrypted. Meant for tests against "
	                         "local mock APIs on loopback.",
	                         &g_settings.allow_http, false, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.stale_after",
	                        "Age after which an integration's last successful sync counts as stale (yellow).",
	                        nullptr, &g_settings.stale_after_s, 24 * 3600, 1, INT_MAX, PGC_USERSET, GUC_UNIT_S,
	                        nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.http_connect_timeout", "Time allowed to connect to an API.",
	                        "Per-integration option connect_timeout_ms overrides it.",
	                        &g_settings.http_connect_timeout_ms, 10000, 100, 600000, PGC_SUSET, GUC_UNIT_MS,
	                        nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.http_timeout", "Time allowed for one API request, transfer included.",
	                        "Per-integration option timeout_ms overrides it.", &g_settings.http_timeout_ms, 120000,
	                        100, 3600000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.http_max_retries",
	                        "Retries of a request after 429, 5xx, timeouts and dropped connections.",
	                        "Per-integration option max_retries overrides it.", &g_settings.http_max_retries, 5, 0,
	                        20, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.http_retry_base_delay",
	                        "First backoff delay; it doubles with each retry (with jitter).",
	                        "Per-integration option retry_base_delay_ms overrides it.",
	                        &g_settings.http_retry_base_delay_ms, 500, 1, 600000, PGC_SUSET, GUC_UNIT_MS, nullptr,
	                        nullptr, nullptr);
	DefineCustomIntVariable("billrecon.http_retry_max_delay",
	                        "Longest single wait between retries, Retry-After included.",
	                        "Per-integration option retry_max_delay_ms overrides it.",
	                        &g_settings.http_retry_max_delay_ms, 60000, 1, 3600000, PGC_SUSET, GUC_UNIT_MS,
	                        nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.http_max_response_size", "Largest API response body accepted.",
	                        "A larger page fails the sync. Per-integration option max_response_mb overrides it.",
	                        &g_settings.http_max_response_kb, 64 * 1024, 64, 2 * 1024 * 1024, PGC_SUSET,
	                        GUC_UNIT_KB, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.http_max_in_flight",
	                        "Requests one integration may have in flight at once.",
	                        "Per-integration option max_in_flight overrides it.", &g_settings.http_max_in_flight, 4,
	                        1, 32, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.quick_sync_overlap",
	                        "Quick syncs ask for changes since the last successful sync's start minus this much.",
	                        "Covers clock differences between the vendor and this server.",
	                        &g_settings.quick_sync_overlap_s, 300, 0, 7 * 24 * 3600, PGC_SUSET, GUC_UNIT_S, nullptr,
	                        nullptr, nullptr);
	DefineCustomStringVariable("billrecon.ca_file",
	                           "File of CA certificates to verify vendor TLS certificates with.",
	                           "Empty: the operating system's store. Verification is always on.",
	                           &g_settings.ca_file, "", PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.inactive_after",
	                        "Time without activity after which a seat counts as inactive.",
	                        "billrecon.inactive_seats lists devices and users last active longer ago than this.",
	                        &g_settings.inactive_after_s, 21 * 86400, 3600, INT_MAX, PGC_USERSET, GUC_UNIT_S,
	                        nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.spot_check_min_delta",
	                        "Smallest quantity change that flags a change card out_of_proportion.",
	                        "A card is flagged when |delta| >= max(this, billrecon.spot_check_ratio x current "
	                        "quantity); flagged cards need force => true in bulk approval.",
	                        &g_settings.spot_check_min_delta, 10, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr,
	                        nullptr);
	DefineCustomRealVariable("billrecon.spot_check_ratio",
	                         "Share of the current quantity from which a change card is flagged out_of_proportion.",
	                         "See billrecon.spot_check_min_delta.", &g_settings.spot_check_ratio, 0.5, 0.0, 100.0,
	                         PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.max_sync_workers",
	                        "Background sync workers per database: integrations of a job sync in parallel, this many at once.",
	                        "Each worker is a background worker process: keep max_worker_processes above the sum over "
	                        "databases plus what other extensions use.",
	                        &g_settings.max_sync_workers, 4, 1, 32, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("billrecon.progress_notices",
	                         "Long foreground syncs report their progress as NOTICEs.",
	                         "None in the first 5 seconds of an integration's sync, then at most one every 5 seconds.",
	                         &g_settings.progress_notices, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("billrecon.credential_key_file",
	                           "File holding the key that encrypts integration credentials at rest.",
	                           "Empty: credentials are stored in clear. The file holds 64 hex digits (openssl rand "
	                           "-hex 32), lies outside the data directory and is owned by the server's OS user with "
	                           "mode 0600 (or by root, 0640).",
	                           &g_settings.credential_key_file, "", PGC_SIGHUP, 0, CheckCredentialKeyFile, nullptr,
	                           nullptr);
	DefineCustomRealVariable("billrecon.max_removed_share",
	                         "Largest share of an integration's current rows one full sync may mark removed.",
	                         "A full sync that would mark more (per table, and at least "
	                         "billrecon.removal_guard_min_rows rows) fails and changes nothing: a vendor that ends "
	                         "its listing early must not decommission half the devices. 1 turns the guard off.",
	                         &g_settings.max_removed_share, 0.5, 0.0, 1.0, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("billrecon.removal_guard_min_rows",
	                        "Fewest rows a full sync must be about to remove before billrecon.max_removed_share applies.",
	                        "Small integrations may legitimately drop to zero (the last few devices of a client).",
	                        &g_settings.removal_guard_min_rows, 20, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr,
	                        nullptr);
	MarkGUCPrefixReserved("billrecon");
}

} // namespace billrecon::pg
