// Retry delays: exponential backoff with jitter.
#pragma once

#include <random>

namespace billrecon::http {

// Upper bound of the wait before retry number `retry` (0 = first retry):
// min(max_ms, base_ms * 2^retry).
long BackoffCeiling(int retry, long base_ms, long max_ms) noexcept;

// A random wait in [ceiling / 2, ceiling] (jitter spreads clients that failed
// together, while still growing exponentially).
long BackoffDelay(int retry, long base_ms, long max_ms, std::mt19937_64 &rng);

} // namespace billrecon::http

#include "core_only.hpp"
