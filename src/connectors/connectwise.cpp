#include "connectors/connectwise.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

#include <deque>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

// ConnectWise ids are positive integers of at most 19 digits.
constexpr size_t kMaxIdDigits = 19;

// The contact list as read: active contacts only, and only the fields used.
// ("inactiveFlag = false", URL-encoded.)
constexpr const char *kContactQuery =
    "&fields=id,company/id,inactiveFlag,communicationItems&conditions=inactiveFlag%20%3D%20false";

// True when the space-separated rel list contains `want` (RFC 8288: relation
// types compare case-insensitively).
bool RelHas(std::string_view rels, std::string_view want) {
	size_t i = 0;
	while (i < rels.size()) {
		while (i < rels.size() && (rels[i] == ' ' || rels[i] == '"'))
			++i;
		size_t j = i;
		while (j < rels.size() && rels[j] != ' ' && rels[j] != '"')
			++j;
		if (j > i && http::IEquals(rels.substr(i, j - i), want))
			return true;
		i = j;
	}
	return false;
}

// Walks a navigable (page=/pageSize=) list by following Link rel="next"
// until it is absent, refusing to leave the origin, to revisit a page, or to
// go past the page cap.
class LinkPager {
public:
	LinkPager(std::string endpoint, std::string first_url, long max_pages)
	    : links_(std::move(endpoint), first_url, UrlOrigin(first_url), "Link rel=\"next\"", max_pages) {
	}

	bool done() const noexcept {
		return done_;
	}
	long page() const noexcept {
		return links_.pages();
	}
	const std::string &endpoint() const noexcept {
		return links_.endpoint();
	}
	// "GET /company/companies page 2": names the page in parse errors.
	std::string PageWhat() const {
		return endpoint() + " page " + std::to_string(page());
	}

	http::Request MakeRequest(std::string_view phase) const {
		return JsonGet(links_.url(), std::string(phase) + " page " + std::to_string(page()),
		               ConnectWiseConnector::kAccept);
	}

	void Advance(const http::Response &response) {
		std::optional<std::string> link = response.HeaderValue("Link");
		std::string next;
		if (link) {
			for (const auto &[rel, target] : http::ParseLinkHeader(*link)) {
				if (RelHas(rel, "next")) {
					next = target;
					break;
				}
			}
		}
		if (next.empty()) {
			done_ = true;
			return;
		}
		links_.Follow(response, next, "page " + std::to_string(page()));
	}

private:
	NextPageLinks links_;
	bool done_ = false;
};

struct AgreementRef {
	std::string id;
	std::string company_id;
};

std::optional<std::string> LastUpdated(const json::Object &o) {
	std::optional<json::Object> info = o.OptionalObject("_info");
	return info ? info->OptionalTimestamp("lastUpdated") : std::nullopt;
}

std::optional<std::string> RefName(const json::Object &o, std::string_view field) {
	std::optional<json::Object> ref = o.OptionalObject(field);
	return ref ? ref->OptionalString("name") : std::nullopt;
}

model::Company MapCompany(json::Object o) {
	model::Company c;
	c.external_id = o.RequiredId("id");
	o.SetRecordId(c.external_id);
	c.name = o.RequiredString("name");
	c.identifier = o.OptionalString("identifier");
	c.status = RefName(o, "status");
	c.website = o.OptionalNonEmptyString("website");
	if (c.website) {
		if (std::optional<std::string> d = DomainOfWebsite(*c.website))
			c.domains.push_back(*d);
	}
	c.deleted = o.OptionalBool("deletedFlag").value_or(false);
	c.source_updated_at = LastUpdated(o);
	return c;
}

AgreementRef MapAgreementRef(json::Object &o) {
	AgreementRef ref;
	ref.id = o.RequiredId("id");
	o.SetRecordId(ref.id);
	ref.company_id = o.RequiredObject("company").RequiredId("id");
	return ref;
}

model::Agreement MapAgreement(json::Object o, AgreementRef &ref) {
	ref = MapAgreementRef(o);
	model::Agreement a;
	a.external_id = ref.id;
	a.company_external_id = ref.company_id;
	a.name = o.OptionalString("name").value_or("");
	a.type = RefName(o, "type");
	a.billing_cycle_label = RefName(o, "billingCycle");
	a.billing_cycle = a.billing_cycle_label ? ConnectWiseConnector::MapBillingCycle(*a.billing_cycle_label)
	                                        : model::BillingCycle::kUnknown;
	a.start_date = o.OptionalDate("startDate");
	a.end_date = o.OptionalDate("endDate");
	a.prorate = o.OptionalBool("prorateFlag");
	a.status = o.OptionalString("agreementStatus");
	a.cancelled = o.OptionalBool("cancelledFlag").value_or(false);
	a.cancelled_date = o.OptionalDate("dateCancelled");
	a.source_updated_at = LastUpdated(o);
	return a;
}

model::LineItem MapAddition(json::Object o, const AgreementRef &agreement,
                            const std::unordered_map<std::string, std::string> &catalog) {
	model::LineItem li;
	li.external_id = o.RequiredId("id");
	o.SetRecordId(li.external_id);
	li.agreement_external_id = o.OptionalId("agreementId").value_or(agreement.id);
	li.company_external_id = agreement.company_id;
	if (std::optional<json::Object> product = o.OptionalObject("product"))
		li.product_code = product->OptionalNonEmptyString("identifier");
	li.description = o.OptionalString("description");
	if (li.product_code) {
		auto it = catalog.find(*li.product_code);
		if (it != catalog.end())
			li.product_name = it->second;
	}
	if (!li.product_name && li.description && !li.description->empty())
		li.product_name = li.description;
	li.quantity = o.RequiredDecimal("quantity");
	li.unit_price = o.OptionalDecimal("unitPrice");
	li.unit_cost = o.OptionalDecimal("unitCost");
	li.billing_type = o.OptionalString("billCustomer");
	li.effective_date = o.OptionalDate("effectiveDate");
	li.cancel_date = o.OptionalDate("cancelledDate");
	li.source_updated_at = LastUpdated(o);
	return li;
}

// The e-mail addresses of one contact (communicationItems of type Email)
// into `domains`, under the contact's company. Inactive contacts and
// contacts without a company are skipped.
void ReadContact(json::Object o, ContactDomains &domains) {
	const std::string id = o.RequiredId("id");
	o.SetRecordId(id);
	if (o.OptionalBool("inactiveFlag").value_or(false))
		return;
	std::optional<json::Object> company = o.OptionalObject("company");
	std::optional<std::string> company_id = company ? company->OptionalId("id") : std::nullopt;
	const json::Value *items = o.OptionalArray("communicationItems");
	if (!company_id || items == nullptr)
		return;
	for (size_t i = 0; i < items->size(); ++i) {
		json::Object item(items->at(i), json::Where{o.where().endpoint, o.where().record,
		                                            "communicationItems[" + std::to_string(i) + "]"});
		std::optional<std::string> kind = item.OptionalString("communicationType");
		if (kind && !http::IEquals(Trim(*kind), "Email"))
			continue;
		if (std::optional<std::string> value = item.OptionalString("value"))
			domains.Add(*company_id, *value);
	}
}

// Items of one page body as json::Objects named "page N item M".
template <typename Fn>
void ForEachItem(const http::Response &response, const LinkPager &pager, Fn &&fn) {
	json::Value root = json::ParseResponse(response.body, pager.PageWhat());
	json::Where page{pager.endpoint(), "page " + std::to_string(pager.page()), ""};
	const json::Value &items = json::ExpectArray(root, page);
	for (size_t i = 0; i < items.size(); ++i)
		fn(json::Object::Item(items, i, page));
}

} // namespace

ConnectWiseConnector::ConnectWiseConnector(Settings settings) : settings_(std::move(settings)) {
	if (settings_.additions_batch == 0)
		settings_.additions_batch = 1;
}

model::BillingCycle ConnectWiseConnector::MapBillingCycle(std::string_view name) {
	return BillingCycleFromLabel(name);
}

std::string ConnectWiseConnector::LastUpdatedCondition(std::string_view since_iso) {
	// Canonical form is YYYY-MM-DDTHH:MM:SS[.ffffff]Z; ConnectWise wants whole
	// seconds, so the fraction is dropped (an earlier bound only re-reads a
	// few records).
	std::string ts = model::NormalizeTimestamp(since_iso, true);
	return "lastUpdated > [" + ts.substr(0, 19) + "Z]";
}

SyncOutcome ConnectWiseConnector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = QuickOrFullOutcome(request);
	const bool quick = outcome.effective_mode == SyncMode::kQuick;
	const std::string condition =
	    quick ? "&conditions=" + http::UrlEncode(LastUpdatedCondition(*request.since)) : std::string();
	const std::string paging = "?page=1&pageSize=" + std::to_string(settings_.page_size);

	// Fetches a whole list page by page; on_page gets each response.
	auto fetch_list = [&](std::string_view path, const std::string &extra_query, std::string_view phase,
	                      const std::function<void(const http::Response &, const LinkPager &)> &on_page) {
		LinkPager pager("GET " + std::string(path), JoinUrl(settings_.base_url, path) + paging + extra_query,
		                settings_.max_pages);
		while (!pager.done()) {
			http::Response response = client.Send(pager.MakeRequest(phase));
			on_page(response, pager);
			pager.Advance(response);
		}
	};

	// 1. Companies, held back until their contacts' e-mail domains are
	// known: a company row is stored whole, domains included.
	std::vector<std::vector<model::Company>> company_pages;
	fetch_list("/company/companies", condition, "companies", [&](const http::Response &r, const LinkPager &p) {
		std::vector<model::Company> rows;
		ForEachItem(r, p, [&](json::Object o) { rows.push_back(MapCompany(std::move(o))); });
		sink.OnPage("companies", rows.size());
		if (!rows.empty())
			company_pages.push_back(std::move(rows));
	});

	// 2. Contacts: the e-mail domains of every active contact join its
	// company's domains (after the website's). Only read when a company is to
	// be stored, and then in full, quick mode included: every stored company
	// must carry all its contacts' domains, and a contact's change does not
	// change its company's lastUpdated.
	if (!company_pages.empty()) {
		ContactDomains contacts;
		fetch_list("/company/contacts", kContactQuery, "contacts", [&](const http::Response &r, const LinkPager &p) {
			size_t n = 0;
			ForEachItem(r, p, [&](json::Object o) {
				ReadContact(std::move(o), contacts);
				++n;
			});
			sink.OnPage("contacts", n);
		});
		for (std::vector<model::Company> &rows : company_pages) {
			for (model::Company &c : rows)
				contacts.MergeInto(c);
			sink.PutCompanies(rows);
		}
		company_pages.clear();
	}

	// 3. Agreements. The additions of every agreement are read below, so we
	// need every agreement's id and company even in quick mode, where only
	// changed agreements are stored: quick mode therefore reads the full list
	// with fields=id,company (a few bytes per agreement, one request per 1000),
	// then the changed agreements in full with the lastUpdated condition.
	// Filtering additions by their own lastUpdated is what makes quick cheap.
	std::vector<AgreementRef> agreements;
	if (quick) {
		fetch_list("/finance/agreements", "&fields=id,company", "agreement ids",
		           [&](const http::Response &r, const LinkPager &p) {
			           size_t n = 0;
			           ForEachItem(r, p, [&](json::Object o) {
				           agreements.push_back(MapAgreementRef(o));
				           ++n;
			           });
			           sink.OnPage("agreement ids", n);
		           });
		fetch_list("/finance/agreements", condition, "agreements", [&](const http::Response &r, const LinkPager &p) {
			std::vector<model::Agreement> rows;
			ForEachItem(r, p, [&](json::Object o) {
				AgreementRef ref;
				rows.push_back(MapAgreement(std::move(o), ref));
			});
			if (!rows.empty())
				sink.PutAgreements(rows);
			sink.OnPage("agreements", rows.size());
		});
	} else {
		fetch_list("/finance/agreements", "", "agreements", [&](const http::Response &r, const LinkPager &p) {
			std::vector<model::Agreement> rows;
			ForEachItem(r, p, [&](json::Object o) {
				AgreementRef ref;
				rows.push_back(MapAgreement(std::move(o), ref));
				agreements.push_back(std::move(ref));
			});
			if (!rows.empty())
				sink.PutAgreements(rows);
			sink.OnPage("agreements", rows.size());
		});
	}

	// 4. Product catalog: identifier -> description, to name products. Not
	// every API member may read the catalog; without it product names come
	// from the additions' own descriptions.
	std::unordered_map<std::string, std::string> catalog;
	try {
		fetch_list("/procurement/catalog", "&fields=identifier,description", "catalog",
		           [&](const http::Response &r, const LinkPager &p) {
			           size_t n = 0;
			           ForEachItem(r, p, [&](json::Object o) {
				           ++n;
				           std::optional<std::string> code = o.OptionalNonEmptyString("identifier");
				           if (!code)
					           return;
				           o.SetRecordId(*code);
				           if (std::optional<std::string> d = o.OptionalNonEmptyString("description"))
					           catalog.emplace(*code, *d);
			           });
			           sink.OnPage("catalog", n);
		           });
	} catch (const http::HttpError &e) {
		if (e.status() != 403 && e.status() != 404)
			throw;
		sink.Warn("ConnectWise product catalog not readable (HTTP " + std::to_string(e.status()) +
		          " on GET /procurement/catalog): product names come from the additions' descriptions; give the "
		          "API member read access to the product catalog to use catalog descriptions");
	}

	// 5. Additions of every agreement, `additions_batch` agreements in flight
	// at once; an agreement with several pages keeps its slot until done.
	struct Cursor {
		const AgreementRef *agreement;
		LinkPager pager;
	};
	std::deque<Cursor> active;
	size_t next_agreement = 0;
	for (;;) {
		while (active.size() < settings_.additions_batch && next_agreement < agreements.size()) {
			const AgreementRef &a = agreements[next_agreement++];
			std::string path = "/finance/agreements/" + http::UrlEncode(a.id) + "/additions";
			active.push_back(Cursor{&a, LinkPager("GET " + path, JoinUrl(settings_.base_url, path) + paging + condition,
			                                      settings_.max_pages)});
		}
		if (active.empty())
			break;
		std::vector<http::Request> requests;
		requests.reserve(active.size());
		for (const Cursor &c : active)
			requests.push_back(c.pager.MakeRequest("additions of agreement " + c.agreement->id));
		std::vector<http::Response> responses = client.SendAll(std::move(requests));
		if (responses.size() != active.size())
			throw Error(sqlstate::kInternal, "HTTP client returned the wrong number of responses",
			            std::to_string(responses.size()) + " responses for " + std::to_string(active.size()) +
			                " requests",
			            "Report this to the billrecon maintainers.");
		for (size_t i = 0; i < active.size(); ++i) {
			Cursor &c = active[i];
			std::vector<model::LineItem> rows;
			ForEachItem(responses[i], c.pager,
			            [&](json::Object o) { rows.push_back(MapAddition(std::move(o), *c.agreement, catalog)); });
			if (!rows.empty())
				sink.PutLineItems(rows);
			sink.OnPage("additions", rows.size());
			c.pager.Advance(responses[i]);
		}
		std::deque<Cursor> still;
		for (Cursor &c : active)
			if (!c.pager.done())
				still.push_back(std::move(c));
		active.swap(still);
	}
	return outcome;
}

namespace {

void CheckCwId(std::string_view what, std::string_view id) {
	CheckNumericId("ConnectWise", what, id, kMaxIdDigits);
}

} // namespace

std::optional<model::Decimal> ConnectWiseConnector::UpdateAdditionQuantity(http::Client &client,
                                                                           std::string_view agreement_id,
                                                                           std::string_view addition_id,
                                                                           const model::Decimal &quantity) {
	CheckCwId("agreement", agreement_id);
	CheckCwId("addition", addition_id);
	std::string path =
	    "/finance/agreements/" + std::string(agreement_id) + "/additions/" + std::string(addition_id);
	// Decimal's canonical text ("40", "-2.5") is a valid JSON number literal.
	http::Response response = client.Send(
	    JsonRequest(http::Method::kPatch, JoinUrl(settings_.base_url, path),
	                "[{\"op\":\"replace\",\"path\":\"quantity\",\"value\":" + quantity.str() + "}]",
	                "update quantity of addition " + std::string(addition_id), kAccept));
	if (Trim(response.body).empty())
		return std::nullopt;
	json::Value root = json::ParseResponse(response.body, "PATCH " + path);
	json::Object o(root, json::Where{"PATCH " + path, "record id " + std::string(addition_id), ""});
	return o.OptionalDecimal("quantity");
}

namespace {

// ConnectWise's form of a calendar date: midnight UTC.
std::string CwDate(const std::string &date) {
	return date + "T00:00:00Z";
}

// One addition as read for write-back.
struct AdditionRead {
	std::string endpoint; // "GET /finance/agreements/4102/additions/77120"
	json::Value root;
};

AdditionRead GetAddition(http::Client &client, const std::string &base_url, const QuantityChange &change) {
	CheckCwId("agreement", change.agreement_external_id);
	CheckCwId("addition", change.line_item_external_id);
	const std::string path =
	    "/finance/agreements/" + change.agreement_external_id + "/additions/" + change.line_item_external_id;
	AdditionRead read;
	read.endpoint = "GET " + path;
	http::Response response = client.Send(
	    JsonGet(JoinUrl(base_url, path), "addition " + change.line_item_external_id, ConnectWiseConnector::kAccept));
	read.root = json::ParseResponse(response.body, read.endpoint);
	return read;
}

struct Successor {
	std::string id;
	model::Decimal quantity;
};

// An addition of the agreement with the same product that starts on `date`
// and is not cancelled before it: the successor an earlier attempt created.
std::optional<Successor> FindSuccessor(http::Client &client, const ConnectWiseConnector::Settings &settings,
                                       const QuantityChange &change, const std::string &product_id,
                                       const std::string &date) {
	const std::string path = "/finance/agreements/" + change.agreement_external_id + "/additions";
	const std::string condition =
	    "product/id = " + (AllDigits(product_id, kMaxIdDigits) ? product_id : "\"" + product_id + "\"");
	LinkPager pager("GET " + path,
	                JoinUrl(settings.base_url, path) + "?page=1&pageSize=" + std::to_string(settings.page_size) +
	                    "&conditions=" + http::UrlEncode(condition),
	                settings.max_pages);
	std::optional<Successor> found;
	while (!pager.done()) {
		http::Response response = client.Send(pager.MakeRequest("additions of product " + product_id));
		ForEachItem(response, pager, [&](json::Object o) {
			std::string id = o.RequiredId("id");
			o.SetRecordId(id);
			if (found || id == change.line_item_external_id)
				return;
			if (o.OptionalDate("effectiveDate") != std::optional<std::string>(date))
				return;
			std::optional<std::string> cancelled = o.OptionalDate("cancelledDate");
			if (cancelled && *cancelled < date)
				return;
			found = Successor{id, o.RequiredDecimal("quantity")};
		});
		pager.Advance(response);
	}
	return found;
}

http::Request JsonWrite(http::Method method, std::string url, std::string body, std::string label) {
	return JsonRequest(method, std::move(url), std::move(body), std::move(label), ConnectWiseConnector::kAccept);
}

} // namespace

model::Decimal ConnectWiseConnector::ReadQuantity(http::Client &client, const QuantityChange &change) {
	const std::string date = ValidDate(change.effective_date, "effective date");
	AdditionRead read = GetAddition(client, settings_.base_url, change);
	json::Object a(read.root, json::Where{read.endpoint, "record id " + change.line_item_external_id, ""});
	std::optional<std::string> cancelled = a.OptionalDate("cancelledDate");
	if (!cancelled || *cancelled >= date)
		return a.RequiredDecimal("quantity");
	const std::string product = a.RequiredObject("product").RequiredId("id");
	std::optional<Successor> next = FindSuccessor(client, settings_, change, product, date);
	return next ? next->quantity : model::Decimal::Parse("0");
}

QuantityChangeResult ConnectWiseConnector::UpdateQuantity(http::Client &client, const QuantityChange &change) {
	const std::string date = ValidDate(change.effective_date, "effective date");
	AdditionRead read = GetAddition(client, settings_.base_url, change);
	json::Object a(read.root, json::Where{read.endpoint, "record id " + change.line_item_external_id, ""});
	const model::Decimal quantity = a.RequiredDecimal("quantity");
	const std::optional<std::string> starts = a.OptionalDate("effectiveDate");
	const std::optional<std::string> cancelled = a.OptionalDate("cancelledDate");
	const std::string &addition = change.line_item_external_id;
	QuantityChangeResult result;

	// On or before the addition's own start: change it in place.
	if (starts && date <= *starts) {
		result.reference = addition;
		if (quantity == change.new_quantity) {
			result.quantity_after = quantity;
			result.note = "ConnectWise: addition " + addition + " already has quantity " + quantity.str();
			return result;
		}
		std::optional<model::Decimal> reported =
		    UpdateAdditionQuantity(client, change.agreement_external_id, addition, change.new_quantity);
		result.quantity_after = reported.value_or(change.new_quantity);
		result.note = "ConnectWise: quantity of addition " + addition + " changed in place from " + quantity.str() +
		              " to " + change.new_quantity.str() + " (effective date " + date +
		              " is not after the addition's effectiveDate " + *starts + ")";
		return result;
	}

	const std::string last_day = AddDays(date, -1);
	if (cancelled && *cancelled < last_day)
		throw Error(sqlstate::kPrerequisite, "ConnectWise addition is cancelled before the effective date",
		            "Addition " + addition + " of agreement " + change.agreement_external_id + " is cancelled on " +
		                *cancelled + "; the change is to start on " + date + ".",
		            "Run a sync: the line is no longer billed on that date. Approve the change for the addition that "
		            "is billed then, or with an earlier effective date.");
	if ((!cancelled || *cancelled >= date) && quantity == change.new_quantity) {
		result.reference = addition;
		result.quantity_after = quantity;
		result.note = "ConnectWise: addition " + addition + " already has quantity " + quantity.str();
		return result;
	}

	json::Object product = a.RequiredObject("product");
	const std::string product_id = product.RequiredId("id");
	std::optional<Successor> next = FindSuccessor(client, settings_, change, product_id, date);

	// 1. End the old addition the day before.
	if (!cancelled || *cancelled != last_day) {
		const std::string path = "/finance/agreements/" + change.agreement_external_id + "/additions/" + addition;
		client.Send(
		    JsonWrite(http::Method::kPatch, JoinUrl(settings_.base_url, path),
		              "[{\"op\":\"replace\",\"path\":\"cancelledDate\",\"value\":\"" + CwDate(last_day) + "\"}]",
		              "cancel addition " + addition));
	}

	// 2. The successor: fix an existing one (an earlier attempt), or create it.
	if (next) {
		result.reference = next->id;
		if (next->quantity == change.new_quantity) {
			result.quantity_after = next->quantity;
		} else {
			std::optional<model::Decimal> reported =
			    UpdateAdditionQuantity(client, change.agreement_external_id, next->id, change.new_quantity);
			result.quantity_after = reported.value_or(change.new_quantity);
		}
		result.note = "ConnectWise: addition " + addition + " cancelled on " + last_day + "; addition " + next->id +
		              " (already there) has quantity " + result.quantity_after.str() + " from " + date;
		return result;
	}
	std::string body = "{\"product\":{\"id\":";
	AppendJson(body, *product.value().Find("id")); // present: RequiredId read it
	body += "},\"quantity\":" + change.new_quantity.str();
	for (const char *field : {"unitPrice", "unitCost", "billCustomer", "description"}) {
		if (const json::Value *v = a.Get(field)) {
			body += ",\"" + std::string(field) + "\":";
			AppendJson(body, *v);
		}
	}
	body += ",\"effectiveDate\":\"" + CwDate(date) + "\"";
	if (cancelled && *cancelled >= date)
		body += ",\"cancelledDate\":\"" + CwDate(*cancelled) + "\"";
	body += "}";
	const std::string path = "/finance/agreements/" + change.agreement_external_id + "/additions";
	http::Request create = JsonWrite(http::Method::kPost, JoinUrl(settings_.base_url, path), std::move(body),
	                                 "add addition replacing " + addition);
	create.send_once = true;   // a second POST would add a second addition
	http::Response created = client.Send(std::move(create));
	result.quantity_after = change.new_quantity;
	try {
		json::Value root = json::ParseResponse(created.body, "POST " + path);
		json::Object o(root, json::Where{"POST " + path, "", ""});
		if (std::optional<std::string> id = o.OptionalId("id"))
			result.reference = *id;
		if (std::optional<model::Decimal> q = o.OptionalDecimal("quantity"))
			result.quantity_after = *q;
	} catch (const Error &) {
		// The addition exists now: an odd answer must not fail the change.
	}
	result.note = "ConnectWise: addition " + addition + " cancelled on " + last_day + "; addition " +
	              (result.reference.empty() ? std::string("(id not returned)") : result.reference) +
	              " added with quantity " + change.new_quantity.str() + " from " + date;
	return result;
}

std::unique_ptr<Connector> CreateConnectWise(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	auto settings = PagedSettings<ConnectWiseConnector::Settings>(config, parsed);
	client.SetAuth(http::MakeBasicAuth(parsed.Credential("company_id") + "+" + parsed.Credential("public_key"),
	                                   parsed.Credential("private_key"),
	                                   {{"clientId", parsed.Credential("client_id")}}));
	return std::make_unique<ConnectWiseConnector>(std::move(settings));
}

} // namespace billrecon::connectors
