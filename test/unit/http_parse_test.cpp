// Pure helpers of the HTTP layer: header parsing, encodings, URLs, redaction,
// classification, backoff and the rate limiter.
#include "http/auth.hpp"
#include "http/backoff.hpp"
#include "http/classify.hpp"
#include "http/client.hpp"
#include "http/error_format.hpp"
#include "http/rate_limiter.hpp"
#include "http/redact.hpp"
#include "http/url.hpp"

#include <gtest/gtest.h>

using namespace billrecon::http;
using std::chrono::system_clock;

namespace {

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110's example) is 784111777.
const system_clock::time_point kTenSecondsBefore = system_clock::from_time_t(784111777 - 10);

TEST(HttpTypes, MethodNamesAndHeaderLookup) {
	EXPECT_STREQ(MethodName(Method::kGet), "GET");
	EXPECT_STREQ(MethodName(Method::kPost), "POST");
	EXPECT_STREQ(MethodName(Method::kPatch), "PATCH");
	EXPECT_STREQ(MethodName(Method::kPut), "PUT");
	EXPECT_STREQ(MethodName(Method::kDelete), "DELETE");
	EXPECT_TRUE(IEquals("Retry-After", "retry-after"));
	EXPECT_FALSE(IEquals("Retry-After", "Retry-Afte"));
	EXPECT_FALSE(IEquals("a", "b"));
	Response r;
	r.headers = {{"Link", "one"}, {"link", "two"}, {"X-Empty", ""}};
	EXPECT_EQ(r.HeaderValue("LINK"), "one");
	EXPECT_EQ(r.HeaderValue("x-empty"), "");
	EXPECT_EQ(r.HeaderValue("Missing"), std::nullopt);
}

TEST(HttpEncoding, Base64Rfc4648Vectors) {
	EXPECT_EQ(Base64Encode(""), "");
	EXPECT_EQ(Base64Encode("f"), "Zg==");
	EXPECT_EQ(Base64Encode("fo"), "Zm8=");
	EXPECT_EQ(Base64Encode("foo"), "Zm9v");
	EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
	EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
	EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
	EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(HttpEncoding, UrlEncode) {
	EXPECT_EQ(UrlEncode("AZaz09-._~"), "AZaz09-._~");
	EXPECT_EQ(UrlEncode("a b&c=d+e/f?g"), "a%20b%26c%3Dd%2Be%2Ff%3Fg");
	EXPECT_EQ(UrlEncode("\xc3\xa9"), "%C3%A9");
	EXPECT_EQ(UrlEncode(""), "");
}

TEST(HttpRetryAfter, DeltaSeconds) {
	const auto now = system_clock::now();
	EXPECT_EQ(ParseRetryAfter("120", now), 120000);
	EXPECT_EQ(ParseRetryAfter("  5 ", now), 5000);
	EXPECT_EQ(ParseRetryAfter("0", now), 0);
	EXPECT_EQ(ParseRetryAfter("1.5", now), 1500);
	EXPECT_EQ(ParseRetryAfter("99999999999999999999", now), 1000L * 1000 * 1000 * 1000);
	EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
	EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
	EXPECT_EQ(ParseRetryAfter("12s", now), std::nullopt);
	EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
}

TEST(HttpRetryAfter, HttpDatesInAllThreeFormats) {
	EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", kTenSecondsBefore), 10000);
	EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", kTenSecondsBefore), 10000);
	EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", kTenSecondsBefore), 10000);
	EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:27 GMT", kTenSecondsBefore), 0);
	EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", kTenSecondsBefore), 0); // past -> 0
	EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 PST", kTenSecondsBefore), std::nullopt);
	EXPECT_EQ(ParseRetryAfter("Sun, 06 Foo 1994 08:49:37 GMT", kTenSecondsBefore), std::nullopt);
	EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 25:49:37 GMT", kTenSecondsBefore), std::nullopt);
	EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT trailing", kTenSecondsBefore), std::nullopt);
	// A leap year and a far date: 2024-02-29 is 1709164800.
	EXPECT_EQ(ParseRetryAfter("Thu, 29 Feb 2024 00:00:30 GMT", system_clock::from_time_t(1709164800)), 30000);
}

TEST(HttpLinkHeader, ConnectWiseStyle) {
	const auto links = ParseLinkHeader(
	    R"(<https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies?page=2&pageSize=1000>; rel="next", <https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies?page=7&pageSize=1000>; rel="last")");
	ASSERT_EQ(links.size(), 2u);
	EXPECT_EQ(links[0].first, "next");
	EXPECT_EQ(links[0].second,
	          "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies?page=2&pageSize=1000");
	EXPECT_EQ(links[1].first, "last");
	EXPECT_NE(links[1].second.find("page=7"), std::string::npos);
}

TEST(HttpLinkHeader, UnquotedSeveralRelsAndOddUrls) {
	const auto links = ParseLinkHeader(R"(<https://x/a?q=1,2;3>;rel=next;title="a, b", <https://x/b>; REL="prev first")"
	                                   R"(, garbage, <https://x/c>; type="text/html")");
	ASSERT_EQ(links.size(), 3u);
	EXPECT_EQ(links[0], std::make_pair(std::string("next"), std::string("https://x/a?q=1,2;3")));
	EXPECT_EQ(links[1], std::make_pair(std::string("prev"), std::string("https://x/b")));
	EXPECT_EQ(links[2], std::make_pair(std::string("first"), std::string("https://x/b")));
	EXPECT_TRUE(ParseLinkHeader("").empty());
	EXPECT_TRUE(ParseLinkHeader("<https://unterminated").empty());
}

TEST(HttpUrl, ParseAndDisplay) {
	const auto u = ParseUrl("HTTPS://api.example.com:8443/v1/items?page=2&token=abc#frag");
	ASSERT_TRUE(u);
	EXPECT_EQ(u->scheme, "https");
	EXPECT_EQ(u->host, "api.example.com:8443");
	EXPECT_EQ(u->path, "/v1/items");
	EXPECT_EQ(u->query, "page=2&token=abc");
	EXPECT_EQ(DisplayUrl(*u), "https://api.example.com:8443/v1/items");
	EXPECT_EQ(ParseUrl("https://example.com")->path, "/");
	EXPECT_EQ(ParseUrl("https://u:p@example.com/x")->userinfo, "u:p");
	EXPECT_FALSE(ParseUrl("ftp://example.com/"));
	EXPECT_FALSE(ParseUrl("/relative"));
	EXPECT_FALSE(ParseUrl("https:///path"));
	EXPECT_FALSE(ParseUrl("https://exa mple.com/"));
	EXPECT_EQ(DisplayUrl(std::string_view("weird://u:p@host/x?secret=1")), "weird://host/x");
}

TEST(HttpUrl, SecretQueryValues) {
	EXPECT_EQ(SecretQueryValues("page=2&api_key=K1&client_secret=a%2Fb&access_token=T&Password=pw&size=10&key="),
	          std::vector<std::string>({"K1", "a%2Fb", "a/b", "T", "pw"}));
	EXPECT_TRUE(SecretQueryValues("").empty());
}

TEST(HttpRedact, SinglePassLongestFirstAndEncodedForms) {
	Redactor r({"abc", "abcdef", "a/b+c"});
	EXPECT_EQ(r("xabcdefx abc"), "x[redacted]x [redacted]");
	EXPECT_EQ(r("form a%2Fb%2Bc json a\\/b+c raw a/b+c"), "form [redacted] json [redacted] raw [redacted]");
	Redactor spaced({"open sesame"});
	EXPECT_EQ(spaced("a=open+sesame&b=open%20sesame"), "a=[redacted]&b=[redacted]");
	Redactor e({"e"}); // a replacement is never rescanned
	EXPECT_EQ(e("see"), "s[redacted][redacted]");
	Redactor none;
	EXPECT_EQ(none("unchanged"), "unchanged");
	Redactor empty({""});
	EXPECT_EQ(empty("abc"), "abc");
}

TEST(HttpRedact, SnippetCutsWithoutLeakingAndKeepsUtf8Valid) {
	Redactor r({"SECRETVALUE"});
	EXPECT_EQ(Snippet(std::string(8, 'x') + "SECRETVALUE", 10, r), "xxxxxxxx[r...");
	EXPECT_EQ(Snippet("a\nb\tc", 100, r), "a b c");
	EXPECT_EQ(Snippet("\xc3\xa9\xc3\xa9", 3, r), "\xc3\xa9...");
	EXPECT_EQ(SanitizeText("ok \xff \xc3"), "ok ? ?");
	EXPECT_EQ(SanitizeText("\xed\xa0\x80"), "???"); // a UTF-16 surrogate is not UTF-8
}

TEST(HttpVendorMessage, JsonHtmlAndPlain) {
	EXPECT_EQ(VendorMessage(R"({"error":"invalid_client","error_description":"Bad secret"})"),
	          "invalid_client; Bad secret");
	EXPECT_EQ(VendorMessage(R"({"error":{"code":"Authorization_RequestDenied","message":"Denied"}})"),
	          "Authorization_RequestDenied; Denied");
	EXPECT_EQ(VendorMessage(R"({"statusCode":429,"message":"Rate limit is exceeded."})"),
	          "Rate limit is exceeded.");
	EXPECT_EQ(VendorMessage(R"({"errors":["Field X is required","Y"]})"), "Field X is required; Y");
	EXPECT_EQ(VendorMessage(R"({"code":"NotFound","message":"No such company"})"), "NotFound; No such company");
	EXPECT_EQ(VendorMessage("<html><head><TITLE> 502 Bad Gateway </TITLE></head></html>"), "502 Bad Gateway");
	EXPECT_EQ(VendorMessage("  plain text\n"), "plain text");
	EXPECT_EQ(VendorMessage(R"({"data":[]})"), R"({"data":[]})");
	EXPECT_EQ(VendorMessage(R"({"message": )"), R"({"message":)");
}

Attempt WithStatus(long status, std::vector<Header> headers = {}) {
	Attempt a;
	a.response.status = status;
	a.response.headers = std::move(headers);
	return a;
}

Attempt WithFailure(TransportFailure f) {
	Attempt a;
	a.failure = f;
	return a;
}

TEST(HttpClassify, Statuses) {
	const auto now = system_clock::now();
	struct Row {
		long status;
		Verdict verdict;
	};
	for (const Row &row : std::vector<Row> {{200, Verdict::kSuccess},     {201, Verdict::kSuccess},
	                                        {204, Verdict::kSuccess},     {301, Verdict::kFatal},
	                                        {400, Verdict::kFatal},       {401, Verdict::kAuth},
	                                        {403, Verdict::kForbidden},   {404, Verdict::kFatal},
	                                        {408, Verdict::kRetry},       {409, Verdict::kFatal},
	                                        {429, Verdict::kRateLimited}, {500, Verdict::kRetry},
	                                        {501, Verdict::kFatal},       {502, Verdict::kRetry},
	                                        {503, Verdict::kRetry},       {504, Verdict::kRetry},
	                                        {505, Verdict::kFatal}}) {
		EXPECT_EQ(Classify(WithStatus(row.status), now).verdict, row.verdict)
		    << row.status << " gave " << VerdictName(Classify(WithStatus(row.status), now).verdict);
	}
}

TEST(HttpClassify, TransportFailures) {
	const auto now = system_clock::now();
	EXPECT_EQ(Classify(WithFailure(TransportFailure::kConnect), now).verdict, Verdict::kRetry);
	EXPECT_EQ(Classify(WithFailure(TransportFailure::kTimeout), now).verdict, Verdict::kRetry);
	EXPECT_EQ(Classify(WithFailure(TransportFailure::kReset), now).verdict, Verdict::kRetry);
	EXPECT_EQ(Classify(WithFailure(TransportFailure::kTooLarge), now).verdict, Verdict::kFatal);
	EXPECT_EQ(Classify(WithFailure(TransportFailure::kTls), now).verdict, Verdict::kFatal);
	EXPECT_EQ(Classify(WithFailure(TransportFailure::kProtocol), now).verdict, Verdict::kFatal);
	EXPECT_EQ(Classify(WithFailure(TransportFailure::kCancelled), now).verdict, Verdict::kCancelled);
}

TEST(HttpClassify, RetryAfterOnlyOn429And503) {
	const auto now = system_clock::now();
	EXPECT_EQ(Classify(WithStatus(429, {{"Retry-After", "3"}}), now).retry_after_ms, 3000);
	EXPECT_EQ(Classify(WithStatus(503, {{"retry-after", "4"}}), now).retry_after_ms, 4000);
	EXPECT_EQ(Classify(WithStatus(500, {{"Retry-After", "5"}}), now).retry_after_ms, std::nullopt);
	EXPECT_EQ(Classify(WithStatus(429, {{"Retry-After", "later"}}), now).retry_after_ms, std::nullopt);
	EXPECT_EQ(Classify(WithStatus(429), now).retry_after_ms, std::nullopt);
}

TEST(HttpClassify, FailureSqlstates) {
	EXPECT_STREQ(FailureSqlstate(WithFailure(TransportFailure::kConnect)), "08001");
	EXPECT_STREQ(FailureSqlstate(WithFailure(TransportFailure::kTls)), "08001");
	EXPECT_STREQ(FailureSqlstate(WithFailure(TransportFailure::kTimeout)), "08006");
	EXPECT_STREQ(FailureSqlstate(WithFailure(TransportFailure::kReset)), "08006");
	EXPECT_STREQ(FailureSqlstate(WithFailure(TransportFailure::kTooLarge)), "54000");
	EXPECT_STREQ(FailureSqlstate(WithFailure(TransportFailure::kProtocol)), "22000");
	EXPECT_STREQ(FailureSqlstate(WithStatus(401)), "28000");
	EXPECT_STREQ(FailureSqlstate(WithStatus(403)), "28000");
	EXPECT_STREQ(FailureSqlstate(WithStatus(404)), "22000");
	EXPECT_STREQ(FailureSqlstate(WithStatus(503)), "22000");
}

TEST(HttpBackoff, CeilingDoublesUpToTheCap) {
	EXPECT_EQ(BackoffCeiling(0, 500, 60000), 500);
	EXPECT_EQ(BackoffCeiling(1, 500, 60000), 1000);
	EXPECT_EQ(BackoffCeiling(5, 500, 60000), 16000);
	EXPECT_EQ(BackoffCeiling(7, 500, 60000), 60000);
	EXPECT_EQ(BackoffCeiling(1000, 500, 60000), 60000);
	EXPECT_EQ(BackoffCeiling(3, 0, 60000), 0);
	std::mt19937_64 rng(42);
	for (int retry = 0; retry < 10; ++retry) {
		for (int i = 0; i < 50; ++i) {
			const long d = BackoffDelay(retry, 500, 60000, rng);
			EXPECT_GE(d, BackoffCeiling(retry, 500, 60000) / 2);
			EXPECT_LE(d, BackoffCeiling(retry, 500, 60000));
		}
	}
}

TEST(HttpRateLimiter, BucketThenSpacing) {
	using namespace std::chrono;
	RateLimiter unlimited(0);
	EXPECT_TRUE(unlimited.unlimited());
	EXPECT_EQ(unlimited.Reserve(steady_clock::time_point()), 0);

	RateLimiter r(4); // bucket of 4, one token every 250 ms
	steady_clock::time_point t;
	for (int i = 0; i < 4; ++i)
		EXPECT_EQ(r.Reserve(t), 0);
	EXPECT_FALSE(r.TryTake(t));
	EXPECT_EQ(r.Reserve(t), 250);
	t += milliseconds(250);
	EXPECT_EQ(r.Reserve(t), 250);
	t += milliseconds(100);
	EXPECT_FALSE(r.TryTake(t));
	t += milliseconds(10 * 1000); // a long pause refills only up to the bucket size
	for (int i = 0; i < 4; ++i)
		EXPECT_TRUE(r.TryTake(t));
	EXPECT_FALSE(r.TryTake(t));

	RateLimiter slow(0.5); // one request every 2 s
	EXPECT_EQ(slow.Reserve(t), 0);
	EXPECT_EQ(slow.Reserve(t), 2000);
}

} // namespace
