// HaloPSA connector driven through a real http::Client over a scripted
// transport: the OAuth2 token request, exact paged URLs, every mapped field,
// nulls / absent / unknown / wrong-typed fields, paging guards, and the
// whole-invoice write-back.
#include "connectors/halopsa.hpp"
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
	return ReadFixture("halopsa", name);
}

const std::string kBase = "https://acme.halopsa.example.test";
const std::string kClients = kBase + "/api/Client?pageinate=true&page_size=2&page_no=";
const std::string kClientsTail = "&includeinactive=true";
const std::string kInvoices = kBase + "/api/RecurringInvoice?pageinate=true&page_size=2&page_no=";
const std::string kInvoicesTail = "&includelines=true&includeinactive=true";
const std::string kUsers = kBase + "/api/Users?pageinate=true&page_size=2&page_no=";

class HaloPsaTest : public ::testing::Test {
protected:
	void SetUp() override {
		script = std::make_shared<Script>("halopsa");
		client = ScriptedClient(script);
	}

	std::unique_ptr<Connector>
	Make(const std::string &options_json = R"({"page_size": 2})",
	     const std::string &credentials = R"({"client_id": "halo-client", "client_secret": "halo-SECRET"})") {
		IntegrationConfig config;
		config.id = 3;
		config.name = "halo";
		config.kind = "halopsa";
		config.base_url = kBase;
		config.credentials_json = credentials;
		config.options_json = options_json;
		const KindInfo *kind = FindKind("halopsa");
		EXPECT_NE(kind, nullptr);
		return kind->create(config, *client);
	}

	void ScriptToken(const std::string &url = kBase + "/auth/token") {
		script->On("POST " + url, Scripted{200, {}, Fixture("token.json")});
	}

	void ScriptFull() {
		ScriptToken();
		script->Get(kClients + "1" + kClientsTail, "clients_page1.json");
		script->Get(kClients + "2" + kClientsTail, "clients_page2.json");
		script->Get(kUsers + "1", "users_page1.json");
		script->Get(kUsers + "2", "users_page2.json");
		script->Get(kUsers + "3", "users_page3.json");
		script->Get(kInvoices + "1" + kInvoicesTail, "invoices_page1.json");
		script->Get(kInvoices + "2" + kInvoicesTail, "invoices_page2.json");
	}

	// Only clients (then an empty invoice list): for field checks on clients.
	void ScriptClients(const std::string &fixture) {
		ScriptToken();
		script->Get(kClients + "1" + kClientsTail, fixture);
		script->Get(kUsers + "1", "users_empty.json");
		script->Get(kInvoices + "1" + kInvoicesTail, "invoices_empty.json");
	}

	void ScriptInvoices(const std::string &fixture) {
		ScriptToken();
		script->Get(kClients + "1" + kClientsTail, "clients_empty.json");
		script->Get(kInvoices + "1" + kInvoicesTail, fixture);
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

QuantityChange Change(const std::string &invoice, const std::string &line, const char *current, const char *next) {
	QuantityChange c;
	c.agreement_external_id = invoice;
	c.line_item_external_id = line;
	c.current_quantity = model::Decimal::Parse(current);
	c.new_quantity = model::Decimal::Parse(next);
	c.effective_date = "2024-07-01";
	return c;
}

} // namespace

TEST_F(HaloPsaTest, FullSyncRequestsTokenThenEveryPage) {
	ScriptFull();
	SyncOutcome outcome = Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {
	    "POST " + kBase + "/auth/token",          "GET " + kClients + "1" + kClientsTail,
	    "GET " + kClients + "2" + kClientsTail,   "GET " + kUsers + "1",
	    "GET " + kUsers + "2",                    "GET " + kUsers + "3",
	    "GET " + kInvoices + "1" + kInvoicesTail, "GET " + kInvoices + "2" + kInvoicesTail,
	};
	EXPECT_EQ(script->Urls(), expected);
	std::vector<std::pair<std::string, size_t>> pages = {
	    {"clients", 2}, {"clients", 1}, {"users", 2}, {"users", 2}, {"users", 3}, {"recurring invoices", 2},
	    {"recurring invoices", 1}};
	EXPECT_EQ(sink.pages, pages);
	std::vector<std::string> puts = {"companies 2",  "companies 1",  "agreements 2",
	                                 "line items 3", "agreements 1", "line items 1"};
	EXPECT_EQ(sink.puts, puts);
	EXPECT_TRUE(sink.warnings.empty());
}

TEST_F(HaloPsaTest, TokenRequestAndBearerOnEveryCall) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(script->seen.size(), 8u);
	const http::Request &token = script->seen[0];
	EXPECT_EQ(token.method, http::Method::kPost);
	EXPECT_EQ(token.body, "client_id=halo-client&client_secret=halo-SECRET&scope=all&grant_type=client_credentials");
	EXPECT_NE(HeaderOf(token, "Content-Type").value_or("").find("application/x-www-form-urlencoded"),
	          std::string::npos);
	EXPECT_FALSE(HeaderOf(token, "Authorization").has_value());
	for (size_t i = 1; i < script->seen.size(); ++i) {
		EXPECT_EQ(HeaderOf(script->seen[i], "Authorization").value_or(""), "Bearer halo-access-token-1");
		EXPECT_EQ(HeaderOf(script->seen[i], "Accept").value_or(""), "application/json");
	}
}

TEST_F(HaloPsaTest, TenantGoesOnTheTokenUrl) {
	ScriptToken(kBase + "/auth/token?tenant=acme%20co");
	script->Get(kClients + "1" + kClientsTail, "clients_empty.json");
	script->Get(kInvoices + "1" + kInvoicesTail, "invoices_empty.json");
	Make(R"({"page_size": 2})", R"({"client_id": "c", "client_secret": "s", "tenant": "acme co"})")
	    ->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(script->Urls().at(0), "POST " + kBase + "/auth/token?tenant=acme%20co");
	EXPECT_EQ(script->seen.size(), 3u);
}

TEST_F(HaloPsaTest, TokenUrlOptionWithTenantPlaceholder) {
	ScriptToken("https://auth.example.test/acme/token");
	script->Get(kClients + "1" + kClientsTail, "clients_empty.json");
	script->Get(kInvoices + "1" + kInvoicesTail, "invoices_empty.json");
	Make(R"({"page_size": 2, "token_url": "https://auth.example.test/{tenant}/token"})",
	     R"({"client_id": "c", "client_secret": "s", "tenant": "acme"})")
	    ->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(script->Urls().at(0), "POST https://auth.example.test/acme/token");

	billrecon::Error e = CatchError([&] {
		Make(R"({"token_url": "https://auth.example.test/{tenant}/token"})",
		     R"({"client_id": "c", "client_secret": "s"})");
	});
	EXPECT_EQ(e.sqlstate(), "22023");
	EXPECT_EQ(e.message(), "missing credential \"tenant\" for halopsa integration");
}

TEST(HaloPsaMapping, TokenUrl) {
	EXPECT_EQ(HaloPsaConnector::TokenUrl("https://h.example/", std::nullopt, ""), "https://h.example/auth/token");
	EXPECT_EQ(HaloPsaConnector::TokenUrl("https://h.example", std::nullopt, "t&x"),
	          "https://h.example/auth/token?tenant=t%26x");
	EXPECT_EQ(HaloPsaConnector::TokenUrl("https://h.example", std::string("https://a.example/token"), "t"),
	          "https://a.example/token?tenant=t");
	EXPECT_EQ(HaloPsaConnector::TokenUrl("https://h.example", std::string("https://a.example/{tenant}/{tenant}"), "t"),
	          "https://a.example/t/t");
}

TEST(HaloPsaMapping, Periods) {
	EXPECT_EQ(HaloPsaConnector::MapPeriod(2), model::BillingCycle::kMonthly);
	EXPECT_EQ(HaloPsaConnector::PeriodLabel(2), "Monthly");
	EXPECT_EQ(HaloPsaConnector::MapPeriod(4), model::BillingCycle::kOther);
	EXPECT_EQ(HaloPsaConnector::PeriodLabel(4), "period code 4");
	EXPECT_EQ(HaloPsaConnector::MapPeriod(0), model::BillingCycle::kOther);
}

TEST_F(HaloPsaTest, ClientsMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.companies.size(), 3u);
	const model::Company &a = sink.companies[0];
	EXPECT_EQ(a.external_id, "420");
	EXPECT_EQ(a.name, "Harbor Dental");
	EXPECT_EQ(a.status.value_or(""), "Active");
	EXPECT_EQ(a.website.value_or(""), "https://www.HarborDental.com/contact");
	// Website and domain agree: once; then the users' domains.
	EXPECT_EQ(a.domains, (std::vector<std::string>{"harbordental.com", "harbordental-mail.com"}));
	EXPECT_FALSE(a.identifier.has_value());
	EXPECT_FALSE(a.deleted);
	EXPECT_FALSE(a.source_updated_at.has_value());

	const model::Company &b = sink.companies[1]; // website null, unknown nested field
	EXPECT_EQ(b.external_id, "421");
	EXPECT_EQ(b.status.value_or(""), "Inactive");
	EXPECT_FALSE(b.deleted); // inactive is not deleted
	EXPECT_FALSE(b.website.has_value());
	EXPECT_EQ(b.domains, std::vector<std::string>{"northridgelaw.co.uk"});

	const model::Company &c = sink.companies[2]; // string id, empty website, junk domain
	EXPECT_EQ(c.external_id, "12");
	EXPECT_EQ(c.name, "Minimal Ltd");
	EXPECT_FALSE(c.status.has_value());
	EXPECT_FALSE(c.website.has_value());
	EXPECT_EQ(c.domains, std::vector<std::string>{"minimal-ltd.co.uk"}); // only a user's address
}

TEST_F(HaloPsaTest, RecurringInvoicesMapToAgreements) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.agreements.size(), 3u);
	const model::Agreement &a = sink.agreements[0];
	EXPECT_EQ(a.external_id, "-101"); // negative ids are ids
	EXPECT_EQ(a.company_external_id, "420");
	EXPECT_EQ(a.name, "Monthly Managed Services");
	EXPECT_EQ(a.billing_cycle, model::BillingCycle::kMonthly);
	EXPECT_EQ(a.billing_cycle_label.value_or(""), "Monthly");
	EXPECT_EQ(a.start_date.value_or(""), "2024-03-01");
	EXPECT_EQ(a.end_date.value_or(""), "2099-12-31");
	EXPECT_FALSE(a.cancelled);
	EXPECT_EQ(a.status.value_or(""), "Active");
	EXPECT_FALSE(a.prorate.has_value());
	EXPECT_FALSE(a.type.has_value());
	EXPECT_EQ(a.source_updated_at.value_or(""), "2025-03-20T18:50:25.057Z"); // zone-less: taken as UTC

	const model::Agreement &b = sink.agreements[1]; // schedule null, disabled, unknown period code
	EXPECT_EQ(b.external_id, "-102");
	EXPECT_EQ(b.billing_cycle, model::BillingCycle::kOther);
	EXPECT_EQ(b.billing_cycle_label.value_or(""), "period code 4");
	EXPECT_TRUE(b.cancelled);
	EXPECT_EQ(b.status.value_or(""), "Disabled");
	EXPECT_FALSE(b.start_date.has_value());

	const model::Agreement &c = sink.agreements[2]; // period only in the schedule, disabled there
	EXPECT_EQ(c.external_id, "-103");
	EXPECT_EQ(c.company_external_id, "12");
	EXPECT_EQ(c.name, "");
	EXPECT_EQ(c.billing_cycle_label.value_or(""), "period code 7");
	EXPECT_TRUE(c.cancelled);
	EXPECT_EQ(c.start_date.value_or(""), "2024-03-01");
	EXPECT_FALSE(c.end_date.has_value());
	EXPECT_FALSE(c.source_updated_at.has_value());
}

TEST_F(HaloPsaTest, InvoiceLinesMapToLineItems) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.line_items.size(), 4u);
	const model::LineItem &a = sink.line_items[0];
	EXPECT_EQ(a.external_id, "5501");
	EXPECT_EQ(a.agreement_external_id, "-101");
	EXPECT_EQ(a.company_external_id, "420");
	EXPECT_EQ(a.product_code.value_or(""), "M365-BP");
	EXPECT_EQ(a.product_name.value_or(""), "Microsoft 365 Business Premium");
	EXPECT_EQ(a.description.value_or(""), "Microsoft 365 Business Premium (monthly)");
	EXPECT_EQ(a.quantity.str(), "18");
	EXPECT_EQ(a.unit_price->str(), "22");
	EXPECT_EQ(a.unit_cost->str(), "18.7");
	EXPECT_EQ(a.quantity_source.value_or(""), "fixed");
	EXPECT_FALSE(a.billing_type.has_value());
	EXPECT_FALSE(a.effective_date.has_value());
	EXPECT_FALSE(a.cancel_date.has_value());
	EXPECT_FALSE(a.parent_external_id.has_value());

	const model::LineItem &b = sink.line_items[1];
	EXPECT_EQ(b.product_code.value_or(""), "MS-WKS");
	EXPECT_FALSE(b.description.has_value()); // empty string
	EXPECT_EQ(b.quantity.str(), "17");
	EXPECT_FALSE(b.unit_cost.has_value());
	EXPECT_EQ(b.quantity_source.value_or(""), "quantity_type_2");
	EXPECT_EQ(b.effective_date.value_or(""), "2024-01-01");
	EXPECT_EQ(b.cancel_date.value_or(""), "2024-12-31");

	const model::LineItem &credit = sink.line_items[2]; // negative price, inactive, Halo's null date
	EXPECT_EQ(credit.external_id, "5503");
	EXPECT_FALSE(credit.product_code.has_value());
	EXPECT_EQ(credit.product_name.value_or(""), "Loyalty discount");
	EXPECT_EQ(credit.unit_price->str(), "-50");
	EXPECT_FALSE(credit.unit_cost.has_value()); // null
	EXPECT_EQ(credit.billing_type.value_or(""), "Inactive");
	EXPECT_FALSE(credit.effective_date.has_value()); // 1899-12-30 means none
	EXPECT_FALSE(credit.parent_external_id.has_value());

	const model::LineItem &d = sink.line_items[3]; // string id and quantity, minimal
	EXPECT_EQ(d.external_id, "6001");
	EXPECT_EQ(d.agreement_external_id, "-103");
	EXPECT_EQ(d.company_external_id, "12");
	EXPECT_EQ(d.quantity.str(), "3");
	EXPECT_FALSE(d.product_name.has_value());
	EXPECT_FALSE(d.quantity_source.has_value());
}

TEST_F(HaloPsaTest, QuickRunsAsFullWithANote) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	SyncOutcome outcome = Make()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, HaloPsaConnector::kQuickFallbackNote);
	EXPECT_EQ(script->seen.size(), 8u); // the same requests as a full sync
	EXPECT_EQ(sink.line_items.size(), 4u);
}

TEST_F(HaloPsaTest, UserDomainsAreMergedDeduplicatedAndFiltered) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.companies.size(), 3u);
	// The website's domain once (a user repeats it in another case), then the users'.
	EXPECT_EQ(CompanyOf("420").domains, (std::vector<std::string>{"harbordental.com", "harbordental-mail.com"}));
	// gmail.com is free mail, an inactive user is skipped, "n/a" is no address.
	EXPECT_EQ(CompanyOf("421").domains, std::vector<std::string>{"northridgelaw.co.uk"});
	// A string client_id matches the client's id; the address is trimmed and lower-cased.
	EXPECT_EQ(CompanyOf("12").domains, std::vector<std::string>{"minimal-ltd.co.uk"});
	// A user without a client goes nowhere.
	for (const model::Company &c : sink.companies)
		for (const std::string &d : c.domains)
			EXPECT_NE(d, "noclient.example.org");
}

TEST_F(HaloPsaTest, UserPageFailureFailsTheSync) {
	ScriptFull();
	script->answers["GET " + kUsers + "2"] = {Scripted{500, {}, R"({"error":"error","message":"boom"})"}};
	EXPECT_THROW(Make()->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.companies.empty()) << "clients are stored only with their users' domains";
	EXPECT_TRUE(sink.agreements.empty());
	EXPECT_EQ(script->Urls().back(), "GET " + kUsers + "2");
}

TEST_F(HaloPsaTest, UserEmailOfWrongTypeNamesTheRecord) {
	ScriptToken();
	script->On("GET " + kClients + "1" + kClientsTail,
	           Scripted{200, {}, R"({"record_count":1,"clients":[{"id":420,"name":"Harbor Dental"}]})"});
	script->Get(kUsers + "1", "users_bad_email.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.detail(), "GET /api/Users record id 908: field \"emailaddress\" should be a string, found array");
}

TEST_F(HaloPsaTest, NoUsersAreReadWithoutClients) {
	ScriptToken();
	script->Get(kClients + "1" + kClientsTail, "clients_empty.json");
	script->Get(kInvoices + "1" + kInvoicesTail, "invoices_empty.json");
	Make()->Sync(SyncRequest{}, *client, sink);
	for (const std::string &url : script->Urls())
		EXPECT_EQ(url.find("/api/Users"), std::string::npos) << url;
}

TEST_F(HaloPsaTest, WithoutRecordCountAShortPageEnds) {
	ScriptToken();
	script->Get(kClients + "1" + kClientsTail, "clients_no_count_page1.json");
	script->Get(kClients + "2" + kClientsTail, "clients_no_count_page2.json");
	script->Get(kUsers + "1", "users_empty.json");
	script->Get(kInvoices + "1" + kInvoicesTail, "invoices_empty.json");
	Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(sink.companies.size(), 3u);
	EXPECT_EQ(script->seen.size(), 5u);
}

TEST_F(HaloPsaTest, ShortPageBeforeRecordCountFails) {
	ScriptToken();
	script->Get(kClients + "1" + kClientsTail, "clients_loop.json");  // 2 of 5
	script->Get(kClients + "2" + kClientsTail, "clients_short.json"); // 1 more, page not full
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "incomplete list in vendor response");
	EXPECT_EQ(e.detail(), "GET /api/Client page 2: 1 records on a page of 2, but record_count is 5 and only 3 were "
	                      "read");
	EXPECT_NE(e.hint().find("lower page_size"), std::string::npos);
}

TEST_F(HaloPsaTest, RepeatedPageIsAPaginationLoop) {
	ScriptToken();
	script->Get(kClients + "1" + kClientsTail, "clients_loop.json");
	script->Get(kClients + "2" + kClientsTail, "clients_loop.json"); // page_no ignored
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_NE(e.detail().find("GET /api/Client: page 2 holds only records already read"), std::string::npos)
	    << e.detail();
	// Clients wait for their users' domains: a failed list stores none.
	EXPECT_TRUE(sink.companies.empty());
	EXPECT_EQ(script->seen.size(), 3u);
}

TEST_F(HaloPsaTest, PageCapStopsEndlessLists) {
	ScriptToken();
	HaloPsaConnector::Settings s;
	s.base_url = kBase;
	s.page_size = 1;
	s.max_pages = 2;
	Make(); // installs the auth
	HaloPsaConnector connector(s);
	const std::string url = kBase + "/api/Client?pageinate=true&page_size=1&page_no=";
	script->On("GET " + url + "1" + kClientsTail,
	           Scripted{200, {}, R"({"record_count":9,"clients":[{"id":1,"name":"a"}]})"});
	script->On("GET " + url + "2" + kClientsTail,
	           Scripted{200, {}, R"({"record_count":9,"clients":[{"id":2,"name":"b"}]})"});
	billrecon::Error e = CatchError([&] { connector.Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "54000");
	EXPECT_EQ(e.message(), "too many pages in vendor response");
}

TEST_F(HaloPsaTest, WrongTypeNamesEndpointRecordAndField) {
	ScriptClients("clients_name_number.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.message(), "unexpected value in vendor response");
	EXPECT_EQ(e.detail(), "GET /api/Client record id 420: field \"name\" should be a string, found number 12345");
	EXPECT_TRUE(sink.companies.empty());

	script->answers.clear();
	ScriptClients("clients_inactive_string.json");
	billrecon::Error f = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(f.detail(), "GET /api/Client record id 420: field \"inactive\" should be a boolean, found string \"no\"");
}

TEST_F(HaloPsaTest, MissingRequiredFieldsFail) {
	ScriptClients("clients_missing_name.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "missing field in vendor response");
	EXPECT_EQ(e.detail(), "GET /api/Client record id 420: field \"name\" is missing");

	script->answers.clear();
	ScriptClients("clients_no_list.json");
	billrecon::Error f = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(f.detail(), "GET /api/Client page 1: field \"clients\" is missing");

	script->answers.clear();
	ScriptInvoices("invoices_missing_client.json");
	billrecon::Error g = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(g.detail(), "GET /api/RecurringInvoice record id -101: field \"client_id\" is missing");
}

TEST_F(HaloPsaTest, LineErrorsNameInvoiceAndLine) {
	ScriptInvoices("invoices_missing_qty.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.detail(), "GET /api/RecurringInvoice record id -101 line id 5502: field \"qty_order\" is missing");
	EXPECT_TRUE(sink.line_items.empty()); // the page fails as a whole

	script->answers.clear();
	ScriptInvoices("invoices_no_lines.json");
	billrecon::Error f = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(f.detail(), "GET /api/RecurringInvoice record id -101: field \"lines\" is missing");

	script->answers.clear();
	ScriptInvoices("invoices_bad_period.json");
	billrecon::Error g = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(g.sqlstate(), "22P02");
	EXPECT_EQ(g.detail(), "GET /api/RecurringInvoice record id -101: field \"period\" should be an integer, found "
	                      "string \"monthly\"");
}

TEST_F(HaloPsaTest, MalformedAndNonObjectBodies) {
	ScriptClients("clients_truncated.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.message(), "malformed JSON in vendor response");
	EXPECT_NE(e.detail().find("GET /api/Client page 1: JSON parse error at offset"), std::string::npos);

	script->answers.clear();
	ScriptToken();
	script->On("GET " + kClients + "1" + kClientsTail, Scripted{200, {}, "[]"});
	billrecon::Error f = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(f.detail(), "GET /api/Client page 1: record should be an object, found array");
}

TEST_F(HaloPsaTest, TokenRefusedFailsTheSync) {
	script->On("POST " + kBase + "/auth/token", Scripted{401, {}, R"({"error":"invalid_client"})"});
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "28000");
	EXPECT_EQ(e.detail().find("halo-SECRET"), std::string::npos);
	EXPECT_EQ(script->seen.size(), 1u);
}

// ---- write-back ------------------------------------------------------------------

const std::string kInvoiceUrl = kBase + "/api/RecurringInvoice/-101?includelines=true";

TEST_F(HaloPsaTest, ReadQuantityReadsTheLine) {
	ScriptToken();
	script->Get(kInvoiceUrl, "invoice_-101.json");
	auto connector = Make();
	ASSERT_NE(connector->writer(), nullptr);
	EXPECT_EQ(connector->writer()->ReadQuantity(*client, Change("-101", "5502", "17", "20")).str(), "17");
	EXPECT_EQ(script->Urls().back(), "GET " + kInvoiceUrl);
	EXPECT_EQ(HeaderOf(script->seen.back(), "Authorization").value_or(""), "Bearer halo-access-token-1");
}

TEST_F(HaloPsaTest, UpdatePostsTheWholeInvoiceWithEveryLine) {
	ScriptToken();
	script->Get(kInvoiceUrl, "invoice_-101.json");
	script->On("POST " + kBase + "/api/RecurringInvoice", Scripted{200, {}, Fixture("invoice_-101_after.json")});
	auto connector = Make();
	QuantityChangeResult r = connector->writer()->UpdateQuantity(*client, Change("-101", "5501", "18", "20.0"));
	ASSERT_EQ(script->seen.size(), 3u);
	const http::Request &post = script->seen[2];
	EXPECT_EQ(post.method, http::Method::kPost);
	EXPECT_EQ(post.url, kBase + "/api/RecurringInvoice");
	EXPECT_EQ(HeaderOf(post, "Content-Type").value_or(""), "application/json");
	EXPECT_EQ(
	    post.body,
	    R"([{"id":-101,"lines":[{"customfields":[],"id":5501,"ihid":-101,"item_code":"M365-BP","qty_order":20,)"
	    R"("unit_price":22.0,"net_amount":396.0,"quantity_users":[],"prorata_data":[],"isinactive":false,)"
	    R"("item_longdescription":"Line \"one\"\nsecond"},{"id":5502,"ihid":-101,"item_code":"MS-WKS",)"
	    R"("qty_order":17,"unit_price":65,"startdate":"2024-01-01T00:00:00","recurring_invoice_quantity_type":2}]}])");
	EXPECT_EQ(r.quantity_after.str(), "20");
	EXPECT_EQ(r.reference, "recurring invoice -101 line 5501");
	EXPECT_NE(r.note.find("from 18 to 20"), std::string::npos) << r.note;
	EXPECT_NE(r.note.find("all its 2 lines"), std::string::npos) << r.note;
	EXPECT_NE(r.note.find("next invoice HaloPSA creates (2024-06-30)"), std::string::npos) << r.note;
	EXPECT_NE(r.note.find("effective date 2024-07-01"), std::string::npos) << r.note;
}

TEST_F(HaloPsaTest, UpdateRereadsWhenTheAnswerHasNoLines) {
	ScriptToken();
	script->Get(kInvoiceUrl, "invoice_-101.json");
	script->Get(kInvoiceUrl, "invoice_-101_after.json");
	script->On("POST " + kBase + "/api/RecurringInvoice", Scripted{201, {}, R"({"id":-101})"});
	QuantityChangeResult r = Make()->writer()->UpdateQuantity(*client, Change("-101", "5501", "18", "20"));
	EXPECT_EQ(script->seen.size(), 4u);
	EXPECT_EQ(script->Urls().back(), "GET " + kInvoiceUrl);
	EXPECT_EQ(r.quantity_after.str(), "20");
}

TEST_F(HaloPsaTest, UpdateWithTheSameQuantitySendsNothing) {
	ScriptToken();
	script->Get(kInvoiceUrl, "invoice_-101.json");
	QuantityChangeResult r = Make()->writer()->UpdateQuantity(*client, Change("-101", "5502", "17", "17.00"));
	EXPECT_EQ(script->seen.size(), 2u); // token + GET, no POST: a retry is harmless
	EXPECT_EQ(r.quantity_after.str(), "17");
	EXPECT_NE(r.note.find("already 17"), std::string::npos) << r.note;
}

TEST_F(HaloPsaTest, UpdateOfAMissingLineOrBadIdsFails) {
	ScriptToken();
	script->Get(kInvoiceUrl, "invoice_-101.json");
	auto connector = Make();
	billrecon::Error e =
	    CatchError([&] { connector->writer()->UpdateQuantity(*client, Change("-101", "9999", "1", "2")); });
	EXPECT_EQ(e.sqlstate(), "55000");
	EXPECT_EQ(e.message(), "recurring invoice line not found in HaloPSA");
	EXPECT_EQ(e.detail(), "Line 9999 is not on recurring invoice -101 (its lines: 5501, 5502).");

	size_t before = script->seen.size();
	billrecon::Error f =
	    CatchError([&] { connector->writer()->ReadQuantity(*client, Change("-101/../x", "5501", "1", "2")); });
	EXPECT_EQ(f.sqlstate(), "22023");
	billrecon::Error g = CatchError([&] { connector->writer()->ReadQuantity(*client, Change("-101", "", "1", "2")); });
	EXPECT_EQ(g.sqlstate(), "22023");
	EXPECT_EQ(script->seen.size(), before);
}

TEST_F(HaloPsaTest, RefusedWriteFails) {
	ScriptToken();
	script->Get(kInvoiceUrl, "invoice_-101.json");
	script->On("POST " + kBase + "/api/RecurringInvoice",
	           Scripted{400, {}, R"({"ClassName":"Exception","Message":"bad line"})"});
	EXPECT_THROW(Make()->writer()->UpdateQuantity(*client, Change("-101", "5501", "18", "20")), http::HttpError);
}
