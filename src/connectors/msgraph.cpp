#include "connectors/msgraph.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <utility>

namespace billrecon::connectors {

namespace {

using SkuNames = std::unordered_map<std::string, std::string>; // skuId (lower-case) -> skuPartNumber

// Canonical timestamps ("YYYY-MM-DDTHH:MM:SS[.ffffff]Z") compared as instants:
// the fraction is optional, so plain string order is not enough.
bool IsLater(const std::string &a, const std::string &b) {
	auto fraction = [](const std::string &s) {
		std::string f = s.size() > 21 ? s.substr(20, s.size() - 21) : std::string();
		f.resize(6, '0');
		return f;
	};
	int head = a.compare(0, 19, b, 0, 19);
	if (head != 0)
		return head > 0;
	return fraction(a) > fraction(b);
}

// Reads one OData collection of one tenant page by page, following
// @odata.nextLink unchanged until it is absent. `on_page` gets the page's
// "value" array and its Where ("tenant <id> page <n>").
void FetchCollection(http::Client &client, const MsGraphConnector::Settings &settings, const std::string &tenant,
                     const std::string &path, const std::string &query, std::string_view phase,
                     const std::function<void(const json::Value &, const json::Where &)> &on_page) {
	const std::string endpoint = "GET " + path;
	NextPageLinks links(endpoint, JoinUrl(settings.base_url, path) + query, UrlOrigin(settings.base_url),
	                    "@odata.nextLink", settings.max_pages);
	for (long page = 1;; ++page) {
		http::Response response = client.Send(
		    JsonGet(links.url(), std::string(phase) + " of tenant " + tenant + " page " + std::to_string(page)));
		const std::string record = "tenant " + tenant + " page " + std::to_string(page);
		json::Value root = json::ParseResponse(response.body, endpoint + " " + record);
		json::Where where{endpoint, record, ""};
		json::Object body(root, where);
		const json::Value &items = body.RequiredArray("value");
		on_page(items, where);
		std::optional<std::string> next = body.OptionalNonEmptyString("@odata.nextLink");
		if (!next)
			return;
		// The foreign-link DETAIL names the page without the tenant.
		links.MoveTo(links.Resolve(response, *next, "page " + std::to_string(page)), record);
	}
}

model::VendorAccount MapOrganization(const json::Value &items, const json::Where &where, const std::string &tenant,
                                     RecordSink &sink) {
	if (items.size() == 0)
		json::ThrowMissing(where, "value[0]");
	json::Object o = json::Object::Item(items, 0, where);
	model::VendorAccount a;
	a.external_id = tenant;
	std::optional<std::string> id = o.OptionalId("id");
	if (id) {
		o.SetRecordId(*id);
		if (Lower(*id) != tenant)
			sink.Warn("msgraph: customer tenant " + tenant + " answered with organization " + *id +
			          "; check that options.token_url contains {tenant} so that each tenant gets its own token");
	}
	a.name = o.RequiredString("displayName");
	if (const json::Value *domains = o.OptionalArray("verifiedDomains")) {
		for (size_t i = 0; i < domains->size(); ++i) {
			json::Where w = o.where();
			w.path = w.FieldPath("verifiedDomains[" + std::to_string(i) + "]");
			json::Object d(domains->at(i), w);
			if (std::optional<std::string> name = d.OptionalNonEmptyString("name")) {
				std::string domain = Lower(*name);
				if (std::find(a.domains.begin(), a.domains.end(), domain) == a.domains.end())
					a.domains.push_back(std::move(domain));
			}
		}
	}
	return a;
}

model::UsageRecord MapSku(json::Object o, const std::string &tenant, SkuNames &names) {
	std::string sku_id = Lower(o.RequiredId("skuId"));
	o.SetRecordId(tenant + ":" + sku_id);
	model::UsageRecord u;
	u.external_id = tenant + ":" + sku_id;
	u.account_external_id = tenant;
	u.kind = model::UsageKind::kLicence;
	std::string part = o.RequiredString("skuPartNumber");
	if (part.empty())
		o.Unexpected("skuPartNumber", "a non-empty string", o.value().Find("skuPartNumber"));
	u.product = part;
	u.product_name = sku_id; // Graph has no display name; the SKU id, so rules may name either
	u.quantity = o.RequiredDecimal("consumedUnits");
	if (std::optional<json::Object> prepaid = o.OptionalObject("prepaidUnits"))
		u.purchased_quantity = prepaid->OptionalDecimal("enabled");
	u.status = o.OptionalNonEmptyString("capabilityStatus");
	if (std::optional<std::string> status = o.OptionalString("capabilityStatus")) {
		u.enabled = MsGraphConnector::SkuEnabled(*status);
		if (!u.enabled)
			o.Unexpected("capabilityStatus", "one of Enabled, Warning, Suspended, Deleted, LockedOut",
			             o.value().Find("capabilityStatus"));
	}
	names[sku_id] = part;
	return u;
}

model::UsageRecord MapUser(json::Object o, const std::string &tenant, const SkuNames &names) {
	model::UsageRecord u;
	u.external_id = o.RequiredId("id");
	o.SetRecordId(u.external_id);
	u.account_external_id = tenant;
	u.kind = model::UsageKind::kUser;
	u.quantity = model::Decimal::Parse("1");
	u.enabled = o.OptionalBool("accountEnabled");
	u.user_name = o.OptionalNonEmptyString("userPrincipalName");
	if (!u.user_name)
		u.user_name = o.OptionalNonEmptyString("displayName");
	std::vector<std::string> sku_ids, parts;
	if (const json::Value *licences = o.OptionalArray("assignedLicenses")) {
		for (size_t i = 0; i < licences->size(); ++i) {
			json::Where w = o.where();
			w.path = w.FieldPath("assignedLicenses[" + std::to_string(i) + "]");
			json::Object l(licences->at(i), w);
			std::string sku = Lower(l.RequiredId("skuId"));
			auto it = names.find(sku);
			if (it != names.end())
				parts.push_back(it->second);
			sku_ids.push_back(std::move(sku));
		}
	}
	u.licensed = !sku_ids.empty();
	std::sort(sku_ids.begin(), sku_ids.end());
	std::sort(parts.begin(), parts.end());
	if (!sku_ids.empty())
		u.product = Join(sku_ids, ",");
	if (!parts.empty())
		u.product_name = Join(parts, ",");
	if (std::optional<json::Object> activity = o.OptionalObject("signInActivity")) {
		// The later of interactive and non-interactive sign-ins: a user who
		// only refreshes tokens (Outlook, Teams) is still active.
		std::optional<std::string> interactive = activity->OptionalTimestamp("lastSignInDateTime");
		std::optional<std::string> background = activity->OptionalTimestamp("lastNonInteractiveSignInDateTime");
		u.last_active_at = interactive;
		if (background && (!interactive || IsLater(*background, *interactive)))
			u.last_active_at = background;
	}
	return u;
}

} // namespace

MsGraphConnector::MsGraphConnector(Settings settings) : settings_(std::move(settings)) {
	settings_.page_size = std::clamp(settings_.page_size, 1L, 999L);
}

std::string MsGraphConnector::TokenUrlFor(std::string_view url_template, std::string_view tenant) {
	return ReplaceAll(url_template, "{tenant}", tenant);
}

void MsGraphConnector::UseTenant(http::Client &client, const std::string &tenant) const {
	http::OAuth2Config oauth = ClientCredentialsGrant(TokenUrlFor(settings_.token_url_template, tenant),
	                                                  settings_.client_id, settings_.client_secret);
	oauth.scope = kScope;
	client.SetAuth(http::MakeOAuth2Auth(std::move(oauth)));
}

std::optional<bool> MsGraphConnector::SkuEnabled(std::string_view status) {
	if (http::IEquals(status, "Enabled") || http::IEquals(status, "Warning"))
		return true;
	if (http::IEquals(status, "Suspended") || http::IEquals(status, "Deleted") || http::IEquals(status, "LockedOut"))
		return false;
	return std::nullopt;
}

bool MsGraphConnector::IsGuid(std::string_view s) {
	return connectors::IsGuid(s);
}

SyncOutcome MsGraphConnector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = FullSyncOutcome(request, kQuickFallbackNote);

	const std::string top = "&$top=" + std::to_string(settings_.page_size);
	for (const std::string &tenant : settings_.tenants) {
		UseTenant(client, tenant);

		// 1. The tenant itself.
		FetchCollection(client, settings_, tenant, "/v1.0/organization", "", "organization",
		                [&](const json::Value &items, const json::Where &where) {
			                std::vector<model::VendorAccount> rows{MapOrganization(items, where, tenant, sink)};
			                sink.PutVendorAccounts(rows);
			                sink.OnPage("organization", rows.size());
		                });

		// 2. Licences: one record per SKU; remembers skuId -> part number for users.
		SkuNames names;
		FetchCollection(client, settings_, tenant, "/v1.0/subscribedSkus", "", "licences",
		                [&](const json::Value &items, const json::Where &where) {
			                std::vector<model::UsageRecord> rows;
			                rows.reserve(items.size());
			                for (size_t i = 0; i < items.size(); ++i)
				                rows.push_back(MapSku(json::Object::Item(items, i, where), tenant, names));
			                if (!rows.empty())
				                sink.PutUsage(rows);
			                sink.OnPage("licences", rows.size());
		                });

		// 3. Users. signInActivity needs AuditLog.Read.All and an Entra ID
		// P1/P2 tenant; without them Graph refuses the whole request with 403,
		// so the first page is retried without it.
		long pages = 0;
		auto on_users = [&](const json::Value &items, const json::Where &where) {
			++pages;
			std::vector<model::UsageRecord> rows;
			rows.reserve(items.size());
			for (size_t i = 0; i < items.size(); ++i)
				rows.push_back(MapUser(json::Object::Item(items, i, where), tenant, names));
			if (!rows.empty())
				sink.PutUsage(rows);
			sink.OnPage("users", rows.size());
		};
		const std::string select = std::string("?$select=") + kUserSelect;
		try {
			FetchCollection(client, settings_, tenant, "/v1.0/users", select + ",signInActivity" + top, "users",
			                on_users);
		} catch (const http::HttpError &e) {
			if (e.status() != 403 || pages > 0)
				throw;
			sink.Warn("msgraph tenant " + tenant +
			          ": sign-in activity is not readable (HTTP 403 on GET /v1.0/users with signInActivity), so "
			          "users were synced without last sign-in times; grant the app AuditLog.Read.All (the tenant "
			          "also needs Entra ID P1 or P2)");
			FetchCollection(client, settings_, tenant, "/v1.0/users", select + top, "users", on_users);
		}
	}
	return outcome;
}

std::unique_ptr<Connector> CreateMsGraph(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	MsGraphConnector::Settings settings;
	settings.base_url = config.base_url;
	settings.client_id = parsed.Credential("client_id");
	settings.client_secret = parsed.Credential("client_secret");
	settings.token_url_template = parsed.StringOption("token_url").value_or(MsGraphConnector::kDefaultTokenUrl);
	const json::Value *tenants = parsed.options.Find("customer_tenants");
	if (tenants == nullptr || (tenants->IsArray() && tenants->size() == 0))
		throw Error(sqlstate::kPrerequisite, "no customer tenants to read for msgraph integration \"" + config.name + "\"",
		            "options.customer_tenants is not set, and no enabled partnercenter integration has synced "
		            "customers whose tenant ids could be used.",
		            "Set options.customer_tenants to the customers' tenant ids, or add and sync a partnercenter "
		            "integration: its customers are then read from Microsoft 365 too.");
	bool ok = tenants->IsArray();
	for (size_t i = 0; ok && i < tenants->size(); ++i) {
		const json::Value &t = tenants->at(i);
		ok = t.IsString() && MsGraphConnector::IsGuid(t.text());
		if (ok)
			settings.tenants.push_back(Lower(t.text()));
	}
	if (!ok)
		throw Error(sqlstate::kInvalidParameter, "invalid option \"customer_tenants\" for msgraph integration",
		            "msgraph integrations need options.customer_tenants, a non-empty array of customer tenant ids "
		            "(GUIDs).",
		            "Set customer_tenants to the tenant ids of the customers whose licences and users to read.");
	auto connector = std::make_unique<MsGraphConnector>(std::move(settings));
	connector->UseTenant(client, connector->settings().tenants.front());
	return connector;
}

} // namespace billrecon::connectors
