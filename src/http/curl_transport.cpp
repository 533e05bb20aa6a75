// CurlTransport: one attempt at each of a set of requests, concurrently, over
// the libcurl multi interface. No retries, auth or rate limits (the Client's
// job). Callbacks are noexcept and report trouble through the Transfer.
#include "http/curl_codes.hpp"
#include "http/curl_handles.hpp"
#include "http/transport.hpp"

#include <optional>

namespace billrecon::http {

namespace {

// Everything one transfer owns. Lives in a unique_ptr: curl keeps pointers to
// it (WRITEDATA, HEADERDATA, ERRORBUFFER, PRIVATE).
struct Transfer {
	explicit Transfer(size_t limit) : cap(limit) {
	}

	curl::Easy easy;
	curl::Slist headers;
	Response response;
	size_t cap;
	bool too_large = false;     // the write callback refused bytes past the cap
	bool out_of_memory = false; // a callback could not allocate
	char error[CURL_ERROR_SIZE] = {};
	std::string setup_error;    // a curl_easy_setopt that failed
	bool done = false;
	CURLcode result = CURLE_OK;
	// Declared last, destroyed first: the handle leaves the multi before
	// curl_easy_cleanup and before the multi handle itself goes.
	std::optional<curl::Attachment> attachment;
};

size_t OnBody(char *data, size_t size, size_t nmemb, void *userdata) noexcept {
	auto *t = static_cast<Transfer *>(userdata);
	const size_t n = size * nmemb;
	if (n > t->cap - t->response.body.size()) {
		t->too_large = true;
		return 0; // CURLE_WRITE_ERROR
	}
	try {
		t->response.body.append(data, n);
	} catch (...) {
		t->out_of_memory = true;
		return 0;
	}
	return n;
}

std::string_view TrimView(std::string_view s) {
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
		s.remove_suffix(1);
	return s;
}

size_t OnHeader(char *data, size_t size, size_t nitems, void *userdata) noexcept {
	auto *t = static_cast<Transfer *>(userdata);
	const size_t n = size * nitems;
	try {
		std::string_view line(data, n);
		while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
			line.remove_suffix(1);
		if (line.substr(0, 5) == "HTTP/") {
			// A new response (after 100 Continue, or a proxy's CONNECT answer):
			// only the final one's headers count.
			t->response.headers.clear();
		} else if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
			if (!t->response.headers.empty()) { // obsolete line folding
				t->response.headers.back().value += ' ';
				t->response.headers.back().value += TrimView(line);
			}
		} else if (const size_t colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
			t->response.headers.push_back(
			    Header {std::string(TrimView(line.substr(0, colon))), std::string(TrimView(line.substr(colon + 1)))});
		}
	} catch (...) {
		t->out_of_memory = true;
		return 0;
	}
	return n;
}

void Configure(Transfer &t, const Request &request, const TransportLimits &limits) {
	CURL *h = t.easy.get();
	CURLcode first = CURLE_OK;
	const char *failed_option = nullptr;
	auto set = [&](const char *name, CURLoption option, auto value) {
		const CURLcode rc = curl_easy_setopt(h, option, value);
		if (rc != CURLE_OK && first == CURLE_OK) {
			first = rc;
			failed_option = name;
		}
	};
	const char *protocols = limits.allow_http ? "http,https" : "https";
	set("URL", CURLOPT_URL, request.url.c_str());
	set("PRIVATE", CURLOPT_PRIVATE, static_cast<void *>(&t));
	set("NOSIGNAL", CURLOPT_NOSIGNAL, 1L);
	set("PROTOCOLS_STR", CURLOPT_PROTOCOLS_STR, protocols);
	set("REDIR_PROTOCOLS_STR", CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	set("FOLLOWLOCATION", CURLOPT_FOLLOWLOCATION, 0L); // never carry credentials elsewhere
	set("MAXREDIRS", CURLOPT_MAXREDIRS, 0L);
	set("CONNECTTIMEOUT_MS", CURLOPT_CONNECTTIMEOUT_MS, limits.connect_timeout_ms);
	set("TIMEOUT_MS", CURLOPT_TIMEOUT_MS, limits.timeout_ms);
	set("ERRORBUFFER", CURLOPT_ERRORBUFFER, t.error);
	set("USERAGENT", CURLOPT_USERAGENT, limits.user_agent.c_str());
	set("ACCEPT_ENCODING", CURLOPT_ACCEPT_ENCODING, "");
	set("SSL_VERIFYPEER", CURLOPT_SSL_VERIFYPEER, limits.verify_tls ? 1L : 0L);
	set("SSL_VERIFYHOST", CURLOPT_SSL_VERIFYHOST, limits.verify_tls ? 2L : 0L);
	if (!limits.ca_file.empty())
		set("CAINFO", CURLOPT_CAINFO, limits.ca_file.c_str());
	set("WRITEFUNCTION", CURLOPT_WRITEFUNCTION, &OnBody);
	set("WRITEDATA", CURLOPT_WRITEDATA, static_cast<void *>(&t));
	set("HEADERFUNCTION", CURLOPT_HEADERFUNCTION, &OnHeader);
	set("HEADERDATA", CURLOPT_HEADERDATA, static_cast<void *>(&t));
	// Fails early on a Content-Length above the cap; the write callback
	// enforces it for chunked and compressed bodies.
	set("MAXFILESIZE_LARGE", CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(limits.max_response_bytes));
	set("TCP_KEEPALIVE", CURLOPT_TCP_KEEPALIVE, 1L);

	t.headers.Append("Expect:"); // no 100-continue round trip
	for (const Header &header : request.headers)
		t.headers.Append(header.value.empty() ? header.name + ";" : header.name + ": " + header.value);
	set("HTTPHEADER", CURLOPT_HTTPHEADER, t.headers.get());

	const bool has_body = !request.body.empty();
	switch (request.method) {
	case Method::kGet:
		if (has_body)
			set("CUSTOMREQUEST", CURLOPT_CUSTOMREQUEST, "GET");
		else
			set("HTTPGET", CURLOPT_HTTPGET, 1L);
		break;
	case Method::kPost:
		set("POST", CURLOPT_POST, 1L);
		break;
	case Method::kPatch:
	case Method::kPut:
	case Method::kDelete:
		set("CUSTOMREQUEST", CURLOPT_CUSTOMREQUEST, MethodName(request.method));
		break;
	}
	if (has_body || request.method == Method::kPost || request.method == Method::kPut ||
	    request.method == Method::kPatch) {
		// The Request outlives Perform, so curl may read the body in place.
		set("POSTFIELDSIZE_LARGE", CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
		set("POSTFIELDS", CURLOPT_POSTFIELDS, request.body.c_str());
	}
	if (first != CURLE_OK)
		t.setup_error = std::string("curl_easy_setopt(CURLOPT_") + failed_option + ") failed: " +
		                curl_easy_strerror(first);
}

Attempt Finish(Transfer &t, const Request &request, bool cancelled, const std::string &multi_error) {
	Attempt a;
	if (!t.setup_error.empty()) {
		a.failure = TransportFailure::kProtocol;
		a.error = t.setup_error;
		return a;
	}
	if (!t.done) {
		a.failure = cancelled ? TransportFailure::kCancelled : TransportFailure::kProtocol;
		a.error = cancelled ? "transfer cancelled"
		                    : (multi_error.empty() ? "transfer did not complete" : multi_error);
		return a;
	}
	if (t.result != CURLE_OK) {
		a.failure = curl::FailureFromCode(t.result, t.too_large || t.out_of_memory);
		if (t.too_large)
			a.error = "response body exceeds " + std::to_string(t.cap) + " bytes";
		else
			a.error = t.error[0] != '\0' ? std::string(t.error) : std::string(curl_easy_strerror(t.result));
		return a;
	}
	long status = 0;
	curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
	curl_off_t total_us = 0;
	curl_easy_getinfo(t.easy.get(), CURLINFO_TOTAL_TIME_T, &total_us);
	a.response = std::move(t.response);
	a.response.status = status;
	a.response.url = request.url;
	a.response.elapsed_ms = static_cast<long>(total_us / 1000);
	if (status <= 0) {
		a.failure = TransportFailure::kProtocol;
		a.error = "no HTTP status in the response";
	}
	return a;
}

class CurlTransport final : public Transport {
public:
	std::vector<Attempt> Perform(const std::vector<const Request *> &requests, const TransportLimits &limits,
	                             const std::function<bool()> &cancel) override {
		curl::EnsureGlobalInit();
		if (!multi_)
			multi_.emplace();
		std::vector<std::unique_ptr<Transfer>> transfers;
		transfers.reserve(requests.size());
		multi_error_.clear();
		bool cancelled = cancel && cancel();
		for (const Request *request : requests) {
			transfers.push_back(std::make_unique<Transfer>(limits.max_response_bytes));
			Transfer &t = *transfers.back();
			Configure(t, *request, limits);
			if (t.setup_error.empty() && !cancelled)
				t.attachment.emplace(*multi_, t.easy);
		}
		if (!cancelled)
			cancelled = Run(cancel);
		std::vector<Attempt> attempts;
		attempts.reserve(requests.size());
		for (size_t i = 0; i < requests.size(); ++i)
			attempts.push_back(Finish(*transfers[i], *requests[i], cancelled, multi_error_));
		return attempts; // ~Transfer removes every handle (aborting unfinished ones)
	}

private:
	// Drives the multi handle until every transfer is done; true if cancelled.
	bool Run(const std::function<bool()> &cancel) {
		CURLM *multi = multi_->get();
		while (true) {
			int running = 0;
			CURLMcode mc = curl_multi_perform(multi, &running);
			Drain();
			if (mc != CURLM_OK)
				return Abort(mc);
			if (running == 0)
				return false;
			mc = curl_multi_poll(multi, nullptr, 0, 250, nullptr);
			if (mc != CURLM_OK)
				return Abort(mc);
			if (cancel && cancel())
				return true;
		}
	}

	void Drain() {
		int left = 0;
		while (CURLMsg *msg = curl_multi_info_read(multi_->get(), &left)) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			char *p = nullptr;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
			if (auto *t = reinterpret_cast<Transfer *>(p)) {
				t->done = true;
				t->result = msg->data.result;
			}
		}
	}

	// A multi-level failure: the unfinished transfers get a protocol error.
	bool Abort(CURLMcode mc) {
		multi_error_ = std::string("libcurl multi interface failed: ") + curl_multi_strerror(mc);
		return false;
	}

	std::optional<curl::Multi> multi_; // keeps connections alive between Perform calls
	std::string multi_error_;
};

} // namespace

std::unique_ptr<Transport> MakeCurlTransport() {
	return std::make_unique<CurlTransport>();
}

} // namespace billrecon::http
