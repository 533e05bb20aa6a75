// Glue: what a sync or write-back hands to core: the billrecon.* settings as
// HTTP defaults, and the integration row as the connector sees it.
#pragma once

#include "connectors/connector.hpp"
#include "sync/runner.hpp"

namespace billrecon::pg {

struct IntegrationRow;

sync::Defaults CurrentDefaults();

// The connector's view of an integration row loaded by LoadIntegrations,
// encrypted credentials decrypted (throws when they cannot be: no key, another
// key, altered bytes; pg/credential_key.hpp).
connectors::IntegrationConfig ConfigFromRow(const IntegrationRow &row);

} // namespace billrecon::pg
