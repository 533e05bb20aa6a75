#include "connectors/ninjaone.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"

#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

bool ContainsNoCase(std::string_view haystack, std::string_view needle) {
	if (needle.empty())
		return true;
	for (size_t i = 0; i + needle.size() <= haystack.size(); ++i)
		if (http::IEquals(haystack.substr(i, needle.size()), needle))
			return true;
	return false;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
	return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The record's id as a number, for the after= cursor. NinjaOne ids are
// integers; anything else cannot be paged and fails the sync.
unsigned long long NumericId(json::Object &o) {
	std::string id = o.RequiredId("id");
	if (!AllDigits(id, 19))
		o.Unexpected("id", "a non-negative integer id", o.value().Find("id"));
	o.SetRecordId(id);
	return std::stoull(id);
}

// Reads a bare-array endpoint page by page: pageSize=N, then after=<largest
// id so far>, until a page is shorter than N. `map` turns one item into a
// row; `put` stores one page of rows.
template <typename Row, typename Map, typename Put>
void FetchByCursor(http::Client &client, const NinjaOneConnector::Settings &settings, std::string_view path,
                   std::string_view phase, RecordSink &sink, Map &&map, Put &&put) {
	const std::string endpoint = "GET " + std::string(path);
	const std::string first = JoinUrl(settings.base_url, path) + "?pageSize=" + std::to_string(settings.page_size);
	std::optional<unsigned long long> after;
	for (long page = 1;; ++page) {
		http::Request request;
		request.method = http::Method::kGet;
		request.url = after ? first + "&after=" + std::to_string(*after) : first;
		request.label = std::string(phase) + " page " + std::to_string(page);
		http::Response response = client.Send(std::move(request));
		json::Value root = json::ParseResponse(response.body, endpoint + " page " + std::to_string(page));
		json::Where where{endpoint, "page " + std::to_string(page), ""};
		const json::Value &items = json::ExpectArray(root, where);
		std::vector<Row> rows;
		rows.reserve(items.size());
		std::optional<unsigned long long> largest = after;
		for (size_t i = 0; i < items.size(); ++i) {
			json::Object o = json::Object::Item(items, i, where);
			unsigned long long id = NumericId(o);
			// after=X means "ids greater than X": an id at or below the
			// cursor means the API ignored it and would repeat pages forever.
			if (after && id <= *after)
				ThrowPaginationLoop(endpoint, "page " + std::to_string(page) + " (after=" + std::to_string(*after) +
				                                  ") holds id " + std::to_string(id) +
				                                  ", which is not greater than the cursor");
			if (!largest || id > *largest)
				largest = id;
			rows.push_back(map(o));
		}
		if (!rows.empty())
			put(rows);
		sink.OnPage(phase, rows.size());
		if (items.size() < static_cast<size_t>(settings.page_size))
			break;
		if (page >= settings.max_pages)
			ThrowTooManyPages(endpoint);
		after = largest;
	}
}

model::VendorAccount MapOrganization(json::Object &o) {
	model::VendorAccount a;
	a.external_id = o.RequiredId("id");
	a.name = o.RequiredString("name");
	return a;
}

model::UsageRecord MapDevice(json::Object &o) {
	model::UsageRecord u;
	u.external_id = o.RequiredId("id");
	u.kind = model::UsageKind::kDevice;
	u.account_external_id = o.RequiredId("organizationId");
	u.product = o.OptionalNonEmptyString("nodeClass");
	u.quantity = model::Decimal::Parse("1");
	std::optional<json::Object> os = o.OptionalObject("os");
	std::optional<json::Object> system = o.OptionalObject("system");
	u.os_name = os ? os->OptionalNonEmptyString("name") : std::nullopt;
	std::optional<std::string> chassis = system ? system->OptionalString("chassisType") : std::nullopt;
	u.device_class = NinjaOneConnector::MapDeviceClass(
	    u.product.value_or(""), chassis ? std::optional<std::string_view>(*chassis) : std::nullopt,
	    u.os_name ? std::optional<std::string_view>(*u.os_name) : std::nullopt);
	u.device_name = o.OptionalNonEmptyString("displayName");
	if (!u.device_name)
		u.device_name = o.OptionalNonEmptyString("systemName");
	if (!u.device_name)
		u.device_name = o.OptionalNonEmptyString("dnsName");
	if (system) {
		u.serial_number = system->OptionalNonEmptyString("serialNumber");
		if (!u.serial_number)
			u.serial_number = system->OptionalNonEmptyString("biosSerialNumber");
	}
	if (std::optional<bool> offline = o.OptionalBool("offline"))
		u.online = !*offline;
	if (std::optional<std::string> approval = o.OptionalString("approvalStatus"))
		u.enabled = !http::IEquals(*approval, "PENDING");
	u.last_active_at = o.OptionalEpochSeconds("lastContact");
	u.source_updated_at = o.OptionalEpochSeconds("lastUpdate");
	return u;
}

} // namespace

NinjaOneConnector::NinjaOneConnector(Settings settings) : settings_(std::move(settings)) {
	if (settings_.page_size < 1)
		settings_.page_size = 1;
}

model::DeviceClass NinjaOneConnector::MapDeviceClass(std::string_view node_class,
                                                     std::optional<std::string_view> chassis_type,
                                                     std::optional<std::string_view> os_name) {
	using model::DeviceClass;
	if (node_class.rfind("NMS_", 0) == 0)
		return DeviceClass::kOther; // network devices monitored via NMS, NMS_SERVER included
	if (EndsWith(node_class, "_SERVER") || node_class == "VMWARE_VM_HOST" || node_class == "HYPERV_VMM_HOST")
		return DeviceClass::kServer;
	if (node_class == "WINDOWS_WORKSTATION" || node_class == "MAC" || node_class == "LINUX_WORKSTATION") {
		if (chassis_type && http::IEquals(*chassis_type, "LAPTOP"))
			return DeviceClass::kLaptop;
		return DeviceClass::kDesktop; // DESKTOP, UNKNOWN, MOBILE or absent
	}
	if (node_class == "VMWARE_VM_GUEST" || node_class == "HYPERV_VMM_GUEST")
		return os_name && ContainsNoCase(*os_name, "server") ? DeviceClass::kServer : DeviceClass::kDesktop;
	return DeviceClass::kOther;
}

SyncOutcome NinjaOneConnector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = FullSyncOutcome(request, kQuickFallbackNote);

	FetchByCursor<model::VendorAccount>(
	    client, settings_, "/v2/organizations", "organizations", sink, MapOrganization,
	    [&](const std::vector<model::VendorAccount> &rows) { sink.PutVendorAccounts(rows); });
	FetchByCursor<model::UsageRecord>(client, settings_, "/v2/devices-detailed", "devices", sink, MapDevice,
	                                  [&](const std::vector<model::UsageRecord> &rows) { sink.PutUsage(rows); });
	return outcome;
}

std::unique_ptr<Connector> CreateNinjaOne(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	auto settings = PagedSettings<NinjaOneConnector::Settings>(config, parsed);
	http::OAuth2Config oauth =
	    ClientCredentialsGrant(parsed.StringOption("token_url").value_or(JoinUrl(config.base_url, "/ws/oauth/token")),
	                           parsed.Credential("client_id"), parsed.Credential("client_secret"));
	oauth.scope = NinjaOneConnector::kScope;
	client.SetAuth(http::MakeOAuth2Auth(std::move(oauth)));
	return std::make_unique<NinjaOneConnector>(std::move(settings));
}

} // namespace billrecon::connectors
