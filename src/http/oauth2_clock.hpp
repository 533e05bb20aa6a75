// MakeOAuth2Auth with an injected clock, so tests can step past a token's
// expiry without waiting (the production overload uses steady_clock).
#pragma once

#include "http/auth.hpp"

#include <chrono>
#include <functional>
#include <memory>

namespace billrecon::http {

using SteadyClockFn = std::function<std::chrono::steady_clock::time_point()>;

std::unique_ptr<Auth> MakeOAuth2Auth(OAuth2Config config, SteadyClockFn clock);

} // namespace billrecon::http

#include "core_only.hpp"
