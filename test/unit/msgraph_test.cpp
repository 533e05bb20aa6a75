// Microsoft Graph connector driven through a real http::Client over a
// scripted transport: one OAuth2 token per customer tenant, @odata.nextLink
// paging, every mapped field, the signInActivity 403 fallback, loop guards,
// bad payloads and the customer_tenants option checks.
#include "connectors/msgraph.hpp"
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
	return ReadFixture("msgraph", name);
}

const std::string kT1 = "3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f";
const std::string kT2 = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const std::string kBase = "https://graph.test";
const std::string kOrg = kBase + "/v1.0/organization";
const std::string kSkus = kBase + "/v1.0/subscribedSkus";
const std::string kUsersSignIn = kBase + "/v1.0/users?$select=id,displayName,userPrincipalName,accountEnabled,"
                                         "assignedLicenses,signInActivity&$top=999";
const std::string kUsersPlain =
    kBase + "/v1.0/users?$select=id,displayName,userPrincipalName,accountEnabled,assignedLicenses&$top=999";
const std::string kUsersPage2 = kUsersSignIn + "&$skiptoken=RFNwdAIAAQAAAD8";
std::string TokenUrl(const std::string &tenant) {
	return "https://login.test/" + tenant + "/oauth2/v2.0/token";
}
// T2 is configured in upper case: ids are stored lower-case.
const std::string kOptions = R"({"customer_tenants": ["3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f",
    "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"], "token_url": "https://login.test/{tenant}/oauth2/v2.0/token"})";

IntegrationConfig Config(const std::string &options_json = kOptions) {
	IntegrationConfig config;
	config.id = 3;
	config.name = "m365";
	config.kind = "msgraph";
	config.base_url = kBase;
	config.credentials_json = R"({"tenant_id": "99999999-8888-4777-8666-555555555555", "client_id": "graph-app",
	                              "client_secret": "graph-SECRET"})";
	config.options_json = options_json;
	return config;
}

class MsGraphTest : public ::testing::Test {
protected:
	void SetUp() override {
		script = std::make_shared<Script>("msgraph", kJsonContentType);
		client = ScriptedClient(script);
		script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
		script->On("POST " + TokenUrl(kT2), Scripted{200, {}, Fixture("token_t2.json")});
	}

	std::unique_ptr<Connector> Make(const std::string &options_json = kOptions) {
		return FindKind("msgraph")->create(Config(options_json), *client);
	}

	// Organization, SKUs and users of one tenant; the users script differs per test.
	void ScriptTenant(const std::string &org, const std::string &skus) {
		script->Get(kOrg, org);
		script->Get(kSkus, skus);
	}

	// Both tenants, everything answered; answers are consumed in order.
	void ScriptFull() {
		ScriptTenant("organization_t1.json", "skus_t1.json");
		script->Get(kUsersSignIn, "users_t1_page1.json");
		script->Get(kUsersPage2, "users_t1_page2.json");
		ScriptTenant("organization_t2.json", "skus_t2.json");
		script->Get(kUsersSignIn, "users_t2.json");
	}

	const model::UsageRecord &Usage(const std::string &id) {
		return sink.Usage(id);
	}

	std::shared_ptr<Script> script;
	std::unique_ptr<http::Client> client;
	CollectingSink sink{Side::kVendor};
};

// Scripts one tenant (T1 only) with the given users answers.
std::string OneTenant() {
	return R"({"customer_tenants": ["3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f"],
	           "token_url": "https://login.test/{tenant}/oauth2/v2.0/token"})";
}

} // namespace

TEST_F(MsGraphTest, FullSyncReadsEachTenantInTurn) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	script->On("POST " + TokenUrl(kT2), Scripted{200, {}, Fixture("token_t2.json")});
	// Answers per URL are consumed in order: T1's first, then T2's.
	script->Get(kOrg, "organization_t1.json");
	script->Get(kOrg, "organization_t2.json");
	script->Get(kSkus, "skus_t1.json");
	script->Get(kSkus, "skus_t2.json");
	script->Get(kUsersSignIn, "users_t1_page1.json");
	script->Get(kUsersSignIn, "users_t2.json");
	script->Get(kUsersPage2, "users_t1_page2.json");
	SyncOutcome outcome = Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {
	    "POST " + TokenUrl(kT1), "GET " + kOrg,         "GET " + kSkus, "GET " + kUsersSignIn, "GET " + kUsersPage2,
	    "POST " + TokenUrl(kT2), "GET " + kOrg,         "GET " + kSkus, "GET " + kUsersSignIn,
	};
	EXPECT_EQ(script->Urls(), expected);
	std::vector<std::pair<std::string, size_t>> pages = {
	    {"organization", 1}, {"licences", 3}, {"users", 3}, {"users", 2},
	    {"organization", 1}, {"licences", 1}, {"users", 1}};
	EXPECT_EQ(sink.pages, pages);
	EXPECT_EQ(sink.puts.size(), 7u);
	EXPECT_TRUE(sink.warnings.empty());
	ASSERT_EQ(sink.accounts.size(), 2u);
	EXPECT_EQ(sink.usage.size(), 10u);
}

TEST_F(MsGraphTest, OneTokenPerTenantAndHeaders) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	script->On("POST " + TokenUrl(kT2), Scripted{200, {}, Fixture("token_t2.json")});
	script->Get(kOrg, "organization_t1.json");
	script->Get(kOrg, "organization_t2.json");
	script->Get(kSkus, "skus_t1.json");
	script->Get(kSkus, "skus_t2.json");
	script->Get(kUsersSignIn, "users_t2.json");
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(script->seen.size(), 8u);
	for (size_t i : {0u, 4u}) {
		const http::Request &token = script->seen[i];
		EXPECT_EQ(token.method, http::Method::kPost);
		EXPECT_NE(token.body.find("grant_type=client_credentials"), std::string::npos) << token.body;
		EXPECT_NE(token.body.find("client_id=graph-app"), std::string::npos) << token.body;
		EXPECT_NE(token.body.find("client_secret=graph-SECRET"), std::string::npos) << token.body;
		EXPECT_NE(token.body.find("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"), std::string::npos)
		    << token.body;
		EXPECT_EQ(HeaderOf(token, "Content-Type").value_or(""), "application/x-www-form-urlencoded");
	}
	EXPECT_EQ(script->seen[0].url, TokenUrl(kT1));
	EXPECT_EQ(script->seen[4].url, TokenUrl(kT2)); // configured upper case, lower-cased
	for (size_t i : {1u, 2u, 3u}) {
		EXPECT_EQ(HeaderOf(script->seen[i], "Authorization").value_or(""), "Bearer graph-token-t1");
		EXPECT_EQ(HeaderOf(script->seen[i], "Accept").value_or(""), "application/json");
	}
	for (size_t i : {5u, 6u, 7u})
		EXPECT_EQ(HeaderOf(script->seen[i], "Authorization").value_or(""), "Bearer graph-token-t2");
}

TEST_F(MsGraphTest, DefaultTokenUrlIsTheCustomerTenantsEndpoint) {
	script->answers.clear();
	const std::string real = "https://login.microsoftonline.com/" + kT1 + "/oauth2/v2.0/token";
	script->On("POST " + real, Scripted{200, {}, Fixture("token_t1.json")});
	ScriptTenant("organization_t1.json", "skus_empty.json");
	script->Get(kUsersSignIn, "users_empty.json");
	Make(R"({"customer_tenants": ["3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f"]})")->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(script->Urls().at(0), "POST " + real);
	EXPECT_EQ(sink.usage.size(), 0u);
	std::vector<std::pair<std::string, size_t>> pages = {{"organization", 1}, {"licences", 0}, {"users", 0}};
	EXPECT_EQ(sink.pages, pages);
}

TEST_F(MsGraphTest, OrganizationIsTheVendorAccount) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.accounts.size(), 2u);
	const model::VendorAccount &a = sink.accounts[0];
	EXPECT_EQ(a.external_id, kT1);
	EXPECT_EQ(a.name, "Harbor Dental");
	// lower-cased, duplicates and null names dropped, initial domain kept
	std::vector<std::string> domains = {"harbordental.com", "harbordental.onmicrosoft.com"};
	EXPECT_EQ(a.domains, domains);
	EXPECT_FALSE(a.status.has_value());
	EXPECT_EQ(sink.accounts[1].external_id, kT2);
	EXPECT_EQ(sink.accounts[1].name, "North Ridge Law");
	EXPECT_TRUE(sink.accounts[1].domains.empty()); // verifiedDomains null
}

TEST_F(MsGraphTest, LicencesMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	const model::UsageRecord &spb = Usage(kT1 + ":cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46");
	EXPECT_EQ(spb.kind, model::UsageKind::kLicence);
	EXPECT_EQ(spb.account_external_id, kT1);
	EXPECT_EQ(spb.product.value_or(""), "SPB");
	EXPECT_EQ(spb.product_name.value_or(""), "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46");
	EXPECT_EQ(spb.quantity.str(), "16"); // consumedUnits, not prepaidUnits.enabled
	EXPECT_EQ(spb.purchased_quantity.value_or(model::Decimal()).str(), "18"); // prepaidUnits.enabled
	EXPECT_EQ(spb.status.value_or(""), "Enabled");
	EXPECT_EQ(spb.enabled, std::optional<bool>(true));
	EXPECT_FALSE(spb.licensed.has_value());
	EXPECT_FALSE(spb.last_active_at.has_value());
	EXPECT_FALSE(spb.device_class.has_value());
	EXPECT_FALSE(spb.unit_cost.has_value());

	const model::UsageRecord &exo = Usage(kT1 + ":4b9405b0-7788-4568-add1-99614e613b69"); // upper-case skuId
	EXPECT_EQ(exo.product.value_or(""), "EXCHANGESTANDARD");
	EXPECT_EQ(exo.quantity.str(), "3");
	EXPECT_EQ(exo.enabled, std::optional<bool>(true)); // Warning: grace period, still in use

	const model::UsageRecord &flow = Usage(kT1 + ":f30db892-07e9-47e9-837c-80727f46fd3d");
	EXPECT_EQ(flow.quantity.str(), "0");
	EXPECT_EQ(flow.enabled, std::optional<bool>(false)); // Suspended

	const model::UsageRecord &t2 = Usage(kT2 + ":f245ecc8-75af-4f8e-b61f-27d8114de5f3");
	EXPECT_EQ(t2.account_external_id, kT2);
	EXPECT_EQ(t2.quantity.str(), "7");
	EXPECT_FALSE(t2.enabled.has_value()); // capabilityStatus null
}

TEST_F(MsGraphTest, UsersMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);

	const model::UsageRecord &ana = Usage("5a1c7e2d-0001-4000-8000-000000000001");
	EXPECT_EQ(ana.kind, model::UsageKind::kUser);
	EXPECT_EQ(ana.account_external_id, kT1);
	EXPECT_EQ(ana.quantity.str(), "1");
	EXPECT_EQ(ana.licensed, std::optional<bool>(true));
	EXPECT_EQ(ana.enabled, std::optional<bool>(true));
	EXPECT_EQ(ana.product.value_or(""), "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"); // lower-cased
	EXPECT_EQ(ana.product_name.value_or(""), "SPB");
	EXPECT_EQ(ana.user_name.value_or(""), "ana@harbordental.com");
	EXPECT_EQ(ana.last_active_at.value_or(""), "2024-06-11T02:03:11Z"); // non-interactive is later

	const model::UsageRecord &former = Usage("9e77aa10-0002-4000-8000-000000000002");
	EXPECT_EQ(former.enabled, std::optional<bool>(false));
	EXPECT_EQ(former.licensed, std::optional<bool>(true));
	EXPECT_EQ(former.last_active_at.value_or(""), "2024-01-04T15:00:00Z");

	const model::UsageRecord &guest = Usage("c0ffee00-0003-4000-8000-000000000003");
	EXPECT_EQ(guest.licensed, std::optional<bool>(false));
	EXPECT_FALSE(guest.product.has_value());
	EXPECT_FALSE(guest.product_name.has_value());
	EXPECT_FALSE(guest.last_active_at.has_value()); // signInActivity null

	const model::UsageRecord &lee = Usage("d00d0000-0004-4000-8000-000000000004");
	EXPECT_EQ(lee.product.value_or(""), "4b9405b0-7788-4568-add1-99614e613b69,cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46");
	EXPECT_EQ(lee.product_name.value_or(""), "EXCHANGESTANDARD,SPB");
	EXPECT_EQ(lee.last_active_at.value_or(""), "2024-06-11T09:00:00.25Z"); // same second, later fraction

	const model::UsageRecord &shared = Usage("e0e0e0e0-0005-4000-8000-000000000005");
	EXPECT_FALSE(shared.enabled.has_value()); // accountEnabled missing
	EXPECT_EQ(shared.product.value_or(""), "11111111-2222-4333-8444-555555555555");
	EXPECT_FALSE(shared.product_name.has_value()); // SKU not in the tenant's list
	EXPECT_EQ(shared.last_active_at.value_or(""), "2024-05-01T00:00:00Z");

	const model::UsageRecord &paul = Usage("f1f1f1f1-0006-4000-8000-000000000006");
	EXPECT_EQ(paul.account_external_id, kT2);
	EXPECT_EQ(paul.product_name.value_or(""), "O365_BUSINESS_PREMIUM");
	EXPECT_FALSE(paul.last_active_at.has_value());
}

TEST_F(MsGraphTest, SignInActivityForbiddenRetriesWithoutItAndWarns) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	ScriptTenant("organization_t1.json", "skus_t1.json");
	script->Get(kUsersSignIn, "forbidden_signin.json", 403);
	script->Get(kUsersPlain, "users_t2.json");
	Make(OneTenant())->Sync(SyncRequest{}, *client, sink);
	std::vector<std::string> expected = {"POST " + TokenUrl(kT1), "GET " + kOrg, "GET " + kSkus,
	                                     "GET " + kUsersSignIn, "GET " + kUsersPlain};
	EXPECT_EQ(script->Urls(), expected);
	ASSERT_EQ(sink.warnings.size(), 1u);
	EXPECT_NE(sink.warnings[0].find("msgraph tenant " + kT1 + ": sign-in activity is not readable (HTTP 403"),
	          std::string::npos)
	    << sink.warnings[0];
	EXPECT_NE(sink.warnings[0].find("AuditLog.Read.All"), std::string::npos);
	const model::UsageRecord &paul = Usage("f1f1f1f1-0006-4000-8000-000000000006");
	EXPECT_EQ(paul.account_external_id, kT1);
	EXPECT_FALSE(paul.last_active_at.has_value());
	std::vector<std::pair<std::string, size_t>> pages = {{"organization", 1}, {"licences", 3}, {"users", 1}};
	EXPECT_EQ(sink.pages, pages);
}

TEST_F(MsGraphTest, UsersForbiddenEvenWithoutSignInFails) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	ScriptTenant("organization_t1.json", "skus_t1.json");
	script->Get(kUsersSignIn, "forbidden_signin.json", 403);
	script->Get(kUsersPlain, "forbidden_users.json", 403);
	try {
		Make(OneTenant())->Sync(SyncRequest{}, *client, sink);
		ADD_FAILURE() << "no error";
	} catch (const http::HttpError &e) {
		EXPECT_EQ(e.status(), 403);
	}
	EXPECT_EQ(sink.warnings.size(), 1u);
}

TEST_F(MsGraphTest, ForbiddenOnALaterPageIsNotRetried) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	ScriptTenant("organization_t1.json", "skus_t1.json");
	script->Get(kUsersSignIn, "users_t1_page1.json");
	script->Get(kUsersPage2, "forbidden_signin.json", 403);
	EXPECT_THROW(Make(OneTenant())->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.warnings.empty());
	EXPECT_EQ(script->seen.size(), 5u);
}

TEST_F(MsGraphTest, QuickFallsBackToFullWithANote) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	SyncOutcome outcome = Make()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "msgraph has no modified-since filter for licences and users: quick sync ran as a full "
	                        "sync");
	EXPECT_EQ(sink.usage.size(), 10u);
}

TEST_F(MsGraphTest, OrganizationOfAnotherTenantWarns) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT2), Scripted{200, {}, Fixture("token_t2.json")});
	ScriptTenant("organization_other_tenant.json", "skus_empty.json");
	script->Get(kUsersSignIn, "users_empty.json");
	Make(R"({"customer_tenants": ["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"],
	         "token_url": "https://login.test/{tenant}/oauth2/v2.0/token"})")
	    ->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.warnings.size(), 1u);
	EXPECT_NE(sink.warnings[0].find("customer tenant " + kT2 + " answered with organization " + kT1),
	          std::string::npos)
	    << sink.warnings[0];
	ASSERT_EQ(sink.accounts.size(), 1u);
	EXPECT_EQ(sink.accounts[0].external_id, kT2); // the tenant asked for, as configured
}

TEST_F(MsGraphTest, EmptyOrganizationFails) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	script->Get(kOrg, "organization_empty.json");
	billrecon::Error e = CatchError([&] { Make(OneTenant())->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "missing field in vendor response");
	EXPECT_EQ(e.detail(), "GET /v1.0/organization tenant " + kT1 + " page 1: field \"value[0]\" is missing");
}

TEST_F(MsGraphTest, PayloadErrorsNameEndpointRecordAndField) {
	struct Case {
		const char *skus;
		const char *users;
		const char *sqlstate;
		std::string detail;
	};
	const Case cases[] = {
	    {"skus_bad_status.json", nullptr, "22P02",
	     "GET /v1.0/subscribedSkus record id " + kT1 +
	         ":cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46: field \"capabilityStatus\" should be one of Enabled, Warning, "
	         "Suspended, Deleted, LockedOut, found string \"Frozen\""},
	    {"skus_missing_consumed.json", nullptr, "22000",
	     "GET /v1.0/subscribedSkus record id " + kT1 +
	         ":cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46: field \"consumedUnits\" is missing"},
	    {"skus_consumed_string_word.json", nullptr, "22P02",
	     "GET /v1.0/subscribedSkus record id " + kT1 +
	         ":cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46: field \"consumedUnits\" should be a number, found string "
	         "\"many\""},
	    {"skus_empty.json", "users_bad_enabled.json", "22P02",
	     "GET /v1.0/users record id 77aa0000-0007-4000-8000-000000000007: field \"accountEnabled\" should be a "
	     "boolean, found string \"yes\""},
	    {"skus_empty.json", "users_missing_id.json", "22000",
	     "GET /v1.0/users tenant " + kT1 + " page 1 item 1: field \"id\" is missing"},
	    {"skus_empty.json", "users_bad_signin.json", "22P02",
	     "GET /v1.0/users record id 88bb0000-0008-4000-8000-000000000008: field "
	     "\"signInActivity.lastSignInDateTime\" should be an ISO 8601 timestamp, found string \"last Tuesday\""},
	    {"skus_empty.json", "users_no_value.json", "22000",
	     "GET /v1.0/users tenant " + kT1 + " page 1: field \"value\" is missing"},
	};
	for (const Case &c : cases) {
		SetUp();
		sink = CollectingSink(Side::kVendor);
		script->Get(kOrg, "organization_t1.json");
		script->Get(kSkus, c.skus);
		if (c.users)
			script->Get(kUsersSignIn, c.users);
		billrecon::Error e = CatchError([&] { Make(OneTenant())->Sync(SyncRequest{}, *client, sink); });
		EXPECT_EQ(e.sqlstate(), c.sqlstate) << c.detail;
		EXPECT_EQ(e.detail(), c.detail);
	}
}

TEST_F(MsGraphTest, NextLinkBackToAReadPageIsALoop) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	ScriptTenant("organization_t1.json", "skus_empty.json");
	script->Get(kUsersSignIn, "users_loop.json");
	billrecon::Error e = CatchError([&] { Make(OneTenant())->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_EQ(e.detail(), "GET /v1.0/users: tenant " + kT1 + " page 1 links back to \"" + kUsersSignIn +
	                          "\", which was already read");
	EXPECT_EQ(sink.usage.size(), 1u);
}

TEST_F(MsGraphTest, NextLinkToAnotherServerIsRefused) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{200, {}, Fixture("token_t1.json")});
	ScriptTenant("organization_t1.json", "skus_empty.json");
	script->Get(kUsersSignIn, "users_foreign_link.json");
	billrecon::Error e = CatchError([&] { Make(OneTenant())->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "unexpected pagination link in vendor response");
	EXPECT_NE(e.detail().find("graph.evil.example"), std::string::npos) << e.detail();
	EXPECT_EQ(script->seen.size(), 4u); // never followed
}

TEST_F(MsGraphTest, TokenRefusedFailsTheSync) {
	script->answers.clear();
	script->On("POST " + TokenUrl(kT1), Scripted{401, {}, R"({"error":"invalid_client"})"});
	EXPECT_THROW(Make(OneTenant())->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.accounts.empty());
}

TEST(MsGraphMapping, TokenUrlForReplacesEveryPlaceholder) {
	EXPECT_EQ(MsGraphConnector::TokenUrlFor(MsGraphConnector::kDefaultTokenUrl, "abc"),
	          "https://login.microsoftonline.com/abc/oauth2/v2.0/token");
	EXPECT_EQ(MsGraphConnector::TokenUrlFor("https://x.test/{tenant}/{tenant}", "t"), "https://x.test/t/t");
	EXPECT_EQ(MsGraphConnector::TokenUrlFor("https://x.test/token", "t"), "https://x.test/token");
}

TEST(MsGraphMapping, SkuStatusAndGuids) {
	EXPECT_EQ(MsGraphConnector::SkuEnabled("Enabled"), std::optional<bool>(true));
	EXPECT_EQ(MsGraphConnector::SkuEnabled("warning"), std::optional<bool>(true));
	EXPECT_EQ(MsGraphConnector::SkuEnabled("Suspended"), std::optional<bool>(false));
	EXPECT_EQ(MsGraphConnector::SkuEnabled("Deleted"), std::optional<bool>(false));
	EXPECT_EQ(MsGraphConnector::SkuEnabled("LockedOut"), std::optional<bool>(false));
	EXPECT_FALSE(MsGraphConnector::SkuEnabled("").has_value());
	EXPECT_TRUE(MsGraphConnector::IsGuid("3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f"));
	EXPECT_TRUE(MsGraphConnector::IsGuid("A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"));
	EXPECT_FALSE(MsGraphConnector::IsGuid("3f2b8c1e7d4a4e5b9c6d1a2b3c4d5e6f"));
	EXPECT_FALSE(MsGraphConnector::IsGuid("3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6g"));
	EXPECT_FALSE(MsGraphConnector::IsGuid("contoso.onmicrosoft.com"));
}

TEST(MsGraphConfig, WithoutCustomerTenantsTheSyncNeedsPartnerCenter) {
	// Valid to store: the tenants may come from a partnercenter integration
	// at sync time (the glue adds them to the options); without any, the
	// connector cannot start.
	EXPECT_NO_THROW(ValidateConfig(Config("{}"), false));
	http::Client client(http::ClientOptions{}, std::make_unique<ScriptedTransport>(std::make_shared<Script>("msgraph")),
	                    [] { return false; });
	IntegrationConfig c = Config("{}");
	try {
		CreateMsGraph(c, client);
		ADD_FAILURE() << "created without tenants";
	} catch (const billrecon::Error &e) {
		EXPECT_EQ(e.sqlstate(), "55000");
		EXPECT_NE(e.hint().find("partnercenter"), std::string::npos) << e.hint();
	}
}

TEST(MsGraphConfig, CustomerTenantsIsChecked) {
	EXPECT_NO_THROW(ValidateConfig(Config(), false));
	struct Case {
		const char *options;
		const char *message;
		const char *detail;
	};
	const Case cases[] = {
	    {R"({"customer_tenants": []})", "invalid option \"customer_tenants\" for msgraph integration",
	     "customer_tenants must be an array of 1 to 1000 distinct GUID strings, found array."},
	    {R"({"customer_tenants": "3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f"})", nullptr, "found string"},
	    {R"({"customer_tenants": ["contoso.onmicrosoft.com"]})", nullptr, "distinct GUID strings"},
	    {R"({"customer_tenants": [7]})", nullptr, "distinct GUID strings"},
	    {R"({"customer_tenants": ["3f2b8c1e-7d4a-4e5b-9c6d-1a2b3c4d5e6f", "3F2B8C1E-7D4A-4E5B-9C6D-1A2B3C4D5E6F"]})",
	     nullptr, "distinct GUID strings"},
	    {R"({"customer_tenants": null})", nullptr, "found null"},
	};
	for (const Case &k : cases) {
		try {
			ValidateConfig(Config(k.options), false);
			ADD_FAILURE() << "accepted " << k.options;
		} catch (const billrecon::Error &e) {
			EXPECT_EQ(e.sqlstate(), "22023") << k.options;
			if (k.message) {
				EXPECT_EQ(e.message(), k.message);
			}
			EXPECT_NE(e.detail().find(k.detail), std::string::npos) << k.options << ": " << e.detail();
			EXPECT_FALSE(e.hint().empty());
		}
	}
	IntegrationConfig missing_secret = Config();
	missing_secret.credentials_json = R"({"tenant_id": "t", "client_id": "c"})";
	EXPECT_THROW(ValidateConfig(missing_secret, false), billrecon::Error);
}
