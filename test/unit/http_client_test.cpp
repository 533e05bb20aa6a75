// Client policies against a scripted transport and a recording sleeper:
// retries, Retry-After, backoff, token refresh, failure mapping, redaction,
// rate limit, SendAll order and concurrency, cancellation.
#include "http/auth.hpp"
#include "http/client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace billrecon::http;
using billrecon::Cancelled;

namespace {

Attempt Status(long status, std::string body = "", std::vector<Header> headers = {}) {
	Attempt a;
	a.response.status = status;
	a.response.body = std::move(body);
	a.response.headers = std::move(headers);
	return a;
}

Attempt Failure(TransportFailure f, std::string error = "transport failed") {
	Attempt a;
	a.failure = f;
	a.error = std::move(error);
	return a;
}

// Answers each request with handler(request); records what it was given.
class ScriptedTransport : public Transport {
public:
	std::function<Attempt(const Request &)> handler;
	std::vector<Request> seen;
	std::vector<size_t> batches;

	std::vector<Attempt> Perform(const std::vector<const Request *> &requests, const TransportLimits &,
	                             const std::function<bool()> &) override {
		batches.push_back(requests.size());
		std::vector<Attempt> out;
		for (const Request *r : requests) {
			seen.push_back(*r);
			out.push_back(handler(*r));
		}
		return out;
	}
};

// Replays a fixed sequence of attempts, then repeats the last one.
std::function<Attempt(const Request &)> Sequence(std::vector<Attempt> script) {
	auto index = std::make_shared<size_t>(0);
	return [script = std::move(script), index](const Request &) {
		const size_t i = std::min(*index, script.size() - 1);
		++*index;
		return script[i];
	};
}

ClientOptions TestOptions() {
	ClientOptions o;
	o.max_retries = 3;
	o.retry_base_delay_ms = 100;
	o.retry_max_delay_ms = 10000;
	return o;
}

struct Harness {
	explicit Harness(ClientOptions options = TestOptions(), std::function<bool()> cancel = nullptr) {
		auto t = std::make_unique<ScriptedTransport>();
		transport = t.get();
		client = std::make_unique<Client>(std::move(options), std::move(t), std::move(cancel),
		                                  [this](long ms) { waits.push_back(ms); });
	}
	ScriptedTransport *transport;
	std::vector<long> waits;
	std::unique_ptr<Client> client;
};

Request Get(std::string url = "https://api.example.com/v1/items?page=2", std::string label = "items page 2") {
	Request r;
	r.url = std::move(url);
	r.label = std::move(label);
	return r;
}

template <typename Fn>
HttpError CatchHttp(Fn &&fn) {
	try {
		fn();
	} catch (const HttpError &e) {
		return e;
	}
	ADD_FAILURE() << "no HttpError thrown";
	return HttpError("00000", "none", "", "", 0);
}

std::optional<std::string> HeaderOf(const Request &r, const std::string &name) {
	for (const Header &h : r.headers) {
		if (IEquals(h.name, name))
			return h.value;
	}
	return std::nullopt;
}

TEST(HttpClient, ReturnsSuccessWithUrlAndCountsBytes) {
	Harness h;
	h.transport->handler = [](const Request &) { return Status(200, "[1,2,3]"); };
	const Response r = h.client->Send(Get());
	EXPECT_EQ(r.status, 200);
	EXPECT_EQ(r.body, "[1,2,3]");
	EXPECT_EQ(r.url, "https://api.example.com/v1/items?page=2");
	EXPECT_EQ(h.client->stats().requests, 1);
	EXPECT_EQ(h.client->stats().bytes, 7);
	EXPECT_EQ(h.client->stats().retries, 0);
	EXPECT_TRUE(h.waits.empty());
}

TEST(HttpClient, NoContentIsSuccess) {
	Harness h;
	h.transport->handler = [](const Request &) { return Status(204); };
	Request r = Get();
	r.method = Method::kDelete;
	const Response resp = h.client->Send(r);
	EXPECT_EQ(resp.status, 204);
	EXPECT_TRUE(resp.body.empty());
	ASSERT_EQ(h.transport->seen.size(), 1u);
	EXPECT_EQ(h.transport->seen[0].method, Method::kDelete);
}

TEST(HttpClient, RetryAfterIsHonouredExactly) {
	Harness h;
	h.transport->handler = Sequence({Status(429, "slow down", {{"retry-after", "7"}}), Status(200, "ok")});
	EXPECT_EQ(h.client->Send(Get()).body, "ok");
	EXPECT_EQ(h.waits, std::vector<long>({7000}));
	EXPECT_EQ(h.client->stats().throttled, 1);
	EXPECT_EQ(h.client->stats().retries, 1);
	EXPECT_EQ(h.client->stats().requests, 2);
}

TEST(HttpClient, RetryAfterOn503IsHonoured) {
	Harness h;
	h.transport->handler = Sequence({Status(503, "", {{"Retry-After", "2"}}), Status(200, "ok")});
	EXPECT_EQ(h.client->Send(Get()).body, "ok");
	EXPECT_EQ(h.waits, std::vector<long>({2000}));
	EXPECT_EQ(h.client->stats().throttled, 0);
}

TEST(HttpClient, RetryAfterAboveTheCapWaitsTheCapThenRetries) {
	ClientOptions o = TestOptions();
	o.retry_max_delay_ms = 5000;
	Harness h(o);
	h.transport->handler = Sequence({Status(429, "", {{"Retry-After", "3600"}}), Status(200, "ok")});
	EXPECT_EQ(h.client->Send(Get()).body, "ok");
	EXPECT_EQ(h.waits, std::vector<long>({5000}));
}

TEST(HttpClient, RateLimitedWithoutRetryAfterBacksOffExponentiallyWithJitter) {
	for (int round = 0; round < 20; ++round) {
		Harness h;
		h.transport->handler = Sequence({Status(429), Status(429), Status(429), Status(200, "ok")});
		EXPECT_EQ(h.client->Send(Get()).body, "ok");
		ASSERT_EQ(h.waits.size(), 3u);
		// base 100: ceilings 100, 200, 400; jitter keeps each in [ceiling/2, ceiling]
		EXPECT_GE(h.waits[0], 50);
		EXPECT_LE(h.waits[0], 100);
		EXPECT_GE(h.waits[1], 100);
		EXPECT_LE(h.waits[1], 200);
		EXPECT_GE(h.waits[2], 200);
		EXPECT_LE(h.waits[2], 400);
		EXPECT_EQ(h.client->stats().throttled, 3);
	}
}

TEST(HttpClient, BackoffIsCappedByMaxDelay) {
	ClientOptions o = TestOptions();
	o.max_retries = 8;
	o.retry_base_delay_ms = 1000;
	o.retry_max_delay_ms = 3000;
	Harness h(o);
	h.transport->handler = Sequence({Status(502), Status(502), Status(502), Status(502), Status(502), Status(200)});
	h.client->Send(Get());
	ASSERT_EQ(h.waits.size(), 5u);
	for (long w : h.waits)
		EXPECT_LE(w, 3000);
	EXPECT_GE(h.waits[4], 1500);
}

TEST(HttpClient, ServerErrorBurstThenSuccess) {
	ClientOptions o = TestOptions();
	o.max_retries = 5;
	Harness h(o);
	h.transport->handler =
	    Sequence({Status(500), Status(502), Status(503), Status(504), Status(408), Status(200, "done")});
	EXPECT_EQ(h.client->Send(Get()).body, "done");
	EXPECT_EQ(h.transport->seen.size(), 6u);
	EXPECT_EQ(h.waits.size(), 5u);
	EXPECT_EQ(h.client->stats().retries, 5);
}

TEST(HttpClient, ServerErrorForeverFailsAfterMaxRetriesPlusOne) {
	Harness h; // max_retries = 3
	h.transport->handler = [](const Request &) {
		return Status(500, R"({"message":"database exploded"})", {{"X-Request-Id", "req-42"}});
	};
	const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
	EXPECT_EQ(h.transport->seen.size(), 4u);
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.status(), 500);
	EXPECT_STREQ(e.what(), "request to api.example.com failed with HTTP status 500");
	EXPECT_NE(e.detail().find("Attempts: 4"), std::string::npos) << e.detail();
	EXPECT_NE(e.detail().find("GET https://api.example.com/v1/items (items page 2)"), std::string::npos)
	    << e.detail();
	EXPECT_NE(e.detail().find("HTTP status: 500"), std::string::npos);
	EXPECT_NE(e.detail().find("Request id: req-42"), std::string::npos);
	EXPECT_NE(e.detail().find("Vendor message: database exploded"), std::string::npos) << e.detail();
	EXPECT_EQ(e.detail().find("page=2"), std::string::npos) << "query strings stay out of messages";
	EXPECT_FALSE(e.hint().empty());
}

TEST(HttpClient, TimeoutsResetsAndConnectFailuresAreRetried) {
	Harness h;
	h.transport->handler = Sequence({Failure(TransportFailure::kTimeout), Failure(TransportFailure::kReset),
	                                 Failure(TransportFailure::kConnect), Status(200, "ok")});
	EXPECT_EQ(h.client->Send(Get()).body, "ok");
	EXPECT_EQ(h.waits.size(), 3u);
}

TEST(HttpClient, TimeoutForeverIs08006AndConnectForeverIs08001) {
	{
		Harness h;
		h.transport->handler = [](const Request &) {
			return Failure(TransportFailure::kTimeout, "Operation timed out after 60000 milliseconds");
		};
		const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
		EXPECT_EQ(e.sqlstate(), "08006");
		EXPECT_EQ(e.status(), 0);
		EXPECT_EQ(h.transport->seen.size(), 4u);
		EXPECT_NE(e.detail().find("Operation timed out"), std::string::npos);
		EXPECT_NE(e.detail().find("Attempts: 4"), std::string::npos);
	}
	{
		Harness h;
		h.transport->handler = [](const Request &) { return Failure(TransportFailure::kConnect); };
		const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
		EXPECT_EQ(e.sqlstate(), "08001");
		EXPECT_STREQ(e.what(), "could not connect to api.example.com");
	}
}

TEST(HttpClient, TooLargeIs54000AndNotRetried) {
	Harness h;
	h.transport->handler = [](const Request &) { return Failure(TransportFailure::kTooLarge); };
	const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
	EXPECT_EQ(e.sqlstate(), "54000");
	EXPECT_EQ(h.transport->seen.size(), 1u);
	EXPECT_TRUE(h.waits.empty());
}

TEST(HttpClient, TlsAndProtocolFailuresAreNotRetried) {
	Harness h;
	h.transport->handler = Sequence({Failure(TransportFailure::kTls), Status(200)});
	EXPECT_EQ(CatchHttp([&] { h.client->Send(Get()); }).sqlstate(), "08001");
	EXPECT_EQ(h.transport->seen.size(), 1u);
}

TEST(HttpClient, ForbiddenIs28000WithPermissionHintAndNotRetried) {
	Harness h;
	h.transport->handler = [](const Request &) { return Status(403, R"({"error":"insufficient_scope"})"); };
	const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
	EXPECT_EQ(e.sqlstate(), "28000");
	EXPECT_EQ(e.status(), 403);
	EXPECT_NE(e.hint().find("permission"), std::string::npos);
	EXPECT_EQ(h.transport->seen.size(), 1u);
}

TEST(HttpClient, NotFoundIs22000WithThePath) {
	Harness h;
	h.transport->handler = [](const Request &) { return Status(404, "<html><title>Not Found</title></html>"); };
	const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_STREQ(e.what(), "resource not found at api.example.com: /v1/items");
	EXPECT_NE(e.detail().find("Vendor message: Not Found"), std::string::npos) << e.detail();
	EXPECT_EQ(h.transport->seen.size(), 1u);
}

TEST(HttpClient, RedirectsAreReportedNotFollowed) {
	Harness h;
	h.transport->handler = [](const Request &) {
		return Status(301, "", {{"Location", "https://other.example.com/v2/items?token=abc"}});
	};
	const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
	EXPECT_EQ(e.status(), 301);
	EXPECT_NE(e.detail().find("Location: https://other.example.com/v2/items."), std::string::npos) << e.detail();
	EXPECT_EQ(h.transport->seen.size(), 1u);
}

TEST(HttpClient, PlainHttpIsRefusedUnlessAllowed) {
	Harness h;
	h.transport->handler = [](const Request &) { return Status(200); };
	const HttpError e = CatchHttp([&] { h.client->Send(Get("http://127.0.0.1:8080/api")); });
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.hint(), "use an https:// base URL, or SET billrecon.allow_http = on for testing on loopback");
	EXPECT_TRUE(h.transport->seen.empty());

	ClientOptions o = TestOptions();
	o.limits.allow_http = true;
	Harness allowed(o);
	allowed.transport->handler = [](const Request &) { return Status(200, "ok"); };
	EXPECT_EQ(allowed.client->Send(Get("HTTP://127.0.0.1:8080/api")).body, "ok");
}

TEST(HttpClient, NonAbsoluteOrNonHttpUrlsAreRefused) {
	for (const char *url : {"/v1/items", "ftp://example.com/x", "https://", "https:// example.com/", "example.com",
	                        "https://user:pw@example.com/"}) {
		Harness h;
		h.transport->handler = [](const Request &) { return Status(200); };
		const HttpError e = CatchHttp([&] { h.client->Send(Get(url)); });
		EXPECT_EQ(e.sqlstate(), "22023") << url;
		EXPECT_TRUE(h.transport->seen.empty()) << url;
	}
}

TEST(HttpClient, HeaderInjectionIsRefused) {
	Harness h;
	h.transport->handler = [](const Request &) { return Status(200); };
	Request r = Get();
	r.headers.push_back({"clientId", "abc\r\nX-Evil: 1"});
	EXPECT_EQ(CatchHttp([&] { h.client->Send(r); }).sqlstate(), "22023");
	EXPECT_TRUE(h.transport->seen.empty());
}

TEST(HttpClient, StaticCredentialsRejectedAre28000WithoutRetry) {
	Harness h;
	h.client->SetAuth(MakeBasicAuth("acme+pub", "priv-key-123", {{"clientId", "guid-1"}}));
	h.transport->handler = [](const Request &) { return Status(401, R"({"message":"Bad credentials"})"); };
	const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
	EXPECT_EQ(e.sqlstate(), "28000");
	EXPECT_EQ(e.status(), 401);
	EXPECT_STREQ(e.what(), "authentication failed for api.example.com");
	EXPECT_NE(e.detail().find("HTTP status: 401"), std::string::npos);
	EXPECT_NE(e.detail().find("Bad credentials"), std::string::npos);
	EXPECT_NE(e.hint().find("credentials"), std::string::npos);
	EXPECT_EQ(h.transport->seen.size(), 1u);
	ASSERT_EQ(h.transport->seen.size(), 1u);
	EXPECT_EQ(HeaderOf(h.transport->seen[0], "Authorization"), "Basic " + Base64Encode("acme+pub:priv-key-123"));
	EXPECT_EQ(HeaderOf(h.transport->seen[0], "clientid"), "guid-1");
}

// Token endpoint at /token hands out tok1, tok2, ...; the API accepts only
// the tokens in `valid`.
struct TokenServer {
	int issued = 0;
	int token_requests = 0;
	int api_requests = 0;
	std::vector<std::string> valid;

	Attempt operator()(const Request &r) {
		if (r.url == "https://login.example.com/token") {
			++token_requests;
			++issued;
			return Status(200, R"({"access_token":"tok)" + std::to_string(issued) +
			                       R"(","token_type":"Bearer","expires_in":3600})");
		}
		++api_requests;
		const std::optional<std::string> auth = HeaderOf(r, "Authorization");
		for (const std::string &v : valid) {
			if (auth == "Bearer " + v)
				return Status(200, "data");
		}
		return Status(401, R"({"error":"invalid_token"})");
	}
};

OAuth2Config TestOAuth() {
	OAuth2Config c;
	c.token_url = "https://login.example.com/token";
	c.client_id = "cid";
	c.client_secret = "client-secret-XYZ";
	return c;
}

TEST(HttpClient, UnauthorizedRefreshesTheTokenOnceThenSucceeds) {
	Harness h;
	auto server = std::make_shared<TokenServer>();
	server->valid = {"tok2"};
	h.transport->handler = [server](const Request &r) { return (*server)(r); };
	h.client->SetAuth(MakeOAuth2Auth(TestOAuth()));
	EXPECT_EQ(h.client->Send(Get()).body, "data");
	EXPECT_EQ(server->token_requests, 2);
	EXPECT_EQ(server->api_requests, 2);
	EXPECT_EQ(h.client->stats().requests, 4); // token requests count too
	EXPECT_EQ(h.client->stats().retries, 1);
	EXPECT_TRUE(h.waits.empty());
}

TEST(HttpClient, UnauthorizedForeverIs28000AfterOneRefresh) {
	Harness h;
	auto server = std::make_shared<TokenServer>();
	h.transport->handler = [server](const Request &r) { return (*server)(r); };
	h.client->SetAuth(MakeOAuth2Auth(TestOAuth()));
	const HttpError e = CatchHttp([&] { h.client->Send(Get()); });
	EXPECT_EQ(e.sqlstate(), "28000");
	EXPECT_EQ(server->token_requests, 2);
	EXPECT_EQ(server->api_requests, 2);
	EXPECT_NE(e.detail().find("Attempts: 2"), std::string::npos) << e.detail();
	EXPECT_NE(e.detail().find("freshly issued token"), std::string::npos) << e.detail();
	EXPECT_EQ(e.detail().find("tok1"), std::string::npos);
}

TEST(HttpClient, ConcurrentUnauthorizedRequestsShareOneRefresh) {
	Harness h;
	auto server = std::make_shared<TokenServer>();
	server->valid = {"tok2"};
	h.transport->handler = [server](const Request &r) { return (*server)(r); };
	h.client->SetAuth(MakeOAuth2Auth(TestOAuth()));
	const std::vector<Response> out = h.client->SendAll({Get(), Get(), Get()});
	ASSERT_EQ(out.size(), 3u);
	EXPECT_EQ(server->token_requests, 2);
	EXPECT_EQ(server->api_requests, 6);
}

std::string AllText(const HttpError &e) {
	return std::string(e.what()) + "\n" + e.detail() + "\n" + e.hint();
}

TEST(HttpClient, SecretsNeverAppearInErrors) {
	const std::string password = "s3cr3t-P@ss/word";
	const std::string encoded = Base64Encode("acme+pub:" + password);
	const std::string query_secret = "QUERYSECRET123";
	struct Case {
		Attempt attempt;
		const char *what;
	};
	const std::vector<Case> cases = {
	    {Status(400, "bad password " + password + " for header Basic " + encoded + " key=" + query_secret), "400"},
	    {Status(401, R"({"error":"invalid_grant","error_description":"password s3cr3t-P@ss\/word is wrong"})"),
	     "401 JSON-escaped"},
	    {Status(500, "echo: s3cr3t-P%40ss%2Fword"), "500 URL-encoded"},
	    {Status(404, std::string(290, 'x') + password), "secret across the snippet cut"},
	    {Failure(TransportFailure::kConnect, "Could not resolve host: " + password), "curl message"},
	    {Status(302, "", {{"Location", "https://h/" + password + "?api_key=" + query_secret}}), "redirect"},
	};
	for (const Case &c : cases) {
		Harness h;
		h.client->SetAuth(MakeBasicAuth("acme+pub", password));
		h.transport->handler = [&](const Request &) { return c.attempt; };
		const HttpError e = CatchHttp([&] {
			h.client->Send(Get("https://api.example.com/v1/x?api_key=" + query_secret + "&page=1",
			                   "label with " + password));
		});
		const std::string text = AllText(e);
		EXPECT_EQ(text.find(password), std::string::npos) << c.what << ": " << text;
		EXPECT_EQ(text.find("s3cr3t"), std::string::npos) << c.what << ": " << text;
		EXPECT_EQ(text.find(encoded), std::string::npos) << c.what << ": " << text;
		EXPECT_EQ(text.find(query_secret), std::string::npos) << c.what << ": " << text;
	}
}

TEST(HttpClient, RedactCoversAuthSecretsAndSecretQueryValues) {
	Harness h;
	h.client->SetAuth(MakeHeaderAuth({{"ApiIntegrationCode", "CODE-1"}, {"Secret", "topsecret"}}, {"topsecret"}));
	h.transport->handler = [](const Request &) { return Status(200); };
	h.client->Send(Get("https://api.example.com/v1/x?access_token=abcdef&page=1"));
	EXPECT_EQ(h.client->Redact("topsecret and abcdef and page=1"), "[redacted] and [redacted] and page=1");
	EXPECT_EQ(HeaderOf(h.transport->seen[0], "Secret"), "topsecret");
}

TEST(HttpClient, RateLimitSpacesRequestStarts) {
	ClientOptions o = TestOptions();
	o.requests_per_second = 2; // bucket of 2, then one start every 500 ms
	Harness h(o);
	h.transport->handler = [](const Request &) { return Status(200); };
	for (int i = 0; i < 5; ++i)
		h.client->Send(Get());
	ASSERT_EQ(h.waits.size(), 3u);
	for (long w : h.waits) {
		EXPECT_GE(w, 480);
		EXPECT_LE(w, 500);
	}
}

TEST(HttpClient, SendAllKeepsOrderAndRespectsMaxInFlight) {
	ClientOptions o = TestOptions();
	o.max_in_flight = 3;
	Harness h(o);
	std::map<std::string, int> calls;
	h.transport->handler = [&](const Request &r) {
		// request 4 fails once with 503, all others succeed immediately
		if (r.url.find("/item/4") != std::string::npos && calls[r.url]++ == 0)
			return Status(503);
		return Status(200, r.url.substr(r.url.rfind('/') + 1));
	};
	std::vector<Request> requests;
	for (int i = 0; i < 10; ++i)
		requests.push_back(Get("https://api.example.com/item/" + std::to_string(i)));
	const std::vector<Response> out = h.client->SendAll(requests);
	ASSERT_EQ(out.size(), 10u);
	for (int i = 0; i < 10; ++i)
		EXPECT_EQ(out[i].body, std::to_string(i));
	size_t total = 0;
	for (size_t b : h.transport->batches) {
		EXPECT_LE(b, 3u);
		total += b;
	}
	EXPECT_EQ(total, 11u);
	EXPECT_GE(h.transport->batches.size(), 4u);
	EXPECT_EQ(h.transport->batches.front(), 3u);
}

TEST(HttpClient, SendAllFailsFastWithTheFailingRequestsError) {
	ClientOptions o = TestOptions();
	o.max_in_flight = 2;
	Harness h(o);
	h.transport->handler = [](const Request &r) {
		return r.url.find("/item/3") != std::string::npos ? Status(404) : Status(200);
	};
	std::vector<Request> requests;
	for (int i = 0; i < 8; ++i)
		requests.push_back(Get("https://api.example.com/item/" + std::to_string(i)));
	const HttpError e = CatchHttp([&] { h.client->SendAll(requests); });
	EXPECT_EQ(e.status(), 404);
	EXPECT_NE(std::string(e.what()).find("/item/3"), std::string::npos);
	EXPECT_EQ(h.transport->seen.size(), 4u); // rounds {0,1} and {2,3}; nothing started after the failure
}

TEST(HttpClient, SendAllOfNothingIsNothing) {
	Harness h;
	h.transport->handler = [](const Request &) { return Status(200); };
	EXPECT_TRUE(h.client->SendAll({}).empty());
	EXPECT_TRUE(h.transport->seen.empty());
}

TEST(HttpClient, CancelBeforeTheFirstAttempt) {
	Harness h(TestOptions(), [] { return true; });
	h.transport->handler = [](const Request &) { return Status(200); };
	EXPECT_THROW(h.client->Send(Get()), Cancelled);
	EXPECT_TRUE(h.transport->seen.empty());
}

TEST(HttpClient, CancelDuringARetryWait) {
	bool cancel = false;
	Harness h(TestOptions(), [&] { return cancel; });
	h.transport->handler = [&](const Request &) {
		cancel = true; // the user cancels while the first attempt is under way
		return Status(503);
	};
	EXPECT_THROW(h.client->Send(Get()), Cancelled);
	EXPECT_EQ(h.transport->seen.size(), 1u);
	EXPECT_TRUE(h.waits.empty());
}

TEST(HttpClient, TransportCancellationBecomesCancelled) {
	Harness h;
	h.transport->handler = [](const Request &) { return Failure(TransportFailure::kCancelled); };
	EXPECT_THROW(h.client->Send(Get()), Cancelled);
}

TEST(HttpClient, DefaultSleeperChecksCancelInSlices) {
	int polls = 0;
	auto t = std::make_unique<ScriptedTransport>();
	ScriptedTransport *transport = t.get();
	transport->handler = [](const Request &) { return Status(429, "", {{"Retry-After", "30"}}); };
	// Polls 1-4 come before the wait; the default sleeper polls (5), sleeps one
	// 250 ms slice, and stops at the next poll.
	Client client(TestOptions(), std::move(t), [&] { return ++polls > 5; });
	const auto start = std::chrono::steady_clock::now();
	EXPECT_THROW(client.Send(Get()), Cancelled);
	const auto elapsed = std::chrono::steady_clock::now() - start;
	EXPECT_GE(elapsed, std::chrono::milliseconds(200));
	EXPECT_LT(elapsed, std::chrono::seconds(2));
	EXPECT_EQ(polls, 6);
	EXPECT_EQ(transport->seen.size(), 1u);
}

} // namespace
