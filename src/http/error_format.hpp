// Builds the HttpErrors the client throws: message, DETAIL (request, status,
// attempts, request id, the vendor's own message) and HINT, every field run
// through the redactor and made single-line valid UTF-8.
#pragma once

#include "http/classify.hpp"
#include "http/client.hpp"
#include "http/redact.hpp"

#include <string>
#include <string_view>

namespace billrecon::http {

inline constexpr size_t kVendorMessageMax = 300;

struct FailureFacts {
	const Request &request; // as the caller built it (no credentials)
	const Attempt &attempt; // the last attempt
	Verdict verdict;
	int attempts = 1;
	bool token_refreshed = false; // a 401 was already answered by a token refresh
	size_t max_response_bytes = 0;
};

HttpError MakeFailureError(const FailureFacts &facts, const Redactor &redact);

// Refusals before anything is sent (22023).
// `reason`: one sentence for DETAIL ("The URL is not an absolute http(s) URL.").
HttpError MakeInvalidUrlError(const Request &request, const std::string &reason, const Redactor &redact);
HttpError MakeHttpRefusedError(const Request &request, const Redactor &redact);
HttpError MakeInvalidHeaderError(const Request &request, const Header &header, const Redactor &redact);

// The vendor's own words from an error body: the usual JSON error fields
// ("error", "error_description", "message", "title", "detail", "errors"...),
// an HTML <title>, or else the body itself.
std::string VendorMessage(std::string_view body);

// Redacted, at most `max` bytes (then "..."), control characters turned
// into spaces, invalid UTF-8 into '?'.
std::string Snippet(std::string_view text, size_t max, const Redactor &redact);

// Control characters -> ' ', invalid or truncated UTF-8 -> '?'.
std::string SanitizeText(std::string_view text);

} // namespace billrecon::http

#include "core_only.hpp"
