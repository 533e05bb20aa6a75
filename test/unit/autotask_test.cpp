// Autotask connector driven through a real http::Client over a scripted
// transport: exact query bodies and nextPageUrl paging, the three auth
// headers, zone discovery, picklist labels, units per period, every mapped
// field, paging guards, the request budget, and the service-adjustment
// write-back.
#include "connectors/autotask.hpp"
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
	return ReadFixture("autotask", name);
}

const std::string kBase = "https://at.example.test/ATServicesRest";
const std::string kAll = R"({"MaxRecords":2,"filter":[{"op":"gte","field":"id","value":0}]})";
const std::string kUnitsJune15 =
    R"({"MaxRecords":2,"filter":[{"op":"and","items":[{"op":"lte","field":"startDate","value":"2024-06-16T00:00:00"},)"
    R"({"op":"gte","field":"endDate","value":"2024-06-14T00:00:00"}]}]})";
const std::string kFields = "GET " + kBase + "/V1.0/Contracts/entityInformation/fields";
const std::string kCompanies = "POST " + kBase + "/V1.0/Companies/query";
const std::string kCompaniesPage2 =
    "GET " + kBase +
    "/V1.0/Companies/query?paging=%7B%22pageSize%22%3A2%2C%22previousIds%22%3A%5B%5D%2C%22nextIds%22%3A%5B176%5D%7D"
    "&search=%7B%22filter%22%3A%5B%5D%7D";
const std::string kServices = "POST " + kBase + "/V1.0/Services/query";
const std::string kContracts = "POST " + kBase + "/V1.0/Contracts/query";
const std::string kUnits = "POST " + kBase + "/V1.0/ContractServiceUnits/query";
const std::string kUnitsPage2 =
    "GET " + kBase + "/V1.0/ContractServiceUnits/query?paging=%7B%22pageSize%22%3A2%7D&search=s";
const std::string kContractServices = "POST " + kBase + "/V1.0/ContractServices/query";
const std::string kContacts = "POST " + kBase + "/V1.0/Contacts/query";
const std::string kContactsPage2 =
    "GET " + kBase + "/V1.0/Contacts/query?paging=%7B%22pageSize%22%3A2%2C%22nextIds%22%3A%5B30682002%5D%7D&search=c";
const std::string kContactsPage3 =
    "GET " + kBase + "/V1.0/Contacts/query?paging=%7B%22pageSize%22%3A2%2C%22nextIds%22%3A%5B30682004%5D%7D&search=c";
const std::string kContactsQuery =
    R"({"MaxRecords":2,"IncludeFields":["id","companyID","isActive","emailAddress","emailAddress2","emailAddress3"],)"
    R"("filter":[{"op":"gte","field":"id","value":0}]})";

class AutotaskTest : public ::testing::Test {
protected:
	void SetUp() override {
		script = std::make_shared<Script>("autotask");
		client = ScriptedClient(script);
	}

	// Through the registry: installs the header auth on the client.
	std::unique_ptr<Connector> Make(const std::string &options_json = R"({"page_size": 2})",
	                                const std::string &base = kBase) {
		IntegrationConfig config;
		config.id = 4;
		config.name = "autotask";
		config.kind = "autotask";
		config.base_url = base;
		config.credentials_json =
		    R"({"integration_code": "TRACK-CODE-9", "username": "api@msp.example", "secret": "at-SECRET"})";
		config.options_json = options_json;
		const KindInfo *kind = FindKind("autotask");
		EXPECT_NE(kind, nullptr);
		return kind->create(config, *client);
	}

	// A connector with a fixed as-of date (2024-06-15), auth installed.
	std::unique_ptr<AutotaskConnector> MakeDated(long page_size = 2, const std::string &base = kBase) {
		Make(R"({"page_size": 2})", base);
		AutotaskConnector::Settings s;
		s.base_url = base;
		s.username = "api@msp.example";
		s.page_size = page_size;
		s.as_of_date = "2024-06-15";
		return std::make_unique<AutotaskConnector>(s);
	}

	void ScriptFull() {
		script->Answer(kFields, "contract_fields.json");
		script->Answer(kCompanies, "companies_page1.json");
		script->Answer(kCompaniesPage2, "companies_page2.json");
		script->Answer(kContacts, "contacts_page1.json");
		script->Answer(kContactsPage2, "contacts_page2.json");
		script->Answer(kContactsPage3, "contacts_page3.json");
		script->Answer(kServices, "services.json");
		script->Answer(kContracts, "contracts.json");
		script->Answer(kUnits, "units_page1.json");
		script->Answer(kUnitsPage2, "units_page2.json");
		script->Answer(kContractServices, "contract_services.json");
	}

	// Everything empty but `url`, answered with `fixture`.
	void ScriptOnly(const std::string &url, const std::string &fixture) {
		for (const std::string &u : {kCompanies, kContacts, kServices, kContracts, kUnits, kContractServices})
			script->Answer(u, u == url ? fixture : "empty.json");
		script->Answer(kFields, "contract_fields.json");
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

QuantityChange Change(const char *current, const char *next, const char *date = "2024-07-01") {
	QuantityChange c;
	c.agreement_external_id = "29684420";
	c.line_item_external_id = "119";
	c.current_quantity = model::Decimal::Parse(current);
	c.new_quantity = model::Decimal::Parse(next);
	c.effective_date = date;
	return c;
}

} // namespace

TEST_F(AutotaskTest, FullSyncQueriesEveryEntityAndFollowsNextPageUrl) {
	ScriptFull();
	SyncOutcome outcome = MakeDated()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {kFields,    kCompanies, kCompaniesPage2, kContacts,        kContactsPage2,
	                                     kContactsPage3, kServices, kContracts, kUnits, kUnitsPage2, kContractServices};
	EXPECT_EQ(script->Urls(), expected);
	EXPECT_EQ(script->BodyOf(kCompanies), kAll);
	EXPECT_EQ(script->BodyOf(kContacts), kContactsQuery);
	EXPECT_EQ(script->BodyOf(kContactsPage2), "");
	EXPECT_EQ(script->BodyOf(kServices), kAll);
	EXPECT_EQ(script->BodyOf(kContracts), kAll);
	EXPECT_EQ(script->BodyOf(kUnits), kUnitsJune15);
	EXPECT_EQ(script->BodyOf(kContractServices), kAll);
	EXPECT_EQ(script->BodyOf(kCompaniesPage2), ""); // next pages are plain GETs
	std::vector<std::pair<std::string, size_t>> pages = {{"companies", 2},
	                                                     {"companies", 1},
	                                                     {"contacts", 2},
	                                                     {"contacts", 2},
	                                                     {"contacts", 2},
	                                                     {"services", 3},
	                                                     {"contracts", 3},
	                                                     {"contract service units", 2},
	                                                     {"contract service units", 2},
	                                                     {"contract services", 4}};
	EXPECT_EQ(sink.pages, pages);
	std::vector<std::string> puts = {"companies 2", "companies 1", "agreements 3", "line items 3"};
	EXPECT_EQ(sink.puts, puts);
}

TEST_F(AutotaskTest, EveryCallCarriesTheThreeHeaders) {
	ScriptFull();
	MakeDated()->Sync(SyncRequest{}, *client, sink);
	for (const http::Request &r : script->seen) {
		EXPECT_EQ(HeaderOf(r, "ApiIntegrationCode").value_or(""), "TRACK-CODE-9") << r.url;
		EXPECT_EQ(HeaderOf(r, "UserName").value_or(""), "api@msp.example") << r.url;
		EXPECT_EQ(HeaderOf(r, "Secret").value_or(""), "at-SECRET") << r.url;
		EXPECT_FALSE(HeaderOf(r, "Authorization").has_value());
		if (r.method == http::Method::kPost) {
			EXPECT_EQ(HeaderOf(r, "Content-Type").value_or(""), "application/json");
		}
	}
	// Secrets are redacted from messages; the user name is not a secret.
	EXPECT_EQ(client->Redact("x at-SECRET TRACK-CODE-9 api@msp.example"), "x [redacted] [redacted] api@msp.example");
}

TEST_F(AutotaskTest, CompaniesMapEveryField) {
	ScriptFull();
	MakeDated()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.companies.size(), 3u);
	const model::Company &a = sink.companies[0];
	EXPECT_EQ(a.external_id, "174");
	EXPECT_EQ(a.name, "Harbor Dental");
	EXPECT_EQ(a.identifier.value_or(""), "HD-001");
	EXPECT_EQ(a.status.value_or(""), "Active");
	EXPECT_EQ(a.website.value_or(""), "www.harbordental.com");
	EXPECT_EQ(a.domains, (std::vector<std::string>{"harbordental.com", "harbordental-billing.com"}));
	EXPECT_EQ(a.source_updated_at.value_or(""), "2024-05-03T14:22:10.123Z"); // zone-less: UTC
	EXPECT_FALSE(a.deleted);

	const model::Company &b = sink.companies[1]; // nulls, empty number, unknown field
	EXPECT_EQ(b.status.value_or(""), "Inactive");
	EXPECT_FALSE(b.identifier.has_value());
	EXPECT_FALSE(b.website.has_value());
	EXPECT_EQ(b.domains, std::vector<std::string>{"northridge-law.co.uk"}); // contacts only
	EXPECT_FALSE(b.source_updated_at.has_value());

	const model::Company &c = sink.companies[2]; // string id, nothing optional
	EXPECT_EQ(c.external_id, "176");
	EXPECT_EQ(c.name, "Minimal Inc");
	EXPECT_FALSE(c.status.has_value());
}

TEST_F(AutotaskTest, ContractsMapWithPicklistLabels) {
	ScriptFull();
	MakeDated()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.agreements.size(), 3u);
	const model::Agreement &a = sink.agreements[0];
	EXPECT_EQ(a.external_id, "29684420");
	EXPECT_EQ(a.company_external_id, "174");
	EXPECT_EQ(a.name, "Harbor Dental - Managed Services");
	EXPECT_EQ(a.type.value_or(""), "Recurring Service");
	EXPECT_EQ(a.billing_cycle, model::BillingCycle::kMonthly);
	EXPECT_EQ(a.billing_cycle_label.value_or(""), "Monthly");
	EXPECT_EQ(a.start_date.value_or(""), "2024-01-01");
	EXPECT_EQ(a.end_date.value_or(""), "2024-12-31");
	EXPECT_EQ(a.status.value_or(""), "Active");
	EXPECT_FALSE(a.cancelled);
	EXPECT_FALSE(a.prorate.has_value());
	EXPECT_FALSE(a.source_updated_at.has_value());

	const model::Agreement &b = sink.agreements[1];
	EXPECT_EQ(b.billing_cycle, model::BillingCycle::kAnnual);
	EXPECT_EQ(b.billing_cycle_label.value_or(""), "Yearly");
	EXPECT_EQ(b.status.value_or(""), "Inactive");
	EXPECT_TRUE(b.cancelled);
	EXPECT_EQ(b.source_updated_at.value_or(""), "2024-01-05T08:00:00Z");

	const model::Agreement &c = sink.agreements[2]; // codes the picklists do not know, null period type
	EXPECT_EQ(c.external_id, "29684422");
	EXPECT_EQ(c.company_external_id, "176");
	EXPECT_EQ(c.name, "");
	EXPECT_EQ(c.type.value_or(""), "contract type 99");
	EXPECT_EQ(c.billing_cycle, model::BillingCycle::kUnknown);
	EXPECT_FALSE(c.billing_cycle_label.has_value());
	EXPECT_EQ(c.status.value_or(""), "status 5");
	EXPECT_FALSE(c.cancelled);
}

TEST_F(AutotaskTest, ContractServicesTakeUnitsOfThePeriodCoveringTheDate) {
	ScriptFull();
	MakeDated()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.line_items.size(), 3u);
	const model::LineItem &a = sink.line_items[0];
	EXPECT_EQ(a.external_id, "118");
	EXPECT_EQ(a.agreement_external_id, "29684420");
	EXPECT_EQ(a.company_external_id, "174");
	EXPECT_EQ(a.product_code.value_or(""), "31");
	EXPECT_EQ(a.product_name.value_or(""), "Managed Workstation"); // from Services
	EXPECT_EQ(a.description.value_or(""), "Managed workstations");
	EXPECT_EQ(a.quantity.str(), "25"); // June row, not July's 30
	EXPECT_EQ(a.quantity_source.value_or(""), "contract service units 2024-06-01 to 2024-06-30");
	EXPECT_EQ(a.unit_price->str(), "65");
	EXPECT_EQ(a.unit_cost->str(), "0");
	EXPECT_FALSE(a.billing_type.has_value());
	EXPECT_FALSE(a.parent_external_id.has_value());

	const model::LineItem &b = sink.line_items[1];
	EXPECT_EQ(b.product_name.value_or(""), "Microsoft 365 Business Premium");
	EXPECT_EQ(b.description.value_or(""), "M365 BP seats"); // empty invoiceDescription: internal one
	EXPECT_EQ(b.quantity.str(), "40");                      // June row, not May's 38
	EXPECT_EQ(b.unit_cost->str(), "18.7");

	const model::LineItem &c = sink.line_items[2]; // no service, no units row, negative price
	EXPECT_EQ(c.external_id, "120");
	EXPECT_EQ(c.company_external_id, "175");
	EXPECT_FALSE(c.product_code.has_value());
	EXPECT_EQ(c.product_name.value_or(""), "Legacy backup credit");
	EXPECT_EQ(c.quantity.str(), "0");
	EXPECT_EQ(c.quantity_source.value_or(""), "no contract service units on 2024-06-15");
	EXPECT_EQ(c.unit_price->str(), "-15");
	EXPECT_FALSE(c.unit_cost.has_value());

	// 121's contract was not listed: skipped, with a warning.
	ASSERT_EQ(sink.warnings.size(), 1u);
	EXPECT_NE(sink.warnings[0].find("1 contract service(s) skipped (first: id 121)"), std::string::npos)
	    << sink.warnings[0];
}

TEST_F(AutotaskTest, UnreadablePicklistsAreAWarning) {
	ScriptFull();
	script->answers[kFields] = {Scripted{403, {}, R"({"errors":["forbidden"]})"}};
	MakeDated()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.warnings.size(), 2u);
	EXPECT_NE(sink.warnings[0].find("HTTP 403"), std::string::npos);
	const model::Agreement &a = sink.agreements[0];
	EXPECT_EQ(a.type.value_or(""), "contract type 7");
	EXPECT_EQ(a.billing_cycle, model::BillingCycle::kOther);
	EXPECT_EQ(a.billing_cycle_label.value_or(""), "period type 1");
	EXPECT_EQ(a.status.value_or(""), "Active"); // 1 without a picklist
	EXPECT_TRUE(sink.agreements[1].cancelled);  // 0 without a picklist

	CollectingSink odd{Side::kPsa};
	script->answers[kFields] = {Scripted{200, {}, R"({"fields": "none"})"}};
	MakeDated()->Sync(SyncRequest{}, *client, odd);
	ASSERT_FALSE(odd.warnings.empty());
	EXPECT_NE(odd.warnings[0].find("field \"fields\" should be an array"), std::string::npos) << odd.warnings[0];

	CollectingSink failing{Side::kPsa};
	script->answers[kFields] = {Scripted{500, {}, "{}"}};
	EXPECT_THROW(MakeDated()->Sync(SyncRequest{}, *client, failing), http::HttpError);
}

TEST_F(AutotaskTest, QuickFiltersCompaniesOnly) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T02:30:15.75+02:00";
	SyncOutcome outcome = MakeDated()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kQuick);
	EXPECT_NE(outcome.note.find("only Companies are filtered"), std::string::npos) << outcome.note;
	// Companies changed, so every contact is read: no modification filter on Contacts.
	EXPECT_EQ(script->BodyOf(kContacts), kContactsQuery);
	EXPECT_EQ(sink.companies.size(), 3u);
	EXPECT_EQ(sink.companies[0].domains, (std::vector<std::string>{"harbordental.com", "harbordental-billing.com"}));
	EXPECT_EQ(
	    script->BodyOf(kCompanies),
	    R"({"MaxRecords":2,"filter":[{"op":"gt","field":"lastTrackedModifiedDateTime","value":"2024-06-01T00:30:15Z"}]})");
	EXPECT_EQ(script->BodyOf(kContracts), kAll);
	EXPECT_EQ(script->BodyOf(kServices), kAll);
	EXPECT_EQ(script->BodyOf(kContractServices), kAll);

	CollectingSink again{Side::kPsa};
	SyncRequest no_since;
	no_since.mode = SyncMode::kQuick;
	SyncOutcome full = MakeDated()->Sync(no_since, *client, again);
	EXPECT_EQ(full.effective_mode, SyncMode::kFull);
	EXPECT_NE(full.note.find("full"), std::string::npos);
}

TEST_F(AutotaskTest, ContactDomainsAreMergedDeduplicatedAndFiltered) {
	ScriptFull();
	MakeDated()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.companies.size(), 3u);
	// The website's domain once (a contact repeats it in another case), then
	// the contacts'; outlook.com is free mail, "" and "not-an-address" give nothing.
	EXPECT_EQ(CompanyOf("174").domains, (std::vector<std::string>{"harbordental.com", "harbordental-billing.com"}));
	// An inactive contact (isActive 0) is skipped; gmx.de is free mail;
	// emailAddress2 and emailAddress3 count, once.
	EXPECT_EQ(CompanyOf("175").domains, std::vector<std::string>{"northridge-law.co.uk"});
	// isActive true is read like 1; string ids match.
	EXPECT_EQ(CompanyOf("176").domains, std::vector<std::string>{"minimal-inc.com"});
	for (const model::Company &c : sink.companies)
		for (const std::string &d : c.domains)
			EXPECT_NE(d, "noclient.example.org");
}

TEST_F(AutotaskTest, ContactPageFailureFailsTheSync) {
	ScriptFull();
	script->answers[kContactsPage3] = {Scripted{500, {}, R"({"errors":["boom"]})"}};
	EXPECT_THROW(MakeDated()->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.companies.empty()) << "companies are stored only with their contacts' domains";
	EXPECT_EQ(script->Urls().back(), kContactsPage3);
}

TEST_F(AutotaskTest, ContactWithOddIsActiveNamesTheRecord) {
	ScriptOnly(kCompanies, "companies_page2.json");
	script->answers[kContacts] = {};
	script->Answer(kContacts, "contacts_active_string.json");
	billrecon::Error e = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.detail(), "POST /V1.0/Contacts/query record id 30682009: field \"isActive\" should be 1, 0 or a "
	                      "boolean, found string \"yes\"");
}

TEST_F(AutotaskTest, NoContactsAreReadWhenNoCompanyChanged) {
	ScriptOnly(kServices, "services.json");
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	MakeDated()->Sync(request, *client, sink);
	for (const std::string &url : script->Urls())
		EXPECT_EQ(url.find("/Contacts/"), std::string::npos) << url;
	EXPECT_TRUE(sink.companies.empty());
}

TEST_F(AutotaskTest, ZoneDiscoveryOnTheGenericHost) {
	const std::string generic = "https://webservices.autotask.net/ATServicesRest";
	const std::string zone = "https://webservices5.autotask.net/ATServicesRest";
	script->Answer("GET " + generic + "/V1.0/zoneInformation?user=api%40msp.example", "zone.json");
	script->Answer("GET " + zone + "/V1.0/Contracts/entityInformation/fields", "contract_fields.json");
	for (const char *entity : {"Companies", "Services", "Contracts", "ContractServiceUnits", "ContractServices"})
		script->Answer("POST " + zone + "/V1.0/" + entity + "/query", "empty.json");
	auto connector = MakeDated(2, generic);
	connector->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(script->Urls().at(0), "GET " + generic + "/V1.0/zoneInformation?user=api%40msp.example");
	EXPECT_EQ(script->seen.size(), 7u);
	// zoneInformation is asked without credentials.
	EXPECT_FALSE(HeaderOf(script->seen[0], "Secret").has_value());
	EXPECT_FALSE(HeaderOf(script->seen[0], "ApiIntegrationCode").has_value());
	EXPECT_EQ(HeaderOf(script->seen[1], "Secret").value_or(""), "at-SECRET");
	EXPECT_EQ(connector->ResolveBase(*client), zone); // cached: no second lookup
	EXPECT_EQ(script->seen.size(), 7u);
}

TEST_F(AutotaskTest, ZoneLookupOptionAndUntrustedZones) {
	auto made = Make(R"({"zone_lookup": 1})");
	auto &at = dynamic_cast<AutotaskConnector &>(*made);
	EXPECT_TRUE(at.settings().zone_lookup);
	script->Answer("GET " + kBase + "/V1.0/zoneInformation?user=api%40msp.example", "zone_evil.json");
	billrecon::Error e = CatchError([&] { at.ResolveBase(*client); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "unexpected zone URL from Autotask");
	EXPECT_NE(e.detail().find("https://evil.example.test/ATServicesRest/"), std::string::npos) << e.detail();

	auto plain = Make("{}");
	EXPECT_EQ(dynamic_cast<AutotaskConnector &>(*plain).ResolveBase(*client), kBase);
	EXPECT_EQ(script->seen.size(), 1u); // no lookup without the option
}

TEST_F(AutotaskTest, FactoryReadsOptions) {
	auto made = Make(R"({"page_size": 100, "requests_per_hour": 2500})");
	const AutotaskConnector::Settings &s = dynamic_cast<AutotaskConnector &>(*made).settings();
	EXPECT_EQ(s.page_size, 100);
	EXPECT_EQ(s.requests_per_hour, 2500);
	EXPECT_FALSE(s.zone_lookup);
	EXPECT_EQ(s.username, "api@msp.example");
	auto defaults = Make("{}");
	EXPECT_EQ(dynamic_cast<AutotaskConnector &>(*defaults).settings().page_size, 500);
	EXPECT_EQ(dynamic_cast<AutotaskConnector &>(*defaults).settings().requests_per_hour, 10000);

	const KindInfo *kind = FindKind("autotask");
	ASSERT_NE(kind, nullptr);
	EXPECT_EQ(kind->side, Side::kPsa);
	EXPECT_TRUE(kind->supports_quick);
	EXPECT_NEAR(kind->default_requests_per_second, 10000.0 / 3600.0, 1e-9);
	IntegrationConfig bad;
	bad.kind = "autotask";
	bad.base_url = kBase;
	bad.credentials_json = R"({"integration_code": "c", "username": "u", "secret": "s"})";
	bad.options_json = R"({"page_size": 501})";
	EXPECT_THROW(ValidateConfig(bad, false), billrecon::Error);
	bad.options_json = R"({"zone_lookup": true})";
	EXPECT_THROW(ValidateConfig(bad, false), billrecon::Error);
	bad.options_json = R"({"requests_per_hour": 20000})";
	EXPECT_THROW(ValidateConfig(bad, false), billrecon::Error);
}

TEST_F(AutotaskTest, NextPageUrlToAnotherHostIsRefused) {
	ScriptOnly(kCompanies, "companies_evil_next.json");
	billrecon::Error e = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "unexpected pagination link in vendor response");
	EXPECT_NE(e.detail().find("POST /V1.0/Companies/query page 1: pageDetails.nextPageUrl is"), std::string::npos)
	    << e.detail();
	EXPECT_TRUE(sink.companies.empty()); // companies wait for their contacts' domains
	EXPECT_EQ(sink.pages.size(), 1u);    // the page before was read
	EXPECT_EQ(script->seen.size(), 2u);
}

TEST_F(AutotaskTest, RepeatedNextPageUrlIsALoop) {
	ScriptOnly(kCompanies, "companies_loop_next.json");
	script->Answer("GET " + kBase + "/V1.0/Companies/query?paging=same", "companies_loop_next.json");
	billrecon::Error e = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_NE(e.detail().find("POST /V1.0/Companies/query: page 2 links back to"), std::string::npos) << e.detail();
	EXPECT_EQ(script->seen.size(), 3u);
}

TEST_F(AutotaskTest, WrongTypesAndMissingFieldsFail) {
	ScriptOnly(kCompanies, "companies_missing_name.json");
	billrecon::Error e = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.detail(), "POST /V1.0/Companies/query record id 174: field \"companyName\" is missing");

	script->answers.clear();
	ScriptOnly(kCompanies, "companies_active_string.json");
	billrecon::Error f = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(f.sqlstate(), "22P02");
	EXPECT_EQ(f.detail(), "POST /V1.0/Companies/query record id 174: field \"isActive\" should be a boolean, found "
	                      "string \"yes\"");

	script->answers.clear();
	ScriptOnly(kCompanies, "companies_no_items.json");
	billrecon::Error g = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(g.detail(), "POST /V1.0/Companies/query page 1: field \"items\" is missing");

	script->answers.clear();
	ScriptOnly(kContracts, "contracts_company_bool.json");
	billrecon::Error h = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(h.detail(), "POST /V1.0/Contracts/query record id 29684420: field \"companyID\" should be an integer or "
	                      "a non-empty string id, found boolean");

	script->answers.clear();
	ScriptOnly(kUnits, "units_missing_units.json");
	billrecon::Error i = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(i.detail(), "POST /V1.0/ContractServiceUnits/query record id 9001: field \"units\" is missing");

	script->answers.clear();
	ScriptOnly(kServices, "companies_no_items.json");
	script->answers[kServices] = {Scripted{200, {}, "<html>proxy</html>"}};
	billrecon::Error j = CatchError([&] { MakeDated()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(j.message(), "malformed JSON in vendor response");
	EXPECT_NE(j.detail().find("POST /V1.0/Services/query page 1"), std::string::npos);
}

TEST_F(AutotaskTest, RequestBudgetIsAHardCap) {
	ScriptFull();
	Make();
	AutotaskConnector::Settings s;
	s.base_url = kBase;
	s.page_size = 2;
	s.as_of_date = "2024-06-15";
	s.requests_per_hour = 3;
	AutotaskConnector connector(s);
	billrecon::Error e = CatchError([&] { connector.Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "54000");
	EXPECT_EQ(e.message(), "autotask request budget exhausted");
	EXPECT_EQ(e.detail(), "This run has sent 3 requests; requests_per_hour is 3. Next request: contacts page 1.");
	EXPECT_EQ(script->seen.size(), 3u);
}

// ---- write-back ------------------------------------------------------------------

const std::string kUnitsFor119 =
    R"({"MaxRecords":500,"filter":[{"op":"and","items":[{"op":"eq","field":"contractServiceID","value":119},)"
    R"({"op":"lte","field":"startDate","value":"2024-07-02T00:00:00"},)"
    R"({"op":"gte","field":"endDate","value":"2024-06-30T00:00:00"}]}]})";
const std::string kService119 = "GET " + kBase + "/V1.0/ContractServices/119";
const std::string kAdjustments = "POST " + kBase + "/V1.0/ContractServiceAdjustments";

TEST_F(AutotaskTest, ReadQuantityIsTheUnitsOnTheEffectiveDate) {
	script->Answer(kUnits, "units_119_43.json");
	auto connector = Make("{}");
	ASSERT_NE(connector->writer(), nullptr);
	EXPECT_EQ(connector->writer()->ReadQuantity(*client, Change("40", "40")).str(), "43"); // July, not June's 41
	EXPECT_EQ(script->BodyOf(kUnits), kUnitsFor119);
	EXPECT_EQ(connector->writer()->ReadQuantity(*client, Change("40", "40", "2024-06-30")).str(), "41");
}

TEST_F(AutotaskTest, UpdatePostsASignedAdjustment) {
	script->Answer(kService119, "contract_service_119.json");
	script->Answer(kUnits, "units_119_43.json");
	script->Answer(kUnits, "units_119_40.json");
	script->On(kAdjustments, Scripted{200, {}, Fixture("adjustment_created.json")});
	auto connector = Make("{}");
	QuantityChangeResult r = connector->writer()->UpdateQuantity(*client, Change("40", "40"));
	std::vector<std::string> expected = {kService119, kUnits, kAdjustments, kUnits};
	EXPECT_EQ(script->Urls(), expected);
	EXPECT_EQ(script->BodyOf(kAdjustments),
	          R"({"contractID":29684420,"contractServiceID":119,"serviceID":44,)"
	          R"("effectiveDate":"2024-07-01T00:00:00","unitChange":-3,"adjustedUnitPrice":22})");
	const http::Request &post = script->seen[2];
	EXPECT_EQ(HeaderOf(post, "Content-Type").value_or(""), "application/json");
	EXPECT_EQ(HeaderOf(post, "Secret").value_or(""), "at-SECRET");
	EXPECT_EQ(r.reference, "ContractServiceAdjustment 5501");
	EXPECT_EQ(r.quantity_after.str(), "40");
	EXPECT_NE(r.note.find("adjusted by -3 units from 2024-07-01"), std::string::npos) << r.note;
	EXPECT_NE(r.note.find("units on that date were 43, billrecon had 40"), std::string::npos) << r.note;
}

TEST_F(AutotaskTest, UpdateUpwardsWithoutServiceOrPriceOnTheService) {
	script->Answer(kService119, "contract_service_119_no_service.json");
	script->Answer(kUnits, "units_119_40.json");
	script->Answer(kUnits, "units_119_43.json");
	script->On(kAdjustments, Scripted{200, {}, ""});
	QuantityChangeResult r = Make("{}")->writer()->UpdateQuantity(*client, Change("40", "43"));
	// serviceID from the units row; no adjustedUnitPrice without a unit price.
	EXPECT_EQ(script->BodyOf(kAdjustments), R"({"contractID":29684420,"contractServiceID":119,"serviceID":44,)"
	                                        R"("effectiveDate":"2024-07-01T00:00:00","unitChange":3})");
	EXPECT_EQ(r.reference, "");
	EXPECT_EQ(r.quantity_after.str(), "43");
}

TEST_F(AutotaskTest, UpdateToTheCurrentUnitsSendsNothing) {
	script->Answer(kService119, "contract_service_119.json");
	script->Answer(kUnits, "units_119_43.json");
	QuantityChangeResult r = Make("{}")->writer()->UpdateQuantity(*client, Change("40", "43"));
	EXPECT_EQ(script->seen.size(), 2u); // a retry after a lost answer does not adjust twice
	EXPECT_EQ(r.quantity_after.str(), "43");
	EXPECT_NE(r.note.find("already has 43 units on 2024-07-01"), std::string::npos) << r.note;
}

TEST_F(AutotaskTest, UpdateRefusals) {
	auto connector = Make("{}");
	billrecon::Error frac = CatchError([&] { connector->writer()->UpdateQuantity(*client, Change("40", "40.5")); });
	EXPECT_EQ(frac.sqlstate(), "22023");
	EXPECT_EQ(frac.message(), "invalid quantity for Autotask");
	billrecon::Error date =
	    CatchError([&] { connector->writer()->UpdateQuantity(*client, Change("40", "41", "2024-02-30")); });
	EXPECT_EQ(date.sqlstate(), "22023");
	EXPECT_EQ(date.message(), "invalid effective date");
	QuantityChange bad = Change("40", "41");
	bad.line_item_external_id = "119 OR 1=1";
	EXPECT_EQ(CatchError([&] { connector->writer()->ReadQuantity(*client, bad); }).sqlstate(), "22023");
	EXPECT_TRUE(script->seen.empty());

	script->Answer(kService119, "contract_service_null.json");
	billrecon::Error gone = CatchError([&] { connector->writer()->UpdateQuantity(*client, Change("40", "41")); });
	EXPECT_EQ(gone.sqlstate(), "55000");
	EXPECT_EQ(gone.message(), "Autotask contract service not found");

	script->answers.clear();
	script->Answer(kService119, "contract_service_119.json");
	QuantityChange other = Change("40", "41");
	other.agreement_external_id = "1";
	billrecon::Error moved = CatchError([&] { connector->writer()->UpdateQuantity(*client, other); });
	EXPECT_EQ(moved.message(), "Autotask contract service belongs to another contract");

	script->answers.clear();
	script->Answer(kService119, "contract_service_119.json");
	script->Answer(kUnits, "empty.json");
	billrecon::Error none = CatchError([&] { connector->writer()->UpdateQuantity(*client, Change("40", "41")); });
	EXPECT_EQ(none.sqlstate(), "55000");
	EXPECT_EQ(none.message(), "no Autotask unit period covers the effective date");
	EXPECT_EQ(none.detail(), "Contract service 119 of contract 29684420 has no ContractServiceUnits row whose period "
	                         "contains 2024-07-01.");

	// Reading first (push_changes' retry check) tells a deleted service from a missing period.
	script->answers.clear();
	script->Answer(kUnits, "empty.json");
	script->Answer(kService119, "contract_service_null.json");
	billrecon::Error deleted = CatchError([&] { connector->writer()->ReadQuantity(*client, Change("40", "41")); });
	EXPECT_EQ(deleted.message(), "Autotask contract service not found");
	script->answers.clear();
	script->Answer(kUnits, "empty.json");
	script->Answer(kService119, "contract_service_119.json");
	billrecon::Error period = CatchError([&] { connector->writer()->ReadQuantity(*client, Change("40", "41")); });
	EXPECT_EQ(period.message(), "no Autotask unit period covers the effective date");
}

TEST(AutotaskMapping, PeriodLabelsAndQueryBody) {
	using model::BillingCycle;
	EXPECT_EQ(AutotaskConnector::MapPeriodLabel("Monthly"), BillingCycle::kMonthly);
	EXPECT_EQ(AutotaskConnector::MapPeriodLabel(" quarterly "), BillingCycle::kQuarterly);
	EXPECT_EQ(AutotaskConnector::MapPeriodLabel("Yearly"), BillingCycle::kAnnual);
	EXPECT_EQ(AutotaskConnector::MapPeriodLabel("Annual"), BillingCycle::kAnnual);
	EXPECT_EQ(AutotaskConnector::MapPeriodLabel("Semi-Annual"), BillingCycle::kOther);
	EXPECT_EQ(AutotaskConnector::QueryBody(500, "[]"), R"({"MaxRecords":500,"filter":[]})");
}
