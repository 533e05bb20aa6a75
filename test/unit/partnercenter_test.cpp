// Partner Center connector driven through a real http::Client over a
// scripted transport: token request, the MS-* headers on every call, seek
// paging with MS-ContinuationToken, subscriptions of several customers in one
// SendAll, every mapped field, loop guards and bad payloads.
#include "connectors/partnercenter.hpp"
#include "connectors/registry.hpp"
#include "http/client.hpp"
#include "model/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace http = billrecon::http;
namespace model = billrecon::model;
using namespace billrecon::connectors;
using namespace billrecon::test_support;

namespace {

std::string Fixture(const std::string &name) {
	return ReadFixture("partnercenter", name);
}

const std::string kBase = "https://pc.test";
const std::string kToken = "https://login.test/99999999-8888-4777-8666-555555555555/oauth2/v2.0/token";
const std::string kCustomers = kBase + "/v1/customers?size=2";
const std::string kCustomers2 = kBase + "/v1/customers?size=2&seekOperation=Next";
const std::string kC1 = "B0D2C8A4-7C1E-4A61-9D7B-2C1F0E9A3B10"; // as Partner Center spells it
const std::string kC1Lower = "b0d2c8a4-7c1e-4a61-9d7b-2c1f0e9a3b10";
const std::string kC2 = "45c44870-ef77-4fdd-b6fe-3dacb075cff2";
const std::string kC3 = "7d4f9a30-1e2b-4c55-8f0d-22b6a1e0c9aa";
const std::string kToken1 = "tok-1,a4ayc/80/OGda4BO/1o=";
std::string Subs(const std::string &customer) {
	return kBase + "/v1/customers/" + customer + "/subscriptions";
}

IntegrationConfig Config(const std::string &options_json) {
	IntegrationConfig config;
	config.id = 4;
	config.name = "csp";
	config.kind = "partnercenter";
	config.base_url = kBase;
	config.credentials_json = R"({"tenant_id": "99999999-8888-4777-8666-555555555555", "client_id": "pc-app",
	                              "client_secret": "pc-SECRET"})";
	config.options_json = options_json;
	return config;
}

const std::string kOptions =
    R"({"page_size": 2, "token_url": "https://login.test/{tenant}/oauth2/v2.0/token"})";

bool LooksLikeGuid(const std::string &s) {
	static const std::regex guid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
	return std::regex_match(s, guid);
}

class PartnerCenterTest : public ::testing::Test {
protected:
	void SetUp() override {
		MakeClient(0);
	}

	void MakeClient(int retries) {
		script = std::make_shared<Script>("partnercenter", kJsonContentType);
		http::ClientOptions options;
		options.max_retries = retries;
		options.retry_base_delay_ms = 0;
		client = ScriptedClient(script, options);
		script->On("POST " + kToken, Scripted{200, {}, Fixture("token.json")});
	}

	std::unique_ptr<Connector> Make(const std::string &options_json = kOptions) {
		return FindKind("partnercenter")->create(Config(options_json), *client);
	}

	void ScriptFull() {
		script->Get(kCustomers, "customers_page1.json");
		script->Get(kCustomers2, "customers_page2.json");
		script->Get(Subs(kC1), "subs_c1.json");
		script->Get(Subs(kC2), "subs_c2.json");
		script->Get(Subs(kC3), "subs_empty.json");
	}

	const model::UsageRecord &Usage(const std::string &id) {
		return sink.Usage(id);
	}

	std::shared_ptr<Script> script;
	std::unique_ptr<http::Client> client;
	CollectingSink sink{Side::kVendor};
};

} // namespace

TEST_F(PartnerCenterTest, FullSyncPagesCustomersAndReadsTheirSubscriptions) {
	ScriptFull();
	SyncOutcome outcome = Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {
	    "POST " + kToken,     "GET " + kCustomers,  "GET " + Subs(kC1),
	    "GET " + Subs(kC2),   "GET " + kCustomers2, "GET " + Subs(kC3),
	};
	EXPECT_EQ(script->Urls(), expected);
	std::vector<std::pair<std::string, size_t>> pages = {{"customers", 2},     {"subscriptions", 2},
	                                                     {"subscriptions", 1}, {"customers", 1},
	                                                     {"subscriptions", 0}};
	EXPECT_EQ(sink.pages, pages);
	EXPECT_EQ(sink.puts.size(), 4u);
	EXPECT_TRUE(sink.warnings.empty());
	std::vector<size_t> batches = {1, 1, 2, 1, 1}; // both customers' subscriptions in one round
	EXPECT_EQ(script->batches, batches);
	// The continuation token travels only with the next page's request.
	EXPECT_FALSE(HeaderOf(script->seen[1], "MS-ContinuationToken").has_value());
	EXPECT_EQ(HeaderOf(script->seen[4], "MS-ContinuationToken").value_or(""), kToken1);
	EXPECT_FALSE(HeaderOf(script->seen[5], "MS-ContinuationToken").has_value());
}

TEST_F(PartnerCenterTest, TokenRequestAndPartnerCenterHeaders) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(script->seen.size(), 6u);
	const http::Request &token = script->seen[0];
	EXPECT_EQ(token.method, http::Method::kPost);
	EXPECT_NE(token.body.find("grant_type=client_credentials"), std::string::npos) << token.body;
	EXPECT_NE(token.body.find("client_id=pc-app"), std::string::npos);
	EXPECT_NE(token.body.find("client_secret=pc-SECRET"), std::string::npos);
	EXPECT_NE(token.body.find("scope=https%3A%2F%2Fapi.partnercenter.microsoft.com%2F.default"), std::string::npos)
	    << token.body;
	std::set<std::string> request_ids;
	std::string correlation = HeaderOf(script->seen[1], "MS-CorrelationId").value_or("");
	EXPECT_TRUE(LooksLikeGuid(correlation)) << correlation;
	for (size_t i = 1; i < script->seen.size(); ++i) {
		const http::Request &r = script->seen[i];
		EXPECT_EQ(HeaderOf(r, "Authorization").value_or(""), "Bearer pc-token-1");
		EXPECT_EQ(HeaderOf(r, "Accept").value_or(""), "application/json");
		EXPECT_EQ(HeaderOf(r, "MS-Contract-Version").value_or(""), "v1");
		EXPECT_EQ(HeaderOf(r, "MS-CorrelationId").value_or(""), correlation);
		std::string id = HeaderOf(r, "MS-RequestId").value_or("");
		EXPECT_TRUE(LooksLikeGuid(id)) << id;
		request_ids.insert(id);
	}
	EXPECT_EQ(request_ids.size(), 5u); // a fresh one per request
	EXPECT_EQ(request_ids.count(correlation), 0u);
}

TEST_F(PartnerCenterTest, DefaultTokenUrlUsesThePartnerTenant) {
	script->answers.clear();
	const std::string real =
	    "https://login.microsoftonline.com/99999999-8888-4777-8666-555555555555/oauth2/v2.0/token";
	script->On("POST " + real, Scripted{200, {}, Fixture("token.json")});
	script->Get(kBase + "/v1/customers?size=500", "customers_empty.json");
	Make("{}")->Sync(SyncRequest{}, *client, sink);
	std::vector<std::string> expected = {"POST " + real, "GET " + kBase + "/v1/customers?size=500"};
	EXPECT_EQ(script->Urls(), expected);
	std::vector<std::pair<std::string, size_t>> pages = {{"customers", 0}};
	EXPECT_EQ(sink.pages, pages);
	EXPECT_EQ(sink.puts.size(), 0u);
}

TEST_F(PartnerCenterTest, RetryKeepsTheRequestId) {
	MakeClient(2);
	script->On("GET " + kBase + "/v1/customers?size=500",
	           Scripted{429, {{"Retry-After", "0"}}, Fixture("throttled.json")});
	script->Get(kBase + "/v1/customers?size=500", "customers_empty.json");
	Make(R"({"token_url": "https://login.test/{tenant}/oauth2/v2.0/token"})")->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(script->seen.size(), 3u);
	EXPECT_EQ(HeaderOf(script->seen[1], "MS-RequestId"), HeaderOf(script->seen[2], "MS-RequestId"));
	EXPECT_EQ(client->stats().throttled, 1);
}

TEST_F(PartnerCenterTest, InjectedGuidsAreUsedInOrder) {
	script->Get(kCustomers, "customers_page2.json");
	script->Get(Subs(kC3), "subs_empty.json");
	Make(); // installs the auth on the client
	PartnerCenterConnector::Settings settings;
	settings.base_url = kBase;
	settings.page_size = 2;
	int n = 0;
	settings.new_guid = [&n] { return "guid-" + std::to_string(++n); };
	PartnerCenterConnector(settings).Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(script->seen.size(), 3u);
	EXPECT_EQ(HeaderOf(script->seen[1], "MS-CorrelationId").value_or(""), "guid-1");
	EXPECT_EQ(HeaderOf(script->seen[1], "MS-RequestId").value_or(""), "guid-2");
	EXPECT_EQ(HeaderOf(script->seen[2], "MS-CorrelationId").value_or(""), "guid-1");
	EXPECT_EQ(HeaderOf(script->seen[2], "MS-RequestId").value_or(""), "guid-3");
}

TEST_F(PartnerCenterTest, CustomersMap) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.accounts.size(), 3u);
	EXPECT_EQ(sink.accounts[0].external_id, kC1Lower); // the tenant id, lower-cased like msgraph's
	EXPECT_EQ(sink.accounts[0].name, "Harbor Dental");
	EXPECT_EQ(sink.accounts[0].domains, std::vector<std::string>{"harbordental.onmicrosoft.com"});
	EXPECT_FALSE(sink.accounts[0].status.has_value());
	EXPECT_EQ(sink.accounts[1].external_id, kC2);
	EXPECT_EQ(sink.accounts[1].name, "North Ridge Law");
	EXPECT_TRUE(sink.accounts[1].domains.empty()); // domain null
	EXPECT_EQ(sink.accounts[2].external_id, kC3);
	EXPECT_EQ(sink.accounts[2].name, "Ocean Crest Realty");
}

TEST_F(PartnerCenterTest, SubscriptionsMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.usage.size(), 3u);
	const model::UsageRecord &bp = Usage("b0d2c8a4-0001-4a61-9d7b-2c1f0e9a3b10");
	EXPECT_EQ(bp.kind, model::UsageKind::kSubscription);
	EXPECT_EQ(bp.account_external_id, kC1Lower);
	EXPECT_EQ(bp.product.value_or(""), "CFQ7TTC0LCHC:0002:CFQ7TTC0L3K5");
	EXPECT_EQ(bp.product_name.value_or(""), "Microsoft 365 Business Premium"); // offerName before friendlyName
	EXPECT_EQ(bp.quantity.str(), "18");
	EXPECT_EQ(bp.status.value_or(""), "active");
	EXPECT_EQ(bp.billing_term.value_or(""), "monthly");
	EXPECT_EQ(bp.term_end_date.value_or(""), "2024-12-31");
	EXPECT_EQ(bp.enabled, std::optional<bool>(true));
	EXPECT_FALSE(bp.unit_cost.has_value()); // Partner Center gives no price here
	EXPECT_FALSE(bp.licensed.has_value());
	EXPECT_FALSE(bp.last_active_at.has_value());

	const model::UsageRecord &exo = Usage("4e9a7f11-2b3c-4d5e-8f90-aa11bb22cc33");
	EXPECT_FALSE(exo.product.has_value());                            // no offerId
	EXPECT_EQ(exo.product_name.value_or(""), "Exchange P1 (legacy)"); // empty offerName -> friendlyName
	EXPECT_EQ(exo.quantity.str(), "3");
	EXPECT_EQ(exo.enabled, std::optional<bool>(false)); // "Suspended", any case

	const model::UsageRecord &basic = Usage("9a8b7c6d-0003-4e5f-8a9b-0c1d2e3f4a5b");
	EXPECT_EQ(basic.account_external_id, kC2);
	EXPECT_EQ(basic.quantity.str(), "0");
	EXPECT_EQ(basic.enabled, std::optional<bool>(false)); // expired
}

TEST_F(PartnerCenterTest, SubscriptionsOfManyCustomersGoInBatches) {
	// max_in_flight 1: one customer's subscriptions per round.
	script->Get(kCustomers, "customers_page1.json");
	script->Get(kCustomers2, "customers_page2.json");
	script->Get(Subs(kC1), "subs_c1.json");
	script->Get(Subs(kC2), "subs_c2.json");
	script->Get(Subs(kC3), "subs_empty.json");
	http::ClientOptions options = NoRetries();
	options.max_in_flight = 1;
	script->seen.clear();
	script->batches.clear();
	auto one_at_a_time = ScriptedClient(script, options);
	FindKind("partnercenter")->create(Config(kOptions), *one_at_a_time)->Sync(SyncRequest{}, *one_at_a_time, sink);
	EXPECT_EQ(sink.usage.size(), 3u);
	EXPECT_EQ(script->seen.size(), 6u);
	std::vector<size_t> batches = {1, 1, 1, 1, 1, 1};
	EXPECT_EQ(script->batches, batches);
}

TEST_F(PartnerCenterTest, PagedSubscriptionsAreFollowed) {
	script->Get(kCustomers, "customers_page2.json");
	script->Get(Subs(kC3), "subs_paged1.json");
	const std::string next = Subs(kC3) + "?seekOperation=Next";
	script->Get(next, "subs_paged2.json");
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(script->seen.size(), 4u);
	EXPECT_EQ(script->seen[3].url, next);
	EXPECT_EQ(HeaderOf(script->seen[3], "MS-ContinuationToken").value_or(""), "sub-tok");
	ASSERT_EQ(sink.usage.size(), 2u);
	EXPECT_EQ(Usage("6d6d6d6d-0008-4000-8000-000000000008").enabled, std::optional<bool>(false)); // pending
	EXPECT_EQ(Usage("6d6d6d6d-0008-4000-8000-000000000008").account_external_id, kC3);
}

TEST_F(PartnerCenterTest, TopLevelContinuationTokenIsUsedWhenTheLinkHasNone) {
	script->Get(kCustomers, "customers_top_token.json");
	script->Get(kCustomers2, "customers_page2.json");
	script->Get(Subs(kC2), "subs_empty.json");
	script->Get(Subs(kC3), "subs_empty.json");
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(script->seen.size(), 5u);
	EXPECT_EQ(script->seen[3].url, kCustomers2);
	EXPECT_EQ(HeaderOf(script->seen[3], "MS-ContinuationToken").value_or(""), "tok-top");
}

TEST_F(PartnerCenterTest, QuickFallsBackToFullWithANote) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	SyncOutcome outcome = Make()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "partnercenter has no modified-since filter: quick sync ran as a full sync");
	EXPECT_EQ(sink.usage.size(), 3u);
}

TEST_F(PartnerCenterTest, RepeatedContinuationIsALoop) {
	script->Get(kCustomers, "customers_page1.json");
	script->Get(kCustomers2, "customers_loop.json");
	script->Get(Subs(kC1), "subs_empty.json");
	script->Get(Subs(kC2), "subs_empty.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_EQ(e.detail(), "GET /v1/customers: page 2 links to \"" + kCustomers2 +
	                          "\" with a continuation token already used");
	EXPECT_EQ(script->seen.size(), 5u);
}

TEST_F(PartnerCenterTest, LinkToAnotherServerIsRefused) {
	script->Get(kCustomers, "customers_foreign.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "unexpected pagination link in vendor response");
	EXPECT_NE(e.detail().find("pc.evil.example"), std::string::npos) << e.detail();
	EXPECT_EQ(script->seen.size(), 2u);
}

TEST_F(PartnerCenterTest, PayloadErrorsNameEndpointRecordAndField) {
	struct Case {
		const char *customers;
		const char *subs; // for customer kC2
		const char *sqlstate;
		std::string detail;
	};
	const Case cases[] = {
	    {"customers_missing_profile.json", nullptr, "22000",
	     "GET /v1/customers record id " + kC2 + ": field \"companyProfile\" is missing"},
	    {"customers_name_number.json", nullptr, "22P02",
	     "GET /v1/customers record id " + kC2 +
	         ": field \"companyProfile.companyName\" should be a string, found number 42"},
	    {"customers_no_items.json", nullptr, "22000", "GET /v1/customers page 1: field \"items\" is missing"},
	    {"customers_top_token.json", "subs_bad_status.json", "22P02",
	     "GET /v1/customers/" + kC2 +
	         "/subscriptions record id 5c5c5c5c-0004-4000-8000-000000000004: field \"status\" should be one of "
	         "none, active, pending, suspended, deleted, expired, disabled, found string \"frozen\""},
	    {"customers_top_token.json", "subs_missing_quantity.json", "22000",
	     "GET /v1/customers/" + kC2 +
	         "/subscriptions record id 5c5c5c5c-0005-4000-8000-000000000005: field \"quantity\" is missing"},
	    {"customers_top_token.json", "subs_quantity_bool.json", "22P02",
	     "GET /v1/customers/" + kC2 +
	         "/subscriptions record id 5c5c5c5c-0006-4000-8000-000000000006: field \"quantity\" should be a number, "
	         "found boolean"},
	};
	for (const Case &c : cases) {
		SetUp();
		sink = CollectingSink(Side::kVendor);
		script->Get(kCustomers, c.customers);
		if (c.subs)
			script->Get(Subs(kC2), c.subs);
		billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
		EXPECT_EQ(e.sqlstate(), c.sqlstate) << c.detail;
		EXPECT_EQ(e.detail(), c.detail);
	}
}

TEST_F(PartnerCenterTest, TenantIdMustBeUrlSafe) {
	IntegrationConfig config = Config(kOptions);
	config.credentials_json = R"({"tenant_id": "../evil", "client_id": "a", "client_secret": "b"})";
	billrecon::Error e = CatchError([&] { FindKind("partnercenter")->create(config, *client); });
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "invalid credential \"tenant_id\" for partnercenter integration");
}

TEST(PartnerCenterMapping, LinkUrls) {
	const std::string base = "https://pc.test";
	EXPECT_EQ(PartnerCenterConnector::LinkUrl(base, "/v1/customers?size=40"), "https://pc.test/v1/customers?size=40");
	EXPECT_EQ(PartnerCenterConnector::LinkUrl(base, "/customers?seekOperation=Next"),
	          "https://pc.test/v1/customers?seekOperation=Next");
	// Microsoft's own invoice example has a second "?".
	EXPECT_EQ(PartnerCenterConnector::LinkUrl(base, "/invoices/G1/lineitems?size=2?seekOperation=Next"),
	          "https://pc.test/v1/invoices/G1/lineitems?size=2&seekOperation=Next");
	EXPECT_EQ(PartnerCenterConnector::LinkUrl(base + "/", "v1/customers"), "https://pc.test/v1/customers");
	EXPECT_EQ(PartnerCenterConnector::LinkUrl(base, "https://other.test/v1/x"), "https://other.test/v1/x");
}

TEST(PartnerCenterMapping, StatusesAndGuids) {
	EXPECT_EQ(PartnerCenterConnector::SubscriptionEnabled("active"), std::optional<bool>(true));
	EXPECT_EQ(PartnerCenterConnector::SubscriptionEnabled("Active"), std::optional<bool>(true));
	for (const char *s : {"none", "pending", "suspended", "deleted", "expired", "disabled"})
		EXPECT_EQ(PartnerCenterConnector::SubscriptionEnabled(s), std::optional<bool>(false)) << s;
	EXPECT_FALSE(PartnerCenterConnector::SubscriptionEnabled("frozen").has_value());
	std::set<std::string> seen;
	for (int i = 0; i < 50; ++i) {
		std::string g = PartnerCenterConnector::RandomGuid();
		EXPECT_TRUE(LooksLikeGuid(g)) << g;
		seen.insert(g);
	}
	EXPECT_EQ(seen.size(), 50u);
}

TEST(PartnerCenterConfig, Options) {
	EXPECT_NO_THROW(ValidateConfig(Config(kOptions), false));
	EXPECT_NO_THROW(ValidateConfig(Config("{}"), false));
	EXPECT_THROW(ValidateConfig(Config(R"({"page_size": 0})"), false), billrecon::Error);
	EXPECT_THROW(ValidateConfig(Config(R"({"page_size": 1001})"), false), billrecon::Error);
	EXPECT_THROW(ValidateConfig(Config(R"({"customer_tenants": []})"), false), billrecon::Error);
}
