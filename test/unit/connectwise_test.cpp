// ConnectWise connector driven through a real http::Client over a scripted
// transport: exact URLs (paging, quick-mode conditions), auth headers, every
// mapped field, loop detection, failures naming endpoint/record/field, and
// the quantity write-back.
#include "connectors/connectwise.hpp"
#include "connectors/connector_util.hpp"
#include "connectors/registry.hpp"
#include "http/auth.hpp"
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
	return ReadFixture("connectwise", name);
}

const std::string kBase = "https://cw.example.test/v4_6_release/apis/3.0";
// Active contacts, only the fields read ("inactiveFlag = false" URL-encoded).
const std::string kContactQuery =
    "&fields=id,company/id,inactiveFlag,communicationItems&conditions=inactiveFlag%20%3D%20false";
const std::string kContacts1 = kBase + "/company/contacts?page=1&pageSize=2" + kContactQuery;
const std::string kContacts2 = kBase + "/company/contacts?pageSize=2&page=2" + kContactQuery;
const std::string kContacts3 = kBase + "/company/contacts?pageSize=2&page=3" + kContactQuery;

class ConnectWiseTest : public ::testing::Test {
protected:
	void SetUp() override {
		script = std::make_shared<Script>("connectwise");
		client = ScriptedClient(script);
	}

	std::unique_ptr<Connector> Make(const std::string &options_json = R"({"page_size": 2})",
	                                const std::string &base = kBase + "/") {
		IntegrationConfig config;
		config.id = 1;
		config.name = "psa";
		config.kind = "connectwise";
		config.base_url = base;
		config.credentials_json =
		    R"({"company_id": "acme", "public_key": "pubKEY", "private_key": "privSECRET", "client_id": "5f2c-guid"})";
		config.options_json = options_json;
		const KindInfo *kind = FindKind("connectwise");
		EXPECT_NE(kind, nullptr);
		return kind->create(config, *client);
	}

	ConnectWiseConnector &Cw(Connector &c) {
		return dynamic_cast<ConnectWiseConnector &>(c);
	}

	// The full-sync script with page_size 2.
	void ScriptFull() {
		script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_page1.json",
		            {{"Link", "<" + kBase + "/company/companies?pageSize=2&page=2>; rel=\"next\", <" + kBase +
		                          "/company/companies?pageSize=2&page=2>; rel=\"last\""}});
		script->Get(kBase + "/company/companies?pageSize=2&page=2", "companies_page2.json",
		            {{"link", "<" + kBase + "/company/companies?pageSize=2&page=1>; rel=\"first\", <" + kBase +
		                          "/company/companies?pageSize=2&page=1>; rel=\"prev\""}});
		ScriptContacts();
		// A path-absolute Link target resolves against the server.
		script->Get(kBase + "/finance/agreements?page=1&pageSize=2", "agreements_page1.json",
		            {{"Link", "</v4_6_release/apis/3.0/finance/agreements?pageSize=2&page=2>; rel=\"next\""}});
		script->Get(kBase + "/finance/agreements?pageSize=2&page=2", "agreements_page2.json");
		script->Get(kBase + "/procurement/catalog?page=1&pageSize=2&fields=identifier,description",
		            "catalog_page1.json");
		script->Get(kBase + "/finance/agreements/4102/additions?page=1&pageSize=2", "additions_4102.json");
		script->Get(kBase + "/finance/agreements/4103/additions?page=1&pageSize=2", "additions_4103_page1.json",
		            {{"Link", "<" + kBase + "/finance/agreements/4103/additions?pageSize=2&page=2>; rel=\"next\""}});
		script->Get(kBase + "/finance/agreements/4103/additions?pageSize=2&page=2", "additions_4103_page2.json");
		for (const char *id : {"4104", "4105", "4106"})
			script->Get(kBase + "/finance/agreements/" + id + "/additions?page=1&pageSize=2", "additions_empty.json");
	}

	// Three pages of contacts (page_size 2).
	void ScriptContacts() {
		script->Get(kContacts1, "contacts_page1.json", {{"Link", "<" + kContacts2 + ">; rel=\"next\""}});
		script->Get(kContacts2, "contacts_page2.json", {{"Link", "<" + kContacts3 + ">; rel=\"next\""}});
		script->Get(kContacts3, "contacts_page3.json");
	}

	const model::Company &CompanyOf(const std::string &id) {
		for (const model::Company &c : sink.companies)
			if (c.external_id == id)
				return c;
		ADD_FAILURE() << "no company " << id;
		static const model::Company none;
		return none;
	}

	std::shared_ptr<Script> script;
	std::unique_ptr<http::Client> client;
	CollectingSink sink{Side::kPsa};
};

} // namespace

TEST_F(ConnectWiseTest, FullSyncRequestsEveryPageInOrder) {
	ScriptFull();
	auto connector = Make();
	SyncOutcome outcome = connector->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {
	    "GET " + kBase + "/company/companies?page=1&pageSize=2",
	    "GET " + kBase + "/company/companies?pageSize=2&page=2",
	    "GET " + kContacts1,
	    "GET " + kContacts2,
	    "GET " + kContacts3,
	    "GET " + kBase + "/finance/agreements?page=1&pageSize=2",
	    "GET " + kBase + "/finance/agreements?pageSize=2&page=2",
	    "GET " + kBase + "/procurement/catalog?page=1&pageSize=2&fields=identifier,description",
	    "GET " + kBase + "/finance/agreements/4102/additions?page=1&pageSize=2",
	    "GET " + kBase + "/finance/agreements/4103/additions?page=1&pageSize=2",
	    "GET " + kBase + "/finance/agreements/4104/additions?page=1&pageSize=2",
	    "GET " + kBase + "/finance/agreements/4105/additions?page=1&pageSize=2",
	    "GET " + kBase + "/finance/agreements/4106/additions?page=1&pageSize=2",
	    "GET " + kBase + "/finance/agreements/4103/additions?pageSize=2&page=2",
	};
	EXPECT_EQ(script->Urls(), expected);
	EXPECT_TRUE(sink.warnings.empty());
	std::vector<std::pair<std::string, size_t>> pages = {
	    {"companies", 2}, {"companies", 2}, {"contacts", 2}, {"contacts", 2}, {"contacts", 3},
	    {"agreements", 2}, {"agreements", 3}, {"catalog", 5},
	    {"additions", 2}, {"additions", 1}, {"additions", 0}, {"additions", 0}, {"additions", 0},
	    {"additions", 1}};
	EXPECT_EQ(sink.pages, pages);
	// One Put per non-empty page; companies once their contacts are read.
	std::vector<std::string> puts = {"companies 2", "companies 2", "agreements 2", "agreements 3",
	                                 "line items 2", "line items 1", "line items 1"};
	EXPECT_EQ(sink.puts, puts);
}

TEST_F(ConnectWiseTest, EveryRequestCarriesBasicAuthClientIdAndAccept) {
	ScriptFull();
	auto connector = Make();
	connector->Sync(SyncRequest{}, *client, sink);
	ASSERT_FALSE(script->seen.empty());
	const std::string basic = "Basic " + http::Base64Encode("acme+pubKEY:privSECRET");
	EXPECT_EQ(basic, "Basic YWNtZStwdWJLRVk6cHJpdlNFQ1JFVA==");
	for (const http::Request &r : script->seen) {
		EXPECT_EQ(HeaderOf(r, "Authorization").value_or(""), basic) << r.url;
		EXPECT_EQ(HeaderOf(r, "clientId").value_or(""), "5f2c-guid") << r.url;
		EXPECT_EQ(HeaderOf(r, "Accept").value_or(""), "application/vnd.connectwise.com+json; version=2022.1")
		    << r.url;
	}
}

TEST_F(ConnectWiseTest, CompaniesMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.companies.size(), 4u);
	const model::Company &c = sink.companies[0];
	EXPECT_EQ(c.external_id, "250");
	EXPECT_EQ(c.name, "Harbor Dental Group");
	EXPECT_EQ(c.identifier.value_or(""), "HarborDental");
	EXPECT_EQ(c.status.value_or(""), "Active");
	EXPECT_EQ(c.website.value_or(""), "https://www.harbordental.com/");
	// The website's domain first, then the contacts' (gmail.com dropped).
	EXPECT_EQ(c.domains, (std::vector<std::string>{"harbordental.com", "harbor-dental-billing.com"}));
	EXPECT_FALSE(c.deleted);
	EXPECT_EQ(c.source_updated_at.value_or(""), "2024-05-03T14:22:10Z");

	EXPECT_EQ(sink.companies[1].domains, (std::vector<std::string>{"northridgelaw.com", "nrl-legal.com"}));
	EXPECT_EQ(sink.companies[1].source_updated_at.value_or(""), "2024-04-01T08:00:00.123Z");

	// Nulls and absent optional fields; unknown fields ignored.
	const model::Company &old = sink.companies[2];
	EXPECT_EQ(old.external_id, "260");
	EXPECT_EQ(old.identifier.value_or(""), "OldCo");
	EXPECT_FALSE(old.status.has_value());
	EXPECT_FALSE(old.website.has_value());
	EXPECT_TRUE(old.domains.empty());
	EXPECT_TRUE(old.deleted);
	EXPECT_FALSE(old.source_updated_at.has_value());

	const model::Company &min = sink.companies[3];
	EXPECT_EQ(min.external_id, "261");
	EXPECT_EQ(min.name, "Minimal Inc");
	EXPECT_EQ(min.domains, std::vector<std::string>{"minimalinc.co.uk"}); // no website: contacts only
	EXPECT_FALSE(min.identifier.has_value());
	EXPECT_FALSE(min.deleted);
}

TEST_F(ConnectWiseTest, AgreementsMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.agreements.size(), 5u);
	const model::Agreement &a = sink.agreements[0];
	EXPECT_EQ(a.external_id, "4102");
	EXPECT_EQ(a.company_external_id, "250");
	EXPECT_EQ(a.name, "Harbor Dental - Managed Services");
	EXPECT_EQ(a.type.value_or(""), "Managed Services");
	EXPECT_EQ(a.billing_cycle, model::BillingCycle::kMonthly);
	EXPECT_EQ(a.billing_cycle_label.value_or(""), "Monthly");
	EXPECT_EQ(a.start_date.value_or(""), "2023-07-01");
	EXPECT_EQ(a.end_date.value_or(""), "2025-06-30");
	EXPECT_EQ(a.prorate, std::optional<bool>(true));
	EXPECT_EQ(a.status.value_or(""), "Active");
	EXPECT_FALSE(a.cancelled);
	EXPECT_FALSE(a.cancelled_date.has_value());
	EXPECT_EQ(a.source_updated_at.value_or(""), "2024-06-01T09:00:00Z");

	const model::Agreement &b = sink.agreements[1];
	EXPECT_EQ(b.billing_cycle, model::BillingCycle::kQuarterly);
	EXPECT_EQ(b.billing_cycle_label.value_or(""), "QUARTERLY");
	EXPECT_FALSE(b.end_date.has_value());
	EXPECT_EQ(b.prorate, std::optional<bool>(false));

	const model::Agreement &c = sink.agreements[2];
	EXPECT_EQ(c.external_id, "4104");
	EXPECT_EQ(c.company_external_id, "260");
	EXPECT_EQ(c.billing_cycle, model::BillingCycle::kAnnual);
	EXPECT_EQ(c.start_date.value_or(""), "2020-01-01");
	EXPECT_TRUE(c.cancelled);
	EXPECT_EQ(c.cancelled_date.value_or(""), "2023-12-31");
	EXPECT_EQ(c.status.value_or(""), "Cancelled");
	EXPECT_FALSE(c.type.has_value());

	const model::Agreement &d = sink.agreements[3];
	EXPECT_EQ(d.name, "");
	EXPECT_EQ(d.billing_cycle, model::BillingCycle::kOther);
	EXPECT_EQ(d.billing_cycle_label.value_or(""), "Bi-Monthly");
	EXPECT_FALSE(d.prorate.has_value());

	const model::Agreement &e = sink.agreements[4];
	EXPECT_EQ(e.billing_cycle, model::BillingCycle::kAnnual);
	EXPECT_FALSE(e.prorate.has_value());
	EXPECT_FALSE(e.status.has_value());
}

TEST_F(ConnectWiseTest, AdditionsMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.line_items.size(), 4u);
	const model::LineItem &a = sink.line_items[0];
	EXPECT_EQ(a.external_id, "77120");
	EXPECT_EQ(a.agreement_external_id, "4102");
	EXPECT_EQ(a.company_external_id, "250");
	EXPECT_EQ(a.product_code.value_or(""), "M365-BP");
	EXPECT_EQ(a.product_name.value_or(""), "Microsoft 365 Business Premium"); // from the catalog
	EXPECT_EQ(a.description.value_or(""), "Microsoft 365 Business Premium (annual commitment)");
	EXPECT_EQ(a.quantity.str(), "42");
	EXPECT_EQ(a.unit_price->str(), "22");
	EXPECT_EQ(a.unit_cost->str(), "18.7");
	EXPECT_EQ(a.billing_type.value_or(""), "Billable");
	EXPECT_EQ(a.effective_date.value_or(""), "2024-01-01");
	EXPECT_FALSE(a.cancel_date.has_value());
	EXPECT_EQ(a.source_updated_at.value_or(""), "2024-05-03T14:22:10Z");
	EXPECT_FALSE(a.parent_external_id.has_value());

	const model::LineItem &b = sink.line_items[1];
	EXPECT_EQ(b.product_name.value_or(""), "Managed Workstation");
	EXPECT_FALSE(b.description.has_value());
	EXPECT_EQ(b.quantity.str(), "35");
	EXPECT_EQ(b.unit_cost->str(), "0");
	EXPECT_EQ(b.cancel_date.value_or(""), "2024-06-30");

	// No agreementId in the record: the agreement whose additions were listed.
	const model::LineItem &c = sink.line_items[2];
	EXPECT_EQ(c.external_id, "77200");
	EXPECT_EQ(c.agreement_external_id, "4103");
	EXPECT_EQ(c.company_external_id, "251");
	EXPECT_EQ(c.product_code.value_or(""), "BACKUP-TB");
	EXPECT_EQ(c.product_name.value_or(""), "Cloud backup per TB"); // not in the catalog: the description
	EXPECT_EQ(c.quantity.str(), "2.5");                             // a numeric string
	EXPECT_EQ(c.unit_price->str(), "19.99");                        // exact, never a double
	EXPECT_FALSE(c.unit_cost.has_value());
	EXPECT_EQ(c.billing_type.value_or(""), "DoNotBill");

	const model::LineItem &d = sink.line_items[3];
	EXPECT_EQ(d.external_id, "77201");
	EXPECT_FALSE(d.product_code.has_value());
	EXPECT_EQ(d.product_name.value_or(""), "Onboarding credit");
	EXPECT_EQ(d.quantity.str(), "1");
	EXPECT_FALSE(d.unit_price.has_value());
	EXPECT_FALSE(d.effective_date.has_value());
	EXPECT_FALSE(d.source_updated_at.has_value());
}

TEST_F(ConnectWiseTest, AdditionsAreFetchedInBatchesThroughSendAll) {
	ScriptFull();
	auto connector = Make();
	ConnectWiseConnector::Settings s = Cw(*connector).settings();
	s.additions_batch = 2;
	ConnectWiseConnector small(s);
	small.Sync(SyncRequest{}, *client, sink);
	std::vector<std::string> urls = script->Urls();
	ASSERT_EQ(urls.size(), 14u);
	// 4102+4103 first; 4102 is done, so 4104 joins 4103's second page; ...
	EXPECT_EQ(urls[8], "GET " + kBase + "/finance/agreements/4102/additions?page=1&pageSize=2");
	EXPECT_EQ(urls[9], "GET " + kBase + "/finance/agreements/4103/additions?page=1&pageSize=2");
	EXPECT_EQ(urls[10], "GET " + kBase + "/finance/agreements/4103/additions?pageSize=2&page=2");
	EXPECT_EQ(urls[11], "GET " + kBase + "/finance/agreements/4104/additions?page=1&pageSize=2");
	EXPECT_EQ(urls[12], "GET " + kBase + "/finance/agreements/4105/additions?page=1&pageSize=2");
	EXPECT_EQ(urls[13], "GET " + kBase + "/finance/agreements/4106/additions?page=1&pageSize=2");
	EXPECT_EQ(sink.line_items.size(), 4u);
}

TEST_F(ConnectWiseTest, QuickModeUsesLastUpdatedConditions) {
	const std::string cond = "&conditions=lastUpdated%20%3E%20%5B2024-06-01T00%3A00%3A00Z%5D";
	script->Get(kBase + "/company/companies?page=1&pageSize=1000" + cond, "companies_empty.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=1000&fields=id,company", "agreement_ids.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=1000" + cond, "agreements_changed.json");
	script->On("GET " + kBase + "/procurement/catalog?page=1&pageSize=1000&fields=identifier,description",
	           Scripted{403, {}, R"({"code":"Forbidden","message":"Not authorized"})"});
	script->Get(kBase + "/finance/agreements/4102/additions?page=1&pageSize=1000" + cond, "additions_4102.json");
	script->Get(kBase + "/finance/agreements/4103/additions?page=1&pageSize=1000" + cond, "additions_empty.json");
	script->Get(kBase + "/finance/agreements/4104/additions?page=1&pageSize=1000" + cond, "additions_empty.json");

	auto connector = Make("{}");
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00.75Z";
	SyncOutcome outcome = connector->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kQuick);
	EXPECT_EQ(script->seen.size(), 7u);
	EXPECT_TRUE(sink.companies.empty());
	ASSERT_EQ(sink.agreements.size(), 1u); // only the changed one is stored
	EXPECT_EQ(sink.agreements[0].external_id, "4103");
	EXPECT_EQ(sink.agreements[0].billing_cycle, model::BillingCycle::kQuarterly);
	ASSERT_EQ(sink.line_items.size(), 2u);
	EXPECT_EQ(sink.line_items[0].company_external_id, "250"); // from the id list
	// No catalog: product names fall back to the addition's description.
	EXPECT_EQ(sink.line_items[0].product_name.value_or(""), "Microsoft 365 Business Premium (annual commitment)");
	EXPECT_FALSE(sink.line_items[1].product_name.has_value());
	ASSERT_EQ(sink.warnings.size(), 1u);
	EXPECT_NE(sink.warnings[0].find("HTTP 403"), std::string::npos);
	EXPECT_NE(sink.warnings[0].find("/procurement/catalog"), std::string::npos);
	std::vector<std::pair<std::string, size_t>> pages = {{"companies", 0}, {"agreement ids", 3}, {"agreements", 1},
	                                                     {"additions", 2}, {"additions", 0},     {"additions", 0}};
	EXPECT_EQ(sink.pages, pages);
}

TEST_F(ConnectWiseTest, QuickModeReadsEveryContactWhenACompanyChanged) {
	const std::string cond = "&conditions=lastUpdated%20%3E%20%5B2024-06-01T00%3A00%3A00Z%5D";
	script->Get(kBase + "/company/companies?page=1&pageSize=1000" + cond, "companies_page2.json");
	// No lastUpdated condition: the stored company must carry all its contacts' domains.
	script->Get(kBase + "/company/contacts?page=1&pageSize=1000" + kContactQuery, "contacts_page2.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=1000&fields=id,company", "companies_empty.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=1000" + cond, "companies_empty.json");
	script->Get(kBase + "/procurement/catalog?page=1&pageSize=1000&fields=identifier,description",
	            "companies_empty.json");
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	SyncOutcome outcome = Make("{}")->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kQuick);
	EXPECT_EQ(script->seen.size(), 5u);
	ASSERT_EQ(sink.companies.size(), 2u);
	EXPECT_TRUE(sink.companies[0].domains.empty());
	EXPECT_EQ(sink.companies[1].domains, std::vector<std::string>{"minimalinc.co.uk"});
	std::vector<std::pair<std::string, size_t>> pages = {{"companies", 2}, {"contacts", 2}, {"agreement ids", 0},
	                                                     {"agreements", 0}, {"catalog", 0}};
	EXPECT_EQ(sink.pages, pages);
}

TEST_F(ConnectWiseTest, ContactDomainsAreMergedDeduplicatedAndFiltered) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.companies.size(), 4u);
	// The website's domain once (a contact repeats it in another case), the
	// contact's own domain after it; gmail.com, a phone number and "call the
	// front desk" give nothing.
	EXPECT_EQ(CompanyOf("250").domains, (std::vector<std::string>{"harbordental.com", "harbor-dental-billing.com"}));
	// An inactive contact's domain is left out; "Name <address>" is read;
	// hotmail.co.uk (no communicationType) is free mail; a fax number is not mail.
	EXPECT_EQ(CompanyOf("251").domains, (std::vector<std::string>{"northridgelaw.com", "nrl-legal.com"}));
	// A contact with no communication items adds nothing.
	EXPECT_TRUE(CompanyOf("260").domains.empty());
	// "ops@@...", "root@localhost" and a list of addresses are not addresses.
	EXPECT_EQ(CompanyOf("261").domains, std::vector<std::string>{"minimalinc.co.uk"});
	// A contact without a company goes nowhere.
	for (const model::Company &c : sink.companies)
		for (const std::string &d : c.domains)
			EXPECT_NE(d, "walkin.example.org");
}

TEST_F(ConnectWiseTest, ContactPageFailureFailsTheSync) {
	ScriptFull();
	script->answers["GET " + kContacts2] = {Scripted{500, {}, R"({"code":"ConnectWiseApi","message":"boom"})"}};
	auto connector = Make();
	EXPECT_THROW(connector->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.companies.empty()) << "companies are stored only with their contacts' domains";
	EXPECT_TRUE(sink.agreements.empty());
	std::vector<std::string> urls = script->Urls();
	ASSERT_FALSE(urls.empty());
	EXPECT_EQ(urls.back(), "GET " + kContacts2);
}

TEST_F(ConnectWiseTest, ContactFieldOfWrongTypeNamesItsPath) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_page1.json");
	script->Get(kContacts1, "contacts_bad_value.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.detail(), "GET /company/contacts record id 3010: field \"communicationItems[0].value\" should be a "
	                      "string, found number 2075550100");
}

TEST_F(ConnectWiseTest, NoContactsAreReadWhenNoCompanyIsStored) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_empty.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=2", "companies_empty.json");
	script->Get(kBase + "/procurement/catalog?page=1&pageSize=2&fields=identifier,description",
	            "companies_empty.json");
	Make()->Sync(SyncRequest{}, *client, sink);
	for (const std::string &url : script->Urls())
		EXPECT_EQ(url.find("/company/contacts"), std::string::npos) << url;
}

TEST(ContactEmailDomain, AddressesAndFreeMail) {
	EXPECT_EQ(EmailDomain("jane@harbordental.com").value_or("-"), "harbordental.com");
	EXPECT_EQ(EmailDomain("  Jane.Doe@Harbor-Dental.CO.UK. ").value_or("-"), "harbor-dental.co.uk");
	EXPECT_EQ(EmailDomain("Jane Doe <jane@x-y.org>").value_or("-"), "x-y.org");
	EXPECT_EQ(EmailDomain("mailto:jane@sub.example.com").value_or("-"), "sub.example.com");
	EXPECT_EQ(EmailDomain("jane@xn--mller-kva.de").value_or("-"), "xn--mller-kva.de");
	EXPECT_EQ(EmailDomain("jane@shop.xn--p1ai").value_or("-"), "shop.xn--p1ai");
	for (const char *bad : {"", "jane", "@harbor.com", "jane@", "jane@@harbor.com", "jane@harbor", "jane@localhost",
	                        "jane@harbor.c", "jane@harbor.123", "jane@-harbor.com", "jane@harbor-.com",
	                        "jane@har_bor.com", "jane@harbor..com", "jane doe@harbor.com", "a@b.com; c@d.com",
	                        "a@b.com,c@d.com", "jane@.harbor.com", "Jane <jane@harbor.com"})
		EXPECT_FALSE(EmailDomain(bad).has_value()) << bad;
	EXPECT_FALSE(EmailDomain("jane@" + std::string(64, 'a') + ".com").has_value());

	for (const char *free : {"gmail.com", "googlemail.com", "outlook.com", "outlook.de", "hotmail.com",
	                         "hotmail.co.uk", "yahoo.com", "yahoo.com.au", "icloud.com", "aol.com", "gmx.de",
	                         "gmx.net", "web.de", "proton.me", "protonmail.com", "live.com", "msn.com",
	                         "comcast.net"})
		EXPECT_TRUE(IsFreeMailDomain(free)) << free;
	for (const char *own : {"harbordental.com", "outlook-consulting.com", "gmail.consulting", "mygmail.com",
	                        "web.com", "live.events", "yahoo.harbor.example.com"})
		EXPECT_FALSE(IsFreeMailDomain(own)) << own;
}

TEST_F(ConnectWiseTest, QuickWithoutSinceRunsFull) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	SyncOutcome outcome = Make()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_NE(outcome.note.find("full"), std::string::npos);
	EXPECT_EQ(script->seen.size(), 14u);
}

TEST_F(ConnectWiseTest, CatalogNotFoundIsAWarningButServerErrorsFail) {
	ScriptFull();
	script->answers["GET " + kBase + "/procurement/catalog?page=1&pageSize=2&fields=identifier,description"] = {
	    Scripted{404, {}, "{}"}};
	Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(sink.warnings.size(), 1u);
	EXPECT_EQ(sink.line_items[0].product_name.value_or(""), "Microsoft 365 Business Premium (annual commitment)");

	CollectingSink sink2{Side::kPsa};
	script->answers["GET " + kBase + "/procurement/catalog?page=1&pageSize=2&fields=identifier,description"] = {
	    Scripted{500, {}, "{}"}};
	EXPECT_THROW(Make()->Sync(SyncRequest{}, *client, sink2), http::HttpError);
}

TEST_F(ConnectWiseTest, PaginationLoopIsDetected) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_page1.json",
	            {{"Link", "<" + kBase + "/company/companies?pageSize=2&page=2>; rel=\"next\""}});
	script->Get(kBase + "/company/companies?pageSize=2&page=2", "companies_page2.json",
	            {{"Link", "<" + kBase + "/company/companies?page=1&pageSize=2>; rel=\"next\""}});
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_NE(e.detail().find("GET /company/companies: page 2 links back to"), std::string::npos) << e.detail();
	EXPECT_EQ(script->seen.size(), 2u);
	// Companies wait for their contacts' domains: a failed list stores none.
	EXPECT_TRUE(sink.companies.empty());
	EXPECT_EQ(sink.pages.size(), 2u); // both pages were read
}

TEST_F(ConnectWiseTest, SelfLinkIsALoopToo) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_page1.json",
	            {{"Link", "<" + kBase + "/company/companies?page=1&pageSize=2>; rel=\"next\""}});
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
}

TEST_F(ConnectWiseTest, LinkToAnotherServerIsRefused) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_page1.json",
	            {{"Link", "<https://evil.example.test/company/companies?page=2>; rel=\"next\""}});
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_NE(e.detail().find("not on https://cw.example.test"), std::string::npos) << e.detail();
	EXPECT_EQ(script->seen.size(), 1u);
}

TEST_F(ConnectWiseTest, WrongTypeNamesEndpointRecordAndField) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_name_number.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.message(), "unexpected value in vendor response");
	EXPECT_EQ(e.detail(), "GET /company/companies record id 250: field \"name\" should be a string, found number 12345");
	EXPECT_TRUE(sink.companies.empty());
}

TEST_F(ConnectWiseTest, MissingRequiredFieldsFail) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_missing_name.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.detail(), "GET /company/companies record id 250: field \"name\" is missing");
}

TEST_F(ConnectWiseTest, AgreementWithoutCompanyFails) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_empty.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=2", "agreements_missing_company.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.detail(), "GET /finance/agreements record id 4102: field \"company\" is missing");
}

TEST_F(ConnectWiseTest, AgreementCompanyIdOfWrongType) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_empty.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=2", "agreements_company_id_string.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.detail(), "GET /finance/agreements record id 4102: field \"company.id\" should be an integer or a "
	                      "non-empty string id, found boolean");
}

TEST_F(ConnectWiseTest, AdditionWithoutQuantityFails) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_empty.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=2", "agreement_ids.json");
	script->Get(kBase + "/procurement/catalog?page=1&pageSize=2&fields=identifier,description", "catalog_page1.json");
	script->Get(kBase + "/finance/agreements/4102/additions?page=1&pageSize=2", "additions_empty.json");
	script->Get(kBase + "/finance/agreements/4103/additions?page=1&pageSize=2", "additions_bad_quantity.json");
	script->Get(kBase + "/finance/agreements/4104/additions?page=1&pageSize=2", "additions_missing_quantity.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	// The batch is processed in order: 4103's bad quantity is met first.
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.detail(), "GET /finance/agreements/4103/additions record id 77301: field \"quantity\" should be a "
	                      "number, found string \"forty\"");
}

TEST_F(ConnectWiseTest, AdditionMissingQuantityNamesTheAgreementEndpoint) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_empty.json");
	script->Get(kBase + "/finance/agreements?page=1&pageSize=2", "agreement_ids.json");
	script->Get(kBase + "/procurement/catalog?page=1&pageSize=2&fields=identifier,description", "catalog_page1.json");
	script->Get(kBase + "/finance/agreements/4102/additions?page=1&pageSize=2", "additions_missing_quantity.json");
	script->Get(kBase + "/finance/agreements/4103/additions?page=1&pageSize=2", "additions_empty.json");
	script->Get(kBase + "/finance/agreements/4104/additions?page=1&pageSize=2", "additions_empty.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.detail(), "GET /finance/agreements/4102/additions record id 77300: field \"quantity\" is missing");
}

TEST_F(ConnectWiseTest, MalformedAndNonArrayBodies) {
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_truncated.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.message(), "malformed JSON in vendor response");
	EXPECT_NE(e.detail().find("GET /company/companies page 1: JSON parse error at offset"), std::string::npos);

	script->answers.clear();
	script->Get(kBase + "/company/companies?page=1&pageSize=2", "companies_not_array.json");
	billrecon::Error f = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(f.detail(), "GET /company/companies page 1: response should be an array, found object");
}

TEST_F(ConnectWiseTest, WriteBackPatchesTheQuantity) {
	script->On("PATCH " + kBase + "/finance/agreements/4102/additions/77120",
	           Scripted{200, {}, Fixture("patch_addition_response.json")});
	auto connector = Make();
	std::optional<model::Decimal> reported =
	    Cw(*connector).UpdateAdditionQuantity(*client, "4102", "77120", model::Decimal::Parse("40.0"));
	ASSERT_EQ(script->seen.size(), 1u);
	const http::Request &r = script->seen[0];
	EXPECT_EQ(r.method, http::Method::kPatch);
	EXPECT_EQ(r.body, R"([{"op":"replace","path":"quantity","value":40}])");
	EXPECT_EQ(HeaderOf(r, "Content-Type").value_or(""), "application/json");
	EXPECT_EQ(HeaderOf(r, "Accept").value_or(""), ConnectWiseConnector::kAccept);
	EXPECT_EQ(HeaderOf(r, "clientId").value_or(""), "5f2c-guid");
	EXPECT_NE(HeaderOf(r, "Authorization").value_or("").find("Basic "), std::string::npos);
	ASSERT_TRUE(reported.has_value());
	EXPECT_EQ(reported->str(), "40");
}

TEST_F(ConnectWiseTest, WriteBackFractionsEmptyAnswersAndBadIds) {
	script->On("PATCH " + kBase + "/finance/agreements/4102/additions/77121", Scripted{204, {}, ""});
	auto connector = Make();
	EXPECT_FALSE(Cw(*connector)
	                 .UpdateAdditionQuantity(*client, "4102", "77121", model::Decimal::Parse("-2.50"))
	                 .has_value());
	EXPECT_EQ(script->seen.at(0).body, R"([{"op":"replace","path":"quantity","value":-2.5}])");
	billrecon::Error e = CatchError(
	    [&] { Cw(*connector).UpdateAdditionQuantity(*client, "4102/../x", "1", model::Decimal::Parse("1")); });
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(script->seen.size(), 1u);
}

TEST(ConnectWiseMapping, BillingCycles) {
	using model::BillingCycle;
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle("Monthly"), BillingCycle::kMonthly);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle("monthly"), BillingCycle::kMonthly);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle("QUARTERLY"), BillingCycle::kQuarterly);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle("Annual"), BillingCycle::kAnnual);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle(" Annually "), BillingCycle::kAnnual);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle("Yearly"), BillingCycle::kAnnual);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle("Bi-Monthly"), BillingCycle::kOther);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle("Weekly"), BillingCycle::kOther);
	EXPECT_EQ(ConnectWiseConnector::MapBillingCycle(""), BillingCycle::kOther);
}

TEST(ConnectWiseMapping, LastUpdatedCondition) {
	EXPECT_EQ(ConnectWiseConnector::LastUpdatedCondition("2024-06-01T00:00:00Z"), "lastUpdated > [2024-06-01T00:00:00Z]");
	EXPECT_EQ(ConnectWiseConnector::LastUpdatedCondition("2024-06-01T02:30:15.999999+02:00"),
	          "lastUpdated > [2024-06-01T00:30:15Z]");
	EXPECT_THROW(ConnectWiseConnector::LastUpdatedCondition("last week"), billrecon::Error);
}

// ---- PsaWriter: dated quantity changes ------------------------------------------

namespace {

const std::string kAddition = kBase + "/finance/agreements/4102/additions/77120";
const std::string kAdditions = kBase + "/finance/agreements/4102/additions";
// The successor search: additions of the same product on the agreement.
const std::string kSameProduct = kAdditions + "?page=1&pageSize=2&conditions=product%2Fid%20%3D%20913";

std::string AdditionJson(const std::string &effective, const std::string &cancelled,
                         const std::string &quantity = "42.0") {
	return R"({"id":77120,"product":{"id":913,"identifier":"M365-BP","_info":{"product_href":"x"}},"quantity":)" +
	       quantity + R"(,"lessIncluded":0.0,"unitPrice":22.0,"unitCost":18.70,"billCustomer":"Billable",)" +
	       R"("effectiveDate":)" + effective + R"(,"cancelledDate":)" + cancelled +
	       R"(,"taxableFlag":false,"description":"Microsoft 365 \"BP\"","agreementId":4102,"uom":"Each",)" +
	       R"("_info":{"lastUpdated":"2024-05-03T14:22:10Z"}})";
}

QuantityChange CwChange(const char *next, const char *date = "2024-07-01") {
	QuantityChange c;
	c.agreement_external_id = "4102";
	c.line_item_external_id = "77120";
	c.current_quantity = model::Decimal::Parse("42");
	c.new_quantity = model::Decimal::Parse(next);
	c.effective_date = date;
	return c;
}

} // namespace

TEST_F(ConnectWiseTest, IsAPsaWriter) {
	auto connector = Make();
	EXPECT_EQ(connector->writer(), static_cast<PsaWriter *>(&Cw(*connector)));
}

TEST_F(ConnectWiseTest, DatedChangeCancelsTheOldAdditionAndAddsANewOne) {
	script->On("GET " + kAddition, Scripted{200, {}, AdditionJson(R"("2024-01-01T00:00:00Z")", "null")});
	script->On("GET " + kSameProduct, Scripted{200, {}, "[" + AdditionJson(R"("2024-01-01T00:00:00Z")", "null") + "]"});
	script->On("PATCH " + kAddition,
	           Scripted{200, {}, AdditionJson(R"("2024-01-01T00:00:00Z")", R"("2024-06-30T00:00:00Z")")});
	script->On("POST " + kAdditions, Scripted{201, {}, R"({"id":77555,"quantity":40.0,"agreementId":4102})"});
	auto connector = Make();
	QuantityChangeResult r = connector->writer()->UpdateQuantity(*client, CwChange("40"));
	std::vector<std::string> expected = {"GET " + kAddition, "GET " + kSameProduct, "PATCH " + kAddition,
	                                     "POST " + kAdditions};
	EXPECT_EQ(script->Urls(), expected);
	EXPECT_EQ(script->seen[2].body, R"([{"op":"replace","path":"cancelledDate","value":"2024-06-30T00:00:00Z"}])");
	EXPECT_EQ(script->seen[3].body,
	          R"({"product":{"id":913},"quantity":40,"unitPrice":22.0,"unitCost":18.70,"billCustomer":"Billable",)"
	          R"("description":"Microsoft 365 \"BP\"","effectiveDate":"2024-07-01T00:00:00Z"})");
	for (size_t i = 2; i < 4; ++i) {
		EXPECT_EQ(HeaderOf(script->seen[i], "Content-Type").value_or(""), "application/json");
		EXPECT_EQ(HeaderOf(script->seen[i], "clientId").value_or(""), "5f2c-guid");
	}
	EXPECT_EQ(r.reference, "77555");
	EXPECT_EQ(r.quantity_after.str(), "40");
	EXPECT_EQ(r.note, "ConnectWise: addition 77120 cancelled on 2024-06-30; addition 77555 added with quantity 40 "
	                  "from 2024-07-01");
}

TEST_F(ConnectWiseTest, ALaterCancelledDateMovesToTheNewAddition) {
	script->On("GET " + kAddition,
	           Scripted{200, {}, AdditionJson(R"("2024-01-01T00:00:00Z")", R"("2024-12-31T00:00:00Z")")});
	script->On("GET " + kSameProduct, Scripted{200, {}, "[]"});
	script->On("PATCH " + kAddition, Scripted{200, {}, "{}"});
	script->On("POST " + kAdditions, Scripted{201, {}, R"({"id":77556,"quantity":40})"});
	Make()->writer()->UpdateQuantity(*client, CwChange("40"));
	ASSERT_EQ(script->seen.size(), 4u);
	EXPECT_NE(
	    script->seen[3].body.find(R"("effectiveDate":"2024-07-01T00:00:00Z","cancelledDate":"2024-12-31T00:00:00Z"})"),
	    std::string::npos)
	    << script->seen[3].body;
}

TEST_F(ConnectWiseTest, ChangeOnOrBeforeTheAdditionsStartIsInPlace) {
	script->On("GET " + kAddition, Scripted{200, {}, AdditionJson(R"("2024-07-01T00:00:00Z")", "null")});
	script->On("PATCH " + kAddition, Scripted{200, {}, AdditionJson(R"("2024-07-01T00:00:00Z")", "null", "40")});
	QuantityChangeResult r = Make()->writer()->UpdateQuantity(*client, CwChange("40", "2024-06-01"));
	std::vector<std::string> expected = {"GET " + kAddition, "PATCH " + kAddition};
	EXPECT_EQ(script->Urls(), expected);
	EXPECT_EQ(script->seen[1].body, R"([{"op":"replace","path":"quantity","value":40}])");
	EXPECT_EQ(r.reference, "77120");
	EXPECT_EQ(r.quantity_after.str(), "40");
	EXPECT_NE(r.note.find("changed in place from 42 to 40"), std::string::npos) << r.note;
}

TEST_F(ConnectWiseTest, RetryAfterTheCancelOnlyAddsTheNewAddition) {
	// An earlier attempt patched cancelledDate, then failed before the POST.
	script->On("GET " + kAddition,
	           Scripted{200, {}, AdditionJson(R"("2024-01-01T00:00:00Z")", R"("2024-06-30T00:00:00Z")")});
	script->On("GET " + kSameProduct, Scripted{200, {}, "[]"});
	script->On("POST " + kAdditions, Scripted{201, {}, R"({"id":77557,"quantity":40})"});
	auto connector = Make();
	EXPECT_EQ(connector->writer()->ReadQuantity(*client, CwChange("40")).str(), "0"); // not billed on the date
	script->seen.clear();
	QuantityChangeResult r = connector->writer()->UpdateQuantity(*client, CwChange("40"));
	std::vector<std::string> expected = {"GET " + kAddition, "GET " + kSameProduct, "POST " + kAdditions};
	EXPECT_EQ(script->Urls(), expected);
	EXPECT_EQ(r.reference, "77557");
}

TEST_F(ConnectWiseTest, RetryReusesTheSuccessorInsteadOfAddingAnother) {
	script->On("GET " + kAddition,
	           Scripted{200, {}, AdditionJson(R"("2024-01-01T00:00:00Z")", R"("2024-06-30T00:00:00Z")")});
	// The old addition, an unrelated one of the same product, and the successor.
	script->On(
	    "GET " + kSameProduct,
	    Scripted{
	        200,
	        {},
	        "[" + AdditionJson(R"("2024-01-01T00:00:00Z")", R"("2024-06-30T00:00:00Z")") +
	            R"(,{"id":77400,"product":{"id":913},"quantity":5,"effectiveDate":"2024-07-01T00:00:00Z","cancelledDate":"2024-06-15T00:00:00Z"})"
	            R"(,{"id":77555,"product":{"id":913},"quantity":35,"effectiveDate":"2024-07-01T00:00:00Z","cancelledDate":null}])"});
	script->On("PATCH " + kAdditions + "/77555", Scripted{200, {}, R"({"id":77555,"quantity":40})"});
	auto connector = Make();
	EXPECT_EQ(connector->writer()->ReadQuantity(*client, CwChange("40")).str(), "35");
	script->seen.clear();
	QuantityChangeResult r = connector->writer()->UpdateQuantity(*client, CwChange("40"));
	std::vector<std::string> expected = {"GET " + kAddition, "GET " + kSameProduct, "PATCH " + kAdditions + "/77555"};
	EXPECT_EQ(script->Urls(), expected);
	EXPECT_EQ(script->seen[2].body, R"([{"op":"replace","path":"quantity","value":40}])");
	EXPECT_EQ(r.reference, "77555");
	EXPECT_EQ(r.quantity_after.str(), "40");
}

TEST_F(ConnectWiseTest, ReadQuantityOfAnActiveAdditionAndNoOpUpdates) {
	script->On("GET " + kAddition, Scripted{200, {}, AdditionJson(R"("2024-01-01T00:00:00Z")", "null", "40")});
	auto connector = Make();
	EXPECT_EQ(connector->writer()->ReadQuantity(*client, CwChange("40")).str(), "40");
	QuantityChangeResult r = connector->writer()->UpdateQuantity(*client, CwChange("40.00"));
	EXPECT_EQ(script->seen.size(), 2u); // two GETs, nothing written
	EXPECT_EQ(r.reference, "77120");
	EXPECT_NE(r.note.find("already has quantity 40"), std::string::npos) << r.note;
}

TEST_F(ConnectWiseTest, WriterRefusals) {
	script->On("GET " + kAddition,
	           Scripted{200, {}, AdditionJson(R"("2024-01-01T00:00:00Z")", R"("2024-03-31T00:00:00Z")")});
	auto connector = Make();
	billrecon::Error e = CatchError([&] { connector->writer()->UpdateQuantity(*client, CwChange("40")); });
	EXPECT_EQ(e.sqlstate(), "55000");
	EXPECT_EQ(e.message(), "ConnectWise addition is cancelled before the effective date");
	EXPECT_EQ(script->seen.size(), 1u);

	billrecon::Error d = CatchError([&] { connector->writer()->UpdateQuantity(*client, CwChange("40", "2024-7-1")); });
	EXPECT_EQ(d.sqlstate(), "22023");
	EXPECT_EQ(d.message(), "invalid effective date");
	QuantityChange bad = CwChange("40");
	bad.agreement_external_id = "4102/../1";
	EXPECT_EQ(CatchError([&] { connector->writer()->ReadQuantity(*client, bad); }).sqlstate(), "22023");
	EXPECT_EQ(script->seen.size(), 1u);

	script->answers.clear();
	script->On("GET " + kAddition,
	           Scripted{200, {}, R"({"id":77120,"quantity":42,"effectiveDate":"2024-01-01T00:00:00Z"})"});
	billrecon::Error p = CatchError([&] { connector->writer()->UpdateQuantity(*client, CwChange("40")); });
	EXPECT_EQ(p.detail(), "GET /finance/agreements/4102/additions/77120 record id 77120: field \"product\" is missing");
}

TEST_F(ConnectWiseTest, TheDayBeforeCrossesMonthsAndLeapDays) {
	for (const auto &[date, before] : std::vector<std::pair<std::string, std::string>>{
	         {"2024-03-01", "2024-02-29"}, {"2023-03-01", "2023-02-28"}, {"2025-01-01", "2024-12-31"}}) {
		script->answers.clear();
		script->seen.clear();
		script->On("GET " + kAddition, Scripted{200, {}, AdditionJson(R"("2020-01-01T00:00:00Z")", "null")});
		script->On("GET " + kSameProduct, Scripted{200, {}, "[]"});
		script->On("PATCH " + kAddition, Scripted{200, {}, "{}"});
		script->On("POST " + kAdditions, Scripted{201, {}, R"({"id":1})"});
		Make()->writer()->UpdateQuantity(*client, CwChange("40", date.c_str()));
		ASSERT_EQ(script->seen.size(), 4u) << date;
		EXPECT_EQ(script->seen[2].body,
		          R"([{"op":"replace","path":"cancelledDate","value":")" + before + R"(T00:00:00Z"}])");
		EXPECT_NE(script->seen[3].body.find(R"("effectiveDate":")" + date + R"(T00:00:00Z")"), std::string::npos);
	}
}
