// Glue: the billrecon.* settings as the HTTP defaults of a sync or write-back.
#pragma once

#include "sync/runner.hpp"

namespace billrecon::pg {

sync::Defaults CurrentDefaults();

} // namespace billrecon::pg
