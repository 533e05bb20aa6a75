// NinjaOne connector driven through a real http::Client over a scripted
// transport: OAuth2 token request, after= cursor paging, every mapped field,
// the device-class table, loop detection and the quick -> full note.
#include "connectors/ninjaone.hpp"
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
	return ReadFixture("ninjaone", name);
}

const std::string kBase = "https://app.ninjarmm.test";
const std::string kOrgs = kBase + "/v2/organizations?pageSize=3";
const std::string kDevices = kBase + "/v2/devices-detailed?pageSize=3";

class NinjaOneTest : public ::testing::Test {
protected:
	void SetUp() override {
		script = std::make_shared<Script>("ninjaone", kJsonContentType);
		client = ScriptedClient(script);
		script->On("POST " + kBase + "/ws/oauth/token", Scripted{200, {}, Fixture("token.json")});
	}

	std::unique_ptr<Connector> Make(const std::string &options_json = R"({"page_size": 3})") {
		IntegrationConfig config;
		config.id = 2;
		config.name = "rmm";
		config.kind = "ninjaone";
		config.base_url = kBase;
		config.credentials_json = R"({"client_id": "ninja-client", "client_secret": "ninja-SECRET"})";
		config.options_json = options_json;
		return FindKind("ninjaone")->create(config, *client);
	}

	void ScriptFull() {
		script->Get(kOrgs, "organizations_page1.json");
		script->Get(kOrgs + "&after=16", "organizations_page2.json");
		script->Get(kDevices, "devices_page1.json");
		script->Get(kDevices + "&after=117", "devices_page2.json");
		script->Get(kDevices + "&after=140", "devices_page3.json");
	}

	const model::UsageRecord &Device(const std::string &id) {
		return sink.Usage(id, "device");
	}

	std::shared_ptr<Script> script;
	std::unique_ptr<http::Client> client;
	CollectingSink sink{Side::kVendor};
};

} // namespace

TEST_F(NinjaOneTest, FullSyncPagesWithAfterCursor) {
	ScriptFull();
	SyncOutcome outcome = Make()->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "");
	std::vector<std::string> expected = {
	    "POST " + kBase + "/ws/oauth/token",
	    "GET " + kOrgs,
	    "GET " + kOrgs + "&after=16",
	    "GET " + kDevices,
	    "GET " + kDevices + "&after=117",
	    "GET " + kDevices + "&after=140",
	};
	EXPECT_EQ(script->Urls(), expected);
	std::vector<std::pair<std::string, size_t>> pages = {
	    {"organizations", 3}, {"organizations", 1}, {"devices", 3}, {"devices", 3}, {"devices", 2}};
	EXPECT_EQ(sink.pages, pages);
	EXPECT_EQ(sink.puts.size(), 5u);
	EXPECT_TRUE(sink.warnings.empty());
}

TEST_F(NinjaOneTest, OAuthClientCredentialsAndBearer) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_GE(script->seen.size(), 2u);
	const http::Request &token = script->seen[0];
	EXPECT_EQ(token.method, http::Method::kPost);
	EXPECT_NE(token.body.find("grant_type=client_credentials"), std::string::npos) << token.body;
	EXPECT_NE(token.body.find("client_id=ninja-client"), std::string::npos) << token.body;
	EXPECT_NE(token.body.find("client_secret=ninja-SECRET"), std::string::npos) << token.body;
	EXPECT_TRUE(token.body.find("scope=monitoring%20management") != std::string::npos ||
	            token.body.find("scope=monitoring+management") != std::string::npos)
	    << token.body;
	EXPECT_NE(HeaderOf(token, "Content-Type").value_or("").find("application/x-www-form-urlencoded"),
	          std::string::npos);
	for (size_t i = 1; i < script->seen.size(); ++i)
		EXPECT_EQ(HeaderOf(script->seen[i], "Authorization").value_or(""), "Bearer ninja-access-token-1");
}

TEST_F(NinjaOneTest, TokenUrlOption) {
	script->answers.clear();
	script->On("POST https://auth.example.test/oauth/token", Scripted{200, {}, Fixture("token.json")});
	script->Get(kOrgs, "organizations_page2.json");
	script->Get(kDevices, "devices_empty.json");
	Make(R"({"page_size": 3, "token_url": "https://auth.example.test/oauth/token"})")->Sync(SyncRequest{}, *client,
	                                                                                       sink);
	EXPECT_EQ(script->Urls().at(0), "POST https://auth.example.test/oauth/token");
}

TEST_F(NinjaOneTest, OrganizationsMap) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.accounts.size(), 4u);
	EXPECT_EQ(sink.accounts[0].external_id, "12");
	EXPECT_EQ(sink.accounts[0].name, "Harbor Dental");
	EXPECT_FALSE(sink.accounts[0].status.has_value());
	EXPECT_TRUE(sink.accounts[0].domains.empty());
	EXPECT_EQ(sink.accounts[1].name, "North Ridge Law");
	EXPECT_EQ(sink.accounts[3].external_id, "20");
}

TEST_F(NinjaOneTest, DevicesMapEveryField) {
	ScriptFull();
	Make()->Sync(SyncRequest{}, *client, sink);
	ASSERT_EQ(sink.usage.size(), 8u);

	const model::UsageRecord &ws = Device("101");
	EXPECT_EQ(ws.kind, model::UsageKind::kDevice);
	EXPECT_EQ(ws.account_external_id, "12");
	EXPECT_EQ(ws.product.value_or(""), "WINDOWS_WORKSTATION");
	EXPECT_EQ(ws.quantity.str(), "1");
	EXPECT_EQ(ws.device_class, model::DeviceClass::kDesktop);
	EXPECT_EQ(ws.os_name.value_or(""), "Windows 11 Professional Edition");
	EXPECT_EQ(ws.device_name.value_or(""), "HD-FRONT-01");
	EXPECT_EQ(ws.serial_number.value_or(""), "7XK2JQ3");
	EXPECT_EQ(ws.online, std::optional<bool>(true));
	EXPECT_EQ(ws.enabled, std::optional<bool>(true));
	EXPECT_FALSE(ws.licensed.has_value());
	EXPECT_EQ(ws.last_active_at.value_or(""), "2024-06-11T10:38:32.514Z"); // epoch with a fraction
	EXPECT_EQ(ws.source_updated_at.value_or(""), "2024-06-11T10:38:20Z");
	EXPECT_FALSE(ws.unit_cost.has_value());

	const model::UsageRecord &mac = Device("105");
	EXPECT_EQ(mac.device_class, model::DeviceClass::kLaptop);
	EXPECT_EQ(mac.device_name.value_or(""), "Danas-MacBook-Pro"); // empty displayName -> systemName
	EXPECT_EQ(mac.last_active_at.value_or(""), "2024-06-10T06:13:20.25Z");

	const model::UsageRecord &srv = Device("117");
	EXPECT_EQ(srv.device_class, model::DeviceClass::kServer);
	EXPECT_EQ(srv.device_name.value_or(""), "HD-DC01");
	EXPECT_EQ(srv.online, std::optional<bool>(false));
	EXPECT_FALSE(srv.serial_number.has_value());

	EXPECT_EQ(Device("130").device_class, model::DeviceClass::kServer);  // VM guest running Windows Server
	EXPECT_EQ(Device("130").account_external_id, "14");
	EXPECT_EQ(Device("130").serial_number.value_or(""), "VMware-42 1a");
	EXPECT_EQ(Device("131").device_class, model::DeviceClass::kDesktop); // VM guest running Ubuntu desktop
	EXPECT_EQ(Device("131").last_active_at.value_or(""), "2024-06-11T10:00:01.999999Z");
	EXPECT_FALSE(Device("131").source_updated_at.has_value());

	const model::UsageRecord &phone = Device("140");
	EXPECT_EQ(phone.device_class, model::DeviceClass::kOther);
	EXPECT_EQ(phone.device_name.value_or(""), "iphone-jl.local"); // dnsName fallback
	EXPECT_EQ(phone.enabled, std::optional<bool>(false));          // approvalStatus PENDING
	EXPECT_FALSE(phone.last_active_at.has_value());                 // null
	EXPECT_FALSE(phone.os_name.has_value());

	const model::UsageRecord &kiosk = Device("150");
	EXPECT_EQ(kiosk.device_class, model::DeviceClass::kDesktop); // chassis MOBILE -> desktop
	EXPECT_EQ(kiosk.device_name.value_or(""), "oc-kiosk");
	EXPECT_EQ(kiosk.serial_number.value_or(""), "BIOS-OC-1"); // empty serialNumber -> biosSerialNumber
	EXPECT_FALSE(kiosk.os_name.has_value());
	EXPECT_FALSE(kiosk.online.has_value());

	const model::UsageRecord &sw = Device("151");
	EXPECT_EQ(sw.device_class, model::DeviceClass::kOther);
	EXPECT_FALSE(sw.enabled.has_value());
	EXPECT_EQ(sw.product.value_or(""), "NMS_SWITCH");
}

TEST_F(NinjaOneTest, QuickFallsBackToFullWithANote) {
	ScriptFull();
	SyncRequest request;
	request.mode = SyncMode::kQuick;
	request.since = "2024-06-01T00:00:00Z";
	SyncOutcome outcome = Make()->Sync(request, *client, sink);
	EXPECT_EQ(outcome.effective_mode, SyncMode::kFull);
	EXPECT_EQ(outcome.note, "ninjaone has no modified-since filter: quick sync ran as a full sync");
	EXPECT_EQ(sink.usage.size(), 8u);
	EXPECT_EQ(script->seen.size(), 6u);
}

TEST_F(NinjaOneTest, EmptyAccount) {
	script->Get(kBase + "/v2/organizations?pageSize=1000", "devices_empty.json");
	script->Get(kBase + "/v2/devices-detailed?pageSize=1000", "devices_empty.json");
	Make("{}")->Sync(SyncRequest{}, *client, sink);
	EXPECT_EQ(sink.puts.size(), 0u);
	std::vector<std::pair<std::string, size_t>> pages = {{"organizations", 0}, {"devices", 0}};
	EXPECT_EQ(sink.pages, pages);
}

TEST_F(NinjaOneTest, CursorThatDoesNotAdvanceIsALoop) {
	script->Get(kOrgs, "organizations_page2.json");
	script->Get(kDevices, "devices_page1.json");
	script->Get(kDevices + "&after=117", "devices_loop.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.message(), "pagination loop in vendor response");
	EXPECT_EQ(e.detail(), "GET /v2/devices-detailed: page 2 (after=117) holds id 101, which is not greater than the "
	                      "cursor");
	EXPECT_EQ(sink.usage.size(), 3u);
}

TEST_F(NinjaOneTest, DeviceWithoutOrganizationFails) {
	script->Get(kOrgs, "organizations_page2.json");
	script->Get(kDevices, "devices_missing_org.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22000");
	EXPECT_EQ(e.detail(), "GET /v2/devices-detailed record id 201: field \"organizationId\" is missing");
}

TEST_F(NinjaOneTest, BadEpochFails) {
	script->Get(kOrgs, "organizations_page2.json");
	script->Get(kDevices, "devices_bad_lastcontact.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.detail(), "GET /v2/devices-detailed record id 202: field \"lastContact\" should be seconds since the "
	                      "epoch, found string \"yesterday\"");
}

TEST_F(NinjaOneTest, NonNumericIdCannotBePaged) {
	script->Get(kOrgs, "organizations_page2.json");
	script->Get(kDevices, "devices_string_id.json");
	billrecon::Error e = CatchError([&] { Make()->Sync(SyncRequest{}, *client, sink); });
	EXPECT_EQ(e.sqlstate(), "22P02");
	EXPECT_EQ(e.detail(), "GET /v2/devices-detailed page 1 item 1: field \"id\" should be a non-negative integer id, "
	                      "found string \"abc\"");
}

TEST_F(NinjaOneTest, TokenRefusedFailsTheSync) {
	script->answers.clear();
	script->On("POST " + kBase + "/ws/oauth/token", Scripted{401, {}, R"({"error":"invalid_client"})"});
	EXPECT_THROW(Make()->Sync(SyncRequest{}, *client, sink), http::HttpError);
	EXPECT_TRUE(sink.accounts.empty());
}

TEST(NinjaOneMapping, DeviceClassTable) {
	using model::DeviceClass;
	struct Row {
		const char *node_class;
		std::optional<std::string_view> chassis;
		std::optional<std::string_view> os;
		DeviceClass expected;
	};
	const Row rows[] = {
	    {"WINDOWS_SERVER", std::nullopt, std::nullopt, DeviceClass::kServer},
	    {"LINUX_SERVER", "DESKTOP", std::nullopt, DeviceClass::kServer},
	    {"MAC_SERVER", std::nullopt, std::nullopt, DeviceClass::kServer},
	    {"VMWARE_VM_HOST", std::nullopt, std::nullopt, DeviceClass::kServer},
	    {"HYPERV_VMM_HOST", std::nullopt, std::nullopt, DeviceClass::kServer},
	    {"WINDOWS_WORKSTATION", "LAPTOP", std::nullopt, DeviceClass::kLaptop},
	    {"WINDOWS_WORKSTATION", "laptop", std::nullopt, DeviceClass::kLaptop},
	    {"WINDOWS_WORKSTATION", "DESKTOP", std::nullopt, DeviceClass::kDesktop},
	    {"WINDOWS_WORKSTATION", "UNKNOWN", std::nullopt, DeviceClass::kDesktop},
	    {"WINDOWS_WORKSTATION", std::nullopt, std::nullopt, DeviceClass::kDesktop},
	    {"MAC", "LAPTOP", std::nullopt, DeviceClass::kLaptop},
	    {"MAC", "MOBILE", std::nullopt, DeviceClass::kDesktop},
	    {"LINUX_WORKSTATION", "LAPTOP", std::nullopt, DeviceClass::kLaptop},
	    {"LINUX_WORKSTATION", std::nullopt, std::nullopt, DeviceClass::kDesktop},
	    {"VMWARE_VM_GUEST", std::nullopt, "Windows Server 2022 Standard", DeviceClass::kServer},
	    {"VMWARE_VM_GUEST", std::nullopt, "Windows 10 Enterprise", DeviceClass::kDesktop},
	    {"VMWARE_VM_GUEST", std::nullopt, std::nullopt, DeviceClass::kDesktop},
	    {"HYPERV_VMM_GUEST", "LAPTOP", "Ubuntu Server 22.04", DeviceClass::kServer},
	    {"HYPERV_VMM_GUEST", std::nullopt, "Ubuntu 22.04", DeviceClass::kDesktop},
	    {"ANDROID", std::nullopt, std::nullopt, DeviceClass::kOther},
	    {"APPLE_IOS", std::nullopt, std::nullopt, DeviceClass::kOther},
	    {"APPLE_IPADOS", std::nullopt, std::nullopt, DeviceClass::kOther},
	    {"CLOUD_MONITOR_TARGET", std::nullopt, std::nullopt, DeviceClass::kOther},
	    {"NMS_SWITCH", std::nullopt, std::nullopt, DeviceClass::kOther},
	    {"NMS_SERVER", std::nullopt, std::nullopt, DeviceClass::kOther},
	    {"NMS_FIREWALL", std::nullopt, "Server", DeviceClass::kOther},
	    {"SOMETHING_NEW", "LAPTOP", std::nullopt, DeviceClass::kOther},
	    {"", std::nullopt, std::nullopt, DeviceClass::kOther},
	};
	for (const Row &r : rows)
		EXPECT_EQ(NinjaOneConnector::MapDeviceClass(r.node_class, r.chassis, r.os), r.expected)
		    << r.node_class << " " << r.chassis.value_or("-") << " " << r.os.value_or("-");
}
