// SQL: billrecon.suggest_client_matches() and
// billrecon.recommended_match_threshold().
//
// Per enabled vendor integration: its current vendor accounts against the
// default PSA's current companies, with the integration's existing mappings
// and the user's rejections, through match::SuggestMatches (one to one within
// an integration: accounts of different vendors may map to one company).
#include "match/matcher.hpp"
#include "model/error.hpp"

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "pg/boundary.hpp"
#include "pg/sync_store.hpp"

using namespace billrecon;

namespace {

std::vector<std::string> Lines(const char *text) {
	std::vector<std::string> out;
	if (!text)
		return out;
	std::string s(text);
	size_t start = 0;
	while (start <= s.size()) {
		size_t end = s.find('\n', start);
		if (end == std::string::npos)
			end = s.size();
		if (end > start)
			out.push_back(s.substr(start, end - start));
		start = end + 1;
	}
	return out;
}

// Rows of (id, name, newline-separated domains) -> candidates.
std::vector<match::MatchCandidate> Candidates(const pg::TextRows *rows) {
	std::vector<match::MatchCandidate> out;
	out.reserve(static_cast<size_t>(rows->nrows));
	for (int r = 0; r < rows->nrows; ++r) {
		char *const *row = rows->cells + r * rows->ncols;
		out.push_back({row[0], row[1] ? row[1] : "", Lines(row[2])});
	}
	return out;
}

std::vector<std::pair<std::string, std::string>> Pairs(const pg::TextRows *rows) {
	std::vector<std::pair<std::string, std::string>> out;
	for (int r = 0; r < rows->nrows; ++r)
		out.emplace_back(rows->cells[r * 2], rows->cells[r * 2 + 1]);
	return out;
}

const char *kPsaCompanies =
    "SELECT c.id::text, c.name,"
    "       array_to_string(array_remove(c.domains || c.website, NULL), E'\\n')"
    "  FROM billrecon.psa_companies c"
    "  JOIN billrecon.integrations i ON i.id = c.integration_id AND i.is_default_psa"
    " WHERE c.removed_at IS NULL AND NOT c.deleted"
    " ORDER BY c.id";
const char *kVendorIntegrations =
    "SELECT i.id::text FROM billrecon.integrations i WHERE i.side = 'vendor' AND i.enabled ORDER BY i.id";
const char *kVendorAccounts =
    "SELECT va.id::text, va.name, array_to_string(va.domains, E'\\n')"
    "  FROM billrecon.vendor_accounts va WHERE va.integration_id = $1 AND va.removed_at IS NULL"
    "   AND NOT EXISTS (SELECT 1 FROM billrecon.ignored_vendor_accounts g WHERE g.vendor_account_id = va.id)"
    " ORDER BY va.id";
const char *kMapped =
    "SELECT m.vendor_account_id::text, m.psa_company_id::text FROM billrecon.client_mappings m"
    "  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id WHERE va.integration_id = $1";
const char *kRejected =
    "SELECT r.vendor_account_id::text, r.psa_company_id::text FROM billrecon.client_match_rejections r"
    "  JOIN billrecon.vendor_accounts va ON va.id = r.vendor_account_id WHERE va.integration_id = $1";

char *ThresholdText() {
	char buf[16];
	snprintf(buf, sizeof buf, "%.3f", match::kRecommendedThreshold);
	return pstrdup(buf);
}

} // namespace

BILLRECON_FUNCTION(billrecon_suggest_client_matches) {
	CallPg(pg::SpiConnect);
	const pg::TextRows *psa_rows = CallPg(pg::QueryTextRows, kPsaCompanies, false, 0);
	if (psa_rows->nrows == 0)
		throw Error(sqlstate::kPrerequisite, "there are no PSA companies to match against",
		            "billrecon.psa_companies has no current company of the default PSA.",
		            "Add a default PSA (billrecon.add_integration(..., is_default_psa => true)) and sync it first.");
	std::vector<match::MatchCandidate> psa = Candidates(psa_rows);
	const pg::TextRows *integrations = CallPg(pg::QueryTextRows, kVendorIntegrations, false, 0);
	int64 stored = 0;
	for (int i = 0; i < integrations->nrows; ++i) {
		CallPg(pg::CheckInterrupts);
		int32 id = static_cast<int32>(std::stol(integrations->cells[i]));
		std::vector<match::MatchCandidate> accounts = Candidates(CallPg(pg::QueryTextRows, kVendorAccounts, true, id));
		match::MatchOptions options;
		options.mapped = Pairs(CallPg(pg::QueryTextRows, kMapped, true, id));
		options.rejected = Pairs(CallPg(pg::QueryTextRows, kRejected, true, id));
		std::vector<match::MatchSuggestion> suggestions =
		    accounts.empty() ? std::vector<match::MatchSuggestion>{} : match::SuggestMatches(accounts, psa, options);
		std::vector<std::string> text;
		text.reserve(suggestions.size() * 4);
		for (const match::MatchSuggestion &s : suggestions) {
			char score[16];
			snprintf(score, sizeof score, "%.3f", s.score);
			text.push_back(s.vendor_id);
			text.push_back(s.psa_id);
			text.push_back(score);
			text.push_back(s.evidence);
		}
		std::vector<const char *> cells;
		cells.reserve(text.size());
		for (const std::string &t : text)
			cells.push_back(t.c_str());
		stored += CallPg(pg::StoreMatchSuggestions, id, static_cast<int>(suggestions.size()),
		                 static_cast<const char *const *>(cells.data()));
	}
	CallPg(pg::SpiFinish);
	PG_RETURN_INT32(static_cast<int32>(stored));
}

BILLRECON_FUNCTION(billrecon_recommended_match_threshold) {
	return CallPg(pg::NumericFromText, static_cast<const char *>(CallPg(ThresholdText)));
}
