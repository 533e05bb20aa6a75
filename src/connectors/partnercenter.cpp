#include "connectors/partnercenter.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <unordered_set>
#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

constexpr const char *kContinuationHeader = "MS-ContinuationToken";

// The next request of a seek-paged collection.
struct PageRef {
	std::string url;
	std::optional<std::string> token; // MS-ContinuationToken
	std::string Key() const {
		return url + "\n" + token.value_or("");
	}
};

// Builds requests with the headers Partner Center wants on every call.
class RequestFactory {
public:
	RequestFactory(const PartnerCenterConnector::Settings &settings, std::string correlation_id)
	    : settings_(settings), correlation_id_(std::move(correlation_id)) {
	}
	http::Request Get(const PageRef &page, std::string label) const {
		http::Request r;
		r.method = http::Method::kGet;
		r.url = page.url;
		r.headers.push_back({"Accept", "application/json"});
		r.headers.push_back({"MS-RequestId", settings_.new_guid()}); // the client resends it unchanged on retry
		r.headers.push_back({"MS-CorrelationId", correlation_id_});
		r.headers.push_back({"MS-Contract-Version", PartnerCenterConnector::kContractVersion});
		if (page.token)
			r.headers.push_back({kContinuationHeader, *page.token});
		r.label = std::move(label);
		return r;
	}

private:
	const PartnerCenterConnector::Settings &settings_;
	std::string correlation_id_;
};

// links.next of a collection body as the next request, or nullopt on the
// last page. The continuation token comes from links.next.headers, or from a
// top-level continuationToken when the link carries none.
std::optional<PageRef> NextPage(const json::Object &body, const std::string &base_url) {
	std::optional<json::Object> links = body.OptionalObject("links");
	std::optional<json::Object> next = links ? links->OptionalObject("next") : std::nullopt;
	if (!next)
		return std::nullopt;
	std::string uri = next->RequiredString("uri");
	if (uri.empty())
		next->Unexpected("uri", "a non-empty string", next->value().Find("uri"));
	PageRef ref;
	if (const json::Value *headers = next->OptionalArray("headers")) {
		for (size_t i = 0; i < headers->size(); ++i) {
			json::Where w = next->where();
			w.path = w.FieldPath("headers[" + std::to_string(i) + "]");
			json::Object h(headers->at(i), w);
			if (http::IEquals(h.RequiredString("key"), kContinuationHeader))
				ref.token = h.RequiredString("value");
		}
	}
	if (!ref.token)
		ref.token = body.OptionalNonEmptyString("continuationToken");
	ref.url = PartnerCenterConnector::LinkUrl(base_url, uri);
	const std::string origin = UrlOrigin(base_url);
	if (UrlOrigin(ref.url) != origin)
		ThrowForeignLink(body.where().Describe(), "links.next.uri", uri, origin);
	return ref;
}

// Refuses a next page already read (same URL and continuation token).
void CheckNext(std::unordered_set<std::string> &visited, const PageRef &next, const std::string &endpoint, long page,
               long max_pages) {
	if (!visited.insert(next.Key()).second)
		ThrowPaginationLoop(endpoint, "page " + std::to_string(page) + " links to \"" + UrlForMessage(next.url) +
		                                  "\" with a continuation token already used");
	if (page >= max_pages)
		ThrowTooManyPages(endpoint);
}

model::VendorAccount MapCustomer(json::Object o) {
	model::VendorAccount a;
	std::string id = o.RequiredId("id");
	o.SetRecordId(id);
	a.external_id = Lower(id); // the customer's tenant id, as msgraph stores it
	json::Object profile = o.RequiredObject("companyProfile");
	a.name = profile.RequiredString("companyName");
	if (std::optional<std::string> domain = profile.OptionalNonEmptyString("domain"))
		a.domains.push_back(Lower(*domain));
	return a;
}

model::UsageRecord MapSubscription(json::Object o, const std::string &customer) {
	model::UsageRecord u;
	u.external_id = o.RequiredId("id");
	o.SetRecordId(u.external_id);
	u.account_external_id = customer;
	u.kind = model::UsageKind::kSubscription;
	u.product = o.OptionalNonEmptyString("offerId");
	u.product_name = o.OptionalNonEmptyString("offerName");
	if (!u.product_name)
		u.product_name = o.OptionalNonEmptyString("friendlyName");
	u.quantity = o.RequiredDecimal("quantity");
	u.status = o.OptionalNonEmptyString("status");
	u.billing_term = o.OptionalNonEmptyString("billingCycle");
	u.term_end_date = o.OptionalDate("commitmentEndDate");
	if (std::optional<std::string> status = o.OptionalString("status")) {
		u.enabled = PartnerCenterConnector::SubscriptionEnabled(*status);
		if (!u.enabled)
			o.Unexpected("status", "one of none, active, pending, suspended, deleted, expired, disabled",
			             o.value().Find("status"));
	}
	return u;
}

} // namespace

PartnerCenterConnector::PartnerCenterConnector(Settings settings) : settings_(std::move(settings)) {
	if (settings_.page_size < 1)
		settings_.page_size = 1;
	if (!settings_.new_guid)
		settings_.new_guid = RandomGuid;
}

std::optional<bool> PartnerCenterConnector::SubscriptionEnabled(std::string_view status) {
	if (http::IEquals(status, "active"))
		return true;
	for (const char *s : {"none", "pending", "suspended", "deleted", "expired", "disabled"})
		if (http::IEquals(status, s))
			return false;
	return std::nullopt;
}

std::string PartnerCenterConnector::LinkUrl(std::string_view base_url, std::string_view uri) {
	std::string url;
	if (uri.find("://") != std::string_view::npos)
		url = std::string(uri);
	else if (uri.rfind("/v1/", 0) == 0 || uri.rfind("v1/", 0) == 0)
		url = JoinUrl(base_url, uri);
	else
		url = JoinUrl(JoinUrl(base_url, "/v1"), uri);
	size_t q = url.find('?');
	if (q != std::string::npos)
		std::replace(url.begin() + static_cast<std::ptrdiff_t>(q) + 1, url.end(), '?', '&');
	return url;
}

std::string PartnerCenterConnector::RandomGuid() {
	thread_local std::mt19937_64 rng{std::random_device{}()};
	uint64_t hi = rng(), lo = rng();
	hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL; // version 4
	lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; // RFC 4122 variant
	char buf[37];
	std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
	              static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
	              static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
	return buf;
}

SyncOutcome PartnerCenterConnector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = FullSyncOutcome(request, kQuickFallbackNote);
	const RequestFactory requests(settings_, settings_.new_guid());
	const size_t batch = settings_.subscriptions_batch > 0
	                         ? settings_.subscriptions_batch
	                         : static_cast<size_t>(std::max(1, client.options().max_in_flight));

	// Stores one page of a customer's subscriptions; returns its next page, if any.
	auto store_subscriptions = [&](const std::string &customer, const std::string &endpoint, const http::Response &r,
	                               long page) -> std::optional<PageRef> {
		const std::string record = "page " + std::to_string(page);
		json::Value root = json::ParseResponse(r.body, endpoint + " " + record);
		json::Where where{endpoint, record, ""};
		json::Object body(root, where);
		const json::Value &items = body.RequiredArray("items");
		std::vector<model::UsageRecord> rows;
		rows.reserve(items.size());
		for (size_t i = 0; i < items.size(); ++i)
			rows.push_back(MapSubscription(json::Object::Item(items, i, where), customer));
		if (!rows.empty())
			sink.PutUsage(rows);
		sink.OnPage("subscriptions", rows.size());
		return NextPage(body, settings_.base_url);
	};

	// The subscriptions of one page of customers, `batch` customers at a time.
	// The list is documented as unpaged; should it carry links.next anyway,
	// the rest is read customer by customer.
	auto read_subscriptions = [&](const std::vector<std::pair<std::string, std::string>> &customers) {
		for (size_t start = 0; start < customers.size(); start += batch) {
			size_t end = std::min(customers.size(), start + batch);
			std::vector<http::Request> batch_requests;
			std::vector<std::string> endpoints;
			std::vector<PageRef> firsts;
			for (size_t i = start; i < end; ++i) {
				const std::string path = "/v1/customers/" + http::UrlEncode(customers[i].first) + "/subscriptions";
				endpoints.push_back("GET " + path);
				firsts.push_back(PageRef{JoinUrl(settings_.base_url, path), std::nullopt});
				batch_requests.push_back(
				    requests.Get(firsts.back(), "subscriptions of customer " + customers[i].second));
			}
			std::vector<http::Response> responses = client.SendAll(std::move(batch_requests));
			if (responses.size() != end - start)
				throw Error(sqlstate::kInternal, "HTTP client returned the wrong number of responses",
				            std::to_string(responses.size()) + " responses for " + std::to_string(end - start) +
				                " requests",
				            "Report this to the billrecon maintainers.");
			for (size_t k = 0; k < responses.size(); ++k) {
				const std::string &customer = customers[start + k].second;
				const std::string &endpoint = endpoints[k];
				std::optional<PageRef> next = store_subscriptions(customer, endpoint, responses[k], 1);
				std::unordered_set<std::string> visited{firsts[k].Key()};
				for (long page = 1; next; ++page) {
					CheckNext(visited, *next, endpoint, page, settings_.max_pages);
					const std::string label =
					    "subscriptions of customer " + customer + " page " + std::to_string(page + 1);
					http::Response r = client.Send(requests.Get(*next, label));
					next = store_subscriptions(customer, endpoint, r, page + 1);
				}
			}
		}
	};

	// Customers, seek-paged; each page's subscriptions are read before the next page.
	const std::string endpoint = "GET /v1/customers";
	PageRef page_ref{JoinUrl(settings_.base_url, "/v1/customers") + "?size=" + std::to_string(settings_.page_size),
	                 std::nullopt};
	std::unordered_set<std::string> visited{page_ref.Key()};
	for (long page = 1;; ++page) {
		http::Response response = client.Send(requests.Get(page_ref, "customers page " + std::to_string(page)));
		const std::string record = "page " + std::to_string(page);
		json::Value root = json::ParseResponse(response.body, endpoint + " " + record);
		json::Where where{endpoint, record, ""};
		json::Object body(root, where);
		const json::Value &items = body.RequiredArray("items");
		std::vector<model::VendorAccount> rows;
		std::vector<std::pair<std::string, std::string>> customers; // (id as sent, id as stored)
		rows.reserve(items.size());
		for (size_t i = 0; i < items.size(); ++i) {
			json::Object o = json::Object::Item(items, i, where);
			std::string raw_id = o.RequiredId("id");
			rows.push_back(MapCustomer(std::move(o)));
			customers.emplace_back(std::move(raw_id), rows.back().external_id);
		}
		if (!rows.empty())
			sink.PutVendorAccounts(rows);
		sink.OnPage("customers", rows.size());
		std::optional<PageRef> next = NextPage(body, settings_.base_url);
		read_subscriptions(customers);
		if (!next)
			break;
		CheckNext(visited, *next, endpoint, page, settings_.max_pages);
		page_ref = std::move(*next);
	}
	return outcome;
}

std::unique_ptr<Connector> CreatePartnerCenter(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	const std::string tenant = parsed.Credential("tenant_id");
	for (char c : tenant)
		if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.')
			throw Error(sqlstate::kInvalidParameter, "invalid credential \"tenant_id\" for partnercenter integration",
			            "tenant_id may hold only letters, digits, \"-\" and \".\" (a tenant GUID or domain name).",
			            "Set tenant_id to the partner tenant's id (a GUID).");
	auto settings = PagedSettings<PartnerCenterConnector::Settings>(config, parsed);
	http::OAuth2Config oauth = ClientCredentialsGrant(
	    ReplaceAll(parsed.StringOption("token_url").value_or(PartnerCenterConnector::kDefaultTokenUrl), "{tenant}",
	               tenant),
	    parsed.Credential("client_id"), parsed.Credential("client_secret"));
	oauth.scope = PartnerCenterConnector::kScope;
	client.SetAuth(http::MakeOAuth2Auth(std::move(oauth)));
	return std::make_unique<PartnerCenterConnector>(std::move(settings));
}

} // namespace billrecon::connectors
