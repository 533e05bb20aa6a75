// Client: auth, rate limit, retries and error reporting around a Transport.
//
// Send, SendAll and SendUnauthenticated share one loop (Impl::Run). Each
// round it hands the transport up to max_in_flight requests that are due,
// then classifies every attempt (classify.hpp): success, retry after a
// backoff or Retry-After wait, a token refresh after 401, or a final failure.
//
// SendAll fails fast: once a request fails for good, no further attempt is
// started; the requests of the same round have already completed (Perform
// returns when all are done) and their results, like those of requests not
// finished yet, are discarded. The error of the lowest-numbered failing
// request of that round is thrown.
//
// Time: retry and rate-limit waits are measured on the client's clock (see
// Impl::Sample), the steady clock plus the time a fake sleeper (tests) was
// asked to sleep but did not, so waits come out the same with either.
#include "http/backoff.hpp"
#include "http/classify.hpp"
#include "http/client.hpp"
#include "http/error_format.hpp"
#include "http/rate_limiter.hpp"
#include "http/redact.hpp"
#include "http/url.hpp"

#include <algorithm>
#include <random>
#include <thread>

namespace billrecon::http {

namespace {

using Clock = std::chrono::steady_clock;

constexpr long kSleepSliceMs = 250;
constexpr size_t kMaxLearnedSecrets = 64;

long CeilMs(Clock::duration d) {
	const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
	return ns <= 0 ? 0 : static_cast<long>((ns + 999999) / 1000000);
}

void SleepCheckingCancel(const std::function<bool()> &cancel, long ms) {
	const Clock::time_point end = Clock::now() + std::chrono::milliseconds(ms);
	while (true) {
		if (cancel && cancel())
			throw Cancelled();
		const Clock::time_point now = Clock::now();
		if (now >= end)
			return;
		std::this_thread::sleep_for(std::min<Clock::duration>(end - now, std::chrono::milliseconds(kSleepSliceMs)));
	}
}

bool HasLineBreakOrNul(std::string_view s) {
	return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool HeaderOk(const Header &h) {
	return !h.name.empty() && h.name.find(':') == std::string::npos && !HasLineBreakOrNul(h.name) &&
	       h.name.find_first_of(" \t") == std::string::npos && !HasLineBreakOrNul(h.value);
}

} // namespace

struct Client::Impl {
	struct Job {
		Request request;  // as the caller built it
		Request prepared; // with credentials, for the next attempt
		bool authenticated = false;
		int attempts = 0;
		int retries = 0;
		bool token_refreshed = false;
		long auth_generation = 0; // auth generation the prepared request used
		Clock::time_point ready_at = Clock::time_point::min();
		std::optional<Response> response;
	};

	Impl(Client &client, std::unique_ptr<Transport> transport, std::function<bool()> cancel, Sleeper sleeper)
	    : self_(client), transport_(std::move(transport)), cancel_(std::move(cancel)), sleeper_(std::move(sleeper)),
	      limiter_(client.options_.requests_per_second), rng_(std::random_device {}()) {
		if (!transport_)
			transport_ = MakeCurlTransport();
		if (!sleeper_)
			sleeper_ = [c = cancel_](long ms) { SleepCheckingCancel(c, ms); };
	}

	// Client time: the steady clock plus what a fake sleeper skipped, read only
	// at the start of a call and after each transport round or wait. Between
	// those points it stands still, so a wait decided now is slept exactly.
	Clock::time_point Sample() {
		now_ = std::max(now_, Clock::now() + offset_);
		return now_;
	}

	void CheckCancel() const {
		if (cancel_ && cancel_())
			throw Cancelled();
	}

	// Waits `ms` through the sleeper; a sleeper that returns early (a test's
	// fake) still advances this client's clock by `ms`.
	void Wait(long ms) {
		if (ms <= 0)
			return;
		CheckCancel();
		const Clock::time_point target = now_ + std::chrono::milliseconds(ms);
		sleeper_(ms);
		CheckCancel();
		const Clock::time_point real = Clock::now() + offset_;
		if (real < target)
			offset_ += target - real;
		Sample();
	}

	Redactor MakeRedactor(const Request *request) const {
		Redactor r;
		if (auth_) {
			for (const std::string &s : auth_->Secrets())
				r.Add(s);
		}
		for (const std::string &s : learned_secrets_)
			r.Add(s);
		if (request) {
			if (const std::optional<UrlParts> parts = ParseUrl(request->url)) {
				for (const std::string &s : SecretQueryValues(parts->query))
					r.Add(s);
				r.Add(parts->userinfo);
			}
		}
		return r;
	}

	void Learn(std::string secret) {
		if (secret.empty() ||
		    std::find(learned_secrets_.begin(), learned_secrets_.end(), secret) != learned_secrets_.end())
			return;
		if (learned_secrets_.size() >= kMaxLearnedSecrets)
			learned_secrets_.erase(learned_secrets_.begin());
		learned_secrets_.push_back(std::move(secret));
	}

	void Validate(const Request &request) {
		const std::optional<UrlParts> parts = ParseUrl(request.url);
		if (!parts)
			throw MakeInvalidUrlError(request, "The URL is not an absolute http(s) URL.", MakeRedactor(&request));
		for (std::string &s : SecretQueryValues(parts->query))
			Learn(std::move(s));
		if (!parts->userinfo.empty())
			throw MakeInvalidUrlError(request,
			                          "The URL carries user credentials; they belong in the integration's "
			                          "credentials.",
			                          MakeRedactor(&request));
		if (parts->scheme != "https" && !self_.options_.limits.allow_http)
			throw MakeHttpRefusedError(request, MakeRedactor(&request));
		for (const Header &h : request.headers) {
			if (!HeaderOk(h))
				throw MakeInvalidHeaderError(request, h, MakeRedactor(&request));
		}
	}

	void Prepare(Job &job) {
		job.prepared = job.request;
		if (job.authenticated && auth_) {
			job.auth_generation = auth_generation_;
			auth_->Apply(self_, job.prepared);
			for (const Header &h : job.prepared.headers) {
				if (!HeaderOk(h))
					throw MakeInvalidHeaderError(job.request, h, MakeRedactor(&job.request));
			}
		}
	}

	[[noreturn]] void Fail(const Job &job, const Attempt &attempt, Verdict verdict) const {
		FailureFacts facts {job.request, attempt, verdict};
		facts.attempts = job.attempts;
		facts.token_refreshed = job.token_refreshed;
		facts.max_response_bytes = self_.options_.limits.max_response_bytes;
		throw MakeFailureError(facts, MakeRedactor(&job.request));
	}

	// Decides what follows one attempt; throws if the job failed for good.
	void Handle(Job &job, Attempt &attempt) {
		ClientStats &stats = self_.stats_;
		const ClientOptions &options = self_.options_;
		const Classification c = Classify(attempt, std::chrono::system_clock::now());
		switch (c.verdict) {
		case Verdict::kSuccess:
			attempt.response.url = job.request.url;
			job.response = std::move(attempt.response);
			return;
		case Verdict::kCancelled:
			throw Cancelled();
		case Verdict::kRateLimited:
			++stats.throttled;
			[[fallthrough]];
		case Verdict::kRetry: {
			if (job.retries >= std::max(0, options.max_retries))
				Fail(job, attempt, c.verdict);
			if (job.request.send_once && c.verdict == Verdict::kRetry &&
			    attempt.failure != TransportFailure::kConnect)
				Fail(job, attempt, c.verdict);
			long delay;
			if (c.retry_after_ms)
				delay = std::min(*c.retry_after_ms, std::max(0L, options.retry_max_delay_ms));
			else
				delay = BackoffDelay(job.retries, options.retry_base_delay_ms, options.retry_max_delay_ms, rng_);
			++job.retries;
			++stats.retries;
			job.ready_at = now_ + std::chrono::milliseconds(delay);
			return;
		}
		case Verdict::kAuth:
			if (job.authenticated && auth_ && !job.token_refreshed) {
				// Another request may have refreshed the token since this one
				// was prepared; then just try again with the new one.
				const bool refreshed_meanwhile = auth_generation_ > job.auth_generation;
				if (refreshed_meanwhile || auth_->Invalidate()) {
					if (!refreshed_meanwhile)
						++auth_generation_;
					job.token_refreshed = true;
					++stats.retries;
					job.ready_at = now_;
					return;
				}
			}
			Fail(job, attempt, c.verdict);
		case Verdict::kForbidden:
		case Verdict::kFatal:
			Fail(job, attempt, c.verdict);
		}
	}

	std::vector<Response> Run(std::vector<Request> requests, bool authenticated) {
		for (const Request &r : requests)
			Validate(r);
		std::vector<Job> jobs(requests.size());
		for (size_t i = 0; i < requests.size(); ++i) {
			jobs[i].request = std::move(requests[i]);
			jobs[i].authenticated = authenticated;
		}
		const size_t max_batch = static_cast<size_t>(std::max(1, self_.options_.max_in_flight));
		size_t remaining = jobs.size();
		Sample();
		while (remaining > 0) {
			CheckCancel();
			std::vector<size_t> ready;
			std::optional<Clock::time_point> earliest;
			for (size_t i = 0; i < jobs.size(); ++i) {
				if (jobs[i].response)
					continue;
				if (jobs[i].ready_at <= now_)
					ready.push_back(i);
				else if (!earliest || jobs[i].ready_at < *earliest)
					earliest = jobs[i].ready_at;
			}
			if (ready.empty()) {
				Wait(CeilMs(*earliest - now_));
				continue;
			}

			std::vector<size_t> batch;
			for (const size_t i : ready) {
				if (batch.size() >= max_batch)
					break;
				Prepare(jobs[i]); // may fetch a token, through this client
				if (batch.empty())
					Wait(limiter_.Reserve(now_));
				else if (!limiter_.TryTake(now_))
					break;
				batch.push_back(i);
			}

			CheckCancel();
			std::vector<const Request *> pointers;
			pointers.reserve(batch.size());
			for (const size_t i : batch)
				pointers.push_back(&jobs[i].prepared);
			self_.stats_.requests += static_cast<long>(batch.size());
			std::vector<Attempt> attempts = transport_->Perform(pointers, self_.options_.limits, cancel_);
			Sample();
			if (attempts.size() != batch.size())
				throw HttpError(sqlstate::kInternal, "HTTP transport returned the wrong number of results",
				                "Requests: " + std::to_string(batch.size()) +
				                    ". Results: " + std::to_string(attempts.size()) + ".",
				                "this is a bug in billrecon; please report it", 0);
			for (size_t k = 0; k < batch.size(); ++k) {
				Job &job = jobs[batch[k]];
				++job.attempts;
				if (attempts[k].failure == TransportFailure::kNone)
					self_.stats_.bytes += static_cast<long>(attempts[k].response.body.size());
			}
			for (size_t k = 0; k < batch.size(); ++k) {
				Job &job = jobs[batch[k]];
				Handle(job, attempts[k]);
				if (job.response)
					--remaining;
			}
		}
		std::vector<Response> responses;
		responses.reserve(jobs.size());
		for (Job &job : jobs)
			responses.push_back(std::move(*job.response));
		return responses;
	}

	Client &self_;
	std::unique_ptr<Transport> transport_;
	std::function<bool()> cancel_;
	Sleeper sleeper_;
	std::unique_ptr<Auth> auth_;
	RateLimiter limiter_;
	std::mt19937_64 rng_;
	Clock::duration offset_ {0};               // time a fake sleeper did not spend
	Clock::time_point now_ = Clock::time_point::min(); // see Sample()
	long auth_generation_ = 0;                 // bumped whenever Invalidate() dropped a token
	std::vector<std::string> learned_secrets_; // secret-looking query values seen in URLs
};

Client::Client(ClientOptions options, std::unique_ptr<Transport> transport, std::function<bool()> cancel,
               Sleeper sleeper)
    : options_(std::move(options)) {
	impl_ = std::make_unique<Impl>(*this, std::move(transport), std::move(cancel), std::move(sleeper));
}

Client::~Client() = default;

void Client::SetAuth(std::unique_ptr<Auth> auth) {
	impl_->auth_ = std::move(auth);
	++impl_->auth_generation_;
}

Response Client::Send(Request request) {
	std::vector<Request> one;
	one.push_back(std::move(request));
	return std::move(impl_->Run(std::move(one), true).front());
}

std::vector<Response> Client::SendAll(std::vector<Request> requests) {
	return impl_->Run(std::move(requests), true);
}

Response Client::SendUnauthenticated(Request request) {
	std::vector<Request> one;
	one.push_back(std::move(request));
	return std::move(impl_->Run(std::move(one), false).front());
}

std::string Client::Redact(std::string text) const {
	return impl_->MakeRedactor(nullptr).Apply(text);
}

} // namespace billrecon::http
