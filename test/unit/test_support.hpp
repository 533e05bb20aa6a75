// What the connector tests share: fixtures, a scripted http::Transport
// behind a real http::Client, and a RecordSink that collects in memory.
// Header-only: CMake builds test/unit/*_test.cpp only.
#pragma once

#include "connectors/connector.hpp"
#include "connectors/registry.hpp"
#include "http/client.hpp"
#include "http/transport.hpp"
#include "model/error.hpp"
#include "model/records.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace billrecon::test_support {

// test/fixtures/<dir>/<name>; a missing file fails the test.
inline std::string ReadFixture(const std::string &dir, const std::string &name) {
	std::ifstream in(std::string(BILLRECON_FIXTURES_DIR) + "/" + dir + "/" + name, std::ios::binary);
	EXPECT_TRUE(in.good()) << "missing fixture " << dir << "/" << name;
	std::ostringstream s;
	s << in.rdbuf();
	return s.str();
}

// The response headers vendor APIs send with a JSON body.
inline const std::vector<http::Header> kJsonContentType = {{"Content-Type", "application/json"}};

struct Scripted {
	long status = 200;
	std::vector<http::Header> headers;
	std::string body;
};

// Answers by exact "METHOD url" (several answers are used in turn, the last
// one repeats); records every request it sees, with the headers the client
// and its Auth added, and how many requests each Perform call carried.
struct Script {
	// Get and Answer read fixtures from test/fixtures/<fixture_dir> and answer
	// with `fixture_headers` (plus any headers Get is given).
	explicit Script(std::string fixture_dir, std::vector<http::Header> fixture_headers = {})
	    : fixture_dir(std::move(fixture_dir)), fixture_headers(std::move(fixture_headers)) {
	}

	std::string fixture_dir;
	std::vector<http::Header> fixture_headers;
	std::map<std::string, std::deque<Scripted>> answers;
	std::vector<http::Request> seen;
	std::vector<size_t> batches; // requests per Perform call

	void On(const std::string &method_url, Scripted s) {
		answers[method_url].push_back(std::move(s));
	}
	std::string Fixture(const std::string &name) const {
		return ReadFixture(fixture_dir, name);
	}
	// GET url answered with the fixture.
	void Get(const std::string &url, const std::string &fixture, long status = 200) {
		On("GET " + url, Scripted{status, fixture_headers, Fixture(fixture)});
	}
	// The same with more response headers (Link, ...).
	void Get(const std::string &url, const std::string &fixture, const std::vector<http::Header> &headers) {
		std::vector<http::Header> all = fixture_headers;
		all.insert(all.end(), headers.begin(), headers.end());
		On("GET " + url, Scripted{200, std::move(all), Fixture(fixture)});
	}
	// "METHOD url" answered with the fixture.
	void Answer(const std::string &method_url, const std::string &fixture) {
		On(method_url, Scripted{200, fixture_headers, Fixture(fixture)});
	}
	std::vector<std::string> Urls() const {
		std::vector<std::string> out;
		for (const http::Request &r : seen)
			out.push_back(std::string(http::MethodName(r.method)) + " " + r.url);
		return out;
	}
	// The body of the n-th request to "METHOD url".
	std::string BodyOf(const std::string &method_url, size_t n = 0) const {
		for (const http::Request &r : seen)
			if (std::string(http::MethodName(r.method)) + " " + r.url == method_url && n-- == 0)
				return r.body;
		ADD_FAILURE() << "no request " << method_url;
		return "";
	}
};

// Plays a Script. An unscripted request fails the test and gets a 418.
class ScriptedTransport : public http::Transport {
public:
	explicit ScriptedTransport(std::shared_ptr<Script> script) : script_(std::move(script)) {
	}
	std::vector<http::Attempt> Perform(const std::vector<const http::Request *> &requests,
	                                   const http::TransportLimits &, const std::function<bool()> &) override {
		script_->batches.push_back(requests.size());
		std::vector<http::Attempt> out;
		for (const http::Request *r : requests) {
			script_->seen.push_back(*r);
			std::string key = std::string(http::MethodName(r->method)) + " " + r->url;
			http::Attempt a;
			a.response.url = r->url;
			auto it = script_->answers.find(key);
			if (it == script_->answers.end() || it->second.empty()) {
				ADD_FAILURE() << "unscripted request " << key;
				a.response.status = 418;
			} else {
				Scripted s = it->second.front();
				if (it->second.size() > 1)
					it->second.pop_front();
				a.response.status = s.status;
				a.response.headers = s.headers;
				a.response.body = s.body;
			}
			out.push_back(std::move(a));
		}
		return out;
	}

private:
	std::shared_ptr<Script> script_;
};

inline http::ClientOptions NoRetries() {
	http::ClientOptions options;
	options.max_retries = 0;
	return options;
}

// A real client over the script: never cancelled, never sleeps.
inline std::unique_ptr<http::Client> ScriptedClient(std::shared_ptr<Script> script,
                                                    http::ClientOptions options = NoRetries()) {
	return std::make_unique<http::Client>(options, std::make_unique<ScriptedTransport>(std::move(script)),
	                                      [] { return false; }, [](long) {});
}

// Collects what a connector stores. Records of the other side fail the test:
// a PSA connector stores no vendor accounts or usage, a vendor connector no
// companies, agreements or line items. `puts` names every call and its size
// ("companies 2").
struct CollectingSink : connectors::RecordSink {
	explicit CollectingSink(connectors::Side side) : side(side) {
	}

	connectors::Side side;
	std::vector<model::Company> companies;
	std::vector<model::Agreement> agreements;
	std::vector<model::LineItem> line_items;
	std::vector<model::VendorAccount> accounts;
	std::vector<model::UsageRecord> usage;
	std::vector<std::pair<std::string, size_t>> pages;
	std::vector<std::string> puts;
	std::vector<std::string> warnings;

	void PutCompanies(const std::vector<model::Company> &rows) override {
		Collect(connectors::Side::kPsa, "companies", companies, rows);
	}
	void PutAgreements(const std::vector<model::Agreement> &rows) override {
		Collect(connectors::Side::kPsa, "agreements", agreements, rows);
	}
	void PutLineItems(const std::vector<model::LineItem> &rows) override {
		Collect(connectors::Side::kPsa, "line items", line_items, rows);
	}
	void PutVendorAccounts(const std::vector<model::VendorAccount> &rows) override {
		Collect(connectors::Side::kVendor, "vendor accounts", accounts, rows);
	}
	void PutUsage(const std::vector<model::UsageRecord> &rows) override {
		Collect(connectors::Side::kVendor, "usage", usage, rows);
	}
	void OnPage(std::string_view phase, size_t records) override {
		pages.emplace_back(std::string(phase), records);
	}
	void Warn(std::string message) override {
		warnings.push_back(std::move(message));
	}

	// The usage record with that external id; none fails the test ("no <what> <id>").
	const model::UsageRecord &Usage(const std::string &id, std::string_view what = "usage record") const {
		for (const model::UsageRecord &u : usage)
			if (u.external_id == id)
				return u;
		ADD_FAILURE() << "no " << what << " " << id;
		static const model::UsageRecord none;
		return none;
	}

private:
	template <typename Row>
	void Collect(connectors::Side of, const char *what, std::vector<Row> &into, const std::vector<Row> &rows) {
		if (of != side) {
			ADD_FAILURE() << (side == connectors::Side::kPsa ? "a PSA" : "a vendor") << " connector stored " << what;
			return;
		}
		into.insert(into.end(), rows.begin(), rows.end());
		puts.push_back(std::string(what) + " " + std::to_string(rows.size()));
	}
};

// The first header of that name (case-insensitive).
inline std::optional<std::string> HeaderOf(const http::Request &r, std::string_view name) {
	for (const http::Header &h : r.headers)
		if (http::IEquals(h.name, name))
			return h.value;
	return std::nullopt;
}

// The billrecon::Error fn throws (fails the test when it throws none).
template <typename Fn>
billrecon::Error CatchError(Fn &&fn) {
	try {
		fn();
	} catch (const billrecon::Error &e) {
		return e;
	}
	ADD_FAILURE() << "no billrecon::Error thrown";
	return billrecon::Error("00000", "none");
}

} // namespace billrecon::test_support
