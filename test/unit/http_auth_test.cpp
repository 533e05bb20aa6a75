// Auth schemes: Basic and header credentials, OAuth2 token requests (form and
// JSON bodies, grants, Basic client auth), token caching, expiry and errors.
#include "http/auth.hpp"
#include "http/oauth2_clock.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

using namespace billrecon::http;

namespace {

class TokenTransport : public Transport {
public:
	std::vector<Request> token_requests;
	std::vector<Request> api_requests;
	std::string token_response = R"({"access_token":"at-1","expires_in":3600})";
	long token_status = 200;

	std::vector<Attempt> Perform(const std::vector<const Request *> &requests, const TransportLimits &,
	                             const std::function<bool()> &) override {
		std::vector<Attempt> out;
		for (const Request *r : requests) {
			Attempt a;
			if (r->url.find("/token") != std::string::npos) {
				token_requests.push_back(*r);
				a.response.status = token_status;
				a.response.body = token_response;
			} else {
				api_requests.push_back(*r);
				a.response.status = 200;
			}
			out.push_back(a);
		}
		return out;
	}
};

std::optional<std::string> HeaderOf(const Request &r, const std::string &name) {
	for (const Header &h : r.headers) {
		if (IEquals(h.name, name))
			return h.value;
	}
	return std::nullopt;
}

struct Fixture {
	Fixture() {
		auto t = std::make_unique<TokenTransport>();
		transport = t.get();
		ClientOptions o;
		o.max_retries = 0;
		client = std::make_unique<Client>(o, std::move(t), nullptr, [](long) {});
	}
	void Get() {
		Request r;
		r.url = "https://api.example.com/v1/things";
		client->Send(r);
	}
	TokenTransport *transport;
	std::unique_ptr<Client> client;
};

OAuth2Config Config() {
	OAuth2Config c;
	c.token_url = "https://login.example.com/oauth/token";
	c.client_id = "id 1";
	c.client_secret = "s&c=r+t";
	c.scope = "all";
	return c;
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

TEST(HttpAuth, BasicAddsAuthorizationAndExtraHeaders) {
	auto auth = MakeBasicAuth("Aladdin", "open sesame", {{"clientId", "guid"}});
	Fixture f;
	Request r;
	r.headers.push_back({"authorization", "stale"});
	auth->Apply(*f.client, r);
	EXPECT_EQ(HeaderOf(r, "Authorization"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
	EXPECT_EQ(HeaderOf(r, "clientId"), "guid");
	EXPECT_EQ(r.headers.size(), 2u); // the stale header was replaced
	EXPECT_FALSE(auth->Invalidate());
	const std::vector<std::string> secrets = auth->Secrets();
	EXPECT_NE(std::find(secrets.begin(), secrets.end(), "open sesame"), secrets.end());
	EXPECT_NE(std::find(secrets.begin(), secrets.end(), "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), secrets.end());
}

TEST(HttpAuth, HeaderAuthAddsFixedHeaders) {
	auto auth = MakeHeaderAuth({{"ApiIntegrationCode", "CODE"}, {"UserName", "api@x"}, {"Secret", "pw"}}, {"pw"});
	Fixture f;
	Request r;
	auth->Apply(*f.client, r);
	EXPECT_EQ(HeaderOf(r, "ApiIntegrationCode"), "CODE");
	EXPECT_EQ(HeaderOf(r, "UserName"), "api@x");
	EXPECT_EQ(HeaderOf(r, "Secret"), "pw");
	EXPECT_FALSE(auth->Invalidate());
	EXPECT_EQ(auth->Secrets(), std::vector<std::string>({"pw"}));
}

TEST(HttpAuth, OAuth2CachesTheToken) {
	Fixture f;
	f.client->SetAuth(MakeOAuth2Auth(Config()));
	f.Get();
	f.Get();
	EXPECT_EQ(f.transport->token_requests.size(), 1u);
	ASSERT_EQ(f.transport->api_requests.size(), 2u);
	EXPECT_EQ(HeaderOf(f.transport->api_requests[1], "Authorization"), "Bearer at-1");
}

TEST(HttpAuth, OAuth2FormBody) {
	Fixture f;
	f.client->SetAuth(MakeOAuth2Auth(Config()));
	f.Get();
	ASSERT_EQ(f.transport->token_requests.size(), 1u);
	const Request &t = f.transport->token_requests[0];
	EXPECT_EQ(t.method, Method::kPost);
	EXPECT_EQ(t.url, "https://login.example.com/oauth/token");
	EXPECT_EQ(t.body, "client_id=id%201&client_secret=s%26c%3Dr%2Bt&scope=all&grant_type=client_credentials");
	EXPECT_EQ(HeaderOf(t, "Content-Type"), "application/x-www-form-urlencoded");
	EXPECT_EQ(HeaderOf(t, "Authorization"), std::nullopt);
}

TEST(HttpAuth, OAuth2JsonBodyForPax8) {
	OAuth2Config c;
	c.token_url = "https://api.pax8.com/v1/token";
	c.body_style = OAuth2Config::BodyStyle::kJson;
	c.client_id = "cid";
	c.client_secret = "se\"cret";
	c.audience = "api://p8p.client";
	Fixture f;
	f.client->SetAuth(MakeOAuth2Auth(c));
	f.Get();
	ASSERT_EQ(f.transport->token_requests.size(), 1u);
	const Request &t = f.transport->token_requests[0];
	EXPECT_EQ(t.body,
	          R"({"client_id":"cid","client_secret":"se\"cret","audience":"api://p8p.client","grant_type":"client_credentials"})");
	EXPECT_EQ(HeaderOf(t, "Content-Type"), "application/json");
}

TEST(HttpAuth, OAuth2PasswordGrantWithBasicClientAuth) {
	OAuth2Config c;
	c.token_url = "https://pinotage-api.centrastage.net/auth/oauth/token";
	c.grant = OAuth2Config::Grant::kPassword;
	c.username = "API-KEY";
	c.password = "API SECRET";
	c.basic_client = std::make_pair(std::string("public-client"), std::string("public"));
	Fixture f;
	f.client->SetAuth(MakeOAuth2Auth(c));
	f.Get();
	ASSERT_EQ(f.transport->token_requests.size(), 1u);
	const Request &t = f.transport->token_requests[0];
	EXPECT_EQ(t.body, "username=API-KEY&password=API%20SECRET&grant_type=password");
	EXPECT_EQ(HeaderOf(t, "Authorization"), "Basic " + Base64Encode("public-client:public"));
	EXPECT_EQ(HeaderOf(f.transport->api_requests[0], "Authorization"), "Bearer at-1");
}

TEST(HttpAuth, OAuth2RefreshesBeforeExpiry) {
	auto now = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::time_point());
	Fixture f;
	OAuth2Config c = Config();
	c.expiry_margin_s = 60;
	f.client->SetAuth(MakeOAuth2Auth(c, [now] { return *now; }));
	f.Get();
	*now += std::chrono::seconds(3539);
	f.Get();
	EXPECT_EQ(f.transport->token_requests.size(), 1u);
	*now += std::chrono::seconds(2); // 3541 s: inside the 60 s margin
	f.Get();
	EXPECT_EQ(f.transport->token_requests.size(), 2u);
}

TEST(HttpAuth, OAuth2ExpiresInAsStringOrMissing) {
	auto now = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::time_point());
	{
		Fixture f;
		f.transport->token_response = R"({"access_token":"a","expires_in":"120"})";
		f.client->SetAuth(MakeOAuth2Auth(Config(), [now] { return *now; }));
		f.Get();
		*now += std::chrono::seconds(59);
		f.Get();
		EXPECT_EQ(f.transport->token_requests.size(), 1u);
		*now += std::chrono::seconds(2); // 61 s > 120 - 60
		f.Get();
		EXPECT_EQ(f.transport->token_requests.size(), 2u);
	}
	{
		Fixture f;
		f.transport->token_response = R"({"access_token":"a"})"; // default 3600 s
		f.client->SetAuth(MakeOAuth2Auth(Config(), [now] { return *now; }));
		f.Get();
		*now += std::chrono::seconds(3000);
		f.Get();
		EXPECT_EQ(f.transport->token_requests.size(), 1u);
	}
}

TEST(HttpAuth, InvalidateDropsTheCachedToken) {
	Fixture f;
	std::unique_ptr<Auth> auth = MakeOAuth2Auth(Config());
	EXPECT_FALSE(auth->Invalidate()); // nothing cached yet
	Request r;
	auth->Apply(*f.client, r);
	EXPECT_EQ(HeaderOf(r, "Authorization"), "Bearer at-1");
	const std::vector<std::string> secrets = auth->Secrets();
	EXPECT_NE(std::find(secrets.begin(), secrets.end(), "at-1"), secrets.end());
	EXPECT_NE(std::find(secrets.begin(), secrets.end(), "s&c=r+t"), secrets.end());
	EXPECT_TRUE(auth->Invalidate());
	EXPECT_FALSE(auth->Invalidate());
	Request again;
	auth->Apply(*f.client, again);
	EXPECT_EQ(f.transport->token_requests.size(), 2u);
}

TEST(HttpAuth, TokenResponseWithoutAccessTokenIs28000) {
	Fixture f;
	f.transport->token_response = R"({"token_type":"bearer","expires_in":3600})";
	f.client->SetAuth(MakeOAuth2Auth(Config()));
	const HttpError e = CatchHttp([&] { f.Get(); });
	EXPECT_EQ(e.sqlstate(), "28000");
	EXPECT_STREQ(e.what(), "token endpoint returned no access_token");
	EXPECT_NE(e.detail().find("token_type, expires_in"), std::string::npos) << e.detail();
	EXPECT_TRUE(f.transport->api_requests.empty());
}

TEST(HttpAuth, TokenResponseThatIsNotJsonIs22000) {
	Fixture f;
	f.transport->token_response = "<html>login</html>";
	f.client->SetAuth(MakeOAuth2Auth(Config()));
	const HttpError e = CatchHttp([&] { f.Get(); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_FALSE(e.hint().empty());
}

TEST(HttpAuth, RejectedTokenRequestIs28000WithTheOAuthErrorRedacted) {
	for (long status : {400L, 401L}) {
		Fixture f;
		f.transport->token_status = status;
		f.transport->token_response =
		    R"({"error":"invalid_client","error_description":"client secret s&c=r+t is not valid"})";
		f.client->SetAuth(MakeOAuth2Auth(Config()));
		const HttpError e = CatchHttp([&] { f.Get(); });
		EXPECT_EQ(e.sqlstate(), "28000");
		EXPECT_EQ(e.status(), status);
		EXPECT_STREQ(e.what(), "could not obtain an access token from login.example.com");
		EXPECT_NE(e.detail().find("invalid_client"), std::string::npos) << e.detail();
		EXPECT_NE(e.detail().find("client secret [redacted] is not valid"), std::string::npos) << e.detail();
		const std::string all = std::string(e.what()) + e.detail() + e.hint();
		EXPECT_EQ(all.find("s&c=r+t"), std::string::npos);
		EXPECT_EQ(f.transport->token_requests.size(), 1u); // a rejected token request is not retried
	}
}

} // namespace
