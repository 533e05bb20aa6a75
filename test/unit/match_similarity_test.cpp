// Client matching, step 2: word relations, rarity weights and name scores.
#include "match/matcher.hpp"
#include "match/similarity.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace billrecon::match;

namespace {

// A small client list in which "Dental", "Law", "Accounting" and "Group" are
// common, as they are in a real PSA.
const std::vector<std::string> kCorpus = {
    "Summit Dental",
    "Bayside Dental Group",
    "Cedar Dental",
    "Oakwood Dental Care",
    "Pine Ridge Dental",
    "Riverside Law",
    "Miller Law Group",
    "Garcia Law",
    "Chen Accounting",
    "Patel Accounting",
    "Summit Accounting Group",
    "Granite Plumbing",
    "Evergreen Roofing",
    "Madison Realty",
    "Kowalski Construction",
    "Nguyen Family Medicine",
    "Brooks Landscaping",
    "Lakeview Pediatrics",
    "Westfield Law",
    "Anchor Dental Group",
};

NameScore Compare(const char *a, const char *b, NameDetails *details = nullptr) {
	return CompareNames(a, b, kCorpus, details);
}

bool HasPair(const NameDetails &d, const std::string &text) {
	for (const std::string &p : d.pairs)
		if (p == text)
			return true;
	return false;
}

} // namespace

TEST(MatchSimilarity, EditDistance) {
	EXPECT_EQ(EditDistance("kitten", "sitting", 5), 3u);
	EXPECT_EQ(EditDistance("harbor", "harbor"), 0u);
	EXPECT_EQ(EditDistance("harbor", "hrabor"), 1u); // swap of neighbours
	EXPECT_EQ(EditDistance("harbor", "harbr"), 1u);
	EXPECT_EQ(EditDistance("harbor", "harbour"), 1u);
	EXPECT_EQ(EditDistance("", "abc"), 3u);
	EXPECT_EQ(EditDistance("abcdefgh", "hgfedcba", 2), 3u); // capped at max + 1
	EXPECT_EQ(EditDistance("a", "abcdef", 2), 3u);
}

TEST(MatchSimilarity, TokenRelations) {
	EXPECT_EQ(MatchTokens("harbor", "harbor").kind, TokenMatchKind::kExact);
	TokenMatch typo = MatchTokens("harbor", "harbr");
	EXPECT_EQ(typo.kind, TokenMatchKind::kTypo);
	EXPECT_DOUBLE_EQ(typo.credit, kTypoCredit);
	EXPECT_EQ(MatchTokens("smith", "smtih").kind, TokenMatchKind::kTypo);
	EXPECT_DOUBLE_EQ(MatchTokens("smith", "smtih").credit, kShortTypoCredit);
	EXPECT_DOUBLE_EQ(MatchTokens("construction", "constrcutoin").credit, kDoubleTypoCredit); // two edits, long word
	EXPECT_DOUBLE_EQ(MatchTokens("green", "greene").credit, kNameVariantCredit);             // another name as often
	EXPECT_DOUBLE_EQ(MatchTokens("brooks", "brook").credit, kTypoCredit);                    // plural
	// never the first letter, never digits, never short words
	EXPECT_EQ(MatchTokens("perry", "berry").kind, TokenMatchKind::kNone);
	EXPECT_EQ(MatchTokens("2", "3").kind, TokenMatchKind::kNone);
	EXPECT_EQ(MatchTokens("1st", "1sx").kind, TokenMatchKind::kNone);
	EXPECT_EQ(MatchTokens("hart", "hurt").kind, TokenMatchKind::kNone);
	// abbreviations: prefixes and consonant skeletons
	EXPECT_EQ(MatchTokens("constr", "construction").kind, TokenMatchKind::kAbbreviation);
	EXPECT_EQ(MatchTokens("construction", "constr").kind, TokenMatchKind::kAbbreviation);
	EXPECT_EQ(MatchTokens("mgmt", "management").kind, TokenMatchKind::kAbbreviation);
	EXPECT_EQ(MatchTokens("ortho", "orthodontics").kind, TokenMatchKind::kAbbreviation);
	EXPECT_EQ(MatchTokens("cole", "coleman").kind, TokenMatchKind::kNone); // ends in a vowel: a name
	EXPECT_EQ(MatchTokens("bldg", "building").kind, TokenMatchKind::kAbbreviation);
	EXPECT_EQ(MatchTokens("cpa", "chiropractic").kind, TokenMatchKind::kNone); // last letters differ
	EXPECT_EQ(MatchTokens("co", "construction").kind, TokenMatchKind::kNone);  // too short
	EXPECT_EQ(MatchTokens("", "").kind, TokenMatchKind::kNone);
	EXPECT_STREQ(TokenMatchKindName(TokenMatchKind::kJoined), "joined");
}

TEST(MatchSimilarity, Acronyms) {
	EXPECT_TRUE(IsAcronym("abc", {"alpha", "beta", "charlie"}));
	EXPECT_FALSE(IsAcronym("abc", {"alpha", "beta"}));
	EXPECT_FALSE(IsAcronym("abd", {"alpha", "beta", "charlie"}));
	EXPECT_FALSE(IsAcronym("a", {"alpha"}));
	EXPECT_FALSE(IsAcronym("a1", {"alpha", "one"}));
}

TEST(MatchSimilarity, Trigrams) {
	EXPECT_DOUBLE_EQ(TrigramSimilarity("harbordental", "harbordental"), 1.0);
	EXPECT_DOUBLE_EQ(TrigramSimilarity("abc", "xyz"), 0.0);
	EXPECT_DOUBLE_EQ(TrigramSimilarity("", ""), 0.0);
	double s = TrigramSimilarity("harbordental", "harbrdental");
	EXPECT_GT(s, 0.6);
	EXPECT_LT(s, 1.0);
	EXPECT_DOUBLE_EQ(s, TrigramSimilarity("harbrdental", "harbordental"));
	std::vector<uint32_t> t = Trigrams("aaaa");
	EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
	EXPECT_EQ(t.size(), 4u); // "  a", " aa", "aaa", "aa "
}

TEST(MatchSimilarity, RarityWeightsComeFromTheCorpus) {
	TokenStats stats;
	std::vector<PreparedName> names;
	for (const std::string &n : kCorpus)
		names.push_back(Prepare(NormalizeName(n), stats));
	PreparedName harbor = Prepare(NormalizeName("Harbor Dental Group"), stats);
	for (const PreparedName &p : names)
		stats.CountName(p.ids);
	stats.CountName(harbor.ids);
	stats.Finish();
	uint32_t h = stats.Find("harbor"), d = stats.Find("dental"), g = stats.Find("group");
	ASSERT_NE(h, UINT32_MAX);
	EXPECT_EQ(stats.DocumentFrequency(h), 1u);
	EXPECT_EQ(stats.DocumentFrequency(d), 7u);
	EXPECT_GT(stats.Weight(h), 2 * stats.Weight(d)); // a shared word counts little
	EXPECT_LE(stats.Weight(g), TokenStats::kFillerWeight);
	EXPECT_GT(stats.Weight(d), 0.0);
	EXPECT_EQ(stats.Find("nonexistent"), UINT32_MAX);
	EXPECT_EQ(stats.names(), kCorpus.size() + 1);
}

TEST(MatchSimilarity, TypoAndAbbreviationRelationsAreFoundInTheVocabulary) {
	TokenStats stats;
	PreparedName a = Prepare(NormalizeName("Harbr Kowalski Constr"), stats);
	PreparedName b = Prepare(NormalizeName("Harbor Kowalski Construction Elm Street"), stats);
	PreparedName c = Prepare(NormalizeName("Elm Striet"), stats);
	for (const PreparedName *p : {&a, &b, &c})
		stats.CountName(p->ids);
	stats.Finish();
	EXPECT_EQ(stats.Relation(stats.Find("harbr"), stats.Find("harbor")).kind, TokenMatchKind::kTypo);
	EXPECT_EQ(stats.Relation(stats.Find("harbor"), stats.Find("harbr")).kind, TokenMatchKind::kTypo);
	// "constr" was already spelled out by normalization; "striet" is a typo of "street", spelled "st"
	EXPECT_EQ(stats.Find("constr"), UINT32_MAX);
	EXPECT_EQ(stats.Relation(stats.Find("striet"), stats.Find("st")).kind, TokenMatchKind::kTypo);
	EXPECT_EQ(stats.Relation(stats.Find("harbor"), stats.Find("kowalski")).kind, TokenMatchKind::kNone);
}

TEST(MatchSimilarity, SameNameAfterNormalization) {
	for (auto [a, b] :
	     {std::pair{"Harbor Dental, Inc.", "HARBOR DENTAL INCORPORATED"},
	      std::pair{"Smith & Jones", "Smith and Jones LLP"}, std::pair{"Müller Bau GmbH", "Muller Bau"},
	      std::pair{"The Harbor Group", "Harbor Group Ltd"}, std::pair{"Harbor Mgmt Co", "Harbor Management"}}) {
		NameScore s = Compare(a, b);
		EXPECT_TRUE(s.exact) << a << " / " << b;
		EXPECT_DOUBLE_EQ(s.score, 1.0) << a << " / " << b;
	}
}

TEST(MatchSimilarity, WordOrder) {
	NameScore s = Compare("Smith & Jones Law", "Jones & Smith Law");
	EXPECT_TRUE(s.reordered);
	EXPECT_FALSE(s.exact);
	EXPECT_DOUBLE_EQ(s.score, 0.97);
}

TEST(MatchSimilarity, TypoScoresHighButBelowExact) {
	NameDetails d;
	NameScore s = Compare("Harbr Dental", "Harbor Dental", &d);
	EXPECT_GT(s.score, 0.85);
	EXPECT_LT(s.score, 1.0);
	EXPECT_TRUE(HasPair(d, "typo harbr~harbor"));
}

TEST(MatchSimilarity, SharedCommonWordsCountLittle) {
	EXPECT_LT(Compare("Harbor Dental", "Summit Dental").score, 0.3);
	EXPECT_LT(Compare("Harbor Law", "Riverside Law").score, 0.3);
	EXPECT_LT(Compare("Harbor Dental", "Harbor Realty").score, 0.6); // the rare word alone is not enough
	EXPECT_GT(Compare("Harbor Dental", "Harbor Dental Group").score, kRecommendedThreshold); // filler
}

TEST(MatchSimilarity, ExtraWordOfSubstanceIsADifferentCompany) {
	NameDetails d;
	NameScore s = Compare("Smith Law", "Smith & Jones Law", &d);
	EXPECT_LT(s.score, 0.6);
	EXPECT_EQ(d.only_b, (std::vector<std::string>{"jones"}));
	EXPECT_LT(Compare("Harbor Dental", "Harbor Dental Lab").score, 0.6);
}

TEST(MatchSimilarity, WordsWrittenTogether) {
	NameDetails d;
	NameScore s = Compare("Bluewater Plumbing", "Blue Water Plumbing", &d);
	EXPECT_GT(s.score, kRecommendedThreshold);
	EXPECT_TRUE(HasPair(d, "joined bluewater~blue water"));
	EXPECT_GT(Compare("harbordental.com", "Harbor Dental").score, kRecommendedThreshold);
	EXPECT_GT(Compare("Elmstreet Deli", "Elm Street Deli").score, kRecommendedThreshold); // "st" spelled "street"
}

TEST(MatchSimilarity, AcronymIsWeak) {
	NameDetails d;
	NameScore s = Compare("ABC Plumbing", "Alpha Beta Charlie Plumbing", &d);
	EXPECT_TRUE(HasPair(d, "acronym abc~alpha beta charlie"));
	EXPECT_GT(s.score, 0.3);
	EXPECT_LT(s.score, kRecommendedThreshold);
}

TEST(MatchSimilarity, FranchiseBranches) {
	NameScore same = Compare("Harbor Dental - Northside", "Harbor Dental North");
	EXPECT_TRUE(same.exact);
	EXPECT_TRUE(Compare("Harbor Dental (Downtown)", "Harbor Dental DT").exact);
	EXPECT_TRUE(Compare("Harbor Dental Branch 2", "Harbor Dental #2").exact);

	NameDetails d;
	NameScore other = Compare("Harbor Dental - Northside", "Harbor Dental - Southside", &d);
	EXPECT_TRUE(other.branch_conflict);
	EXPECT_LE(other.score, kBranchConflictCap);
	EXPECT_EQ(d.branch_a, (std::vector<std::string>{"north"}));
	EXPECT_EQ(d.branch_b, (std::vector<std::string>{"south"}));
	EXPECT_TRUE(Compare("Harbor Dental Branch 2", "Harbor Dental #3").branch_conflict);
	// a branch against a word the other side has left over: also another branch
	EXPECT_TRUE(Compare("Harbor Dental (Midtown)", "Harbor Dental Tacoma").branch_conflict);
	// a branch named on one side only: never enough on its own
	NameScore one = Compare("Harbor Dental North", "Harbor Dental");
	EXPECT_TRUE(one.branch_one_sided);
	EXPECT_LE(one.score, kOneSidedBranchCap);
	EXPECT_TRUE(Compare("Harbor Dental (Lab)", "Harbor Dental Group").branch_one_sided); // filler is no branch
	// the same branch written with and without separator
	EXPECT_FALSE(Compare("Harbor Dental Tacoma", "Harbor Dental (Tacoma)").branch_conflict);
	EXPECT_DOUBLE_EQ(Compare("Harbor Dental Tacoma", "Harbor Dental (Tacoma)").score, 1.0);
}

TEST(MatchSimilarity, EmptyNamesScoreZero) {
	EXPECT_DOUBLE_EQ(Compare("", "Harbor Dental").score, 0.0);
	EXPECT_DOUBLE_EQ(Compare("&", "&").score, 0.0);
}

TEST(MatchSimilarity, Evidence) {
	auto describe = [](const char *a, const char *b) {
		NameDetails d;
		NameScore s = Compare(a, b, &d);
		return DescribeNames(s, d, NormalizeName(a).Text(), NormalizeName(b).Text());
	};
	EXPECT_EQ(describe("Harbor Dental, Inc.", "Harbor Dental LLC"), "names match after normalization (harbor dental)");
	EXPECT_EQ(describe("Smith & Jones", "Jones & Smith"),
	          "same words in a different order (smith jones / jones smith)");
	std::string typo = describe("Harbr Dental", "Harbor Dental Group");
	EXPECT_EQ(typo.rfind("similar names 0.", 0), 0u) << typo;
	EXPECT_NE(typo.find("(harbr dental / harbor dental group; typo harbr~harbor; unpaired: group)"), std::string::npos)
	    << typo;
	EXPECT_EQ(describe("Harbor Dental", "Summit Dental"), "names differ (harbor dental / summit dental)");
	EXPECT_EQ(describe("Harbor Dental - Northside", "Harbor Dental (South)"),
	          "names differ (harbor dental north / harbor dental south); different branches (north / south)");
	std::string one = describe("Harbor Dental North", "Harbor Dental Group");
	EXPECT_NE(one.find("branch \"north\" named on one side only"), std::string::npos) << one;
}
