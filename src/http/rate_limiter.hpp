// Per-client request-rate limit: a token bucket refilled at `rate` tokens per
// second holding at most max(1, rate) tokens, i.e. bursts of up to one
// second's worth of requests (so SendAll can still run requests side by side),
// and request starts spaced 1/rate seconds apart beyond that.
#pragma once

#include <chrono>
#include <optional>

namespace billrecon::http {

class RateLimiter {
public:
	using TimePoint = std::chrono::steady_clock::time_point;

	explicit RateLimiter(double requests_per_second);

	bool unlimited() const noexcept {
		return rate_ <= 0;
	}
	// Takes a slot for a request starting at `now` and returns how many
	// milliseconds the caller must wait first (0: start now).
	long Reserve(TimePoint now);
	// Takes a slot only if one is free at `now`, without waiting.
	bool TryTake(TimePoint now);

private:
	void Refill(TimePoint now);

	double rate_;
	double capacity_;
	double tokens_;
	std::optional<TimePoint> last_;
};

} // namespace billrecon::http

#include "core_only.hpp"
