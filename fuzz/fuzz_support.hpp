// Shared by the libFuzzer targets (fuzz/README.md): how a fuzz input becomes
// HTTP answers, and what counts as a finding.
//
// Only billrecon::Error is a clean rejection of bad input. Anything else that
// escapes (std::exception or another type) is reported and aborts, so that
// libFuzzer saves the input as a crash; ASan/UBSan reports abort by themselves.
// BILLRECON_FUZZ_VERBOSE=1 prints each input's outcome (to check seeds).
#pragma once

#include "http/transport.hpp"
#include "model/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

namespace billrecon::fuzz {

// Runs fn; returns normally on success or billrecon::Error, aborts otherwise.
template <typename Fn>
void Guard(const char *target, Fn &&fn) {
	static const bool verbose = std::getenv("BILLRECON_FUZZ_VERBOSE") != nullptr;
	try {
		fn();
		if (verbose)
			std::fprintf(stderr, "%s: accepted\n", target);
	} catch (const billrecon::Error &e) {
		// expected: bad input rejected cleanly
		if (verbose)
			std::fprintf(stderr, "%s: rejected: %s (%s) %s\n", target, e.what(), e.sqlstate().c_str(),
			             e.detail().c_str());
	} catch (const std::exception &e) {
		std::fprintf(stderr, "FINDING in %s: %s escaped (not billrecon::Error): %s\n", target, typeid(e).name(),
		             e.what());
		std::abort();
	} catch (...) {
		std::fprintf(stderr, "FINDING in %s: a non-std exception escaped\n", target);
		std::abort();
	}
}

// One scripted answer: status, headers, body.
struct Answer {
	long status = 200;
	std::vector<http::Header> headers;
	std::string body;
};

// The input, split into answers at every line "%%\n" (a single answer when
// there is none). An answer may start with a head:
//     HTTP <status>\n
//     Name: value\n ...
//     \n
// then the body; without "HTTP " at its very start it is all body, status 200,
// Content-Type application/json.
inline std::vector<Answer> SplitAnswers(std::string_view in) {
	static constexpr std::string_view kSep = "\n%%\n";
	std::vector<std::string_view> parts;
	for (;;) {
		size_t at = in.find(kSep);
		if (at == std::string_view::npos) {
			parts.push_back(in);
			break;
		}
		parts.push_back(in.substr(0, at));
		in.remove_prefix(at + kSep.size());
	}
	std::vector<Answer> out;
	for (std::string_view p : parts) {
		Answer a;
		if (p.substr(0, 5) == "HTTP ") {
			size_t eol = p.find('\n');
			std::string_view status = p.substr(5, eol == std::string_view::npos ? p.size() - 5 : eol - 5);
			long s = 0;
			for (char c : status.substr(0, 3))
				s = (c >= '0' && c <= '9') ? s * 10 + (c - '0') : s;
			a.status = s;
			p.remove_prefix(eol == std::string_view::npos ? p.size() : eol + 1);
			while (!p.empty()) {
				size_t e = p.find('\n');
				std::string_view line = p.substr(0, e);
				p.remove_prefix(e == std::string_view::npos ? p.size() : e + 1);
				if (line.empty())
					break;
				size_t colon = line.find(':');
				std::string_view name = line.substr(0, colon);
				std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
				while (!value.empty() && value.front() == ' ')
					value.remove_prefix(1);
				a.headers.push_back({std::string(name), std::string(value)});
			}
		} else {
			a.headers.push_back({"Content-Type", "application/json"});
		}
		a.body = std::string(p);
		out.push_back(std::move(a));
	}
	return out;
}

// Like test/unit/test_support.hpp's ScriptedTransport, but by role instead
// of exact URL: a POST to a token endpoint gets a valid token; every other
// request (the list pages, GET or Autotask's POST /query) gets the next
// fuzzed answer, the last one repeating. After kMaxPages page answers the
// transport answers 404, so a connector that pages forever ends cleanly.
class FuzzTransport : public http::Transport {
public:
	static constexpr size_t kMaxPages = 40;

	explicit FuzzTransport(std::vector<Answer> answers) : answers_(std::move(answers)) {
	}

	std::vector<http::Attempt> Perform(const std::vector<const http::Request *> &requests,
	                                   const http::TransportLimits &, const std::function<bool()> &) override {
		std::vector<http::Attempt> out;
		for (const http::Request *r : requests) {
			http::Attempt a;
			a.response.url = r->url;
			if (r->method == http::Method::kPost && IsTokenUrl(r->url)) {
				a.response.status = 200;
				a.response.headers = {{"Content-Type", "application/json"}};
				a.response.body = R"({"access_token": "fuzz-access-token", "token_type": "Bearer",)"
				                  R"( "expires_in": 3600, "refresh_token": "fuzz-refresh"})";
			} else if (pages_ >= kMaxPages || answers_.empty()) {
				a.response.status = 404;
				a.response.body = "{}";
			} else {
				const Answer &s = answers_[std::min(pages_, answers_.size() - 1)];
				++pages_;
				a.response.status = s.status;
				a.response.headers = s.headers;
				a.response.body = s.body;
			}
			out.push_back(std::move(a));
		}
		return out;
	}

private:
	static bool IsTokenUrl(const std::string &url) {
		std::string_view path(url);
		path = path.substr(0, path.find('?'));
		return path.size() >= 6 && path.substr(path.size() - 6) == "/token";
	}

	std::vector<Answer> answers_;
	size_t pages_ = 0;
};

} // namespace billrecon::fuzz
