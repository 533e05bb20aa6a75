#include "http/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace billrecon::http {

RateLimiter::RateLimiter(double requests_per_second)
    : rate_(std::isfinite(requests_per_second) ? requests_per_second : 0), capacity_(std::max(1.0, rate_)),
      tokens_(capacity_) {
}

void RateLimiter::Refill(TimePoint now) {
	if (last_ && now > *last_) {
		const double seconds = std::chrono::duration<double>(now - *last_).count();
		tokens_ = std::min(capacity_, tokens_ + seconds * rate_);
	}
	if (!last_ || now > *last_)
		last_ = now;
}

long RateLimiter::Reserve(TimePoint now) {
	if (unlimited())
		return 0;
	Refill(now);
	tokens_ -= 1;
	if (tokens_ >= 0)
		return 0;
	// The epsilon absorbs floating-point noise so an exact wait stays exact.
	return static_cast<long>(std::ceil(-tokens_ / rate_ * 1000.0 - 1e-6));
}

bool RateLimiter::TryTake(TimePoint now) {
	if (unlimited())
		return true;
	Refill(now);
	if (tokens_ < 1 - 1e-9)
		return false;
	tokens_ -= 1;
	return true;
}

} // namespace billrecon::http
