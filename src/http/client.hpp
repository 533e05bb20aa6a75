// The HTTP client connectors use: retries with exponential backoff and jitter
// on 429 / 5xx / timeouts / resets (honouring Retry-After), a per-integration
// request-rate limit, authentication with refresh on 401, https-only unless
// allowed, a response-size cap, and secret redaction in every message.
#pragma once

#include "http/transport.hpp"
#include "http/types.hpp"
#include "model/error.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace billrecon::http {

class Client;

// Adds credentials to requests. Implementations may call the client (without
// auth) to obtain tokens, and must list every secret they know so the client
// can redact it from messages.
class Auth {
public:
	virtual ~Auth() = default;
	virtual void Apply(Client &client, Request &request) = 0;
	// Called after a 401: forget cached tokens. Returns true when a fresh
	// attempt could succeed (a token was cached), false for static credentials.
	virtual bool Invalidate() = 0;
	virtual std::vector<std::string> Secrets() const = 0;
};

struct ClientOptions {
	TransportLimits limits;
	int max_retries = 5;                 // extra attempts after the first
	long retry_base_delay_ms = 500;      // backoff: base * 2^n, with full jitter
	long retry_max_delay_ms = 60000;     // cap on any single wait, Retry-After included
	double requests_per_second = 0;      // 0: unlimited
	int max_in_flight = 4;               // SendAll concurrency
};

struct ClientStats {
	long requests = 0;   // attempts sent, retries and token requests included
	long retries = 0;
	long bytes = 0;
	long throttled = 0;  // 429 answers
};

// Final failure of a request, after retries. sqlstate says which kind
// (08001 unreachable, 08006 timeout/reset, 28000 auth, 22000 vendor error,
// 54000 too large, 22023 URL refused); status is 0 without an HTTP answer.
class HttpError : public Error {
public:
	HttpError(std::string sqlstate, std::string message, std::string detail, std::string hint, long status)
	    : Error(std::move(sqlstate), std::move(message), std::move(detail), std::move(hint)), status_(status) {
	}
	long status() const noexcept {
		return status_;
	}

private:
	long status_;
};

class Client {
public:
	using Sleeper = std::function<void(long ms)>;

	// `cancel` is polled during transfers and waits; when it returns true the
	// client throws billrecon::Cancelled. `sleeper` defaults to a real sleep in
	// slices of at most 250 ms that checks `cancel` (tests pass a fake).
	Client(ClientOptions options, std::unique_ptr<Transport> transport, std::function<bool()> cancel,
	       Sleeper sleeper = nullptr);
	~Client();
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;

	void SetAuth(std::unique_ptr<Auth> auth);

	// One request with auth, rate limit and retries. Returns any 2xx response;
	// throws HttpError for anything else once retries are exhausted, and
	// Cancelled when cancelled.
	Response Send(Request request);

	// Several requests in flight at once (at most max_in_flight), each with
	// the same policies as Send; responses in request order. Fails fast: once
	// one request fails for good, no new attempt starts and its HttpError is
	// thrown (client.cpp explains the details).
	std::vector<Response> SendAll(std::vector<Request> requests);

	// Without auth (used by Auth implementations to fetch tokens).
	Response SendUnauthenticated(Request request);

	// Removes every known secret from text (replaced by "[redacted]").
	std::string Redact(std::string text) const;

	const ClientStats &stats() const noexcept {
		return stats_;
	}
	const ClientOptions &options() const noexcept {
		return options_;
	}

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
	ClientOptions options_;
	ClientStats stats_;
};

// "Retry-After" value -> milliseconds (delta-seconds or an HTTP-date relative
// to `now`); nullopt when absent or unparseable.
std::optional<long> ParseRetryAfter(std::string_view value, std::chrono::system_clock::time_point now);

// Parses an RFC 8288 Link header into (rel, url) pairs.
std::vector<std::pair<std::string, std::string>> ParseLinkHeader(std::string_view value);

} // namespace billrecon::http

#include "core_only.hpp"
