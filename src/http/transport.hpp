// One attempt at a set of requests, nothing more: no retries, no auth, no
// rate limits (the Client adds those). CurlTransport performs them on the
// network; tests substitute a scripted transport.
#pragma once

#include "http/types.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace billrecon::http {

// Why an attempt produced no HTTP response.
enum class TransportFailure {
	kNone,            // a response arrived (any status)
	kConnect,         // DNS, refused, unreachable, TLS handshake
	kTimeout,         // connect or total timeout
	kReset,           // connection dropped before the body was complete
	kTooLarge,        // body exceeded the size cap
	kCancelled,       // the cancel predicate asked us to stop
	kProtocol,        // bad URL, unsupported protocol, malformed HTTP
	kTls,             // certificate verification failed
};

struct Attempt {
	TransportFailure failure = TransportFailure::kNone;
	Response response;        // valid when failure == kNone
	std::string error;        // curl's message when failure != kNone (never holds secrets)
};

struct TransportLimits {
	long connect_timeout_ms = 10000;
	long timeout_ms = 60000;
	size_t max_response_bytes = 64u << 20;
	bool verify_tls = true;
	bool allow_http = false;
	std::string user_agent = "billrecon";
	std::string ca_file;      // empty: the system store
};

class Transport {
public:
	virtual ~Transport() = default;
	// Performs every request concurrently (as far as the transport can) and
	// returns one Attempt per request, in the same order. Never throws for
	// network outcomes; `cancel` is polled at least every 250 ms.
	virtual std::vector<Attempt> Perform(const std::vector<const Request *> &requests, const TransportLimits &limits,
	                                     const std::function<bool()> &cancel) = 0;
};

// libcurl (multi interface). Defined in http/curl_transport.cpp.
std::unique_ptr<Transport> MakeCurlTransport();

} // namespace billrecon::http

#include "core_only.hpp"
