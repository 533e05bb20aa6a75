#include "connectors/pax8.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

// A non-negative integer field of the page object (numbers arrive as text).
long PageNumber(const json::Object &o, std::string_view field) {
	std::optional<long long> n = WholeNumber(o.RequiredDecimal(field));
	if (!n || *n < 0)
		o.Unexpected(field, "a non-negative integer", o.value().Find(field));
	return static_cast<long>(*n);
}

// Reads a 0-based page=/size= list until number + 1 >= totalPages. `on_page`
// gets the page's content array and its Where ("page <n>").
void FetchPages(http::Client &client, const Pax8Connector::Settings &settings, const std::string &path,
                std::string_view phase, const std::function<void(const json::Value &, const json::Where &)> &on_page) {
	const std::string endpoint = "GET " + path;
	for (long page = 0;; ++page) {
		std::string url = JoinUrl(settings.base_url, path) + "?page=" + std::to_string(page) +
		                  "&size=" + std::to_string(settings.page_size);
		std::string label = std::string(phase) + " page " + std::to_string(page);
		http::Response response = client.Send(JsonGet(std::move(url), std::move(label)));
		const std::string record = "page " + std::to_string(page);
		json::Value root = json::ParseResponse(response.body, endpoint + " " + record);
		json::Where where{endpoint, record, ""};
		json::Object body(root, where);
		const json::Value &items = body.RequiredArray("content");
		json::Object info = body.RequiredObject("page");
		long number = PageNumber(info, "number");
		long total_pages = PageNumber(info, "totalPages");
		// A server that ignores page= would answer page 0 again and again.
		if (number != page)
			ThrowPaginationLoop(endpoint, "page " + std::to_string(page) + " was answered with page.number " +
			                                  std::to_string(number));
		on_page(items, where);
		if (number + 1 >= total_pages)
			return;
		if (page + 1 >= settings.max_pages)
			ThrowTooManyPages(endpoint);
	}
}

model::VendorAccount MapCompany(json::Object o) {
	model::VendorAccount a;
	a.external_id = o.RequiredId("id");
	o.SetRecordId(a.external_id);
	a.name = o.RequiredString("name");
	if (std::optional<std::string> website = o.OptionalNonEmptyString("website")) {
		if (std::optional<std::string> domain = Pax8Connector::DomainOfWebsite(*website))
			a.domains.push_back(std::move(*domain));
	}
	a.status = o.OptionalNonEmptyString("status");
	a.source_updated_at = o.OptionalTimestamp("updatedDate");
	return a;
}

model::UsageRecord MapSubscription(json::Object o) {
	model::UsageRecord u;
	u.external_id = o.RequiredId("id");
	o.SetRecordId(u.external_id);
	u.account_external_id = o.RequiredId("companyId");
	u.kind = model::UsageKind::kSubscription;
	u.product = o.OptionalId("productId");
	u.product_name = o.OptionalNonEmptyString("productName");
	u.quantity = o.RequiredDecimal("quantity");
	u.status = o.OptionalNonEmptyString("status");
	u.billing_term = o.OptionalNonEmptyString("billingTerm");
	// The commitment's end when there is one, else the subscription's own end.
	if (std::optional<json::Object> commitment = o.OptionalObject("commitmentTerm"))
		u.term_end_date = commitment->OptionalDate("endDate");
	if (!u.term_end_date)
		u.term_end_date = o.OptionalDate("endDate");
	if (std::optional<std::string> status = o.OptionalString("status")) {
		u.enabled = Pax8Connector::SubscriptionEnabled(*status);
		if (!u.enabled)
			o.Unexpected("status",
			             "one of Active, Cancelled, PendingManual, PendingAutomated, PendingCancel, WaitingForDetails, "
			             "Trial, Converted, PendingActivation, Activated",
			             o.value().Find("status"));
	}
	// partnerCost is what Pax8 charges the partner per unit; price is the
	// customer's price, which the PSA holds.
	u.unit_cost = o.OptionalDecimal("partnerCost");
	u.source_updated_at = o.OptionalTimestamp("updatedDate");
	return u;
}

// Product names by id for the sync; nullopt = Pax8 answered 404.
class ProductNames {
public:
	ProductNames(http::Client &client, const Pax8Connector::Settings &settings)
	    : client_(client), settings_(settings) {
	}

	// Fetches the products in `ids` not seen before, several at once.
	void Resolve(const std::vector<std::string> &ids) {
		std::vector<std::string> wanted;
		for (const std::string &id : ids)
			if (names_.find(id) == names_.end() &&
			    std::find(wanted.begin(), wanted.end(), id) == wanted.end())
				wanted.push_back(id);
		if (wanted.empty())
			return;
		std::vector<http::Request> requests;
		for (const std::string &id : wanted)
			requests.push_back(Request(id));
		std::vector<http::Response> responses;
		try {
			responses = client_.SendAll(std::move(requests));
		} catch (const http::HttpError &e) {
			if (e.status() != 404)
				throw;
			// SendAll stops at the first failure: ask again one by one, so
			// that one retired product does not hide the others' names.
			for (const std::string &id : wanted)
				ResolveOne(id);
			return;
		}
		for (size_t i = 0; i < wanted.size() && i < responses.size(); ++i)
			Store(wanted[i], responses[i]);
	}

	std::optional<std::string> Find(const std::string &id) const {
		auto it = names_.find(id);
		return it == names_.end() ? std::nullopt : it->second;
	}

	const std::vector<std::string> &not_found() const noexcept {
		return not_found_;
	}

private:
	http::Request Request(const std::string &id) const {
		return JsonGet(JoinUrl(settings_.base_url, "/v1/products/" + http::UrlEncode(id)), "product " + id);
	}

	void ResolveOne(const std::string &id) {
		try {
			Store(id, client_.Send(Request(id)));
		} catch (const http::HttpError &e) {
			if (e.status() != 404)
				throw;
			names_[id] = std::nullopt;
			not_found_.push_back(id);
		}
	}

	void Store(const std::string &id, const http::Response &response) {
		const std::string endpoint = "GET /v1/products/" + id;
		json::Value root = json::ParseResponse(response.body, endpoint);
		json::Object o(root, json::Where{endpoint, "record id " + id, ""});
		std::optional<std::string> name = o.OptionalNonEmptyString("name");
		if (!name)
			o.Missing("name");
		names_[id] = std::move(name);
	}

	http::Client &client_;
	const Pax8Connector::Settings &settings_;
	std::unordered_map<std::string, std::optional<std::string>> names_;
	std::vector<std::string> not_found_;
};

} // namespace

Pax8Connector::Pax8Connector(Settings settings) : settings_(std::move(settings)) {
	settings_.page_size = std::clamp(settings_.page_size, 1L, 200L);
}

std::optional<bool> Pax8Connector::SubscriptionEnabled(std::string_view status) {
	if (http::IEquals(status, "Active"))
		return true;
	for (const char *s : {"Cancelled", "PendingManual", "PendingAutomated", "PendingCancel", "WaitingForDetails",
	                      "Trial", "Converted", "PendingActivation", "Activated"})
		if (http::IEquals(status, s))
			return false;
	return std::nullopt;
}

std::optional<std::string> Pax8Connector::DomainOfWebsite(std::string_view website) {
	return connectors::DomainOfWebsite(website);
}

SyncOutcome Pax8Connector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = FullSyncOutcome(request, kQuickFallbackNote);

	FetchPages(client, settings_, "/v1/companies", "companies",
	           [&](const json::Value &items, const json::Where &where) {
		           std::vector<model::VendorAccount> rows;
		           rows.reserve(items.size());
		           for (size_t i = 0; i < items.size(); ++i)
			           rows.push_back(MapCompany(json::Object::Item(items, i, where)));
		           if (!rows.empty())
			           sink.PutVendorAccounts(rows);
		           sink.OnPage("companies", rows.size());
	           });

	ProductNames products(client, settings_);
	FetchPages(client, settings_, "/v1/subscriptions", "subscriptions",
	           [&](const json::Value &items, const json::Where &where) {
		           std::vector<model::UsageRecord> rows;
		           rows.reserve(items.size());
		           std::vector<std::string> unnamed;
		           for (size_t i = 0; i < items.size(); ++i) {
			           rows.push_back(MapSubscription(json::Object::Item(items, i, where)));
			           if (!rows.back().product_name && rows.back().product)
				           unnamed.push_back(*rows.back().product);
		           }
		           products.Resolve(unnamed);
		           for (model::UsageRecord &u : rows)
			           if (!u.product_name && u.product)
				           u.product_name = products.Find(*u.product);
		           if (!rows.empty())
			           sink.PutUsage(rows);
		           sink.OnPage("subscriptions", rows.size());
	           });

	const std::vector<std::string> &missing = products.not_found();
	if (!missing.empty()) {
		const std::string ids = JoinFirst(missing, 5);
		sink.Warn("pax8: " + std::to_string(missing.size()) +
		          " product(s) not found (HTTP 404 on GET /v1/products/{id}); their subscriptions have no product "
		          "name: " + ids);
	}
	return outcome;
}

std::unique_ptr<Connector> CreatePax8(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	auto settings = PagedSettings<Pax8Connector::Settings>(config, parsed);
	http::OAuth2Config oauth =
	    ClientCredentialsGrant(parsed.StringOption("token_url").value_or(JoinUrl(config.base_url, "/v1/token")),
	                           parsed.Credential("client_id"), parsed.Credential("client_secret"),
	                           http::OAuth2Config::BodyStyle::kJson);
	oauth.audience = parsed.StringOption("audience").value_or(Pax8Connector::kDefaultAudience);
	client.SetAuth(http::MakeOAuth2Auth(std::move(oauth)));
	return std::make_unique<Pax8Connector>(std::move(settings));
}

} // namespace billrecon::connectors
