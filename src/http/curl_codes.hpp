// libcurl result codes -> TransportFailure (the curl half of classification;
// classify.hpp turns TransportFailures and statuses into verdicts).
#pragma once

#include "http/transport.hpp"

#include <curl/curl.h>

namespace billrecon::http::curl {

// `capped`: our write callback refused bytes because of the size limit.
TransportFailure FailureFromCode(CURLcode code, bool capped) noexcept;

} // namespace billrecon::http::curl

#include "core_only.hpp"
