// SQL: billrecon._count_usage(run_id bigint, psa_company_id bigint) -> bigint
//
// The counting pass of billrecon.reconcile() (sql/install/135_reconcile.sql):
// loads the run's rules, groups and lines, streams the usage records of the
// mapped clients through reconcile::UsageCounter once, and writes what it
// counted into the run's temporary tables (pg_temp.billrecon_group_counts,
// billrecon_unaccounted_parts, billrecon_client_seats) in three batch
// inserts. Returns the number of usage records read.
#include "model/error.hpp"
#include "reconcile/literal_pattern.hpp"
#include "reconcile/quantity.hpp"
#include "reconcile/usage_counter.hpp"

#include <algorithm>
#include <bitset>
#include <charconv>
#include <cstdio>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "pg/boundary.hpp"
#include "pg/sync_store.hpp"
#include "pg/usage_scan.hpp"

using namespace billrecon;

namespace {

constexpr int kBatchRows = 10000;

// The run's rows are in reconcile()'s working table, pg_temp.billrecon_run_rows:
// its lines are read once (kRunLines), and each distinct rule of the run once
// (kRuleKeys, then the filters of each distinct mode and filters, $1 = the
// keys "mode filters" as text[]).
const char *const kRunLines =
    "SELECT x.psa_company_id::text, x.rule_id::text, x.integration_id::text, x.state,"
    "       lower(coalesce(x.product_name, ''))"
    "  FROM pg_temp.billrecon_run_rows x WHERE x.run_id = $1 AND x.row_kind = 'line'"
    "   AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')";
const char *const kRuleKeys =
    "SELECT s.rule_id::text, s.mode || ' ' || coalesce(s.filters, '{}')::text"
    "  FROM (SELECT DISTINCT ON (x.rule_id) x.rule_id, x.mode, x.filters FROM pg_temp.billrecon_run_rows x"
    "         WHERE x.run_id = $1 AND x.row_kind = 'line' AND x.rule_id IS NOT NULL ORDER BY x.rule_id) s";
const char *const kRuleSet =
    "WITH r AS (SELECT k AS key, split_part(k, ' ', 1) AS mode, substr(k, strpos(k, ' ') + 1)::jsonb AS filters"
    "             FROM unnest($1::text[]) k)";
const std::string kRules = std::string(kRuleSet) +
                           " SELECT r.key, r.mode, f.device_classes IS NOT NULL,"
                           "        f.os_pattern, f.name_pattern, f.skus IS NOT NULL, f.products_pattern,"
                           "        f.users = 'enabled', f.count_purchased"
                           "   FROM r CROSS JOIN LATERAL billrecon._rule_filter(r.filters) f";
// jsonb's ? operator: string elements of an array, keys of an object, a string itself.
const std::string kRuleClasses =
    std::string(kRuleSet) +
    " SELECT r.key, c.v"
    "   FROM r CROSS JOIN LATERAL billrecon._rule_filter(r.filters) f"
    "   CROSS JOIN LATERAL ("
    "     SELECT e #>> '{}' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(f.device_classes) = 'array'"
    "                                                      THEN f.device_classes ELSE '[]' END) e"
    "      WHERE jsonb_typeof(e) = 'string'"
    "     UNION ALL SELECT k FROM jsonb_object_keys(CASE WHEN jsonb_typeof(f.device_classes) = 'object'"
    "                                                    THEN f.device_classes ELSE '{}' END) k"
    "     UNION ALL SELECT f.device_classes #>> '{}' WHERE jsonb_typeof(f.device_classes) = 'string') c(v)";
const std::string kRuleSkus = std::string(kRuleSet) +
                              " SELECT r.key, s"
                              "   FROM r CROSS JOIN LATERAL billrecon._rule_filter(r.filters) f"
                              "   CROSS JOIN LATERAL unnest(f.skus) s WHERE s IS NOT NULL";
const char *const kMultiSystemClients =
    "SELECT m.psa_company_id::text FROM billrecon.client_mappings m"
    "  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL"
    " WHERE $2::bigint IS NULL OR m.psa_company_id = $2"
    " GROUP BY m.psa_company_id HAVING count(DISTINCT va.integration_id) > 1";
const char *const kExcluded =
    "SELECT e.integration_id::text, lower(e.product) FROM billrecon.excluded_vendor_products e";
std::string_view View(const pg::Cell &c) {
	return c.p ? std::string_view(c.p, static_cast<std::size_t>(c.len)) : std::string_view();
}
std::string Text(const pg::CellRows *rows, int r, int c) {
	return std::string(View(rows->cells[r * rows->ncols + c]));
}
bool IsNull(const pg::CellRows *rows, int r, int c) {
	return rows->cells[r * rows->ncols + c].p == nullptr;
}
long long Integer(const pg::CellRows *rows, int r, int c) {
	return std::stoll(Text(rows, r, c));
}

// PostgreSQL's ~*: plain-text patterns on ASCII values decided here with
// the database's own case rules (reconcile/literal_pattern.hpp), everything
// else by PostgreSQL's regex engine through the boundary.
class PgPatterns : public reconcile::PatternMatcher {
public:
	int Add(std::string_view pattern) override {
		auto it = ids_.find(std::string(pattern));
		if (it != ids_.end())
			return it->second;
		const char *data = pattern.empty() ? "" : pattern.data();
		patterns_.push_back(CallPg(pg::MakePattern, data, static_cast<int>(pattern.size())));
		reconcile::LiteralPattern literal;
		if (reconcile::LiteralPattern::Parse(pattern, &literal)) {
			for (char c : literal.DistinctChars())
				literal.SetMatches(c, CaseClass(c));
			literals_.emplace_back(std::move(literal));
		} else {
			literals_.emplace_back(std::nullopt);
		}
		ids_.emplace(std::string(pattern), static_cast<int>(patterns_.size()) - 1);
		return static_cast<int>(patterns_.size()) - 1;
	}
	bool Matches(int id, std::string_view value) override {
		const std::optional<reconcile::LiteralPattern> &literal = literals_[static_cast<std::size_t>(id)];
		if (literal) {
			reconcile::LiteralPattern::Result r = literal->Match(value);
			if (r != reconcile::LiteralPattern::Result::kUndecided)
				return r == reconcile::LiteralPattern::Result::kMatch;
		}
		const char *data = value.empty() ? "" : value.data();
		return CallPg(pg::MatchesPattern, patterns_[static_cast<std::size_t>(id)], data, static_cast<int>(value.size()));
	}

private:
	// The ASCII characters that match c case-insensitively in this database.
	// A backend serves one database, whose collation never changes: asked
	// once per character for the life of the backend.
	static std::bitset<128> CaseClass(char c) {
		static std::map<char, std::bitset<128>> classes;
		auto it = classes.find(c);
		if (it != classes.end())
			return it->second;
		bool matches[128];
		CallPg(pg::AsciiMatches, c, static_cast<bool *>(matches));
		std::bitset<128> set;
		for (int x = 1; x < 128; ++x)
			set[static_cast<std::size_t>(x)] = matches[x];
		classes.emplace(c, set);
		return set;
	}

	std::vector<void *> patterns_;
	std::vector<std::optional<reconcile::LiteralPattern>> literals_;
	std::map<std::string, int> ids_;
};

// Whether the database maps ASCII case plainly (pg::AsciiCaseIsPlain), asked
// once per backend (one database, one collation).
bool AsciiCaseIsPlain() {
	static int plain = -1;
	if (plain < 0)
		plain = CallPg(pg::AsciiCaseIsPlain) ? 1 : 0;
	return plain == 1;
}

struct GroupKey {
	std::int64_t company, rule;
	std::int32_t integration;
	bool operator<(const GroupKey &o) const {
		return std::tie(company, rule, integration) < std::tie(o.company, o.rule, o.integration);
	}
	bool operator==(const GroupKey &o) const {
		return company == o.company && rule == o.rule && integration == o.integration;
	}
};

// A bigint or integer of the run's rows (as text; never null where read).
std::int64_t Id(const pg::CellRows *rows, int r, int c) {
	const pg::Cell &cell = rows->cells[r * rows->ncols + c];
	std::int64_t v = 0;
	auto res = std::from_chars(cell.p, cell.p + cell.len, v);
	if (res.ec != std::errc() || res.ptr != cell.p + cell.len)
		throw Error(sqlstate::kInternal, "reconcile: an id of the run's rows is not a number",
		            "Value \"" + std::string(View(cell)) + "\".", "This is a bug in billrecon; please report it.");
	return v;
}

template <typename T>
void SortUnique(std::vector<T> *v) {
	std::sort(v->begin(), v->end());
	v->erase(std::unique(v->begin(), v->end()), v->end());
}

// The run's distinct rules (keys "mode filters"), unpacked and registered.
std::map<std::string, int> LoadRules(reconcile::UsageCounter *counter, PgPatterns *patterns,
                                     const std::set<std::string> &keys) {
	std::vector<const char *> items;
	for (const std::string &k : keys)
		items.push_back(k.c_str());
	const int n = static_cast<int>(items.size());
	const char *const *list = items.data();
	std::map<std::string, reconcile::RuleFilter> filters;
	std::map<std::string, reconcile::RuleMode> modes;
	const pg::CellRows *rows = CallPg(pg::QueryWithTexts, kRules.c_str(), n, list);
	for (int r = 0; r < rows->nrows; ++r) {
		reconcile::RuleFilter f;
		f.has_classes = Text(rows, r, 2) == "t";
		if (!IsNull(rows, r, 3))
			f.os_pattern = patterns->Add(Text(rows, r, 3));
		if (!IsNull(rows, r, 4))
			f.name_pattern = patterns->Add(Text(rows, r, 4));
		f.has_skus = Text(rows, r, 5) == "t";
		if (!IsNull(rows, r, 6))
			f.products_pattern = patterns->Add(Text(rows, r, 6));
		f.users_enabled = Text(rows, r, 7) == "t";
		f.count_purchased = Text(rows, r, 8) == "t";
		filters[Text(rows, r, 0)] = f;
		modes[Text(rows, r, 0)] = reconcile::ParseRuleMode(Text(rows, r, 1));
	}
	rows = CallPg(pg::QueryWithTexts, kRuleClasses.c_str(), n, list);
	for (int r = 0; r < rows->nrows; ++r)
		if (!IsNull(rows, r, 1))
			filters[Text(rows, r, 0)].classes.push_back(Text(rows, r, 1));
	rows = CallPg(pg::QueryWithTexts, kRuleSkus.c_str(), n, list);
	for (int r = 0; r < rows->nrows; ++r)
		filters[Text(rows, r, 0)].skus.push_back(Text(rows, r, 1));
	std::map<std::string, int> index;
	for (auto &entry : filters)
		index[entry.first] = counter->AddRule(modes[entry.first], std::move(entry.second));
	return index;
}

int RuleIndex(const std::map<std::string, int> &rules, const std::string &key) {
	auto it = rules.find(key);
	if (it == rules.end())
		throw Error(sqlstate::kInternal, "reconcile: a line's rule is missing from the run's rule set",
		            "Rule \"" + key.substr(0, 200) + "\".", "This is a bug in billrecon; please report it.");
	return it->second;
}

// lower() and upper() as PostgreSQL computes them under the database's
// collation: ASCII texts mapped here when the database maps ASCII plainly
// (pg::AsciiCaseIsPlain: not under a Turkish collation, say), anything else
// asked of PostgreSQL. Results live until Clear (one batch).
class TextCase {
public:
	explicit TextCase(bool ascii_plain) : ascii_plain_(ascii_plain) {
	}
	std::string_view Lower(std::string_view s) {
		return Map(false, s);
	}
	std::string_view Upper(std::string_view s) {
		return Map(true, s);
	}
	void Clear() {
		storage_.clear();
	}

private:
	std::string_view Map(bool upper, std::string_view s) {
		if (ascii_plain_) {
			bool ascii = true, changes = false;
			for (char c : s) {
				auto u = static_cast<unsigned char>(c);
				ascii = ascii && u < 0x80;
				changes = changes || (upper ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z'));
			}
			if (ascii && !changes)
				return s;
			if (ascii) {
				std::string &out = storage_.emplace_back(s);
				for (char &c : out)
					if (upper && c >= 'a' && c <= 'z')
						c = static_cast<char>(c - 'a' + 'A');
					else if (!upper && c >= 'A' && c <= 'Z')
						c = static_cast<char>(c - 'A' + 'a');
				return out;
			}
		}
		pg::Cell c{nullptr, 0};
		CallPg(pg::CaseMap, upper, s.empty() ? "" : s.data(), static_cast<int>(s.size()), &c);
		return View(c);
	}

	bool ascii_plain_;
	std::deque<std::string> storage_; // stable addresses: records hold views
};

// Excluded vendor products (billrecon._usage_excluded): lower(product) per integration.
class Exclusions {
public:
	void Add(std::int32_t integration, std::string product_lower) {
		integrations_.insert(integration);
		products_.emplace(integration, std::move(product_lower));
	}
	bool Any(std::int32_t integration) const {
		return integrations_.count(integration) > 0;
	}
	bool Contains(std::int32_t integration, std::string_view product_lower) const {
		return products_.count({integration, std::string(product_lower)}) > 0;
	}

private:
	std::set<std::int32_t> integrations_;
	std::set<std::pair<std::int32_t, std::string>> products_;
};

reconcile::UsageRecord ToRecord(const pg::UsageRow &row, TextCase *text_case, const Exclusions &exclusions) {
	reconcile::UsageRecord u;
	u.id = row.id;
	u.account_id = row.account_id;
	u.client_id = row.client_id;
	u.integration_id = row.integration_id;
	if (!reconcile::ParseUsageKind(View(row.text[pg::kUtKind]), &u.kind))
		throw Error(sqlstate::kDataException, "usage record " + std::to_string(row.id) + " has an unknown kind",
		            "kind is \"" + std::string(View(row.text[pg::kUtKind])) + "\".",
		            "This is a bug in billrecon; please report it.");
	u.quantity = reconcile::Quantity::Parse(View(row.text[pg::kUtQuantity]));
	u.has_purchased = row.text[pg::kUtPurchased].p != nullptr;
	if (u.has_purchased)
		u.purchased = reconcile::Quantity::Parse(View(row.text[pg::kUtPurchased]));
	u.enabled = static_cast<reconcile::Flag>(row.enabled);
	u.licensed = static_cast<reconcile::Flag>(row.licensed);
	auto opt = [&row](int t, bool *has, std::string_view *value) {
		*has = row.text[t].p != nullptr;
		*value = View(row.text[t]);
	};
	opt(pg::kUtDeviceClass, &u.has_device_class, &u.device_class);
	opt(pg::kUtOsName, &u.has_os_name, &u.os_name);
	opt(pg::kUtDeviceName, &u.has_device_name, &u.device_name);
	opt(pg::kUtProduct, &u.has_product, &u.product);
	opt(pg::kUtProductName, &u.has_product_name, &u.product_name);
	opt(pg::kUtSerial, &u.has_serial, &u.serial_upper);
	opt(pg::kUtDisplay, &u.has_display, &u.display_name);
	// The mapped texts, only for the kinds that read them (usage_counter.cpp).
	switch (u.kind) {
	case reconcile::UsageKind::kDevice:
		if (u.has_device_name)
			u.device_name_lower = text_case->Lower(u.device_name);
		if (u.has_serial)
			u.serial_upper = text_case->Upper(u.serial_upper);
		break;
	case reconcile::UsageKind::kLicence:
		u.product_upper = text_case->Upper(u.product);             // upper(coalesce(product, ''))
		u.product_name_upper = text_case->Upper(u.product_name);   // upper(coalesce(product_name, ''))
		break;
	case reconcile::UsageKind::kSubscription:
		if (u.has_product_name)
			u.product_name_lower = text_case->Lower(u.product_name);
		break;
	case reconcile::UsageKind::kUser:
		break;
	}
	if (u.has_display && (u.kind == reconcile::UsageKind::kLicence || u.kind == reconcile::UsageKind::kSubscription))
		u.display_lower = text_case->Lower(u.display_name);
	u.excluded = exclusions.Any(u.integration_id) &&
	             (exclusions.Contains(u.integration_id, text_case->Lower(u.product)) ||
	              exclusions.Contains(u.integration_id, text_case->Lower(u.product_name)));
	u.integration_enabled = row.integration_enabled;
	return u;
}

// Column-wise text cells for pg::InsertTextColumns.
class Columns {
public:
	explicit Columns(int n) : text_(n), null_(n) {
	}
	void Add(int c, std::string v) {
		text_[c].push_back(std::move(v));
		null_[c].push_back(false);
	}
	void AddNull(int c) {
		text_[c].emplace_back();
		null_[c].push_back(true);
	}
	void Insert(const char *sql) {
		int n = static_cast<int>(text_.size());
		int rows = text_.empty() ? 0 : static_cast<int>(text_[0].size());
		if (rows == 0)
			return;
		std::vector<std::vector<const char *>> cells(n);
		std::vector<const char *const *> columns(n);
		for (int c = 0; c < n; ++c) {
			for (int r = 0; r < rows; ++r)
				cells[c].push_back(null_[c][r] ? nullptr : text_[c][r].c_str());
			columns[c] = cells[c].data();
		}
		CallPg(pg::InsertTextColumns, sql, n, rows, static_cast<const char *const *const *>(columns.data()));
	}

private:
	std::vector<std::vector<std::string>> text_;
	std::vector<std::vector<bool>> null_;
};

} // namespace

// What the scan's sink needs, and what it leaves behind.
struct ScanState {
	reconcile::UsageCounter *counter;
	TextCase *text_case;
	const Exclusions *exclusions;
	std::vector<reconcile::UsageRecord> records; // one batch, converted
	std::exception_ptr error;                    // why the sink stopped the scan
	double converting, counting;                 // ms
};

// The scan's sink (pg::UsageSink): converts a batch and counts it. Called by
// the executor, so nothing may escape: a failure is kept for the caller and
// stops the scan.
bool CountBatch(void *arg, const pg::UsageBatch *batch) noexcept {
	ScanState *scan = static_cast<ScanState *>(arg);
	try {
		using Clock = std::chrono::steady_clock;
		const Clock::time_point a = Clock::now();
		scan->text_case->Clear();
		scan->records.clear();
		scan->records.reserve(static_cast<std::size_t>(batch->nrows));
		for (int r = 0; r < batch->nrows; ++r)
			scan->records.push_back(ToRecord(batch->rows[r], scan->text_case, *scan->exclusions));
		const Clock::time_point b = Clock::now();
		scan->counter->Add(scan->records.data(), scan->records.size());
		scan->converting += std::chrono::duration<double, std::milli>(b - a).count();
		scan->counting += std::chrono::duration<double, std::milli>(Clock::now() - b).count();
		return true;
	} catch (...) {
		scan->error = std::current_exception();
		return false;
	}
}

BILLRECON_FUNCTION(billrecon_count_usage) {
	if (PG_ARGISNULL(0))
		throw Error(sqlstate::kInvalidParameter, "run_id must not be null", "",
		            "billrecon._count_usage is called by billrecon.reconcile().");
	int64 run_id = PG_GETARG_INT64(0);
	bool has_company = !PG_ARGISNULL(1);
	int64 company = has_company ? PG_GETARG_INT64(1) : 0;

	// Where the time goes, for DEBUG1 (SET client_min_messages = debug1).
	using Clock = std::chrono::steady_clock;
	auto ms = [](Clock::time_point a, Clock::time_point b) {
		return std::chrono::duration<double, std::milli>(b - a).count();
	};
	const Clock::time_point started = Clock::now();
	double fetching = 0, converting = 0, counting = 0;
	CallPg(pg::SpiConnect);
	PgPatterns patterns;
	reconcile::UsageCounter counter(&patterns);

	// The run's rules: each rule id's key "mode filters" (rules of equal mode
	// and filters are one rule to the counter).
	std::map<std::int64_t, std::string> rule_keys; // rule id -> key
	const pg::CellRows *rows = CallPg(pg::QueryRunRows, kRuleKeys, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r)
		rule_keys[Id(rows, r, 0)] = Text(rows, r, 1);
	// The run's lines: reconciled groups (client x rule x integration); lines
	// whose rule captures usage — reconciled, ignored, custom_sql and
	// unmapped ones (what they capture is not unaccounted); the product
	// names of those lines (usage billed by name).
	std::vector<GroupKey> groups, captures;
	std::vector<std::pair<std::int64_t, std::string>> line_names;
	rows = CallPg(pg::QueryRunRows, kRunLines, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r) {
		const std::int64_t client = Id(rows, r, 0);
		line_names.emplace_back(client, Text(rows, r, 4));
		if (IsNull(rows, r, 1) || IsNull(rows, r, 2))
			continue;
		GroupKey key{client, Id(rows, r, 1), static_cast<std::int32_t>(Id(rows, r, 2))};
		captures.push_back(key);
		if (View(rows->cells[r * rows->ncols + 3]) == "reconciled")
			groups.push_back(key);
	}
	SortUnique(&groups);
	SortUnique(&captures);
	SortUnique(&line_names);
	std::set<std::string> used_rules;
	auto rule_key = [&rule_keys](std::int64_t rule) -> const std::string & {
		auto it = rule_keys.find(rule);
		if (it == rule_keys.end())
			throw Error(sqlstate::kInternal, "reconcile: a line's rule is missing from the run's rule set",
			            "Rule " + std::to_string(rule) + ".", "This is a bug in billrecon; please report it.");
		return it->second;
	};
	for (const GroupKey &k : captures)
		used_rules.insert(rule_key(k.rule));
	std::map<std::string, int> rules = LoadRules(&counter, &patterns, used_rules);
	for (std::size_t i = 0; i < groups.size(); ++i)
		counter.AddGroup(static_cast<int64>(i), groups[i].company, groups[i].integration,
		                 RuleIndex(rules, rule_key(groups[i].rule)));
	for (const GroupKey &k : captures) // one per client, integration and distinct rule: AddCaptureLine dedups
		counter.AddCaptureLine(k.company, k.integration, RuleIndex(rules, rule_key(k.rule)));
	for (const auto &[client, name] : line_names)
		counter.AddLineName(client, name);

	rows = CallPg(pg::QueryRunRows, kMultiSystemClients, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r)
		counter.AddMultiSystemClient(Integer(rows, r, 0));

	const Clock::time_point scan_started = Clock::now();
	Exclusions exclusions;
	rows = CallPg(pg::QueryRunRows, kExcluded, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r)
		exclusions.Add(static_cast<std::int32_t>(Integer(rows, r, 0)), Text(rows, r, 1));

	TextCase text_case(AsciiCaseIsPlain());
	ScanState scan{&counter, &text_case, &exclusions, {}, nullptr, 0, 0};
	const Clock::time_point scan_began = Clock::now();
	try {
		CallPg(pg::ScanUsage, has_company, company, kBatchRows, static_cast<pg::UsageSink>(CountBatch),
		       static_cast<void *>(&scan));
	} catch (const PgError &) {
		if (scan.error) // the sink stopped the scan: its own error, not the stop
			std::rethrow_exception(scan.error);
		throw;
	}
	// The executor's own time: the scan less what the sink did.
	fetching = ms(scan_began, Clock::now()) - scan.converting - scan.counting;
	converting = scan.converting;
	counting = scan.counting;
	const Clock::time_point scan_ended = Clock::now();
	reconcile::CountResults results = counter.Finish();
	const Clock::time_point finished = Clock::now();

	CallPg(pg::PrepareCountTables);
	Columns g(5);
	for (const reconcile::GroupCount &c : results.groups) {
		const GroupKey &k = groups[static_cast<std::size_t>(c.group_id)];
		g.Add(0, std::to_string(k.company));
		g.Add(1, std::to_string(k.rule));
		g.Add(2, std::to_string(k.integration));
		g.Add(3, c.quantity.ToString());
		g.Add(4, std::to_string(c.machines));
	}
	g.Insert("INSERT INTO pg_temp.billrecon_group_counts"
	         " SELECT c::bigint, r::bigint, i::integer, q::numeric, m::bigint FROM unnest($1, $2, $3, $4, $5) AS u(c, r, i, q, m)");
	Columns p(8);
	for (const reconcile::UnaccountedPart &u : results.unaccounted) {
		p.Add(0, std::to_string(u.client_id));
		p.Add(1, std::to_string(u.integration_id));
		p.Add(2, reconcile::UsageKindName(u.kind));
		p.Add(3, u.product);
		if (u.has_display)
			p.Add(4, u.display_name);
		else
			p.AddNull(4);
		p.Add(5, std::to_string(u.account_id));
		p.Add(6, u.quantity.ToString());
		p.Add(7, std::to_string(u.min_usage_id));
	}
	p.Insert("INSERT INTO pg_temp.billrecon_unaccounted_parts"
	         " SELECT c::bigint, i::integer, k, p, d, a::bigint, q::numeric, m::bigint"
	         "   FROM unnest($1, $2, $3, $4, $5, $6, $7, $8) AS u(c, i, k, p, d, a, q, m)");
	Columns s(6);
	for (const reconcile::ClientSeats &c : results.seats) {
		s.Add(0, std::to_string(c.client_id));
		s.Add(1, c.total.ToString());
		s.Add(2, c.devices.ToString());
		s.Add(3, c.users.ToString());
		s.Add(4, c.licences.ToString());
		s.Add(5, c.subscriptions.ToString());
	}
	s.Insert("INSERT INTO pg_temp.billrecon_client_seats"
	         " SELECT c::bigint, t::numeric, d::numeric, u::numeric, l::numeric, s::numeric"
	         "   FROM unnest($1, $2, $3, $4, $5, $6) AS x(c, t, d, u, l, s)");
	if (!has_company) // a run of one client is small enough for any plan
		CallPg(pg::AnalyzeCountTables);
	char timing[256];
	snprintf(timing, sizeof timing,
	              "billrecon: counting pass: %lld records; ms: run's rules %.0f, fetching %.0f, converting %.0f, "
	              "counting %.0f, totals %.0f, writing %.0f",
	              static_cast<long long>(results.records), ms(started, scan_started), fetching, converting, counting,
	              ms(scan_ended, finished), ms(finished, Clock::now()));
	CallPg(pg::LogDebug, static_cast<const char *>(timing));
	CallPg(pg::SpiFinish);
	PG_RETURN_INT64(results.records);
}
