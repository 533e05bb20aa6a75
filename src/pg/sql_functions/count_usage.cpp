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

#include <bitset>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pg/boundary.hpp"
#include "pg/sync_store.hpp"
#include "pg/usage_scan.hpp"

using namespace billrecon;

namespace {

constexpr int kBatchRows = 10000;

// The run's rows are in reconcile()'s working table, pg_temp.billrecon_run_rows.
// The run's distinct rules: reconciled groups, and lines whose rule captures
// usage (what they capture is not unaccounted).
const char *const kRuleSet =
    "WITH r AS ("
    "  SELECT DISTINCT x.mode, coalesce(x.filters, '{}') AS filters FROM pg_temp.billrecon_run_rows x"
    "   WHERE x.run_id = $1 AND x.row_kind = 'line' AND x.mode IS NOT NULL AND x.integration_id IS NOT NULL"
    "     AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped'))";
const std::string kRules = std::string(kRuleSet) +
                           " SELECT r.mode || ' ' || r.filters::text, r.mode, f.device_classes IS NOT NULL,"
                           "        f.os_pattern, f.name_pattern, f.skus IS NOT NULL, f.products_pattern,"
                           "        f.users = 'enabled', f.count_purchased"
                           "   FROM r CROSS JOIN LATERAL billrecon._rule_filter(r.filters) f";
// jsonb's ? operator: string elements of an array, keys of an object, a string itself.
const std::string kRuleClasses =
    std::string(kRuleSet) +
    " SELECT r.mode || ' ' || r.filters::text, c.v"
    "   FROM r CROSS JOIN LATERAL billrecon._rule_filter(r.filters) f"
    "   CROSS JOIN LATERAL ("
    "     SELECT e #>> '{}' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(f.device_classes) = 'array'"
    "                                                      THEN f.device_classes ELSE '[]' END) e"
    "      WHERE jsonb_typeof(e) = 'string'"
    "     UNION ALL SELECT k FROM jsonb_object_keys(CASE WHEN jsonb_typeof(f.device_classes) = 'object'"
    "                                                    THEN f.device_classes ELSE '{}' END) k"
    "     UNION ALL SELECT f.device_classes #>> '{}' WHERE jsonb_typeof(f.device_classes) = 'string') c(v)";
const std::string kRuleSkus = std::string(kRuleSet) +
                              " SELECT r.mode || ' ' || r.filters::text, s"
                              "   FROM r CROSS JOIN LATERAL billrecon._rule_filter(r.filters) f"
                              "   CROSS JOIN LATERAL unnest(f.skus) s WHERE s IS NOT NULL";
const char *const kGroups =
    "SELECT DISTINCT x.psa_company_id::text, x.rule_id::text, x.integration_id::text,"
    "       x.mode || ' ' || coalesce(x.filters, '{}')::text"
    "  FROM pg_temp.billrecon_run_rows x WHERE x.run_id = $1 AND x.state = 'reconciled'";
const char *const kCaptureLines =
    "SELECT DISTINCT x.psa_company_id::text, x.integration_id::text, x.mode || ' ' || coalesce(x.filters, '{}')::text"
    "  FROM pg_temp.billrecon_run_rows x"
    " WHERE x.run_id = $1 AND x.row_kind = 'line' AND x.mode IS NOT NULL AND x.integration_id IS NOT NULL"
    "   AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')";
const char *const kMultiSystemClients =
    "SELECT m.psa_company_id::text FROM billrecon.client_mappings m"
    "  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL"
    " WHERE $2::bigint IS NULL OR m.psa_company_id = $2"
    " GROUP BY m.psa_company_id HAVING count(DISTINCT va.integration_id) > 1";
const char *const kLineNames =
    "SELECT DISTINCT x.psa_company_id::text, lower(coalesce(x.product_name, ''))"
    "  FROM pg_temp.billrecon_run_rows x"
    " WHERE x.run_id = $1 AND x.row_kind = 'line' AND x.state IN ('reconciled', 'ignored', 'custom_sql', 'unmapped')";

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
	std::bitset<128> CaseClass(char c) {
		auto it = classes_.find(c);
		if (it != classes_.end())
			return it->second;
		bool matches[128];
		CallPg(pg::AsciiMatches, c, static_cast<bool *>(matches));
		std::bitset<128> set;
		for (int x = 1; x < 128; ++x)
			set[static_cast<std::size_t>(x)] = matches[x];
		classes_.emplace(c, set);
		return set;
	}

	std::vector<void *> patterns_;
	std::vector<std::optional<reconcile::LiteralPattern>> literals_;
	std::map<std::string, int> ids_;
	std::map<char, std::bitset<128>> classes_;
};

struct GroupKey {
	std::string company, rule, integration;
};

std::map<std::string, int> LoadRules(reconcile::UsageCounter *counter, PgPatterns *patterns, int64 run_id,
                                     bool has_company, int64 company) {
	std::map<std::string, reconcile::RuleFilter> filters;
	std::map<std::string, reconcile::RuleMode> modes;
	const pg::CellRows *rows = CallPg(pg::QueryRunRows, kRules.c_str(), run_id, has_company, company);
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
	rows = CallPg(pg::QueryRunRows, kRuleClasses.c_str(), run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r)
		if (!IsNull(rows, r, 1))
			filters[Text(rows, r, 0)].classes.push_back(Text(rows, r, 1));
	rows = CallPg(pg::QueryRunRows, kRuleSkus.c_str(), run_id, has_company, company);
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

reconcile::UsageRecord ToRecord(const pg::UsageRow &row) {
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
	u.device_name_lower = View(row.text[pg::kUtDeviceNameLower]);
	opt(pg::kUtProduct, &u.has_product, &u.product);
	opt(pg::kUtProductName, &u.has_product_name, &u.product_name);
	u.product_upper = View(row.text[pg::kUtProductUpper]);
	u.product_name_upper = View(row.text[pg::kUtProductNameUpper]);
	u.product_name_lower = View(row.text[pg::kUtProductNameLower]);
	opt(pg::kUtSerialUpper, &u.has_serial, &u.serial_upper);
	opt(pg::kUtDisplay, &u.has_display, &u.display_name);
	u.display_lower = View(row.text[pg::kUtDisplayLower]);
	u.excluded = row.excluded;
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

BILLRECON_FUNCTION(billrecon_count_usage) {
	if (PG_ARGISNULL(0))
		throw Error(sqlstate::kInvalidParameter, "run_id must not be null", "",
		            "billrecon._count_usage is called by billrecon.reconcile().");
	int64 run_id = PG_GETARG_INT64(0);
	bool has_company = !PG_ARGISNULL(1);
	int64 company = has_company ? PG_GETARG_INT64(1) : 0;

	CallPg(pg::SpiConnect);
	PgPatterns patterns;
	reconcile::UsageCounter counter(&patterns);
	std::map<std::string, int> rules = LoadRules(&counter, &patterns, run_id, has_company, company);

	std::vector<GroupKey> groups;
	const pg::CellRows *rows = CallPg(pg::QueryRunRows, kGroups, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r) {
		counter.AddGroup(static_cast<int64>(groups.size()), Integer(rows, r, 0), static_cast<int32>(Integer(rows, r, 2)),
		                 RuleIndex(rules, Text(rows, r, 3)));
		groups.push_back(GroupKey{Text(rows, r, 0), Text(rows, r, 1), Text(rows, r, 2)});
	}
	rows = CallPg(pg::QueryRunRows, kCaptureLines, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r)
		counter.AddCaptureLine(Integer(rows, r, 0), static_cast<int32>(Integer(rows, r, 1)),
		                       RuleIndex(rules, Text(rows, r, 2)));
	rows = CallPg(pg::QueryRunRows, kLineNames, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r)
		counter.AddLineName(Integer(rows, r, 0), Text(rows, r, 1));

	rows = CallPg(pg::QueryRunRows, kMultiSystemClients, run_id, has_company, company);
	for (int r = 0; r < rows->nrows; ++r)
		counter.AddMultiSystemClient(Integer(rows, r, 0));

	CallPg(pg::BeginUsageScan, has_company, company);
	for (;;) {
		CallPg(pg::CheckInterrupts);
		const pg::UsageBatch *batch = CallPg(pg::FetchUsageBatch, kBatchRows);
		if (batch->nrows == 0)
			break;
		for (int r = 0; r < batch->nrows; ++r)
			counter.Add(ToRecord(batch->rows[r]));
	}
	CallPg(pg::EndUsageScan);
	reconcile::CountResults results = counter.Finish();

	CallPg(pg::PrepareCountTables);
	Columns g(5);
	for (const reconcile::GroupCount &c : results.groups) {
		const GroupKey &k = groups[static_cast<std::size_t>(c.group_id)];
		g.Add(0, k.company);
		g.Add(1, k.rule);
		g.Add(2, k.integration);
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
	CallPg(pg::SpiFinish);
	PG_RETURN_INT64(results.records);
}
