#include "connectors/dattormm.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

// lastSeen as the OpenAPI declares it (an ISO 8601 string) or as some
// clients see it (milliseconds since the epoch, as a number or a string of
// digits).
std::optional<std::string> LastSeen(const json::Object &o, std::string_view field) {
	const json::Value *v = o.Get(field);
	if (v == nullptr)
		return std::nullopt;
	const char *expected = "an ISO 8601 timestamp or milliseconds since the epoch";
	try {
		if (v->IsNumber() || (v->IsString() && AllDigits(v->text())))
			return model::TimestampFromEpochMillis(v->text());
		if (v->IsString())
			return model::NormalizeTimestamp(v->text(), true);
	} catch (const Error &) {
		o.Unexpected(field, expected, v);
	}
	o.Unexpected(field, expected, v);
}

// Reads a Datto list page by page: `list_key` holds the items, and
// pageDetails.nextPageUrl the next page until it is null. `on_page` gets the
// items and their Where ("page <n>", 0-based like the API's page=).
void FetchPages(http::Client &client, const DattoRmmConnector::Settings &settings, const std::string &path,
                const char *list_key, std::string_view phase,
                const std::function<void(const json::Value &, const json::Where &)> &on_page) {
	const std::string endpoint = "GET " + path;
	NextPageLinks links(endpoint,
	                    JoinUrl(settings.base_url, path) + "?page=0&max=" + std::to_string(settings.page_size),
	                    UrlOrigin(settings.base_url), "pageDetails.nextPageUrl", settings.max_pages,
	                    "billrecon only follows pagination links to the server in base_url; check base_url (the "
	                    "platform's API URL, e.g. https://merlot-api.centrastage.net).");
	for (long page = 0;; ++page) {
		http::Response response =
		    client.Send(JsonGet(links.url(), std::string(phase) + " page " + std::to_string(page)));
		const std::string record = "page " + std::to_string(page);
		json::Value root = json::ParseResponse(response.body, endpoint + " " + record);
		json::Where where{endpoint, record, ""};
		json::Object body(root, where);
		const json::Value &items = body.RequiredArray(list_key);
		json::Object details = body.RequiredObject("pageDetails");
		std::optional<std::string> next = details.OptionalNonEmptyString("nextPageUrl");
		on_page(items, where);
		if (!next)
			return;
		links.Follow(response, *next, record);
	}
}

model::VendorAccount MapSite(json::Object o) {
	model::VendorAccount a;
	a.external_id = o.RequiredId("uid");
	o.SetRecordId(a.external_id);
	a.name = o.RequiredString("name");
	return a;
}

model::UsageRecord MapDevice(json::Object o) {
	model::UsageRecord u;
	u.external_id = o.RequiredId("uid");
	o.SetRecordId(u.external_id);
	u.account_external_id = o.RequiredId("siteUid");
	u.kind = model::UsageKind::kDevice;
	u.quantity = model::Decimal::Parse("1");
	std::optional<json::Object> type = o.OptionalObject("deviceType");
	u.product = type ? type->OptionalNonEmptyString("category") : std::nullopt;
	std::optional<std::string> device_class = o.OptionalString("deviceClass");
	u.device_class = DattoRmmConnector::MapDeviceClass(
	    u.product ? std::optional<std::string_view>(*u.product) : std::nullopt,
	    device_class ? std::optional<std::string_view>(*device_class) : std::nullopt);
	u.device_name = o.OptionalNonEmptyString("hostname");
	u.os_name = o.OptionalNonEmptyString("operatingSystem");
	u.online = o.OptionalBool("online");
	std::optional<bool> deleted = o.OptionalBool("deleted");
	std::optional<bool> suspended = o.OptionalBool("suspended");
	if (deleted || suspended)
		u.enabled = !(deleted.value_or(false) || suspended.value_or(false));
	u.last_active_at = LastSeen(o, "lastSeen");
	return u;
}

} // namespace

DattoRmmConnector::DattoRmmConnector(Settings settings) : settings_(std::move(settings)) {
	settings_.page_size = std::clamp(settings_.page_size, 1L, 250L);
}

model::DeviceClass DattoRmmConnector::MapDeviceClass(std::optional<std::string_view> category,
                                                     std::optional<std::string_view> device_class) {
	using model::DeviceClass;
	if (category) {
		std::string_view c = Trim(*category);
		if (http::IEquals(c, "Desktop"))
			return DeviceClass::kDesktop;
		if (http::IEquals(c, "Laptop"))
			return DeviceClass::kLaptop;
		if (http::IEquals(c, "Server") || http::IEquals(c, "ESXi Host"))
			return DeviceClass::kServer;
		return DeviceClass::kOther;
	}
	if (device_class && http::IEquals(Trim(*device_class), "esxihost"))
		return DeviceClass::kServer;
	return DeviceClass::kOther;
}

SyncOutcome DattoRmmConnector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = FullSyncOutcome(request, kQuickFallbackNote);

	FetchPages(client, settings_, "/api/v2/account/sites", "sites", "sites",
	           [&](const json::Value &items, const json::Where &where) {
		           std::vector<model::VendorAccount> rows;
		           rows.reserve(items.size());
		           for (size_t i = 0; i < items.size(); ++i)
			           rows.push_back(MapSite(json::Object::Item(items, i, where)));
		           if (!rows.empty())
			           sink.PutVendorAccounts(rows);
		           sink.OnPage("sites", rows.size());
	           });
	FetchPages(client, settings_, "/api/v2/account/devices", "devices", "devices",
	           [&](const json::Value &items, const json::Where &where) {
		           std::vector<model::UsageRecord> rows;
		           rows.reserve(items.size());
		           for (size_t i = 0; i < items.size(); ++i)
			           rows.push_back(MapDevice(json::Object::Item(items, i, where)));
		           if (!rows.empty())
			           sink.PutUsage(rows);
		           sink.OnPage("devices", rows.size());
	           });
	return outcome;
}

std::unique_ptr<Connector> CreateDattoRmm(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	auto settings = PagedSettings<DattoRmmConnector::Settings>(config, parsed);
	http::OAuth2Config oauth;
	oauth.token_url = parsed.StringOption("token_url").value_or(JoinUrl(config.base_url, "/auth/oauth/token"));
	oauth.grant = http::OAuth2Config::Grant::kPassword;
	oauth.body_style = http::OAuth2Config::BodyStyle::kForm;
	oauth.username = parsed.Credential("api_key");
	oauth.password = parsed.Credential("api_secret");
	oauth.basic_client = std::make_pair(std::string(DattoRmmConnector::kBasicUser),
	                                    std::string(DattoRmmConnector::kBasicPassword));
	client.SetAuth(http::MakeOAuth2Auth(std::move(oauth)));
	return std::make_unique<DattoRmmConnector>(std::move(settings));
}

} // namespace billrecon::connectors
