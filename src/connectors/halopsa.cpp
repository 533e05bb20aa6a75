#include "connectors/halopsa.hpp"

#include "connectors/connector_util.hpp"
#include "connectors/paging.hpp"
#include "http/auth.hpp"
#include "json/reader.hpp"
#include "model/error.hpp"

#include <cctype>
#include <unordered_set>
#include <utility>
#include <vector>

namespace billrecon::connectors {

namespace {

// An optional integral number field (Halo codes and counts).
std::optional<long long> OptionalInteger(const json::Object &o, std::string_view field) {
	const json::Value *v = o.Get(field);
	if (v == nullptr)
		return std::nullopt;
	if (std::optional<long long> n = JsonInteger(*v))
		return n;
	o.Unexpected(field, "an integer", v);
}

// Halo writes "no date" as 1899-12-30 (the OLE automation epoch); earlier
// than 1900 is treated as absent.
std::optional<std::string> HaloDate(const json::Object &o, std::string_view field) {
	std::optional<std::string> d = o.OptionalDate(field);
	if (d && d->compare(0, 4, "1900") < 0)
		return std::nullopt;
	return d;
}

// A Halo id in a URL path: an integer, negative allowed (recurring invoice
// ids are negative).
void CheckHaloId(std::string_view what, std::string_view id) {
	std::string_view digits = id;
	if (!digits.empty() && digits.front() == '-')
		digits.remove_prefix(1);
	bool ok = !digits.empty() && digits.size() <= 18;
	for (char c : digits)
		ok = ok && std::isdigit(static_cast<unsigned char>(c));
	if (!ok)
		throw Error(sqlstate::kInvalidParameter, "invalid HaloPSA " + std::string(what) + " id",
		            "The " + std::string(what) + " id \"" + std::string(id.substr(0, 40)) + "\" is not an integer.",
		            "Use the id HaloPSA shows for the " + std::string(what) +
		                " (a number, negative for recurring "
		                "invoices).");
}

// Reads a paged Halo list (pageinate=true&page_size=N&page_no=K), the list
// under `list_key`. Stops when record_count records were read (or, without
// record_count, at a short page). A page shorter than page_size before
// record_count is reached fails the sync (Halo capped the page size, which
// would silently skip records); a page holding only records already read is
// a pagination loop. on_item(object, id) gets every record once;
// on_page(count) is called after each page.
template <typename OnItem, typename OnPage>
void FetchPaged(http::Client &client, const HaloPsaConnector::Settings &settings, std::string_view path,
                std::string_view extra_query, std::string_view list_key, std::string_view phase, OnItem &&on_item,
                OnPage &&on_page) {
	const std::string endpoint = "GET " + std::string(path);
	const std::string first = JoinUrl(settings.base_url, path) +
	                          "?pageinate=true&page_size=" + std::to_string(settings.page_size) + "&page_no=";
	std::unordered_set<std::string> seen;
	long long received = 0;
	for (long page = 1;; ++page) {
		const std::string page_name = "page " + std::to_string(page);
		http::Response response = client.Send(
		    JsonGet(first + std::to_string(page) + std::string(extra_query), std::string(phase) + " " + page_name));
		json::Value root = json::ParseResponse(response.body, endpoint + " " + page_name);
		json::Where where{endpoint, page_name, ""};
		json::Object body(root, where);
		std::optional<long long> total = OptionalInteger(body, "record_count");
		if (total && *total < 0)
			body.Unexpected("record_count", "a non-negative integer", body.Get("record_count"));
		const json::Value &items = body.RequiredArray(list_key);
		size_t fresh = 0;
		for (size_t i = 0; i < items.size(); ++i) {
			json::Object o = json::Object::Item(items, i, where);
			std::string id = o.RequiredId("id");
			o.SetRecordId(id);
			if (!seen.insert(id).second)
				continue; // shifted into this page by a concurrent change
			++fresh;
			on_item(o, id);
		}
		on_page(fresh);
		const size_t n = items.size();
		if (n > 0 && fresh == 0)
			ThrowPaginationLoop(endpoint, page_name + " holds only records already read (page_no ignored?)");
		received += static_cast<long long>(fresh);
		if (total && received >= *total)
			break;
		if (n == 0 || (total && n < static_cast<size_t>(settings.page_size))) {
			if (!total)
				break;
			throw Error(sqlstate::kDataException, "incomplete list in vendor response",
			            endpoint + " " + page_name + ": " + std::to_string(n) + " records on a page of " +
			                std::to_string(settings.page_size) + ", but record_count is " + std::to_string(*total) +
			                " and only " + std::to_string(received) + " were read",
			            "HaloPSA may cap the page size below the page_size option: lower page_size and sync again.");
		}
		if (!total && n < static_cast<size_t>(settings.page_size))
			break;
		if (page >= settings.max_pages)
			ThrowTooManyPages(endpoint);
	}
}

model::Company MapClient(const json::Object &o, const std::string &id) {
	model::Company c;
	c.external_id = id;
	c.name = o.RequiredString("name");
	if (std::optional<bool> inactive = o.OptionalBool("inactive"))
		c.status = *inactive ? "Inactive" : "Active";
	c.website = o.OptionalNonEmptyString("website");
	auto add_domain = [&](const std::optional<std::string> &text) {
		if (!text)
			return;
		if (std::optional<std::string> d = DomainOfWebsite(*text))
			AddDomain(c.domains, *d);
	};
	add_domain(c.website);
	add_domain(o.OptionalNonEmptyString("domain"));
	return c;
}

model::Agreement MapInvoice(const json::Object &o, const std::string &id) {
	model::Agreement a;
	a.external_id = id;
	a.company_external_id = o.RequiredId("client_id");
	a.name = o.OptionalString("reference").value_or("");
	std::optional<json::Object> schedule = o.OptionalObject("schedule");
	std::optional<long long> period = OptionalInteger(o, "period");
	if (!period && schedule)
		period = OptionalInteger(*schedule, "period");
	if (period) {
		a.billing_cycle = HaloPsaConnector::MapPeriod(*period);
		a.billing_cycle_label = HaloPsaConnector::PeriodLabel(*period);
	}
	std::optional<bool> disabled = o.OptionalBool("disabled");
	if (schedule) {
		a.start_date = HaloDate(*schedule, "startdate");
		a.end_date = HaloDate(*schedule, "end_date");
		if (std::optional<bool> d = schedule->OptionalBool("disabled"))
			disabled = disabled.value_or(false) || *d;
	}
	if (disabled) {
		a.cancelled = *disabled;
		a.status = *disabled ? "Disabled" : "Active";
	}
	a.source_updated_at = o.OptionalTimestamp("last_modified");
	return a;
}

// "fixed" for recurring_invoice_quantity_type 0; Halo derives the quantity
// of other types from users, assets, licences or subscriptions (which code
// is which is unconfirmed), so they are kept as "quantity_type_<n>".
std::optional<std::string> QuantitySource(const json::Object &o) {
	std::optional<long long> type = OptionalInteger(o, "recurring_invoice_quantity_type");
	if (!type)
		return std::nullopt;
	return *type == 0 ? std::string("fixed") : "quantity_type_" + std::to_string(*type);
}

model::LineItem MapLine(const json::Object &line, const std::string &id, const model::Agreement &invoice) {
	model::LineItem li;
	li.external_id = id;
	li.agreement_external_id = invoice.external_id;
	li.company_external_id = invoice.company_external_id;
	li.product_code = line.OptionalNonEmptyString("item_code");
	li.product_name = line.OptionalNonEmptyString("item_shortdescription");
	li.description = line.OptionalNonEmptyString("item_longdescription");
	li.quantity = line.RequiredDecimal("qty_order");
	li.unit_price = line.OptionalDecimal("unit_price");
	li.unit_cost = line.OptionalDecimal("unit_cost");
	if (line.OptionalBool("isinactive").value_or(false))
		li.billing_type = "Inactive";
	li.quantity_source = QuantitySource(line);
	li.effective_date = HaloDate(line, "startdate");
	li.cancel_date = HaloDate(line, "enddate");
	return li;
}

// Calls fn(line object, line id) for every element of the invoice's lines,
// each named "record id <invoice> line id <line>" in errors. "lines" must be
// present: without it a full sync would drop every line of the invoice.
template <typename Fn>
void ForEachLine(const json::Object &invoice, const std::string &invoice_id, Fn &&fn) {
	const json::Value &lines = invoice.RequiredArray("lines");
	const std::string &endpoint = invoice.where().endpoint;
	for (size_t i = 0; i < lines.size(); ++i) {
		json::Object first(lines.at(i),
		                   json::Where{endpoint, "record id " + invoice_id + " line " + std::to_string(i + 1), ""});
		std::string line_id = first.RequiredId("id");
		json::Object line(lines.at(i), json::Where{endpoint, "record id " + invoice_id + " line id " + line_id, ""});
		fn(line, line_id);
	}
}

// One recurring invoice read for write-back.
struct InvoiceRead {
	std::string endpoint;
	json::Value root;
};

InvoiceRead ReadInvoice(http::Client &client, const HaloPsaConnector::Settings &settings,
                        const QuantityChange &change) {
	CheckHaloId("recurring invoice", change.agreement_external_id);
	CheckHaloId("recurring invoice line", change.line_item_external_id);
	const std::string path = "/api/RecurringInvoice/" + change.agreement_external_id;
	InvoiceRead read;
	read.endpoint = "GET " + path;
	http::Response response = client.Send(JsonGet(JoinUrl(settings.base_url, path) + "?includelines=true",
	                                              "recurring invoice " + change.agreement_external_id));
	read.root = json::ParseResponse(response.body, read.endpoint);
	return read;
}

// The line's qty_order in an invoice object, or nullopt when the invoice has
// no such line. `line_ids` collects the ids seen (for messages).
std::optional<model::Decimal> LineQuantity(const json::Object &invoice, const std::string &invoice_id,
                                           const std::string &line_id, std::vector<std::string> *line_ids) {
	std::optional<model::Decimal> found;
	ForEachLine(invoice, invoice_id, [&](const json::Object &line, const std::string &id) {
		if (line_ids)
			line_ids->push_back(id);
		if (id == line_id && !found)
			found = line.RequiredDecimal("qty_order");
	});
	return found;
}

[[noreturn]] void ThrowLineNotFound(const QuantityChange &change, const std::vector<std::string> &line_ids) {
	const std::string ids = JoinFirst(line_ids, 20);
	throw Error(sqlstate::kPrerequisite, "recurring invoice line not found in HaloPSA",
	            "Line " + change.line_item_external_id + " is not on recurring invoice " +
	                change.agreement_external_id + " (its lines: " + (ids.empty() ? "none" : ids) + ").",
	            "The line was removed or moved in HaloPSA since the last sync; run a full sync and reconcile again.");
}

// The quantity of the change's line on the invoice, or ThrowLineNotFound.
model::Decimal RequiredLineQuantity(const json::Object &invoice, const QuantityChange &change) {
	std::vector<std::string> ids;
	std::optional<model::Decimal> q =
	    LineQuantity(invoice, change.agreement_external_id, change.line_item_external_id, &ids);
	if (!q)
		ThrowLineNotFound(change, ids);
	return *q;
}

} // namespace

HaloPsaConnector::HaloPsaConnector(Settings settings) : settings_(std::move(settings)) {
	if (settings_.page_size < 1)
		settings_.page_size = 1;
	if (settings_.max_pages < 1)
		settings_.max_pages = 1;
}

model::BillingCycle HaloPsaConnector::MapPeriod(long long code) {
	return code == 2 ? model::BillingCycle::kMonthly : model::BillingCycle::kOther;
}

std::string HaloPsaConnector::PeriodLabel(long long code) {
	return code == 2 ? std::string("Monthly") : "period code " + std::to_string(code);
}

std::string HaloPsaConnector::TokenUrl(std::string_view base_url, const std::optional<std::string> &token_url,
                                       std::string_view tenant) {
	std::string url = token_url ? *token_url : JoinUrl(base_url, "/auth/token");
	const std::string placeholder = "{tenant}";
	const std::string encoded = http::UrlEncode(tenant);
	if (url.find(placeholder) != std::string::npos)
		return ReplaceAll(url, placeholder, encoded);
	if (!tenant.empty())
		url += (url.find('?') == std::string::npos ? "?tenant=" : "&tenant=") + encoded;
	return url;
}

SyncOutcome HaloPsaConnector::Sync(const SyncRequest &request, http::Client &client, RecordSink &sink) {
	SyncOutcome outcome = FullSyncOutcome(request, kQuickFallbackNote);

	// 1. Clients, inactive ones included: their recurring invoices may still
	// bill. Held back until their users' e-mail domains are known (a company
	// row is stored whole, domains included).
	std::vector<std::vector<model::Company>> client_pages;
	std::vector<model::Company> companies;
	FetchPaged(
	    client, settings_, "/api/Client", "&includeinactive=true", "clients", "clients",
	    [&](const json::Object &o, const std::string &id) { companies.push_back(MapClient(o, id)); },
	    [&](size_t n) {
		    if (!companies.empty())
			    client_pages.push_back(std::move(companies));
		    companies.clear();
		    sink.OnPage("clients", n);
	    });

	// 2. Users (the clients' contacts): the e-mail domain of every active
	// user joins its client's domains, after the website's. Halo leaves
	// inactive users out unless asked; an "inactive" one is skipped anyway.
	if (!client_pages.empty()) {
		ContactDomains contacts;
		FetchPaged(
		    client, settings_, "/api/Users", "", "users", "users",
		    [&](const json::Object &o, const std::string &) {
			    if (o.OptionalBool("inactive").value_or(false))
				    return;
			    std::optional<std::string> client_id = o.OptionalId("client_id");
			    std::optional<std::string> email = o.OptionalString("emailaddress");
			    if (client_id && email)
				    contacts.Add(*client_id, *email);
		    },
		    [&](size_t n) { sink.OnPage("users", n); });
		for (std::vector<model::Company> &rows : client_pages) {
			for (model::Company &c : rows)
				contacts.MergeInto(c);
			sink.PutCompanies(rows);
		}
		client_pages.clear();
	}

	// 3. Recurring invoices with their lines: one agreement per invoice, one
	// line item per line.
	std::vector<model::Agreement> agreements;
	std::vector<model::LineItem> lines;
	FetchPaged(
	    client, settings_, "/api/RecurringInvoice", "&includelines=true&includeinactive=true", "invoices",
	    "recurring invoices",
	    [&](const json::Object &o, const std::string &id) {
		    model::Agreement a = MapInvoice(o, id);
		    ForEachLine(o, id, [&](const json::Object &line, const std::string &line_id) {
			    lines.push_back(MapLine(line, line_id, a));
		    });
		    agreements.push_back(std::move(a));
	    },
	    [&](size_t n) {
		    if (!agreements.empty())
			    sink.PutAgreements(agreements);
		    if (!lines.empty())
			    sink.PutLineItems(lines);
		    agreements.clear();
		    lines.clear();
		    sink.OnPage("recurring invoices", n);
	    });
	return outcome;
}

model::Decimal HaloPsaConnector::ReadQuantity(http::Client &client, const QuantityChange &change) {
	InvoiceRead read = ReadInvoice(client, settings_, change);
	json::Object invoice(read.root, json::Where{read.endpoint, "record id " + change.agreement_external_id, ""});
	return RequiredLineQuantity(invoice, change);
}

QuantityChangeResult HaloPsaConnector::UpdateQuantity(http::Client &client, const QuantityChange &change) {
	InvoiceRead read = ReadInvoice(client, settings_, change);
	json::Object invoice(read.root, json::Where{read.endpoint, "record id " + change.agreement_external_id, ""});
	const model::Decimal before = RequiredLineQuantity(invoice, change);
	const std::string reference =
	    "recurring invoice " + change.agreement_external_id + " line " + change.line_item_external_id;
	std::string when = "from the next invoice HaloPSA creates";
	if (std::optional<std::string> next = HaloDate(invoice, "nextcreationdate"))
		when += " (" + *next + ")";
	const std::string dated = "; HaloPSA has no dated quantity change, effective date " + change.effective_date +
	                          " is recorded by billrecon only";

	QuantityChangeResult result;
	result.reference = reference;
	if (before == change.new_quantity) {
		result.quantity_after = before;
		result.note = "HaloPSA: qty_order of " + reference + " is already " + before.str() + ", nothing sent";
		return result;
	}

	// The whole invoice goes back with every line as read (lines left out
	// may be removed by Halo), only the changed line's qty_order differs.
	const json::Value *id_value = read.root.Find("id");
	std::string body = "[{\"id\":";
	if (id_value != nullptr && (id_value->IsNumber() || id_value->IsString()))
		AppendJson(body, *id_value);
	else
		body += change.agreement_external_id;
	body += ",\"lines\":[";
	const json::Value *lines = invoice.OptionalArray("lines");
	for (size_t i = 0; i < lines->size(); ++i) {
		if (i > 0)
			body += ',';
		const json::Value &line = lines->at(i);
		json::Object lo(line, json::Where{read.endpoint, "record id " + change.agreement_external_id, ""});
		if (lo.RequiredId("id") != change.line_item_external_id) {
			AppendJson(body, line);
			continue;
		}
		body += '{';
		for (size_t k = 0; k < line.size(); ++k) {
			if (k > 0)
				body += ',';
			json::AppendQuoted(body, line.key(k));
			body += ':';
			if (line.key(k) == "qty_order")
				body += change.new_quantity.str();
			else
				AppendJson(body, line.at(k));
		}
		body += '}';
	}
	body += "]}]";

	http::Request post = JsonRequest(http::Method::kPost, JoinUrl(settings_.base_url, "/api/RecurringInvoice"),
	                                 std::move(body), "update quantity of " + reference);
	// Sent once: after an unclear answer push_changes() reads the invoice
	// again rather than posting it a second time.
	post.send_once = true;
	http::Response response = client.Send(std::move(post));

	// The answer usually is the saved invoice; when it is not (or has no
	// such line), read the invoice again. The write already succeeded, so
	// an odd answer is not an error.
	std::optional<model::Decimal> after;
	try {
		if (!Trim(response.body).empty()) {
			json::Value root = json::ParseResponse(response.body, "POST /api/RecurringInvoice");
			const json::Value *saved = &root;
			if (root.IsArray())
				saved = root.size() > 0 ? &root.at(0) : nullptr;
			if (saved != nullptr && saved->IsObject() && saved->Find("lines") != nullptr) {
				json::Object o(
				    *saved, json::Where{"POST /api/RecurringInvoice", "record id " + change.agreement_external_id, ""});
				after = LineQuantity(o, change.agreement_external_id, change.line_item_external_id, nullptr);
			}
		}
	} catch (const Error &) {
		after.reset();
	}
	if (!after)
		after = ReadQuantity(client, change);
	result.quantity_after = *after;
	result.note = "HaloPSA: qty_order of " + reference + " set from " + before.str() + " to " +
	              change.new_quantity.str() + " by posting the recurring invoice with all its " +
	              std::to_string(lines->size()) + " lines; applies " + when + dated;
	return result;
}

std::unique_ptr<Connector> CreateHaloPsa(const IntegrationConfig &config, http::Client &client) {
	ParsedConfig parsed = ParseConfig(config);
	auto settings = PagedSettings<HaloPsaConnector::Settings>(config, parsed);
	const std::string tenant = parsed.Credential("tenant");
	const std::optional<std::string> token_url = parsed.StringOption("token_url");
	if (token_url && token_url->find("{tenant}") != std::string::npos && tenant.empty())
		throw Error(sqlstate::kInvalidParameter, "missing credential \"tenant\" for halopsa integration",
		            "Option token_url contains {tenant}, but the credentials have no tenant.",
		            "Add \"tenant\" to the credentials, or remove {tenant} from token_url.");
	http::OAuth2Config oauth =
	    ClientCredentialsGrant(HaloPsaConnector::TokenUrl(config.base_url, token_url, tenant),
	                           parsed.Credential("client_id"), parsed.Credential("client_secret"));
	oauth.scope = HaloPsaConnector::kScope;
	client.SetAuth(http::MakeOAuth2Auth(std::move(oauth)));
	return std::make_unique<HaloPsaConnector>(std::move(settings));
}

} // namespace billrecon::connectors
