// The credential key of billrecon.credential_key_file, for glue code: read
// for each use (never cached: a reload or a rotation takes effect at once),
// wiped when the CredentialKey goes away. docs/security.md tells the design.
#pragma once

#include "crypto/credential_box.hpp"
#include "model/error.hpp"

#include <optional>
#include <string>

#include "pg/sync_store.hpp"

namespace billrecon::pg {

// The setting's value ("" when unset).
std::string CredentialKeyFile();

// The key the setting names, loaded and checked; nullopt when the setting is
// empty. Throws billrecon::Error when the file is unusable.
std::optional<crypto::CredentialKey> ConfiguredKey();

// The same, but an error (55000, naming the setting) when it is empty. `why`
// completes "no credential key is configured: ..." in the DETAIL.
crypto::CredentialKey RequireConfiguredKey(const std::string &why);

// Credentials of a loaded integration as JSON text: plain ones as stored,
// encrypted ones decrypted with the configured key (55000 without a key or
// with another one, XX001 for altered bytes).
crypto::SecretString RowCredentials(const IntegrationRow &row);

} // namespace billrecon::pg
