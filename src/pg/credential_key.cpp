#include "pg/credential_key.hpp"

#include "model/error.hpp"

#include "pg/guc.hpp"
#include "pg/pg_prelude.hpp"

namespace billrecon::pg {

std::string CredentialKeyFile() {
	// A plain read of the GUC global: no PostgreSQL call, nothing to guard.
	return g_settings.credential_key_file ? g_settings.credential_key_file : "";
}

std::optional<crypto::CredentialKey> ConfiguredKey() {
	std::string path = CredentialKeyFile();
	if (path.empty())
		return std::nullopt;
	// DataDir is the postmaster's absolute data directory (a plain global).
	return crypto::CredentialKey::Load(path, DataDir ? DataDir : "");
}

crypto::CredentialKey RequireConfiguredKey(const std::string &why) {
	std::optional<crypto::CredentialKey> key = ConfiguredKey();
	if (!key)
		throw Error(sqlstate::kPrerequisite, "no credential key is configured",
		            "billrecon.credential_key_file is empty; " + why,
		            "Make a key file outside the data directory (openssl rand -hex 32, owned by the server's OS "
		            "user, mode 0600), then: ALTER SYSTEM SET billrecon.credential_key_file = '/path/to/key'; "
		            "SELECT pg_reload_conf();");
	return std::move(*key);
}

crypto::SecretString RowCredentials(const IntegrationRow &row) {
	if (row.encrypted == nullptr)
		return crypto::SecretString(row.credentials_json ? row.credentials_json : "{}");
	std::string what = "integration \"" + std::string(row.name) + "\"";
	std::string_view envelope(row.encrypted, static_cast<size_t>(row.encrypted_len));
	std::optional<crypto::CredentialKey> key = ConfiguredKey();
	if (!key) {
		std::string id = crypto::EnvelopeKeyId(envelope);
		throw Error(sqlstate::kPrerequisite, "credentials of " + what + " are encrypted, but no credential key is configured",
		            "They were encrypted with key id " + (id.empty() ? std::string("(unreadable)") : id) +
		                "; billrecon.credential_key_file is empty.",
		            "Set billrecon.credential_key_file to the key file they were encrypted with: ALTER SYSTEM SET "
		            "billrecon.credential_key_file = '/path/to/key'; SELECT pg_reload_conf();");
	}
	return crypto::Open(*key, row.id, envelope, what);
}

} // namespace billrecon::pg
