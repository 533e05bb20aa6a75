#include "http/classify.hpp"

#include "http/client.hpp"
#include "model/error.hpp"

namespace billrecon::http {

Classification Classify(const Attempt &attempt, std::chrono::system_clock::time_point now) {
	Classification c;
	switch (attempt.failure) {
	case TransportFailure::kNone:
		break;
	case TransportFailure::kConnect:
	case TransportFailure::kTimeout:
	case TransportFailure::kReset:
		c.verdict = Verdict::kRetry;
		return c;
	case TransportFailure::kCancelled:
		c.verdict = Verdict::kCancelled;
		return c;
	case TransportFailure::kTooLarge:
	case TransportFailure::kProtocol:
	case TransportFailure::kTls:
		c.verdict = Verdict::kFatal;
		return c;
	}
	const long status = attempt.response.status;
	if (status >= 200 && status <= 299) {
		c.verdict = Verdict::kSuccess;
		return c;
	}
	switch (status) {
	case 401:
		c.verdict = Verdict::kAuth;
		break;
	case 403:
		c.verdict = Verdict::kForbidden;
		break;
	case 429:
		c.verdict = Verdict::kRateLimited;
		break;
	case 408:
	case 500:
	case 502:
	case 503:
	case 504:
		c.verdict = Verdict::kRetry;
		break;
	default:
		c.verdict = Verdict::kFatal;
		break;
	}
	if (status == 429 || status == 503) {
		if (const std::optional<std::string> value = attempt.response.HeaderValue("Retry-After"))
			c.retry_after_ms = ParseRetryAfter(*value, now);
	}
	return c;
}

const char *VerdictName(Verdict v) noexcept {
	switch (v) {
	case Verdict::kSuccess:
		return "success";
	case Verdict::kRetry:
		return "retry";
	case Verdict::kRateLimited:
		return "rate-limited";
	case Verdict::kAuth:
		return "auth";
	case Verdict::kForbidden:
		return "forbidden";
	case Verdict::kFatal:
		return "fatal";
	case Verdict::kCancelled:
		return "cancelled";
	}
	return "fatal";
}

const char *FailureSqlstate(const Attempt &attempt) noexcept {
	switch (attempt.failure) {
	case TransportFailure::kConnect:
	case TransportFailure::kTls:
		return sqlstate::kUnableToConnect;
	case TransportFailure::kTimeout:
	case TransportFailure::kReset:
		return sqlstate::kConnectionFailure;
	case TransportFailure::kTooLarge:
		return sqlstate::kProgramLimit;
	case TransportFailure::kCancelled:
		return sqlstate::kCanceled;
	case TransportFailure::kProtocol:
		return sqlstate::kDataException;
	case TransportFailure::kNone:
		break;
	}
	if (attempt.response.status == 401 || attempt.response.status == 403)
		return sqlstate::kInvalidAuthorization;
	return sqlstate::kDataException;
}

} // namespace billrecon::http
