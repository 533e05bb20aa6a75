// Client matching, step 3: scores from name and domain evidence, one-to-one
// assignment, near ties, rejected and mapped pairs, determinism, bad input.
#include "match/matcher.hpp"
#include "match/similarity.hpp"
#include "model/error.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

using namespace billrecon;
using namespace billrecon::match;

namespace {

// PSA companies of a small MSP: many share "Dental", "Law", "Accounting".
std::vector<MatchCandidate> Psa() {
	return {
	    {"P01", "Harbor Dental, LLC", {"https://www.harbordental.com/", "frontdesk@gmail.com"}},
	    {"P02", "Summit Dental Group, PLLC", {}},
	    {"P03", "Smith & Jones Law, LLP", {"info@smithjoneslaw.com"}},
	    {"P04", "Riverside Accounting Incorporated", {"www.riversideaccounting.net"}},
	    {"P05", "Kowalski Construction, Inc.", {}},
	    {"P06", "Bright Smiles - Northside", {"brightsmiles.com"}},
	    {"P07", "Bright Smiles - Southside", {"brightsmiles.com"}},
	    {"P08", "Cedar Dental", {}},
	    {"P09", "Patel Accounting", {}},
	    {"P10", "Granite Plumbing & Heating", {"granite-plumbing.com"}},
	    {"P11", "Oakwood Law Group", {}},
	    {"P12", "Lakeview Pediatrics, P.A.", {"lakeviewpeds.com"}},
	};
}

const MatchSuggestion *Find(const std::vector<MatchSuggestion> &s, const std::string &vendor_id) {
	for (const MatchSuggestion &m : s)
		if (m.vendor_id == vendor_id)
			return &m;
	return nullptr;
}

bool Confirmed(const std::vector<MatchSuggestion> &s, const std::string &vendor_id, const std::string &psa_id) {
	const MatchSuggestion *m = Find(s, vendor_id);
	return m && m->psa_id == psa_id && m->score >= kRecommendedThreshold;
}

bool Contains(const std::string &text, const std::string &part) {
	return text.find(part) != std::string::npos;
}

} // namespace

TEST(MatchMatcher, ThresholdIsAScore) {
	EXPECT_GT(kRecommendedThreshold, 0.5);
	EXPECT_LT(kRecommendedThreshold, 1.0);
	EXPECT_LT(kRecommendedThreshold - kAmbiguityPenalty, kRecommendedThreshold);
}

TEST(MatchMatcher, SameNameAfterNormalization) {
	auto s = SuggestMatches({{"V1", "HARBOR DENTAL INC.", {}}}, Psa());
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].vendor_id, "V1");
	EXPECT_EQ(s[0].psa_id, "P01");
	EXPECT_DOUBLE_EQ(s[0].score, 1.0);
	EXPECT_EQ(s[0].evidence, "names match after normalization (harbor dental)");
}

TEST(MatchMatcher, SharedDomainAddsToTheName) {
	auto s = SuggestMatches({{"V1", "Harbor Dental", {"harbordental.com", "harbordental.onmicrosoft.com"}}}, Psa());
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].evidence, "names match after normalization (harbor dental); shared domain harbordental.com");
}

TEST(MatchMatcher, RebrandKeepsItsDomain) {
	auto s = SuggestMatches({{"V1", "Bayview Smiles", {"admin@HarborDental.com"}}}, Psa());
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].psa_id, "P01");
	EXPECT_GE(s[0].score, kRecommendedThreshold);
	EXPECT_TRUE(Contains(s[0].evidence, "names differ (bayview smiles / harbor dental)")) << s[0].evidence;
	EXPECT_TRUE(Contains(s[0].evidence, "shared domain harbordental.com")) << s[0].evidence;
}

TEST(MatchMatcher, GenericDomainsAreIgnored) {
	// Both sides use gmail.com and outlook.com: no evidence, no suggestion.
	std::vector<MatchCandidate> psa = {{"P1", "Harbor Dental", {"owner@gmail.com", "x@outlook.com"}}};
	auto s = SuggestMatches({{"V1", "Bayview Smiles", {"it@gmail.com", "y@outlook.com", "z@hotmail.com"}}}, psa);
	EXPECT_TRUE(s.empty());
	// ... and they do not count as a domain mismatch either
	s = SuggestMatches({{"V1", "Harbor Dental", {"it@gmail.com"}}}, psa);
	ASSERT_EQ(s.size(), 1u);
	EXPECT_DOUBLE_EQ(s[0].score, 1.0);
	EXPECT_FALSE(Contains(s[0].evidence, "gmail")) << s[0].evidence;
}

TEST(MatchMatcher, CallerGenericDomainsAreIgnored) {
	std::vector<MatchCandidate> psa = {{"P1", "Harbor Dental", {"tech@ourmsp.com"}}};
	std::vector<MatchCandidate> vendor = {{"V1", "Bayview Smiles", {"admin@ourmsp.com"}}};
	EXPECT_FALSE(SuggestMatches(vendor, psa).empty());
	MatchOptions o;
	o.generic_domains = {"https://www.OurMSP.com"};
	EXPECT_TRUE(SuggestMatches(vendor, psa, o).empty());
}

TEST(MatchMatcher, DomainOnManyRecordsProvesNothing) {
	// The MSP's own domain in every tenant and in the MSP's own PSA company.
	std::vector<MatchCandidate> psa = Psa();
	psa.push_back({"P50", "Lighthouse IT Solutions", {"lighthouseit.com"}});
	std::vector<MatchCandidate> vendor;
	for (int i = 0; i < 5; ++i)
		vendor.push_back({"V" + std::to_string(i), "Tenant " + std::to_string(i), {"admin@lighthouseit.com"}});
	EXPECT_TRUE(SuggestMatches(vendor, psa).empty());
	// A domain on three PSA companies.
	psa = {
	    {"P1", "Harbor Dental", {"group.com"}}, {"P2", "Summit Dental", {"group.com"}}, {"P3", "Cedar", {"group.com"}}};
	auto s = SuggestMatches({{"V1", "Harbor Dental", {"group.com"}}}, psa);
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].psa_id, "P1");
	EXPECT_TRUE(Contains(s[0].evidence, "domain group.com ignored (on 3 companies)")) << s[0].evidence;
	s = SuggestMatches({{"V1", "Bayview Smiles", {"group.com"}}}, psa);
	EXPECT_TRUE(s.empty());
}

TEST(MatchMatcher, DomainMismatchLowersTheScore) {
	auto s = SuggestMatches({{"V1", "Harbor Dental", {"harbordentalgroup.com"}}}, Psa());
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].psa_id, "P01");
	EXPECT_LT(s[0].score, 1.0);
	EXPECT_TRUE(Contains(s[0].evidence, "no shared domain (harbordentalgroup.com / harbordental.com)"))
	    << s[0].evidence;
}

TEST(MatchMatcher, TenantLabelIsWeakEvidence) {
	// The account's name says nothing; its initial domain resembles the company.
	auto s = SuggestMatches({{"V1", "Tenant 7", {"harbordental.onmicrosoft.com"}}}, Psa(), {0.3, {}, {}, {}});
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].psa_id, "P01");
	EXPECT_LT(s[0].score, kRecommendedThreshold);
	EXPECT_TRUE(Contains(s[0].evidence, "the account's domain label harbordental spells the company's name"))
	    << s[0].evidence;
}

TEST(MatchMatcher, DomainAsNameIsCutIntoWords) {
	auto s = SuggestMatches({{"V1", "riversideaccounting.net", {}}, {"V2", "kowalskiconstructioninc.com", {}}}, Psa());
	EXPECT_TRUE(Confirmed(s, "V1", "P04"));
	EXPECT_TRUE(Confirmed(s, "V2", "P05"));
	EXPECT_TRUE(Contains(Find(s, "V2")->evidence, "names match after normalization (kowalski construction)"))
	    << Find(s, "V2")->evidence;
}

TEST(MatchMatcher, HardNameVariants) {
	std::vector<MatchCandidate> vendor = {
	    {"V1", "Harbr Dental", {}},                     // typo
	    {"V2", "Riverside Accounting Inc", {}},         // Incorporated vs Inc
	    {"V3", "Smith and Jones Law", {}},              // & vs and
	    {"V4", "KOWALSKI CONSTR", {}},                  // abbreviation, upper case
	    {"V5", "Granite Plumbing and Heating Co.", {}}, // & vs and, suffix
	    {"V6", "The Lakeview Pediatrics", {}},          // leading The
	};
	auto s = SuggestMatches(vendor, Psa());
	EXPECT_TRUE(Confirmed(s, "V2", "P04"));
	EXPECT_TRUE(Confirmed(s, "V3", "P03"));
	EXPECT_TRUE(Confirmed(s, "V4", "P05"));
	EXPECT_TRUE(Confirmed(s, "V5", "P10"));
	EXPECT_TRUE(Confirmed(s, "V6", "P12"));
	ASSERT_NE(Find(s, "V1"), nullptr);
	EXPECT_EQ(Find(s, "V1")->psa_id, "P01");
	EXPECT_TRUE(Contains(Find(s, "V1")->evidence, "typo harbr~harbor")) << Find(s, "V1")->evidence;
}

TEST(MatchMatcher, SharedGenericWordsAreNotAMatch) {
	auto s = SuggestMatches(
	    {{"V1", "Bayside Dental", {}}, {"V2", "Miller Accounting", {}}, {"V3", "Westfield Law", {}}}, Psa());
	for (const MatchSuggestion &m : s)
		EXPECT_LT(m.score, kRecommendedThreshold) << m.vendor_id << " " << m.psa_id << " " << m.evidence;
}

TEST(MatchMatcher, LookAlikeOfAnotherCompanyIsNotConfirmed) {
	// "Smith Law" is not "Smith & Jones Law"; "Harbor Dental Lab" is not "Harbor Dental".
	auto s = SuggestMatches({{"V1", "Smith Law", {}}, {"V2", "Harbor Dental Lab", {}}}, Psa());
	for (const MatchSuggestion &m : s)
		EXPECT_LT(m.score, kRecommendedThreshold) << m.vendor_id << " " << m.psa_id << " " << m.evidence;
}

TEST(MatchMatcher, ClientOnOneSideOnly) {
	auto s = SuggestMatches({{"V1", "Evergreen Roofing", {"evergreenroofing.com"}}}, Psa());
	EXPECT_TRUE(s.empty());
	s = SuggestMatches({}, Psa());
	EXPECT_TRUE(s.empty());
	s = SuggestMatches({{"V1", "Harbor Dental", {}}}, {});
	EXPECT_TRUE(s.empty());
}

TEST(MatchMatcher, FranchiseBranchesGoToTheirOwnBranch) {
	std::vector<MatchCandidate> vendor = {
	    {"V1", "Bright Smiles North", {"brightsmiles.com"}},
	    {"V2", "Bright Smiles (Southside)", {"https://brightsmiles.com"}},
	    {"V3", "Bright Smiles West", {"brightsmiles.com"}}, // a branch the PSA does not bill
	};
	auto s = SuggestMatches(vendor, Psa());
	EXPECT_TRUE(Confirmed(s, "V1", "P06"));
	EXPECT_TRUE(Confirmed(s, "V2", "P07"));
	const MatchSuggestion *west = Find(s, "V3");
	EXPECT_TRUE(west == nullptr || west->score < kRecommendedThreshold) << west->evidence;
	EXPECT_TRUE(Contains(Find(s, "V1")->evidence, "shared domain brightsmiles.com (also on 1 other company)"))
	    << Find(s, "V1")->evidence;
}

TEST(MatchMatcher, WrongBranchNeverConfirmedEvenWithTheDomain) {
	std::vector<MatchCandidate> psa = {{"P1", "Bright Smiles - Northside", {"brightsmiles.com"}}};
	MatchOptions o;
	o.min_score = 0.1;
	auto s = SuggestMatches({{"V1", "Bright Smiles (South)", {"brightsmiles.com"}}}, psa, o);
	ASSERT_EQ(s.size(), 1u);
	EXPECT_LE(s[0].score, kBranchConflictCap);
	EXPECT_TRUE(Contains(s[0].evidence, "different branches (south / north)")) << s[0].evidence;
	EXPECT_TRUE(Contains(s[0].evidence, "shared domain brightsmiles.com")) << s[0].evidence;
}

TEST(MatchMatcher, OneToOne) {
	// Two accounts look like one company: the better one gets it.
	std::vector<MatchCandidate> vendor = {{"V1", "Harbor Dental Lab", {}}, {"V2", "Harbor Dental", {}}};
	auto s = SuggestMatches(vendor, Psa());
	EXPECT_TRUE(Confirmed(s, "V2", "P01"));
	const MatchSuggestion *lab = Find(s, "V1");
	EXPECT_TRUE(lab == nullptr || lab->psa_id != "P01") << lab->evidence;
	int claims = 0;
	for (const MatchSuggestion &m : s)
		claims += m.psa_id == "P01";
	EXPECT_EQ(claims, 1);
}

TEST(MatchMatcher, TwoAccountsOfOneClientShareItsDomain) {
	std::vector<MatchCandidate> vendor = {
	    {"V1", "Harbor Dental", {"harbordental.com"}},
	    {"V2", "Harbor Dental - Warehouse", {"it@harbordental.com"}},
	};
	auto s = SuggestMatches(vendor, Psa());
	EXPECT_TRUE(Confirmed(s, "V1", "P01"));
	EXPECT_TRUE(Confirmed(s, "V2", "P01"));
	EXPECT_TRUE(Contains(Find(s, "V2")->evidence, "company also suggested for \"Harbor Dental\" (same domain)"))
	    << Find(s, "V2")->evidence;
}

TEST(MatchMatcher, NearTieIsAmbiguous) {
	// The PSA holds the client twice: neither may be confirmed automatically.
	std::vector<MatchCandidate> psa = Psa();
	psa.push_back({"P99", "Harbor Dental", {}});
	auto s = SuggestMatches({{"V1", "Harbor Dental", {}}}, psa);
	ASSERT_EQ(s.size(), 1u);
	EXPECT_LT(s[0].score, kRecommendedThreshold);
	EXPECT_DOUBLE_EQ(s[0].score, std::round((kRecommendedThreshold - kAmbiguityPenalty) * 1000) / 1000);
	EXPECT_EQ(s[0].psa_id, "P01"); // ties: the smaller id first
	EXPECT_TRUE(Contains(s[0].evidence, "ambiguous: also close to \"Harbor Dental\" (1.000)")) << s[0].evidence;

	// Two accounts equally close to one company, without a shared domain.
	s = SuggestMatches({{"V1", "Cedar Dental", {}}, {"V2", "Cedar Dental LLC", {}}}, Psa());
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].vendor_id, "V1");
	EXPECT_LT(s[0].score, kRecommendedThreshold);
	EXPECT_TRUE(Contains(s[0].evidence, "ambiguous: also close to \"Cedar Dental LLC\"")) << s[0].evidence;
}

TEST(MatchMatcher, NamesDifferingOnlyByFillerAreAmbiguous) {
	// The PSA has "Sierra Dental" and "Sierra Dental Associates": an account
	// named "Sierra Dental" may be either.
	std::vector<MatchCandidate> psa = Psa();
	psa.push_back({"P20", "Sierra Dental, DDS, PC", {}});
	psa.push_back({"P21", "Sierra Dental Associates, PLLC", {}});
	auto s = SuggestMatches({{"V1", "Sierra Dental & Co", {}}}, psa);
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].psa_id, "P20");
	EXPECT_LT(s[0].score, kRecommendedThreshold);
	EXPECT_TRUE(Contains(s[0].evidence, "ambiguous: also close to \"Sierra Dental Associates, PLLC\""))
	    << s[0].evidence;
	// A domain only one of them has settles it.
	psa[psa.size() - 1].domains = {"sierradentalassociates.com"};
	s = SuggestMatches({{"V1", "Sierra Dental", {"https://sierradentalassociates.com"}}}, psa);
	EXPECT_TRUE(Confirmed(s, "V1", "P21")) << (s.empty() ? "" : s[0].psa_id + " " + s[0].evidence);
}

TEST(MatchMatcher, DomainDecidesBetweenEqualNames) {
	// Two accounts normalize to "hamilton dental"; only one shares the company's domain.
	std::vector<MatchCandidate> psa = {{"P1", "Hamilton Dental LLC", {"www.hddental.com"}},
	                                   {"P2", "Hamilton Dental Group, LLC", {}}};
	std::vector<MatchCandidate> vendor = {{"V1", "Hamilton Dental & Co", {}},
	                                      {"V2", "Hamilton Dental", {"hddental.com"}}};
	auto s = SuggestMatches(vendor, psa);
	EXPECT_TRUE(Confirmed(s, "V2", "P1"));
	ASSERT_NE(Find(s, "V2"), nullptr);
	EXPECT_FALSE(Contains(Find(s, "V2")->evidence, "ambiguous")) << Find(s, "V2")->evidence;
	const MatchSuggestion *other = Find(s, "V1");
	EXPECT_TRUE(other == nullptr || other->psa_id == "P2");
}

TEST(MatchMatcher, TwoByTwoTieIsAmbiguousBothWays) {
	std::vector<MatchCandidate> psa = {{"P1", "Crossroads Dental, LLC", {}}, {"P2", "Crossroads Dental", {}}};
	std::vector<MatchCandidate> vendor = {{"V1", "CROSSROADS DENTAL", {}}, {"V2", "Crossroads Dental & Co", {}}};
	auto s = SuggestMatches(vendor, psa);
	ASSERT_EQ(s.size(), 2u);
	for (const MatchSuggestion &m : s) {
		EXPECT_LT(m.score, kRecommendedThreshold) << m.vendor_id;
		EXPECT_TRUE(Contains(m.evidence, "ambiguous")) << m.evidence;
	}
}

TEST(MatchMatcher, ClearWinnerIsNotAmbiguous) {
	// "Smith & Jones Law" is far closer to P03 than to anything else.
	auto s = SuggestMatches({{"V1", "Smith & Jones Law", {}}, {"V2", "Smith Law", {}}}, Psa());
	EXPECT_TRUE(Confirmed(s, "V1", "P03"));
	EXPECT_FALSE(Contains(Find(s, "V1")->evidence, "ambiguous")) << Find(s, "V1")->evidence;
}

TEST(MatchMatcher, RejectedPairsAreNeverSuggested) {
	MatchOptions o;
	o.rejected = {{"V1", "P01"}, {"V-unknown", "P01"}};
	auto s = SuggestMatches({{"V1", "Harbor Dental", {}}, {"V2", "Cedar Dental", {}}}, Psa(), o);
	for (const MatchSuggestion &m : s)
		EXPECT_FALSE(m.vendor_id == "V1" && m.psa_id == "P01");
	EXPECT_TRUE(Confirmed(s, "V2", "P08"));
	// Rejecting the only duplicate removes the near tie.
	std::vector<MatchCandidate> psa = Psa();
	psa.push_back({"P99", "Harbor Dental", {}});
	o.rejected = {{"V1", "P99"}};
	s = SuggestMatches({{"V1", "Harbor Dental", {}}}, psa, o);
	EXPECT_TRUE(Confirmed(s, "V1", "P01"));
}

TEST(MatchMatcher, MappedAccountsAndCompanies) {
	MatchOptions o;
	o.mapped = {{"V1", "P01"}};
	// The mapped account gets no suggestion; its company is not offered to a look-alike...
	auto s = SuggestMatches({{"V1", "Harbor Dental", {}}, {"V2", "Harbor Dental", {}}}, Psa(), o);
	EXPECT_EQ(Find(s, "V1"), nullptr);
	const MatchSuggestion *v2 = Find(s, "V2");
	EXPECT_TRUE(v2 == nullptr || v2->psa_id != "P01");
	// ... unless it shares the company's domain.
	s = SuggestMatches({{"V2", "Harbor Dental Lab", {"harbordental.com"}}}, Psa(), o);
	EXPECT_TRUE(Confirmed(s, "V2", "P01"));
	EXPECT_TRUE(Contains(s[0].evidence, "company already mapped to another account (same domain)")) << s[0].evidence;
}

TEST(MatchMatcher, MinScoreFiltersAndValidates) {
	MatchOptions o;
	o.min_score = 0.95;
	auto s = SuggestMatches({{"V1", "Harbr Dental", {}}, {"V2", "Cedar Dental", {}}}, Psa(), o);
	ASSERT_EQ(s.size(), 1u);
	EXPECT_EQ(s[0].vendor_id, "V2");
	for (double bad : {-0.1, 1.5, std::nan("")}) {
		o.min_score = bad;
		try {
			SuggestMatches({}, {}, o);
			ADD_FAILURE() << "no error for min_score " << bad;
		} catch (const Error &e) {
			EXPECT_EQ(e.sqlstate(), "22023");
			EXPECT_EQ(std::string(e.what()), "invalid minimum score for client matching");
			EXPECT_FALSE(e.detail().empty());
			EXPECT_EQ(e.hint(), "Pass a score between 0 and 1.");
		}
	}
}

TEST(MatchMatcher, BadIds) {
	auto expect_error = [](const std::vector<MatchCandidate> &v, const std::vector<MatchCandidate> &p,
	                       const std::string &message, const std::string &detail) {
		try {
			SuggestMatches(v, p);
			ADD_FAILURE() << "no error, expected: " << message;
		} catch (const Error &e) {
			EXPECT_EQ(e.sqlstate(), "22023");
			EXPECT_EQ(std::string(e.what()), message);
			EXPECT_EQ(e.detail(), detail);
			EXPECT_FALSE(e.hint().empty());
		}
	};
	expect_error({{"V1", "A", {}}, {"V1", "B", {}}}, {}, "duplicate vendor account id in client matching",
	             "The id \"V1\" appears more than once.");
	expect_error({}, {{"P1", "A", {}}, {"P1", "B", {}}}, "duplicate PSA company id in client matching",
	             "The id \"P1\" appears more than once.");
	expect_error({{"", "Harbor Dental", {}}}, {}, "vendor account without an id in client matching",
	             "Record 1 (name \"Harbor Dental\") has an empty id.");
	expect_error({}, {{"P1", "A", {}}, {"", "B", {}}}, "PSA company without an id in client matching",
	             "Record 2 (name \"B\") has an empty id.");
	// long values are cut for the message, never inside a UTF-8 character
	std::string long_id = std::string(79, 'x') + "\xC3\xA9" + "tail";
	expect_error({{long_id, "A", {}}, {long_id, "B", {}}}, {}, "duplicate vendor account id in client matching",
	             "The id \"" + std::string(79, 'x') + "...\" appears more than once.");
}

TEST(MatchMatcher, OddInputDoesNotBreak) {
	std::vector<MatchCandidate> vendor = {
	    {"V1", "", {}},
	    {"V2", "&&&", {"", "not a domain", "@", "http://"}},
	    {"V3", std::string(3000, 'x'), {std::string(3000, 'y') + ".com"}},
	    {"V4", "\xFF\xFE invalid \xC3", {}},
	    {"V5", "東京 Dental", {}},
	};
	auto s = SuggestMatches(vendor, Psa());
	for (const MatchSuggestion &m : s)
		EXPECT_NE(m.vendor_id, "V1");
}

TEST(MatchMatcher, ScoresAreRoundedAndOrdered) {
	std::vector<MatchCandidate> vendor = {
	    {"V3", "Harbr Dental", {}}, {"V1", "Cedar Dental", {}}, {"V2", "Patel Acctg", {}}, {"V4", "Oakwood Law", {}}};
	auto s = SuggestMatches(vendor, Psa());
	ASSERT_GE(s.size(), 3u);
	for (size_t i = 0; i < s.size(); ++i) {
		EXPECT_DOUBLE_EQ(s[i].score, std::round(s[i].score * 1000) / 1000);
		EXPECT_GE(s[i].score, 0.0);
		EXPECT_LE(s[i].score, 1.0);
		if (i > 0) {
			EXPECT_TRUE(s[i - 1].score > s[i].score ||
			            (s[i - 1].score == s[i].score && s[i - 1].vendor_id < s[i].vendor_id));
		}
	}
}

TEST(MatchMatcher, Deterministic) {
	std::vector<MatchCandidate> vendor = {{"V1", "Harbor Dental", {}},
	                                      {"V2", "Cedar Dental LLC", {}},
	                                      {"V3", "Cedar Dental", {}},
	                                      {"V4", "Bright Smiles North", {"brightsmiles.com"}},
	                                      {"V5", "Smith Law", {}},
	                                      {"V6", "Patel Accounting", {}},
	                                      {"V7", "Bayview Smiles", {"harbordental.com"}},
	                                      {"V8", "Oakwood Law", {}}};
	std::vector<MatchCandidate> psa = Psa();
	auto first = SuggestMatches(vendor, psa);
	auto again = SuggestMatches(vendor, psa);
	std::reverse(vendor.begin(), vendor.end());
	std::reverse(psa.begin(), psa.end());
	auto reversed = SuggestMatches(vendor, psa);
	ASSERT_EQ(first.size(), again.size());
	ASSERT_EQ(first.size(), reversed.size());
	for (size_t i = 0; i < first.size(); ++i) {
		for (const auto *other : {&again, &reversed}) {
			EXPECT_EQ(first[i].vendor_id, (*other)[i].vendor_id);
			EXPECT_EQ(first[i].psa_id, (*other)[i].psa_id);
			EXPECT_DOUBLE_EQ(first[i].score, (*other)[i].score);
			EXPECT_EQ(first[i].evidence, (*other)[i].evidence);
		}
	}
}

TEST(MatchMatcher, ThousandsOfRecordsStayQuick) {
	// Not a benchmark (bench/run_match_bench.sh is): catches an accidental all-pairs loop.
	const char *places[] = {"Harbor", "Summit", "Cedar",  "Oakwood", "Granite", "Lakeview", "Riverside", "Bayside",
	                        "Pine",   "Maple",  "Willow", "Aspen",   "Sierra",  "Cascade",  "Prairie",   "Sunrise"};
	const char *kinds[] = {"Dental", "Law", "Accounting", "Plumbing", "Roofing", "Realty", "Pediatrics", "Fitness"};
	std::vector<MatchCandidate> vendor, psa;
	for (int i = 0; i < 2000; ++i) {
		std::string name = std::string(places[i % 16]) + " " + kinds[(i / 16) % 8] + " " + std::to_string(i);
		psa.push_back({"P" + std::to_string(i), name + " LLC", {}});
		vendor.push_back({"V" + std::to_string(i), name, {}});
	}
	auto start = std::chrono::steady_clock::now();
	auto s = SuggestMatches(vendor, psa);
	double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	EXPECT_EQ(s.size(), 2000u);
	for (const MatchSuggestion &m : s)
		EXPECT_EQ(m.vendor_id.substr(1), m.psa_id.substr(1));
	EXPECT_LT(seconds, 20.0); // unoptimized build, shared machine
}
