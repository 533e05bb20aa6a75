// The one place that decides what an attempt's outcome means (style.md 9):
// success, retry with backoff, rate limited (honour Retry-After), auth
// failure, or fatal; and which SQLSTATE a final failure carries.
#pragma once

#include "http/transport.hpp"

#include <chrono>
#include <optional>

namespace billrecon::http {

enum class Verdict {
	kSuccess,     // 2xx
	kRetry,       // 408, 500, 502, 503, 504; connect failure, timeout, reset
	kRateLimited, // 429
	kAuth,        // 401: refresh the token once, else fail
	kForbidden,   // 403: the credentials work but lack permission
	kFatal,       // any other status; too large, TLS, protocol errors
	kCancelled,   // the cancel predicate stopped the transfer
};

struct Classification {
	Verdict verdict = Verdict::kFatal;
	// Wait the server asked for (Retry-After on 429 and 503), uncapped.
	std::optional<long> retry_after_ms;
};

Classification Classify(const Attempt &attempt, std::chrono::system_clock::time_point now);

const char *VerdictName(Verdict v) noexcept;

// SQLSTATE of a request that finally failed with this attempt: 08001 could
// not connect (TLS included), 08006 timeout/reset, 54000 too large, 28000
// 401/403, 22000 other HTTP statuses and malformed exchanges, 57014 cancel.
const char *FailureSqlstate(const Attempt &attempt) noexcept;

} // namespace billrecon::http

#include "core_only.hpp"
