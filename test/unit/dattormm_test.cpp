// Datto RMM connector driven through a real http::Client over a scripted
// transport: the password-grant token request with Basic public-client,
// pageDetails.nextPageUrl paging, every mapped field (lastSeen as ISO text
// or epoch milliseconds), the device-class table, loop guards, bad payloads
// and the kind's default request rate.
#include "connectors/dattormm.hpp"
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
	return ReadFixture("dattormm", name);
}

const std::string kBase = "https://merlot.test";
const std::string kSites = kBase + "/api/v2/account/sites?page=0&max=2";
const std::string kSites1 = kBase + "/api/v2/account/sites?max=2&page=1";
const std::string kDevices = kBase + "/api/v2/account/devices?page=0&max=2";
const std::string kDevices1 = kBase + "/api/v2/account/devices?max=2&page=1";
const std::string kDevices2 = kBase + "/api/v2/account/devices?max=2&page=2";
const std::string kS1 = "8bf9fa48-b304-4819-b4ef-ffeb24223521";
const std::string kS2 = "1c2d3e4f-0000-4000-8000-00000000aaaa";
const std::string kS3 = "9a9a9a9a-1111-4222-8333-444444444444";

IntegrationConfig Config(const std::string &options_json) {
	IntegrationConfig config;
	config.id = 6;
	config.name = "datto";
	config.kind = "dattormm";
	config.base_url = kBase;
	config.credentials_json = R"({"api_key": "datto-KEY", "api_secret": "datto-SECRET"})";
	config.options_json = options_json;
	return config;
}

const std::string kOptions = R"({"page_size": 2})";

class DattoRmmTest : public ::testing::Test {
protected:
	void SetUp() override {
		script = std::make_shared<Script>("dattormm", kJsonContentType);
		client = ScriptedClient(script);
		script->On("POST " + kBase + "/auth/oauth/token", Scripted{200, {}, Fixture("token.json")});
	}

	std::unique_ptr<Connector> Make(const std::string &options_json = kOptions) {
		return FindKind("dattormm")->create(Config(options_json), *client);
	}

	void ScriptFull() {
		script->Get(kSites, "sites_page0.json");
		script->Get(kSites1, "sites_page1.json");
		script->Get(kDevices, "devices_page0.json");
		script->Get(kDevices1, "devices_page1.json");
		script->Get(kDevices2, "devices_page2.json");
	}

	const model::UsageRecord &Device(const std::string &id) {
		return sink.Usage(id, "device");
	}

	std::shared_ptr<Script> script;
	std::unique_ptr<http::Client> client;
	CollectingSink sink{Side::kVendor};
};

} // namespace

TEST_F(DattoRmmTest, FullSyncFollowsNextPageUrl) {
	ScriptFull();
	SyncOutcome outcome = Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {
	    "POST " + kBase + "/auth/oauth/token", "GET " + kSites,     "GET " + kSites1,
	    "GET " + kDevices,                     "GET " + kDevices1, "GET " + kDevices2, // page 1 links relatively
	};
	EXPECT_EQ(script->Urls(), expected);
	std::vector<std::pair<std::string, size_t>> pages = {
	    {"sites", 2}, {"sites", 1}, {"devices", 2}, {"devices", 2}, {"devices", 2}};
	EXPECT_EQ(sink.pages, pages);
	EXPECT_EQ(sink.puts.size(), 5u);
	EXPECT_TRUE(sink.warnings.empty());
}

TEST_F(DattoRmmTest, PasswordGrantWithPublicClient) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	const http::Request &token = script->seen.at(0);
	EXPECT_EQ(token.method, http::Method::kPost);
	EXPECT_EQ(HeaderOf(token, "Authorization").value_or(""), "Basic cHVibGljLWNsaWVudDpwdWJsaWM=");
	EXPECT_EQ(HeaderOf(token, "Content-Type").value_or(""), "application/x-www-form-urlencoded");
	EXPECT_EQ(token.body, "username=datto-KEY&password=datto-SECRET&grant_type=password");
	for (size_t i = 1; i < script->seen.size(); ++i) {
		EXPECT_EQ(HeaderOf(script->seen[i], "Authorization").value_or(""), "Bearer datto-access-token-1");
		EXPECT_EQ(HeaderOf(script->seen[i], "Accept").value_or(""), "application/json");
	}
}

TEST_F(DattoRmmTest, TokenUrlOptionAndDefaultPageSize) {
	script->answers.clear();
	script->On("POST https://auth.datto.test/auth/oauth/token", Scripted{200, {}, Fixture("token.json")});
	script->Get(kBase + "/api/v2/account/sites?page=0&max=250", "sites_empty.json");
	script->Get(kBase + "/api/v2/account/devices?page=0&max=250", "devices_empty.json");
	Make(R"({"token_url": "https://auth.datto.test/auth/oauth/token"})")->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(script->Urls().at(0), "POST https://auth.datto.test/auth/oauth/token");
	EXPECT_EQ(script->seen.size(), 3u);
	EXPECT_EQ(sink.puts.size(), 0u);
	std::vector<std::pair<std::string, size_t>> pages = {{"sites", 0}, {"devices", 0}};
	EXPECT_EQ(sink.pages, pages);
}

TEST_F(DattoRmmTest, SitesMap) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.accounts.size(), 3u);
	EXPECT_EQ(sink.accounts[0].external_id, kS1); // uid, not the numeric id
	EXPECT_EQ(sink.accounts[0].name, "Harbor Dental");
	EXPECT_TRUE(sink.accounts[0].domains.empty());
	EXPECT_FALSE(sink.accounts[0].status.has_value());
	EXPECT_EQ(sink.accounts[1].external_id, kS2);
	EXPECT_EQ(sink.accounts[2].name, "Deleted Devices");
}

TEST_F(DattoRmmTest, DevicesMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.usage.size(), 6u);

	const model::UsageRecord &lt = Device("3f0d9a5e-5b8c-4a7e-9e61-7d2b1c4e8f10");
	EXPECT_EQ(lt.kind, model::UsageKind::kDevice);
	EXPECT_EQ(lt.account_external_id, kS1);
	EXPECT_EQ(lt.product.value_or(""), "Laptop");
	EXPECT_EQ(lt.quantity.str(), "1");
	EXPECT_EQ(lt.device_class, model::DeviceClass::kLaptop);
	EXPECT_EQ(lt.device_name.value_or(""), "HD-LT-07");
	EXPECT_EQ(lt.os_name.value_or(""), "Microsoft Windows 11 Pro 23H2");
	EXPECT_EQ(lt.online, std::optional<bool>(true));
	EXPECT_EQ(lt.enabled, std::optional<bool>(true));
	EXPECT_EQ(lt.last_active_at.value_or(""), "2024-06-11T08:03:00Z");
	EXPECT_FALSE(lt.serial_number.has_value()); // the device list carries none
	EXPECT_FALSE(lt.licensed.has_value());
	EXPECT_FALSE(lt.unit_cost.has_value());

	const model::UsageRecord &fs = Device("a91c0e22-7f1d-4b3b-8c55-0e6d2f9a1b77");
	EXPECT_EQ(fs.device_class, model::DeviceClass::kServer);
	EXPECT_EQ(fs.online, std::optional<bool>(false));
	EXPECT_EQ(fs.last_active_at.value_or(""), "2024-06-11T10:38:32.514Z"); // epoch milliseconds (number)

	const model::UsageRecord &esx = Device("b1b1b1b1-0003-4000-8000-000000000003");
	EXPECT_EQ(esx.account_external_id, kS2);
	EXPECT_EQ(esx.device_class, model::DeviceClass::kServer);
	EXPECT_EQ(esx.product.value_or(""), "ESXi Host");
	EXPECT_EQ(esx.enabled, std::optional<bool>(false));                 // suspended
	EXPECT_EQ(esx.last_active_at.value_or(""), "2024-06-10T06:13:20Z"); // epoch milliseconds (digits)

	const model::UsageRecord &esx2 = Device("b1b1b1b1-0004-4000-8000-000000000004");
	EXPECT_FALSE(esx2.product.has_value());
	EXPECT_EQ(esx2.device_class, model::DeviceClass::kServer); // deviceClass esxihost
	EXPECT_EQ(esx2.enabled, std::optional<bool>(false));       // deleted
	EXPECT_FALSE(esx2.online.has_value());
	EXPECT_FALSE(esx2.last_active_at.has_value()); // null
	EXPECT_FALSE(esx2.os_name.has_value());

	const model::UsageRecord &desk = Device("c2c2c2c2-0005-4000-8000-000000000005");
	EXPECT_EQ(desk.device_class, model::DeviceClass::kDesktop); // "desktop", any case
	EXPECT_FALSE(desk.enabled.has_value());                      // neither deleted nor suspended given
	EXPECT_EQ(desk.last_active_at.value_or(""), "2024-06-11T06:03:00.123Z");

	const model::UsageRecord &printer = Device("c2c2c2c2-0006-4000-8000-000000000006");
	EXPECT_EQ(printer.device_class, model::DeviceClass::kOther);
	EXPECT_FALSE(printer.device_name.has_value()); // ""
	EXPECT_FALSE(printer.os_name.has_value());     // null
}

TEST_F(DattoRmmTest, QuickFallsBackToFullWithANote) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	SyncOutcome outcome = Make()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "dattormm has no modified-since filter: quick sync ran as a full sync");
	EXPECT_EQ(sink.usage.size(), 6u);
}

TEST_F(DattoRmmTest, NextPageUrlBackToAReadPageIsALoop) {
	script->Get(kSites, "sites_empty.json");
	script->Get(kDevices, "devices_loop.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_EQ(e.detail(), "GET /api/v2/account/devices: page 0 links back to \"" + kDevices +
	                          "\", which was already read");
	EXPECT_EQ(sink.usage.size(), 1u);
}

TEST_F(DattoRmmTest, NextPageUrlOnAnotherServerIsRefused) {
	script->Get(kSites, "sites_empty.json");
	script->Get(kDevices, "devices_foreign.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "unexpected pagination link in vendor response");
	EXPECT_NE(e.detail().find("pinotage-api.centrastage.net"), std::string::npos) << e.detail();
	EXPECT_EQ(script->seen.size(), 3u);
}

TEST_F(DattoRmmTest, PageCapStopsARunawayList) {
	script->Get(kSites, "sites_page0.json");
	Make(); // installs the auth
	DattoRmmConnector::Settings settings;
	settings.base_url = kBase;
	settings.page_size = 2;
	settings.max_pages = 1;
	billrecon::Error e = CatchError([&] { DattoRmmConnector(settings).Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "54000");
	EXPECT_EQ(e.detail(), "GET /api/v2/account/sites: more than 100000 pages");
}

TEST_F(DattoRmmTest, PayloadErrorsNameEndpointRecordAndField) {
	struct Case {
		const char *sites;
		const char *devices;
		const char *sqlstate;
		std::string detail;
	};
	const Case cases[] = {
	    {"sites_missing_details.json", nullptr, "22000",
	     "GET /api/v2/account/sites page 0: field \"pageDetails\" is missing"},
	    {"sites_missing_name.json", nullptr, "22000",
	     "GET /api/v2/account/sites record id " + kS1 + ": field \"name\" is missing"},
	    {"sites_empty.json", "devices_missing_site.json", "22000",
	     "GET /api/v2/account/devices record id d0d0d0d0-0001-4000-8000-000000000001: field \"siteUid\" is missing"},
	    {"sites_empty.json", "devices_bad_lastseen.json", "22P02",
	     "GET /api/v2/account/devices record id d0d0d0d0-0002-4000-8000-000000000002: field \"lastSeen\" should be "
	     "an ISO 8601 timestamp or milliseconds since the epoch, found string \"soon\""},
	    {"sites_empty.json", "devices_lastseen_bool.json", "22P02",
	     "GET /api/v2/account/devices record id d0d0d0d0-0003-4000-8000-000000000003: field \"lastSeen\" should be "
	     "an ISO 8601 timestamp or milliseconds since the epoch, found boolean"},
	    {"sites_empty.json", "devices_online_string.json", "22P02",
	     "GET /api/v2/account/devices record id d0d0d0d0-0004-4000-8000-000000000004: field \"online\" should be a "
	     "boolean, found string \"yes\""},
	    {"sites_empty.json", "devices_type_string.json", "22P02",
	     "GET /api/v2/account/devices record id d0d0d0d0-0005-4000-8000-000000000005: field \"deviceType\" should "
	     "be an object, found string \"Laptop\""},
	    {"sites_empty.json", "devices_not_object.json", "22P02",
	     "GET /api/v2/account/devices page 0: record should be an object, found array"},
	};
	for (const Case &c : cases) {
		SetUp();
		sink = CollectingSink(Side::kVendor);
		script->Get(kSites, c.sites);
		if (c.devices)
			script->Get(kDevices, c.devices);
		billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
		EXPECT_EQ(e.sqlstate(), c.sqlstate) << c.detail;
		EXPECT_EQ(e.detail(), c.detail);
	}
}

TEST_F(DattoRmmTest, TokenRefusedFailsTheSync) {
	script->answers.clear();
	script->On("POST " + kBase + "/auth/oauth/token",
	           Scripted{401, {}, R"({"error":"unauthorized","error_description":"Bad credentials"})"});
	EXPECT_THROW(Make()->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.accounts.empty());
}

TEST(DattoRmmMapping, DeviceClassTable) {
	using model::DeviceClass;
	struct Row {
		std::optional<std::string_view> category;
		std::optional<std::string_view> device_class;
		DeviceClass expected;
	};
	const Row rows[] = {
	    {"Desktop", std::nullopt, DeviceClass::kDesktop},
	    {"LAPTOP", "device", DeviceClass::kLaptop},
	    {"Server", std::nullopt, DeviceClass::kServer},
	    {" ESXi Host ", std::nullopt, DeviceClass::kServer},
	    {"esxi host", "esxihost", DeviceClass::kServer},
	    {"Printer", "printer", DeviceClass::kOther},
	    {"Network Device", "rmmnetworkdevice", DeviceClass::kOther},
	    {"Mobile Device", std::nullopt, DeviceClass::kOther},
	    {"Workstation", std::nullopt, DeviceClass::kOther},
	    {"Printer", "esxihost", DeviceClass::kOther}, // the category decides when present
	    {std::nullopt, "esxihost", DeviceClass::kServer},
	    {std::nullopt, "device", DeviceClass::kOther},
	    {std::nullopt, std::nullopt, DeviceClass::kOther},
	};
	for (const Row &r : rows)
		EXPECT_EQ(DattoRmmConnector::MapDeviceClass(r.category, r.device_class), r.expected)
		    << r.category.value_or("-") << " " << r.device_class.value_or("-");
}

TEST(DattoRmmConfig, OptionsAndDefaultRequestRate) {
	EXPECT_NO_THROW(ValidateConfig(Config(kOptions), false));
	EXPECT_THROW(ValidateConfig(Config(R"({"page_size": 251})"), false), billrecon::Error);
	EXPECT_THROW(ValidateConfig(Config(R"({"page_size": 0})"), false), billrecon::Error);
	IntegrationConfig no_secret = Config("{}");
	no_secret.credentials_json = R"({"api_key": "k"})";
	EXPECT_THROW(ValidateConfig(no_secret, false), billrecon::Error);

	// 600 requests per rolling minute for the whole account: 9 per second by default.
	EXPECT_DOUBLE_EQ(FindKind("dattormm")->default_requests_per_second, 9.0);
	EXPECT_DOUBLE_EQ(ClientOptionsFor(Config("{}"), http::ClientOptions{}).requests_per_second, 9.0);
	http::ClientOptions slower;
	slower.requests_per_second = 5;
	EXPECT_DOUBLE_EQ(ClientOptionsFor(Config("{}"), slower).requests_per_second, 5.0);
	http::ClientOptions faster;
	faster.requests_per_second = 50;
	EXPECT_DOUBLE_EQ(ClientOptionsFor(Config("{}"), faster).requests_per_second, 9.0);
	EXPECT_DOUBLE_EQ(ClientOptionsFor(Config(R"({"requests_per_second": 2.5})"), http::ClientOptions{})
	                     .requests_per_second,
	                 2.5);
	EXPECT_DOUBLE_EQ(ClientOptionsFor(Config(R"({"requests_per_second": 20})"), http::ClientOptions{})
	                     .requests_per_second,
	                 20.0); // the user's explicit choice wins
	// Kinds without a default keep the caller's.
	IntegrationConfig ninja;
	ninja.kind = "ninjaone";
	ninja.base_url = "https://app.ninjarmm.com";
	ninja.credentials_json = R"({"client_id": "a", "client_secret": "b"})";
	EXPECT_DOUBLE_EQ(ClientOptionsFor(ninja, http::ClientOptions{}).requests_per_second, 0.0);
}
