#include "http/backoff.hpp"

#include <algorithm>

namespace billrecon::http {

long BackoffCeiling(int retry, long base_ms, long max_ms) noexcept {
	if (base_ms <= 0 || max_ms <= 0)
		return 0;
	long delay = base_ms;
	for (int i = 0; i < retry && delay < max_ms; ++i)
		delay = delay > max_ms / 2 ? max_ms : delay * 2;
	return std::min(delay, max_ms);
}

long BackoffDelay(int retry, long base_ms, long max_ms, std::mt19937_64 &rng) {
	const long ceiling = BackoffCeiling(retry, base_ms, max_ms);
	if (ceiling <= 1)
		return ceiling;
	std::uniform_int_distribution<long> dist(ceiling / 2, ceiling);
	return dist(rng);
}

} // namespace billrecon::http
