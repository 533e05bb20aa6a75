// Client matching, step 3: which vendor account belongs to which PSA company.
//
// SuggestMatches scores candidate pairs from name evidence (similarity.hpp)
// and domain evidence, then assigns one to one:
//
//   - A shared non-generic domain (a tenant's verified domain, a Pax8 or RMM
//     website or e-mail domain against the PSA company's website and
//     contacts' e-mail domains) is strong evidence, even when the names
//     differ (rebrands). A domain two PSA companies carry (a franchise) is
//     weak; one on more than two companies or more than three accounts (the
//     MSP's own) is ignored; free-mail domains never count. A tenant's
//     *.onmicrosoft.com label, or a domain label, that spells the other
//     side's name or domain label is weak evidence. Real domains on both
//     sides with none in common lower the score a little.
//     score = 1 - (1 - name) (1 - domain) (1 - label), then the caps.
//   - Each vendor account gets at most one suggestion, and each PSA company
//     is suggested for at most one vendor account, unless every account
//     claiming it shares a domain only it carries (two RMM organizations of
//     one client). Pairs are taken best first; a domain only this company
//     carries counts as kAmbiguityMargin more in that order.
//   - A near tie lowers the suggestion below kRecommendedThreshold and says
//     so ("ambiguous: also close to X"): another company or account within
//     kAmbiguityMargin, or one whose name differs only by filler words
//     ("Sierra Dental" / "Sierra Dental Associates"), that no domain and no
//     better claim tells apart.
//
// Candidates come from an inverted index of the PSA side (the account's
// heaviest words and their typos and abbreviations, its domains and labels,
// its rarest trigrams), never from all pairs: 5,000 x 5,000 takes about
// 0.3 s on one core. Scores are in [0, 1], rounded to 3 decimals. The same
// input gives the same output in the same order (score descending, vendor
// id, PSA id), whatever the order of the input.
// Pure C++: no PostgreSQL; the glue maps rows to MatchCandidate.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace billrecon::match {

// The confirmation threshold billrecon.confirm_client_matches() uses by
// default, chosen with bench/run_match_bench.sh on the labelled sets of
// test/mock_api/matching_set.py: over 43 sets (1,000 to 5,000 companies;
// seeds 2-19, 42, 43, 100-115, 201-207) no wrong pair scored above 0.85, and
// at 0.9 recall is 99.0 % to 99.8 %. What reaches 0.9: names equal after
// normalization, a typo or abbreviation in a name with other rare words, a
// dropped filler word ("Group"), a shared domain only this company carries.
inline constexpr double kRecommendedThreshold = 0.9;

// A near tie: another candidate scores within this much of the suggestion.
inline constexpr double kAmbiguityMargin = 0.05;

// Where an ambiguous suggestion's score is put: this far below the threshold.
inline constexpr double kAmbiguityPenalty = 0.1;

struct MatchCandidate {
	std::string id;
	std::string name;
	// Raw domain evidence: domains, host names, website URLs, e-mail
	// addresses, *.onmicrosoft.com initial domains, in any mix.
	std::vector<std::string> domains;
};

struct MatchSuggestion {
	std::string vendor_id;
	std::string psa_id;
	double score = 0; // 0..1, rounded to 3 decimals
	// Human-readable: "names match after normalization (harbor dental);
	// shared domain harbordental.com".
	std::string evidence;
};

struct MatchOptions {
	// Pairs scoring below this are not suggested.
	double min_score = 0.5;
	// (vendor id, PSA id) pairs the user rejected: never suggested again.
	std::vector<std::pair<std::string, std::string>> rejected;
	// (vendor id, PSA id) pairs already mapped: the vendor account gets no
	// suggestion, and the company counts as claimed by it.
	std::vector<std::pair<std::string, std::string>> mapped;
	// More domains that prove nothing (e.g. the MSP's own domain, which its
	// technicians' contact records carry into many companies).
	std::vector<std::string> generic_domains;
};

// Throws billrecon::Error (22023) for an empty or duplicate id on one side,
// or min_score outside [0, 1].
std::vector<MatchSuggestion> SuggestMatches(const std::vector<MatchCandidate> &vendor_accounts,
                                            const std::vector<MatchCandidate> &psa_companies,
                                            const MatchOptions &options = {});

} // namespace billrecon::match

#include "core_only.hpp"
