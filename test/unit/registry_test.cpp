// connectors::Kinds / FindKind / ProductKinds / ValidateConfig /
// ClientOptionsFor: every bad input gets its SQLSTATE, message, DETAIL and
// HINT, and no credential value ever appears in a message.
#include "connectors/registry.hpp"
#include "model/error.hpp"

#include <gtest/gtest.h>

#include <string>

using billrecon::Error;
using namespace billrecon::connectors;

namespace {

IntegrationConfig Cw() {
	IntegrationConfig c;
	c.id = 1;
	c.name = "psa";
	c.kind = "connectwise";
	c.base_url = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0";
	c.credentials_json =
	    R"({"company_id": "acme", "public_key": "PUBKEY1", "private_key": "TOPSECRET9", "client_id": "guid-1"})";
	c.options_json = "{}";
	return c;
}

IntegrationConfig Ninja() {
	IntegrationConfig c;
	c.kind = "ninjaone";
	c.base_url = "https://app.ninjarmm.com";
	c.credentials_json = R"({"client_id": "cid", "client_secret": "TOPSECRET9"})";
	return c;
}

Error Fails(const IntegrationConfig &c, bool allow_http = false) {
	try {
		ValidateConfig(c, allow_http);
	} catch (const Error &e) {
		// Never a credential value, anywhere.
		EXPECT_EQ(e.message().find("TOPSECRET9"), std::string::npos) << e.message();
		EXPECT_EQ(e.detail().find("TOPSECRET9"), std::string::npos) << e.detail();
		EXPECT_EQ(e.hint().find("TOPSECRET9"), std::string::npos) << e.hint();
		EXPECT_FALSE(e.detail().empty());
		EXPECT_FALSE(e.hint().empty());
		return e;
	}
	ADD_FAILURE() << "ValidateConfig accepted it";
	return Error("00000", "none");
}

} // namespace

TEST(Registry, KindsAndProductKinds) {
	// Kinds are added as connectors ship; these facts hold for every build.
	const KindInfo *cw = FindKind("connectwise");
	ASSERT_NE(cw, nullptr);
	EXPECT_EQ(&Kinds()[0], cw) << "ConnectWise stays first (documentation order)";
	EXPECT_EQ(cw->side, Side::kPsa);
	EXPECT_TRUE(cw->supports_quick);
	EXPECT_STREQ(cw->example_base_url, "https://api-na.myconnectwise.net/v4_6_release/apis/3.0");
	EXPECT_EQ(cw->required_credentials.size(), 4u);
	const KindInfo *ninja = FindKind("ninjaone");
	ASSERT_NE(ninja, nullptr);
	EXPECT_EQ(ninja->side, Side::kVendor);
	EXPECT_FALSE(ninja->supports_quick);
	const KindInfo *csv = FindKind("csv");
	ASSERT_NE(csv, nullptr);
	EXPECT_STREQ(csv->example_base_url, "");
	for (const KindInfo &k : Kinds()) {
		EXPECT_NE(k.create, nullptr) << k.kind;
		bool in_product = false;
		for (const char *p : ProductKinds())
			in_product = in_product || std::string(p) == k.kind;
		EXPECT_TRUE(in_product) << k.kind << " is not a kind product.md names";
	}
	EXPECT_EQ(FindKind("ConnectWise"), nullptr);
	std::vector<std::string> product(ProductKinds().begin(), ProductKinds().end());
	std::vector<std::string> expected = {"connectwise", "halopsa",  "autotask", "msgraph", "partnercenter",
	                                     "pax8",        "ninjaone", "dattormm", "csv"};
	EXPECT_EQ(product, expected);
}

TEST(Registry, ValidConfigsPass) {
	EXPECT_NO_THROW(ValidateConfig(Cw(), false));
	EXPECT_NO_THROW(ValidateConfig(Ninja(), false));
	IntegrationConfig c = Cw();
	c.base_url = "http://127.0.0.1:8080/v4_6_release/apis/3.0/";
	c.options_json = R"({"page_size": 500, "timeout_ms": 30000, "connect_timeout_ms": 5000, "max_retries": 0,
	    "retry_base_delay_ms": 0, "retry_max_delay_ms": 1000, "requests_per_second": 0.5, "max_in_flight": 32,
	    "max_response_mb": 16})";
	EXPECT_NO_THROW(ValidateConfig(c, true));
	IntegrationConfig n = Ninja();
	n.base_url = "https://[::1]:8443";
	n.options_json = R"({"token_url": "https://eu.ninjarmm.com/ws/oauth/token", "page_size": 1})";
	EXPECT_NO_THROW(ValidateConfig(n, false));
}

TEST(Registry, UnknownKind) {
	IntegrationConfig c = Cw();
	c.kind = "salesforce";
	Error e = Fails(c);
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "unknown integration kind \"salesforce\"");
	EXPECT_NE(e.detail().find("connectwise, halopsa, autotask, msgraph, partnercenter, pax8, ninjaone, dattormm, csv"),
	          std::string::npos)
	    << e.detail();
}

TEST(Registry, ProductKindNotInThisBuild) {
	std::string missing;
	for (const char *p : ProductKinds())
		if (missing.empty() && FindKind(p) == nullptr)
			missing = p;
	if (missing.empty())
		GTEST_SKIP() << "every product kind is implemented";
	IntegrationConfig c = Cw();
	c.kind = missing;
	Error e = Fails(c);
	EXPECT_EQ(e.sqlstate(), "0A000");
	EXPECT_EQ(e.message(), "integration kind \"" + missing + "\" is not supported by this build");
	EXPECT_EQ(e.detail().rfind("This build implements: connectwise, ", 0), 0u) << e.detail();
}

TEST(Registry, BaseUrlShapes) {
	struct Case {
		const char *url;
		const char *why;
	};
	const Case cases[] = {
	    {"", "not an absolute URL"},
	    {"api-na.myconnectwise.net/v4_6_release/apis/3.0", "not an absolute URL"},
	    {"ftp://host/x", "scheme must be http or https"},
	    {"https://", "missing host"},
	    {"https:///path", "missing host"},
	    {"https://host:99999/x", "port out of range"},
	    {"https://host:abc/x", "malformed port"},
	    {"https://host:/x", "empty port"},
	    {"https://ho st/x", "spaces"},
	    {"https://host/x?a=1", "query string"},
	    {"https://host/x?", "query string"},
	    {"https://host/x#frag", "fragment"},
	    {"https://host_name!/x", "malformed host"},
	};
	for (const Case &k : cases) {
		IntegrationConfig c = Cw();
		c.base_url = k.url;
		Error e = Fails(c);
		EXPECT_EQ(e.sqlstate(), "22023") << k.url;
		EXPECT_EQ(e.message(), "invalid base_url for connectwise integration") << k.url;
		EXPECT_NE(e.detail().find(k.why), std::string::npos) << k.url << ": " << e.detail();
		EXPECT_NE(e.detail().find(std::string("\"") + k.url + "\""), std::string::npos) << e.detail();
		EXPECT_NE(e.hint().find("https://api-na.myconnectwise.net/v4_6_release/apis/3.0"), std::string::npos);
	}
	IntegrationConfig n = Ninja();
	n.base_url = "app.ninjarmm.com";
	EXPECT_NE(Fails(n).hint().find("https://app.ninjarmm.com"), std::string::npos);
}

TEST(Registry, UserinfoInBaseUrlIsRefusedAndRedacted) {
	IntegrationConfig c = Cw();
	c.base_url = "https://acme:TOPSECRET9@api-na.myconnectwise.net/v4_6_release/apis/3.0";
	Error e = Fails(c);
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_NE(e.detail().find("user name or password"), std::string::npos);
	EXPECT_NE(e.detail().find("https://[redacted]@api-na.myconnectwise.net"), std::string::npos) << e.detail();
}

TEST(Registry, PlainHttpNeedsAllowHttp) {
	IntegrationConfig c = Cw();
	c.base_url = "http://127.0.0.1:8080/v4_6_release/apis/3.0";
	Error e = Fails(c, false);
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "base_url must use https");
	EXPECT_NE(e.detail().find("http://127.0.0.1:8080/v4_6_release/apis/3.0"), std::string::npos);
	EXPECT_NE(e.hint().find("billrecon.allow_http"), std::string::npos);
	EXPECT_NO_THROW(ValidateConfig(c, true));
}

TEST(Registry, CredentialsMustBeAnObject) {
	IntegrationConfig c = Cw();
	c.credentials_json = R"(["TOPSECRET9"])";
	Error e = Fails(c);
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "credentials must be a JSON object");
	c.credentials_json = R"({"private_key": "TOPSECRET9)";
	Error m = Fails(c);
	EXPECT_EQ(m.message(), "invalid JSON in credentials");
}

TEST(Registry, MissingCredential) {
	IntegrationConfig c = Cw();
	c.credentials_json = R"({"company_id": "acme", "public_key": "PUBKEY1", "client_id": "guid-1"})";
	Error e = Fails(c);
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "missing credential \"private_key\" for connectwise integration");
	EXPECT_EQ(e.detail(), "connectwise integrations need the credentials company_id, public_key, private_key and "
	                      "client_id, each a non-empty string.");
	c.credentials_json =
	    R"({"company_id": "acme", "public_key": "PUBKEY1", "private_key": null, "client_id": "guid-1"})";
	EXPECT_EQ(Fails(c).message(), "missing credential \"private_key\" for connectwise integration");
}

TEST(Registry, EmptyOrWrongTypedCredential) {
	IntegrationConfig c = Ninja();
	c.credentials_json = R"({"client_id": "", "client_secret": "TOPSECRET9"})";
	Error e = Fails(c);
	EXPECT_EQ(e.message(), "invalid credential \"client_id\" for ninjaone integration");
	EXPECT_EQ(e.detail(), "Credential \"client_id\" is an empty string.");
	c.credentials_json = R"({"client_id": "cid", "client_secret": 12345})";
	Error t = Fails(c);
	EXPECT_EQ(t.message(), "invalid credential \"client_secret\" for ninjaone integration");
	EXPECT_EQ(t.detail(), "Credential \"client_secret\" must be a string, found number.");
	EXPECT_EQ(t.detail().find("12345"), std::string::npos);
}

TEST(Registry, UnknownCredential) {
	IntegrationConfig c = Ninja();
	c.credentials_json = R"({"client_id": "cid", "client_secret": "TOPSECRET9", "clientsecret": "TOPSECRET9"})";
	Error e = Fails(c);
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "unknown credential \"clientsecret\" for ninjaone integration");
	EXPECT_EQ(e.detail(), "ninjaone integrations take the credentials client_id, client_secret.");
}

TEST(Registry, OptionsMustBeAnObject) {
	IntegrationConfig c = Cw();
	c.options_json = "[]";
	EXPECT_EQ(Fails(c).message(), "options must be a JSON object");
	c.options_json = "{page_size: 1}";
	EXPECT_EQ(Fails(c).message(), "invalid JSON in options");
}

TEST(Registry, UnknownOptionListsKnownOnes) {
	IntegrationConfig c = Cw();
	c.options_json = R"({"pagesize": 100})";
	Error e = Fails(c);
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "unknown option \"pagesize\" for connectwise integration");
	EXPECT_EQ(e.hint(), "Known options for connectwise: page_size, timeout_ms, connect_timeout_ms, max_retries, "
	                    "retry_base_delay_ms, retry_max_delay_ms, requests_per_second, max_in_flight, "
	                    "max_response_mb.");
	// token_url means nothing to ConnectWise (Basic auth).
	c.options_json = R"({"token_url": "https://x/token"})";
	EXPECT_EQ(Fails(c).message(), "unknown option \"token_url\" for connectwise integration");
	IntegrationConfig n = Ninja();
	n.options_json = R"({"audience": "x"})";
	EXPECT_NE(Fails(n).hint().find("token_url"), std::string::npos);
}

TEST(Registry, OptionTypesAndRanges) {
	struct Case {
		const char *options;
		const char *message;
		const char *detail;
	};
	const Case cases[] = {
	    {R"({"page_size": 0})", "invalid option \"page_size\" for connectwise integration",
	     "page_size must be an integer from 1 to 1000, found number 0."},
	    {R"({"page_size": 1001})", nullptr, "page_size must be an integer from 1 to 1000, found number 1001."},
	    {R"({"page_size": 10.5})", nullptr, "found number 10.5"},
	    {R"({"page_size": "100"})", nullptr, "found string \"100\""},
	    {R"({"page_size": null})", nullptr, "found null"},
	    {R"({"max_retries": 21})", nullptr, "max_retries must be an integer from 0 to 20"},
	    {R"({"max_retries": -1})", nullptr, "found number -1"},
	    {R"({"max_in_flight": 0})", nullptr, "max_in_flight must be an integer from 1 to 32"},
	    {R"({"max_in_flight": 33})", nullptr, "found number 33"},
	    {R"({"timeout_ms": 0})", nullptr, "timeout_ms must be an integer"},
	    {R"({"connect_timeout_ms": true})", nullptr, "found boolean"},
	    {R"({"retry_base_delay_ms": -5})", nullptr, "retry_base_delay_ms must be an integer"},
	    {R"({"retry_max_delay_ms": [1]})", nullptr, "found array"},
	    {R"({"requests_per_second": -0.1})", nullptr, "requests_per_second must be a number from 0"},
	    {R"({"requests_per_second": "fast"})", nullptr, "found string \"fast\""},
	    {R"({"max_response_mb": 0})", nullptr, "max_response_mb must be an integer from 1 to 1024"},
	};
	for (const Case &k : cases) {
		IntegrationConfig c = Cw();
		c.options_json = k.options;
		Error e = Fails(c);
		EXPECT_EQ(e.sqlstate(), "22023") << k.options;
		if (k.message) {
			EXPECT_EQ(e.message(), k.message);
		}
		EXPECT_NE(e.detail().find(k.detail), std::string::npos) << k.options << ": " << e.detail();
	}
	IntegrationConfig c = Cw();
	c.options_json = R"({"page_size": 1e3, "requests_per_second": 0})";
	EXPECT_NO_THROW(ValidateConfig(c, false));
}

TEST(Registry, TokenUrlOption) {
	IntegrationConfig n = Ninja();
	n.options_json = R"({"token_url": 5})";
	Error t = Fails(n);
	EXPECT_EQ(t.message(), "invalid option \"token_url\" for ninjaone integration");
	EXPECT_EQ(t.detail(), "token_url must be a URL string, found number 5.");
	n.options_json = R"({"token_url": "not a url"})";
	Error u = Fails(n);
	EXPECT_EQ(u.message(), "invalid option \"token_url\" for ninjaone integration");
	EXPECT_NE(u.hint().find("https://app.ninjarmm.com/ws/oauth/token"), std::string::npos);
	n.options_json = R"({"token_url": "http://127.0.0.1:9/ws/oauth/token"})";
	EXPECT_EQ(Fails(n).message(), "option \"token_url\" must use https");
	n.base_url = "http://127.0.0.1:9";
	EXPECT_NO_THROW(ValidateConfig(n, true));
}

TEST(Registry, CreateChecksConfigToo) {
	IntegrationConfig c = Cw();
	c.credentials_json = R"({"company_id": "acme"})";
	billrecon::http::ClientOptions defaults;
	try {
		ClientOptionsFor(c, defaults);
		ADD_FAILURE();
	} catch (const Error &e) {
		EXPECT_EQ(e.message(), "missing credential \"public_key\" for connectwise integration");
	}
}

TEST(Registry, ClientOptionsFromOptions) {
	IntegrationConfig c = Cw();
	c.options_json = R"({"timeout_ms": 30000, "connect_timeout_ms": 2000, "max_retries": 2, "retry_base_delay_ms": 10,
	    "retry_max_delay_ms": 100, "requests_per_second": 2.5, "max_in_flight": 3, "max_response_mb": 8})";
	billrecon::http::ClientOptions o = ClientOptionsFor(c, billrecon::http::ClientOptions{});
	EXPECT_EQ(o.limits.timeout_ms, 30000);
	EXPECT_EQ(o.limits.connect_timeout_ms, 2000);
	EXPECT_EQ(o.max_retries, 2);
	EXPECT_EQ(o.retry_base_delay_ms, 10);
	EXPECT_EQ(o.retry_max_delay_ms, 100);
	EXPECT_DOUBLE_EQ(o.requests_per_second, 2.5);
	EXPECT_EQ(o.max_in_flight, 3);
	EXPECT_EQ(o.limits.max_response_bytes, size_t(8) << 20);
	billrecon::http::ClientOptions defaults;
	defaults.max_retries = 7;
	defaults.limits.allow_http = true;
	billrecon::http::ClientOptions d = ClientOptionsFor(Cw(), defaults);
	EXPECT_EQ(d.max_retries, 7);
	EXPECT_TRUE(d.limits.allow_http);
	EXPECT_EQ(d.limits.max_response_bytes, defaults.limits.max_response_bytes);
}
