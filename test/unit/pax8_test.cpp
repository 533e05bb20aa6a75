// Pax8 connector driven through a real http::Client over a scripted
// transport: the JSON-body token request with its audience, 0-based
// page/size paging and its end condition, product names fetched once and
// several at a time, every mapped field, loop guards and bad payloads.
#include "connectors/pax8.hpp"
#include "connectors/registry.hpp"
#include "http/client.hpp"
#include "model/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace http = billrecon::http;
namespace model = billrecon::model;
using namespace billrecon::connectors;
using namespace billrecon::test_support;

namespace {

std::string Fixture(const std::string &name) {
	return ReadFixture("pax8", name);
}

const std::string kBase = "https://pax8.test";
const std::string kCompanies = kBase + "/v1/companies?page=0&size=3";
const std::string kCompanies1 = kBase + "/v1/companies?page=1&size=3";
const std::string kSubs = kBase + "/v1/subscriptions?page=0&size=3";
const std::string kSubs1 = kBase + "/v1/subscriptions?page=1&size=3";
const std::string kP2 = "5766ecd7-a0bf-4ee0-ba1d-bd3ca92ca555";
const std::string kP3 = "7597a0fd-f0ec-4547-8a20-fd2d3f311a5c";
const std::string kC1 = "7d4f9a30-1e2b-4c55-8f0d-22b6a1e0c9aa";
std::string Product(const std::string &id) {
	return kBase + "/v1/products/" + id;
}

IntegrationConfig Config(const std::string &options_json) {
	IntegrationConfig config;
	config.id = 5;
	config.name = "pax8";
	config.kind = "pax8";
	config.base_url = kBase;
	config.credentials_json = R"({"client_id": "pax8-client", "client_secret": "pax8-SECRET"})";
	config.options_json = options_json;
	return config;
}

const std::string kOptions = R"({"page_size": 3})";

class Pax8Test : public ::testing::Test {
protected:
	void SetUp() override {
		script = std::make_shared<Script>("pax8", kJsonContentType);
		client = ScriptedClient(script);
		script->On("POST " + kBase + "/v1/token", Scripted{200, {}, Fixture("token.json")});
	}

	std::unique_ptr<Connector> Make(const std::string &options_json = kOptions) {
		return FindKind("pax8")->create(Config(options_json), *client);
	}

	void ScriptFull() {
		script->Get(kCompanies, "companies_page0.json");
		script->Get(kCompanies1, "companies_page1.json");
		script->Get(kSubs, "subscriptions_page0.json");
		script->Get(kSubs1, "subscriptions_page1.json");
		script->Get(Product(kP2), "product_p2.json");
		script->Get(Product(kP3), "product_p3.json");
	}

	const model::UsageRecord &Usage(const std::string &id) {
		return sink.Usage(id);
	}

	std::shared_ptr<Script> script;
	std::unique_ptr<http::Client> client;
	CollectingSink sink{Side::kVendor};
};

} // namespace

TEST_F(Pax8Test, FullSyncPagesUntilTheLastPage) {
	ScriptFull();
	SyncOutcome outcome = Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {
	    "POST " + kBase + "/v1/token", "GET " + kCompanies, "GET " + kCompanies1,   "GET " + kSubs,
	    "GET " + Product(kP2),         "GET " + Product(kP3), "GET " + kSubs1,
	};
	EXPECT_EQ(script->Urls(), expected);
	// Both unknown products of page 0 in one round; P2 is not asked again on page 1.
	std::vector<size_t> batches = {1, 1, 1, 1, 2, 1};
	EXPECT_EQ(script->batches, batches);
	std::vector<std::pair<std::string, size_t>> pages = {
	    {"companies", 3}, {"companies", 1}, {"subscriptions", 3}, {"subscriptions", 2}};
	EXPECT_EQ(sink.pages, pages);
	EXPECT_EQ(sink.puts.size(), 4u);
	EXPECT_TRUE(sink.warnings.empty());
}

TEST_F(Pax8Test, TokenRequestIsJsonWithAudience) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	const http::Request &token = script->seen.at(0);
	EXPECT_EQ(token.method, http::Method::kPost);
	EXPECT_EQ(HeaderOf(token, "Content-Type").value_or(""), "application/json");
	EXPECT_EQ(token.body, R"({"client_id":"pax8-client","client_secret":"pax8-SECRET",)"
	                      R"("audience":"https://api.pax8.com","grant_type":"client_credentials"})");
	for (size_t i = 1; i < script->seen.size(); ++i) {
		EXPECT_EQ(HeaderOf(script->seen[i], "Authorization").value_or(""), "Bearer pax8-access-token-1");
		EXPECT_EQ(HeaderOf(script->seen[i], "Accept").value_or(""), "application/json");
	}
}

TEST_F(Pax8Test, LegacyTokenEndpointAndAudienceOptions) {
	script->answers.clear();
	script->On("POST https://login.pax8.test/oauth/token", Scripted{200, {}, Fixture("token.json")});
	script->Get(kBase + "/v1/companies?page=0&size=200", "companies_empty.json");
	script->Get(kBase + "/v1/subscriptions?page=0&size=200", "subscriptions_empty.json");
	Make(R"({"token_url": "https://login.pax8.test/oauth/token", "audience": "api://p8p.client"})")
	    ->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(script->Urls().at(0), "POST https://login.pax8.test/oauth/token");
	EXPECT_NE(script->seen.at(0).body.find(R"("audience":"api://p8p.client")"), std::string::npos);
	EXPECT_EQ(script->seen.size(), 3u); // totalPages 0: one page each
	EXPECT_EQ(sink.puts.size(), 0u);
}

TEST_F(Pax8Test, CompaniesMap) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.accounts.size(), 4u);
	const model::VendorAccount &hd = sink.accounts[0];
	EXPECT_EQ(hd.external_id, kC1);
	EXPECT_EQ(hd.name, "Harbor Dental");
	EXPECT_EQ(hd.domains, std::vector<std::string>{"harbordental.com"});
	EXPECT_EQ(hd.status.value_or(""), "Active");
	EXPECT_EQ(hd.source_updated_at.value_or(""), "2024-05-01T19:00:00.153Z"); // -0700 offset
	EXPECT_TRUE(sink.accounts[1].domains.empty());                             // website ""
	EXPECT_EQ(sink.accounts[1].status.value_or(""), "Inactive");
	EXPECT_FALSE(sink.accounts[1].source_updated_at.has_value());
	EXPECT_TRUE(sink.accounts[2].domains.empty()); // "call us"
	EXPECT_EQ(sink.accounts[3].domains, std::vector<std::string>{"summitortho.com"});
	EXPECT_FALSE(sink.accounts[3].status.has_value());
}

TEST_F(Pax8Test, SubscriptionsMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.usage.size(), 5u);
	const model::UsageRecord &bp = Usage("2f1c0c53-6a0e-4d7e-9a51-0a9d8e1b1c01");
	EXPECT_EQ(bp.kind, model::UsageKind::kSubscription);
	EXPECT_EQ(bp.account_external_id, kC1);
	EXPECT_EQ(bp.product.value_or(""), "e91bba5e-a9a3-483f-b036-f80165d410e3");
	EXPECT_EQ(bp.product_name.value_or(""), "Microsoft 365 Business Premium"); // from the subscription
	EXPECT_EQ(bp.quantity.str(), "18");
	EXPECT_EQ(bp.status.value_or(""), "Active");
	EXPECT_EQ(bp.billing_term.value_or(""), "Monthly");
	EXPECT_EQ(bp.term_end_date.value_or(""), "2024-12-31"); // the commitment's end
	EXPECT_EQ(bp.enabled, std::optional<bool>(true));
	EXPECT_EQ(bp.unit_cost.value_or(model::Decimal()).str(), "18.7"); // partnerCost, exact
	EXPECT_EQ(bp.source_updated_at.value_or(""), "2020-12-10T06:12:14.453Z");
	EXPECT_FALSE(bp.licensed.has_value());
	EXPECT_FALSE(bp.device_class.has_value());

	const model::UsageRecord &backup = Usage("8a0e77b4-3c9d-4f21-b6e2-5f4d0c2e9b77");
	EXPECT_EQ(backup.product.value_or(""), kP2);
	EXPECT_EQ(backup.product_name.value_or(""), "Backup - Per Workstation"); // from GET /v1/products/{id}
	EXPECT_EQ(backup.enabled, std::optional<bool>(false));                   // PendingCancel
	EXPECT_FALSE(backup.unit_cost.has_value());                              // price alone is not a cost

	const model::UsageRecord &adobe = Usage("d1758c49-f81c-48af-8f30-e7e93adf6acc");
	EXPECT_EQ(adobe.product_name.value_or(""), "Adobe Creative Cloud"); // empty productName -> product lookup
	EXPECT_EQ(adobe.quantity.str(), "1.5");
	EXPECT_EQ(adobe.unit_cost.value_or(model::Decimal()).str(), "10.1"); // numeric string
	EXPECT_EQ(adobe.enabled, std::optional<bool>(false));                  // "trial", any case

	const model::UsageRecord &cancelled = Usage("a95e2d7c-cdcf-4cf9-8c94-34ce71e06fa1");
	EXPECT_EQ(cancelled.product_name.value_or(""), "Backup - Per Workstation"); // cached
	EXPECT_EQ(cancelled.quantity.str(), "7");

	const model::UsageRecord &bare = Usage("b010a5d2-d604-434d-b331-d1a3ae6e759e");
	EXPECT_FALSE(bare.product.has_value());
	EXPECT_FALSE(bare.product_name.has_value());
	EXPECT_FALSE(bare.enabled.has_value()); // status null
	EXPECT_FALSE(bare.unit_cost.has_value());
	EXPECT_EQ(bare.quantity.str(), "0");
}

TEST_F(Pax8Test, RetiredProductWarnsAndKeepsTheOthers) {
	script->answers.clear();
	script->On("POST " + kBase + "/v1/token", Scripted{200, {}, Fixture("token.json")});
	script->Get(kCompanies, "companies_empty.json");
	script->Get(kSubs, "subscriptions_page0.json");
	script->Get(kSubs1, "subscriptions_page1.json");
	script->Get(Product(kP2), "product_p2.json");
	script->Get(Product(kP3), "not_found.json", 404);
	Make()->Sync(SyncRequest{}, *client, sink);
	std::vector<std::string> expected = {
	    "POST " + kBase + "/v1/token", "GET " + kCompanies,    "GET " + kSubs,  "GET " + Product(kP2),
	    "GET " + Product(kP3),         "GET " + Product(kP2), "GET " + Product(kP3), "GET " + kSubs1,
	};
	EXPECT_EQ(script->Urls(), expected); // the failed round is asked again one by one
	EXPECT_EQ(Usage("8a0e77b4-3c9d-4f21-b6e2-5f4d0c2e9b77").product_name.value_or(""), "Backup - Per Workstation");
	EXPECT_FALSE(Usage("d1758c49-f81c-48af-8f30-e7e93adf6acc").product_name.has_value());
	EXPECT_EQ(Usage("d1758c49-f81c-48af-8f30-e7e93adf6acc").product.value_or(""), kP3);
	ASSERT_EQ(sink.warnings.size(), 1u);
	EXPECT_EQ(sink.warnings[0], "pax8: 1 product(s) not found (HTTP 404 on GET /v1/products/{id}); their "
	                            "subscriptions have no product name: " +
	                                kP3);
}

TEST_F(Pax8Test, ProductFailingOtherwiseFailsTheSync) {
	script->Get(kCompanies, "companies_empty.json");
	script->Get(kSubs, "subscriptions_page0.json");
	script->Get(Product(kP2), "product_p2.json");
	script->Get(Product(kP3), "not_found.json", 403);
	EXPECT_THROW(Make()->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.usage.empty());
}

TEST_F(Pax8Test, QuickFallsBackToFullWithANote) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	SyncOutcome outcome = Make()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "pax8 has no modified-since filter: quick sync ran as a full sync");
	EXPECT_EQ(sink.usage.size(), 5u);
}

TEST_F(Pax8Test, PageAnsweredWithAnotherNumberIsALoop) {
	script->Get(kCompanies, "companies_page0.json");
	script->Get(kCompanies1, "companies_page0.json"); // the server ignores page=
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_EQ(e.detail(), "GET /v1/companies: page 1 was answered with page.number 0");
	EXPECT_EQ(sink.accounts.size(), 3u); // the repeated page is not stored
}

TEST_F(Pax8Test, PageCapStopsARunawayList) {
	script->Get(kCompanies, "companies_page0.json");
	Make(); // installs the auth
	Pax8Connector::Settings settings;
	settings.base_url = kBase;
	settings.page_size = 3;
	settings.max_pages = 1;
	billrecon::Error e = CatchError([&] { Pax8Connector(settings).Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "54000");
	EXPECT_EQ(e.message(), "too many pages in vendor response");
}

TEST_F(Pax8Test, PayloadErrorsNameEndpointRecordAndField) {
	struct Case {
		const char *companies;
		const char *subscriptions;
		const char *sqlstate;
		std::string detail;
	};
	const Case cases[] = {
	    {"companies_missing_page.json", nullptr, "22000", "GET /v1/companies page 0: field \"page\" is missing"},
	    {"companies_missing_name.json", nullptr, "22000",
	     "GET /v1/companies record id " + kC1 + ": field \"name\" is missing"},
	    {"companies_bad_total.json", nullptr, "22P02",
	     "GET /v1/companies page 0: field \"page.totalPages\" should be a number, found string \"two\""},
	    {"companies_empty.json", "subscriptions_bad_status.json", "22P02",
	     "GET /v1/subscriptions record id 0b0b0b0b-0001-4000-8000-000000000001: field \"status\" should be one of "
	     "Active, Cancelled, PendingManual, PendingAutomated, PendingCancel, WaitingForDetails, Trial, Converted, "
	     "PendingActivation, Activated, found string \"Paused\""},
	    {"companies_empty.json", "subscriptions_missing_company.json", "22000",
	     "GET /v1/subscriptions record id 0b0b0b0b-0002-4000-8000-000000000002: field \"companyId\" is missing"},
	    {"companies_empty.json", "subscriptions_quantity_word.json", "22P02",
	     "GET /v1/subscriptions record id 0b0b0b0b-0003-4000-8000-000000000003: field \"quantity\" should be a "
	     "number, found string \"ten\""},
	    {"companies_empty.json", "subscriptions_bad_updated.json", "22P02",
	     "GET /v1/subscriptions record id 0b0b0b0b-0004-4000-8000-000000000004: field \"updatedDate\" should be an "
	     "ISO 8601 timestamp, found string \"yesterday\""},
	};
	for (const Case &c : cases) {
		SetUp();
		sink = CollectingSink(Side::kVendor);
		script->Get(kCompanies, c.companies);
		if (c.subscriptions)
			script->Get(kSubs, c.subscriptions);
		billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
		EXPECT_EQ(e.sqlstate(), c.sqlstate) << c.detail;
		EXPECT_EQ(e.detail(), c.detail);
	}
}

TEST_F(Pax8Test, ProductWithoutNameFails) {
	script->Get(kCompanies, "companies_empty.json");
	script->Get(kSubs, "subscriptions_page0.json");
	script->Get(Product(kP2), "product_p2.json");
	script->Get(Product(kP3), "product_no_name.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.detail(), "GET /v1/products/" + kP3 + " record id " + kP3 + ": field \"name\" is missing");
}

TEST(Pax8Mapping, StatusesAndWebsites) {
	EXPECT_EQ(Pax8Connector::SubscriptionEnabled("Active"), std::optional<bool>(true));
	for (const char *s : {"Cancelled", "PendingManual", "PendingAutomated", "PendingCancel", "WaitingForDetails",
	                      "Trial", "Converted", "PendingActivation", "Activated"})
		EXPECT_EQ(Pax8Connector::SubscriptionEnabled(s), std::optional<bool>(false)) << s;
	EXPECT_FALSE(Pax8Connector::SubscriptionEnabled("Paused").has_value());
	EXPECT_EQ(Pax8Connector::DomainOfWebsite(" HTTP://WWW.Example.co.uk:8080/x?y ").value_or(""), "example.co.uk");
	EXPECT_EQ(Pax8Connector::DomainOfWebsite("example.com").value_or(""), "example.com");
	EXPECT_FALSE(Pax8Connector::DomainOfWebsite("localhost").has_value());
	EXPECT_FALSE(Pax8Connector::DomainOfWebsite("").has_value());
	EXPECT_FALSE(Pax8Connector::DomainOfWebsite("ex ample.com").has_value());
}

TEST(Pax8Config, Options) {
	EXPECT_NO_THROW(ValidateConfig(Config(kOptions), false));
	EXPECT_NO_THROW(ValidateConfig(Config(R"({"audience": "api://p8p.client", "page_size": 200})"), false));
	struct Case {
		const char *options;
		const char *detail;
	};
	const Case cases[] = {
	    {R"({"page_size": 201})", "page_size must be an integer from 1 to 200, found number 201."},
	    {R"({"page_size": 0})", "page_size must be an integer from 1 to 200, found number 0."},
	    {R"({"audience": ""})", "audience must be a string of 1 to 200 characters, found string \"\"."},
	    {R"({"audience": 5})", "audience must be a string of 1 to 200 characters, found number 5."},
	    {R"({"token_url": "https://x.test/token?x=1"})", "has a query string"},
	};
	for (const Case &k : cases) {
		try {
			ValidateConfig(Config(k.options), false);
			ADD_FAILURE() << "accepted " << k.options;
		} catch (const billrecon::Error &e) {
			EXPECT_EQ(e.sqlstate(), "22023") << k.options;
			EXPECT_NE(e.detail().find(k.detail), std::string::npos) << k.options << ": " << e.detail();
		}
	}
}
