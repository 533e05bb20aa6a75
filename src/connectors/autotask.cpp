#include "connectors/autotask.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

#include <ctime>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

using SendFn = std::function<http::Response(http::Request)>;

constexpr const char *kAllRecords = R"([{"op":"gte","field":"id","value":0}])";

// The fields read from Contacts. Every contact is listed (isActive is read as
// 1 / 0 or a boolean and checked here: a filter on it would have to guess
// its type, and a wrong guess fails the query).
constexpr const char *kContactFields =
    R"(["id","companyID","isActive","emailAddress","emailAddress2","emailAddress3"])";

// Autotask ids are positive integers of at most 18 digits.
constexpr size_t kMaxIdDigits = 18;

void CheckAutotaskId(std::string_view what, std::string_view id) {
	CheckNumericId("Autotask", what, id, kMaxIdDigits);
}

// ---- dates -------------------------------------------------------------------

std::string TodayUtc() {
	return model::TimestampFromEpochSeconds(std::to_string(static_cast<long long>(std::time(nullptr)))).substr(0, 10);
}

// Autotask's midnight timestamp for a date, without a zone: effective dates
// of service adjustments are stored as the given calendar date.
std::string Midnight(const std::string &date) {
	return date + "T00:00:00";
}

// A JSON string literal.
std::string Quote(std::string_view s) {
	std::string out;
	json::AppendQuoted(out, s);
	return out;
}

// Units periods overlapping [date-1, date+1]: one day of slack on each side,
// in case Autotask compares the zone-less values in another time zone; the
// row covering `date` is picked by calendar date afterwards.
std::string UnitWindowItems(const std::string &date) {
	return R"({"op":"lte","field":"startDate","value":)" + Quote(Midnight(AddDays(date, 1))) +
	       R"(},{"op":"gte","field":"endDate","value":)" + Quote(Midnight(AddDays(date, -1))) + "}";
}

// ---- paging --------------------------------------------------------------------

// POST /V1.0/{entity}/query with the filter, then GET every
// pageDetails.nextPageUrl until it is null. Next URLs must stay on the
// base URL's origin (the credentials travel with them) and never repeat.
// `include_fields` (a JSON array of field names, or empty for every field)
// goes into the body as IncludeFields.
template <typename OnItem, typename OnPage>
void Query(const SendFn &send, const std::string &base, const AutotaskConnector::Settings &settings,
           std::string_view entity, const std::string &filter, std::string_view phase, OnItem &&on_item,
           OnPage &&on_page, std::string_view include_fields = {}) {
	const std::string path = "/V1.0/" + std::string(entity) + "/query";
	const std::string endpoint = "POST " + path;
	NextPageLinks links(endpoint, JoinUrl(base, path), UrlOrigin(base), "pageDetails.nextPageUrl", settings.max_pages,
	                    "billrecon only follows pagination links to the server in base_url (or the zone URL); check "
	                    "base_url and any proxy in front of the API.");
	http::Request request =
	    JsonRequest(http::Method::kPost, links.url(),
	                include_fields.empty() ? AutotaskConnector::QueryBody(settings.page_size, filter)
	                                       : AutotaskConnector::QueryBody(settings.page_size, filter, include_fields),
	                std::string(phase) + " page 1");
	for (long page = 1;; ++page) {
		const std::string page_name = "page " + std::to_string(page);
		http::Response response = send(std::move(request));
		json::Value root = json::ParseResponse(response.body, endpoint + " " + page_name);
		json::Where where{endpoint, page_name, ""};
		json::Object body(root, where);
		const json::Value &items = body.RequiredArray("items");
		for (size_t i = 0; i < items.size(); ++i) {
			json::Object o = json::Object::Item(items, i, where);
			std::string id = o.RequiredId("id");
			o.SetRecordId(id);
			on_item(o, id);
		}
		on_page(items.size());
		std::optional<json::Object> details = body.OptionalObject("pageDetails");
		std::optional<std::string> next = details ? details->OptionalNonEmptyString("nextPageUrl") : std::nullopt;
		if (!next)
			break;
		links.Follow(response, *next, page_name);
		request = JsonGet(links.url(), std::string(phase) + " page " + std::to_string(page + 1));
	}
}

// ---- picklists -----------------------------------------------------------------

// Labels of the Contracts picklists the agreement columns use (value -> label).
struct Picklists {
	std::unordered_map<std::string, std::string> contract_type;
	std::unordered_map<std::string, std::string> period_type;
	std::unordered_map<std::string, std::string> status;
};

Picklists ParsePicklists(const json::Value &root, const std::string &endpoint) {
	Picklists p;
	json::Object body(root, json::Where{endpoint, "", ""});
	const json::Value &fields = body.RequiredArray("fields");
	json::Where where{endpoint, "fields", ""};
	for (size_t i = 0; i < fields.size(); ++i) {
		json::Object f = json::Object::Item(fields, i, where);
		std::string name = Lower(f.OptionalString("name").value_or(""));
		std::unordered_map<std::string, std::string> *target = nullptr;
		if (name == "contracttype")
			target = &p.contract_type;
		else if (name == "contractperiodtype")
			target = &p.period_type;
		else if (name == "status")
			target = &p.status;
		if (target == nullptr)
			continue;
		const json::Value *values = f.OptionalArray("picklistValues");
		if (values == nullptr)
			continue;
		for (size_t k = 0; k < values->size(); ++k) {
			json::Object v = json::Object::Item(*values, k, json::Where{endpoint, "field " + name, ""});
			std::optional<std::string> value = v.OptionalId("value");
			std::optional<std::string> label = v.OptionalNonEmptyString("label");
			if (value && label)
				target->emplace(*value, *label);
		}
	}
	return p;
}

std::optional<std::string> Label(const std::unordered_map<std::string, std::string> &list,
                                 const std::optional<std::string> &code) {
	if (!code)
		return std::nullopt;
	auto it = list.find(*code);
	if (it == list.end())
		return std::nullopt;
	return it->second;
}

// ---- mapping --------------------------------------------------------------------

model::Company MapCompany(const json::Object &o, const std::string &id) {
	model::Company c;
	c.external_id = id;
	c.name = o.RequiredString("companyName");
	c.identifier = o.OptionalNonEmptyString("companyNumber");
	if (std::optional<bool> active = o.OptionalBool("isActive"))
		c.status = *active ? "Active" : "Inactive";
	c.website = o.OptionalNonEmptyString("webAddress");
	if (c.website) {
		if (std::optional<std::string> d = DomainOfWebsite(*c.website))
			c.domains.push_back(*d);
	}
	c.source_updated_at = o.OptionalTimestamp("lastTrackedModifiedDateTime");
	return c;
}

// The e-mail addresses of one contact (emailAddress, emailAddress2,
// emailAddress3) into `domains`, under its companyID. Inactive contacts
// (isActive 0 or false) are skipped.
void ReadContact(const json::Object &o, ContactDomains &domains) {
	if (const json::Value *active = o.Get("isActive")) {
		if (active->IsBool()) {
			if (!active->GetBool())
				return;
		} else if (std::optional<long long> n = JsonInteger(*active)) {
			if (*n == 0)
				return;
		} else {
			o.Unexpected("isActive", "1, 0 or a boolean", active);
		}
	}
	std::optional<std::string> company = o.OptionalId("companyID");
	if (!company)
		return;
	for (const char *field : {"emailAddress", "emailAddress2", "emailAddress3"})
		if (std::optional<std::string> address = o.OptionalString(field))
			domains.Add(*company, *address);
}

model::Agreement MapContract(const json::Object &o, const std::string &id, const Picklists &lists) {
	model::Agreement a;
	a.external_id = id;
	a.company_external_id = o.RequiredId("companyID");
	a.name = o.OptionalString("contractName").value_or("");
	std::optional<std::string> type = o.OptionalId("contractType");
	if (type)
		a.type = Label(lists.contract_type, type).value_or("contract type " + *type);
	std::optional<std::string> period = o.OptionalId("contractPeriodType");
	if (period) {
		std::optional<std::string> label = Label(lists.period_type, period);
		a.billing_cycle = label ? AutotaskConnector::MapPeriodLabel(*label) : model::BillingCycle::kOther;
		a.billing_cycle_label = label.value_or("period type " + *period);
	}
	a.start_date = o.OptionalDate("startDate");
	a.end_date = o.OptionalDate("endDate");
	std::optional<std::string> status = o.OptionalId("status");
	if (status) {
		// Without the tenant's picklist, 1 active / 0 inactive (vendor-apis.md, unconfirmed).
		std::optional<std::string> label = Label(lists.status, status);
		if (!label && *status == "1")
			label = "Active";
		if (!label && *status == "0")
			label = "Inactive";
		a.status = label.value_or("status " + *status);
		a.cancelled = Lower(*a.status) == "inactive";
	}
	a.source_updated_at = o.OptionalTimestamp("lastModifiedDateTime");
	return a;
}

struct UnitRow {
	std::string id;
	model::Decimal units;
	std::string start; // YYYY-MM-DD
	std::string end;
	std::optional<std::string> service_id;
};

std::string RequiredDate(const json::Object &o, std::string_view field) {
	std::optional<std::string> d = o.OptionalDate(field);
	if (!d)
		o.Missing(field);
	return *d;
}

UnitRow MapUnit(const json::Object &o, const std::string &id) {
	UnitRow u;
	u.id = id;
	u.units = o.RequiredDecimal("units");
	u.start = RequiredDate(o, "startDate");
	u.end = RequiredDate(o, "endDate");
	u.service_id = o.OptionalId("serviceID");
	return u;
}

// Keeps the row whose period covers `date` (the latest start if several do).
void KeepCovering(std::optional<UnitRow> &best, UnitRow row, const std::string &date) {
	if (row.start > date || row.end < date)
		return;
	if (!best || row.start > best->start)
		best = std::move(row);
}

} // namespace

AutotaskConnector::AutotaskConnector(Settings settings) : settings_(std::move(settings)) {
	if (settings_.page_size < 1)
		settings_.page_size = 1;
	if (settings_.max_pages < 1)
		settings_.max_pages = 1;
	if (settings_.requests_per_hour < 1)
		settings_.requests_per_hour = 1;
}

std::string AutotaskConnector::QueryBody(long max_records, std::string_view filter_json) {
	return "{\"MaxRecords\":" + std::to_string(max_records) + ",\"filter\":" + std::string(filter_json) + "}";
}

std::string AutotaskConnector::QueryBody(long max_records, std::string_view filter_json,
                                         std::string_view include_fields_json) {
	return "{\"MaxRecords\":" + std::to_string(max_records) + ",\"IncludeFields\":" +
	       std::string(include_fields_json) + ",\"filter\":" + std::string(filter_json) + "}";
}

model::BillingCycle AutotaskConnector::MapPeriodLabel(std::string_view label) {
	return BillingCycleFromLabel(label);
}

http::Response AutotaskConnector::Send(http::Client &client, http::Request request, bool authenticated) {
	if (!budget_start_)
		budget_start_ = client.stats().requests;
	const long used = client.stats().requests - *budget_start_;
	if (used >= settings_.requests_per_hour)
		throw Error(sqlstate::kProgramLimit, "autotask request budget exhausted",
		            "This run has sent " + std::to_string(used) + " requests; requests_per_hour is " +
		                std::to_string(settings_.requests_per_hour) + ". Next request: " + request.label + ".",
		            "Autotask suspends API access when a database exceeds 10,000 requests in an hour (shared by "
		            "every integration); raise the requests_per_hour option only if the other integrations leave "
		            "room.");
	return authenticated ? client.Send(std::move(request)) : client.SendUnauthenticated(std::move(request));
}

const std::string &AutotaskConnector::ResolveBase(http::Client &client) {
	if (base_)
		return *base_;
	std::string why;
	std::optional<UrlParts> parts = ParseUrl(settings_.base_url, why);
	const bool generic = parts && parts->host == kGenericHost;
	if (!settings_.zone_lookup && !generic) {
		base_ = settings_.base_url;
		return *base_;
	}
	// zoneInformation needs no credentials: ask without them.
	const std::string endpoint = "GET /V1.0/zoneInformation";
	http::Response response = Send(client,
	                               JsonGet(JoinUrl(settings_.base_url, "/V1.0/zoneInformation") +
	                                           "?user=" + http::UrlEncode(settings_.username),
	                                       "zone lookup"),
	                               false);
	json::Value root = json::ParseResponse(response.body, endpoint);
	json::Object o(root, json::Where{endpoint, "", ""});
	std::optional<std::string> url = o.OptionalNonEmptyString("url");
	if (!url)
		url = o.OptionalNonEmptyString("Url");
	if (!url)
		o.Missing("url");
	std::optional<UrlParts> zone = ParseUrl(*url, why);
	const std::string suffix = ".autotask.net";
	const bool trusted = zone && (zone->scheme == "https" || (parts && zone->scheme == parts->scheme)) &&
	                     ((zone->host.size() > suffix.size() &&
	                       zone->host.compare(zone->host.size() - suffix.size(), suffix.size(), suffix) == 0) ||
	                      (parts && zone->host == parts->host));
	if (!trusted)
		throw Error(sqlstate::kDataException, "unexpected zone URL from Autotask",
		            endpoint + ": url is \"" + UrlForMessage(*url) + "\", which is not an https URL on autotask.net",
		            "Set base_url to your zone's URL (https://webservicesN.autotask.net/ATServicesRest) and remove "
		            "zone_lookup.");
	std::string resolved = *url;
	while (!resolved.empty() && resolved.back() == '/')
		resolved.pop_back();
	base_ = std::move(resolved);
	return *base_;
}

SyncOutcome AutotaskConnector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = QuickOrFullOutcome(request);
	const bool quick = outcome.effective_mode == SyncMode::kQuick;
	if (quick)
		outcome.note = "autotask: only Companies are filtered by modification time (lastTrackedModifiedDateTime); "
		               "contracts, contract services, their units and the service catalogue are read in full, "
		               "and contacts too when a company changed";
	const std::string as_of = settings_.as_of_date.empty() ? TodayUtc() : ValidDate(settings_.as_of_date, "as-of date");
	const std::string base = ResolveBase(client);
	const SendFn send = [&](http::Request r) { return Send(client, std::move(r)); };

	// 1. Picklist labels for contract type, period type and status. Not
	// every API user may read entity information: without it the codes are
	// stored as they are.
	Picklists lists;
	const std::string fields_endpoint = "GET /V1.0/Contracts/entityInformation/fields";
	try {
		http::Response r =
		    send(JsonGet(JoinUrl(base, "/V1.0/Contracts/entityInformation/fields"), "contract picklists"));
		lists = ParsePicklists(json::ParseResponse(r.body, fields_endpoint), fields_endpoint);
	} catch (const http::HttpError &e) {
		if (e.status() != 403 && e.status() != 404)
			throw;
		sink.Warn("Autotask contract picklists not readable (HTTP " + std::to_string(e.status()) + " on " +
		          fields_endpoint +
		          "): contract type, period type and status are stored as codes and the billing "
		          "cycle is \"other\"");
	} catch (const Error &e) {
		// Only an answer of an unexpected shape is tolerated here.
		if (e.sqlstate() != sqlstate::kInvalidText && e.sqlstate() != sqlstate::kDataException)
			throw;
		sink.Warn("Autotask contract picklists unreadable (" + e.detail() +
		          "): contract type, period type and status are stored as codes");
	}

	// 2. Companies (the only entity filtered in quick mode), held back until
	// their contacts' e-mail domains are known: a company row is stored
	// whole, domains included.
	std::string company_filter = kAllRecords;
	if (quick) {
		std::string ts = model::NormalizeTimestamp(*request.since, true).substr(0, 19) + "Z";
		company_filter = R"([{"op":"gt","field":"lastTrackedModifiedDateTime","value":)" + Quote(ts) + "}]";
	}
	std::vector<std::vector<model::Company>> company_pages;
	std::vector<model::Company> companies;
	Query(
	    send, base, settings_, "Companies", company_filter, "companies",
	    [&](const json::Object &o, const std::string &id) { companies.push_back(MapCompany(o, id)); },
	    [&](size_t n) {
		    if (!companies.empty())
			    company_pages.push_back(std::move(companies));
		    companies.clear();
		    sink.OnPage("companies", n);
	    });

	// 3. Contacts: the e-mail domains of every active contact join its
	// company's domains (after the website's). Only read when a company is to
	// be stored, and then in full, quick mode included: every stored company
	// must carry all its contacts' domains.
	if (!company_pages.empty()) {
		ContactDomains contacts;
		Query(
		    send, base, settings_, "Contacts", kAllRecords, "contacts",
		    [&](const json::Object &o, const std::string &) { ReadContact(o, contacts); },
		    [&](size_t n) { sink.OnPage("contacts", n); }, kContactFields);
		for (std::vector<model::Company> &rows : company_pages) {
			for (model::Company &c : rows)
				contacts.MergeInto(c);
			sink.PutCompanies(rows);
		}
		company_pages.clear();
	}

	// 4. Service catalogue: id -> name, to name the contract services.
	std::unordered_map<std::string, std::string> service_names;
	Query(
	    send, base, settings_, "Services", kAllRecords, "services",
	    [&](const json::Object &o, const std::string &id) {
		    if (std::optional<std::string> name = o.OptionalNonEmptyString("name"))
			    service_names.emplace(id, *name);
	    },
	    [&](size_t n) { sink.OnPage("services", n); });

	// 5. Contracts; remember each one's company for its services.
	std::unordered_map<std::string, std::string> contract_company;
	std::vector<model::Agreement> agreements;
	Query(
	    send, base, settings_, "Contracts", kAllRecords, "contracts",
	    [&](const json::Object &o, const std::string &id) {
		    model::Agreement a = MapContract(o, id, lists);
		    contract_company[a.external_id] = a.company_external_id;
		    agreements.push_back(std::move(a));
	    },
	    [&](size_t n) {
		    if (!agreements.empty())
			    sink.PutAgreements(agreements);
		    agreements.clear();
		    sink.OnPage("contracts", n);
	    });

	// 6. Units per contract service in the period covering the as-of date.
	std::unordered_map<std::string, std::optional<UnitRow>> units;
	Query(
	    send, base, settings_, "ContractServiceUnits", "[{\"op\":\"and\",\"items\":[" + UnitWindowItems(as_of) + "]}]",
	    "contract service units",
	    [&](const json::Object &o, const std::string &id) {
		    std::string service = o.RequiredId("contractServiceID");
		    KeepCovering(units[service], MapUnit(o, id), as_of);
	    },
	    [&](size_t n) { sink.OnPage("contract service units", n); });

	// 7. Contract services: the line items.
	std::vector<model::LineItem> lines;
	long orphans = 0;
	std::string first_orphan;
	Query(
	    send, base, settings_, "ContractServices", kAllRecords, "contract services",
	    [&](const json::Object &o, const std::string &id) {
		    model::LineItem li;
		    li.external_id = id;
		    li.agreement_external_id = o.RequiredId("contractID");
		    auto company = contract_company.find(li.agreement_external_id);
		    if (company == contract_company.end()) {
			    if (orphans++ == 0)
				    first_orphan = id;
			    return;
		    }
		    li.company_external_id = company->second;
		    li.product_code = o.OptionalId("serviceID");
		    std::optional<std::string> invoice_text = o.OptionalNonEmptyString("invoiceDescription");
		    li.description = invoice_text ? invoice_text : o.OptionalNonEmptyString("internalDescription");
		    if (li.product_code) {
			    auto name = service_names.find(*li.product_code);
			    if (name != service_names.end())
				    li.product_name = name->second;
		    }
		    if (!li.product_name)
			    li.product_name = invoice_text;
		    li.unit_price = o.OptionalDecimal("unitPrice");
		    li.unit_cost = o.OptionalDecimal("unitCost");
		    auto unit = units.find(id);
		    if (unit != units.end() && unit->second) {
			    li.quantity = unit->second->units;
			    li.quantity_source = "contract service units " + unit->second->start + " to " + unit->second->end;
		    } else {
			    li.quantity = model::Decimal::Parse("0");
			    li.quantity_source = "no contract service units on " + as_of;
		    }
		    lines.push_back(std::move(li));
	    },
	    [&](size_t n) {
		    if (!lines.empty())
			    sink.PutLineItems(lines);
		    lines.clear();
		    sink.OnPage("contract services", n);
	    });
	if (orphans > 0)
		sink.Warn("Autotask: " + std::to_string(orphans) + " contract service(s) skipped (first: id " + first_orphan +
		          ") because their contract was not in the Contracts list (created during the sync?); the next "
		          "sync picks them up");
	return outcome;
}

namespace {

// The ContractServiceUnits row of one contract service covering `date`.
std::optional<UnitRow> UnitsOn(const SendFn &send, const std::string &base, const AutotaskConnector::Settings &settings,
                               const std::string &contract_service_id, const std::string &date) {
	std::optional<UnitRow> best;
	const std::string filter = R"([{"op":"and","items":[{"op":"eq","field":"contractServiceID","value":)" +
	                           contract_service_id + "}," + UnitWindowItems(date) + "]}]";
	Query(
	    send, base, settings, "ContractServiceUnits", filter, "units of contract service " + contract_service_id,
	    [&](const json::Object &o, const std::string &id) {
		    std::optional<std::string> service = o.OptionalId("contractServiceID");
		    if (service && *service != contract_service_id)
			    return; // the filter should exclude it; never adjust the wrong line
		    KeepCovering(best, MapUnit(o, id), date);
	    },
	    [](size_t) {});
	return best;
}

[[noreturn]] void ThrowServiceGone(const std::string &endpoint) {
	throw Error(sqlstate::kPrerequisite, "Autotask contract service not found", endpoint + " returned no item.",
	            "The contract service was removed in Autotask since the last sync; run a full sync and reconcile "
	            "again.");
}

[[noreturn]] void ThrowNoUnits(const QuantityChange &change) {
	throw Error(sqlstate::kPrerequisite, "no Autotask unit period covers the effective date",
	            "Contract service " + change.line_item_external_id + " of contract " + change.agreement_external_id +
	                " has no ContractServiceUnits row whose period contains " + change.effective_date + ".",
	            "Choose an effective date inside the contract's service periods (before its end date), or extend "
	            "the contract in Autotask first.");
}

} // namespace

model::Decimal AutotaskConnector::ReadQuantity(http::Client &client, const QuantityChange &change) {
	CheckAutotaskId("contract", change.agreement_external_id);
	CheckAutotaskId("contract service", change.line_item_external_id);
	const std::string date = ValidDate(change.effective_date, "effective date");
	const SendFn send = [&](http::Request r) { return Send(client, std::move(r)); };
	const std::string &base = ResolveBase(client);
	std::optional<UnitRow> row = UnitsOn(send, base, settings_, change.line_item_external_id, date);
	if (!row) {
		// No units: say so only if the service itself still exists.
		const std::string path = "/V1.0/ContractServices/" + change.line_item_external_id;
		http::Response got = send(JsonGet(JoinUrl(base, path), "contract service " + change.line_item_external_id));
		json::Value root = json::ParseResponse(got.body, "GET " + path);
		json::Object body(root, json::Where{"GET " + path, "record id " + change.line_item_external_id, ""});
		if (!body.OptionalObject("item"))
			ThrowServiceGone("GET " + path);
		ThrowNoUnits(change);
	}
	return row->units;
}

QuantityChangeResult AutotaskConnector::UpdateQuantity(http::Client &client, const QuantityChange &change) {
	CheckAutotaskId("contract", change.agreement_external_id);
	CheckAutotaskId("contract service", change.line_item_external_id);
	const std::string date = ValidDate(change.effective_date, "effective date");
	std::optional<long long> target = WholeNumber(change.new_quantity);
	if (!target || *target < 0)
		throw Error(sqlstate::kInvalidParameter, "invalid quantity for Autotask",
		            "Autotask contract service units are whole, non-negative numbers; the new quantity is " +
		                change.new_quantity.str() + ".",
		            "Round the proposed quantity (the service rule's rounding) and approve again.");
	const std::string &base = ResolveBase(client);
	const SendFn send = [&](http::Request r) { return Send(client, std::move(r)); };

	// The contract service: its contract, service and unit price.
	const std::string path = "/V1.0/ContractServices/" + change.line_item_external_id;
	const std::string endpoint = "GET " + path;
	http::Response got = send(JsonGet(JoinUrl(base, path), "contract service " + change.line_item_external_id));
	json::Value root = json::ParseResponse(got.body, endpoint);
	json::Object body(root, json::Where{endpoint, "record id " + change.line_item_external_id, ""});
	std::optional<json::Object> item = body.OptionalObject("item");
	if (!item)
		ThrowServiceGone(endpoint);
	const std::string contract = item->RequiredId("contractID");
	if (contract != change.agreement_external_id)
		throw Error(sqlstate::kPrerequisite, "Autotask contract service belongs to another contract",
		            "Contract service " + change.line_item_external_id + " is on contract " + contract +
		                ", not on contract " + change.agreement_external_id + ".",
		            "Run a full sync and reconcile again.");
	std::optional<std::string> service_id = item->OptionalId("serviceID");
	std::optional<model::Decimal> unit_price = item->OptionalDecimal("unitPrice");

	std::optional<UnitRow> row = UnitsOn(send, base, settings_, change.line_item_external_id, date);
	if (!row)
		ThrowNoUnits(change);
	std::optional<long long> current = WholeNumber(row->units);
	if (!current)
		throw Error(sqlstate::kDataException, "unexpected units in Autotask",
		            "ContractServiceUnits row " + row->id + " has units " + row->units.str() + ", not a whole number.",
		            "Check the contract service in Autotask.");
	if (!service_id)
		service_id = row->service_id;

	QuantityChangeResult result;
	const std::string what = "contract service " + change.line_item_external_id + " of contract " + contract;
	if (*current == *target) {
		result.quantity_after = row->units;
		result.note = "Autotask: " + what + " already has " + row->units.str() + " units on " + date + ", nothing sent";
		return result;
	}
	const long long delta = *target - *current;
	std::string post = "{\"contractID\":" + contract + ",\"contractServiceID\":" + change.line_item_external_id;
	if (service_id && AllDigits(*service_id, kMaxIdDigits))
		post += ",\"serviceID\":" + *service_id;
	post += ",\"effectiveDate\":" + Quote(Midnight(date)) + ",\"unitChange\":" + std::to_string(delta);
	if (unit_price)
		post += ",\"adjustedUnitPrice\":" + unit_price->str();
	post += "}";
	http::Request adjust = JsonRequest(http::Method::kPost, JoinUrl(base, "/V1.0/ContractServiceAdjustments"),
	                                   std::move(post), "adjust units of " + what);
	adjust.send_once = true;   // the adjustment is a delta: sent twice, it counts twice
	http::Response created = send(std::move(adjust));
	// The adjustment exists now: an odd answer must not fail the change.
	try {
		if (!Trim(created.body).empty()) {
			json::Value answer = json::ParseResponse(created.body, "POST /V1.0/ContractServiceAdjustments");
			if (answer.IsObject()) {
				json::Object a(answer, json::Where{"POST /V1.0/ContractServiceAdjustments", "", ""});
				if (std::optional<std::string> id = a.OptionalId("itemId"))
					result.reference = "ContractServiceAdjustment " + *id;
			}
		}
	} catch (const Cancelled &) {
		throw;
	} catch (const Error &) {
	}
	std::optional<UnitRow> after = UnitsOn(send, base, settings_, change.line_item_external_id, date);
	result.quantity_after = after ? after->units : change.new_quantity;
	result.note = "Autotask: " + what + " adjusted by " + (delta > 0 ? "+" : "") + std::to_string(delta) +
	              " units from " + date + " (units on that date were " + row->units.str() + ", billrecon had " +
	              change.current_quantity.str() + ")";
	return result;
}

std::unique_ptr<Connector> CreateAutotask(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	auto settings = PagedSettings<AutotaskConnector::Settings>(config, parsed);
	settings.username = parsed.Credential("username");
	settings.requests_per_hour = parsed.IntOption("requests_per_hour", AutotaskConnector::kDefaultRequestsPerHour);
	settings.zone_lookup = parsed.IntOption("zone_lookup", 0) != 0;
	const std::string code = parsed.Credential("integration_code");
	const std::string secret = parsed.Credential("secret");
	client.SetAuth(http::MakeHeaderAuth(
	    {{"ApiIntegrationCode", code}, {"UserName", settings.username}, {"Secret", secret}}, {code, secret}));
	return std::make_unique<AutotaskConnector>(std::move(settings));
}

} // namespace billrecon::connectors
