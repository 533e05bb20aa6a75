// Client matching, step 2: how alike two normalized names are.
//
// Words are weighted by rarity across the whole input (both sides): a word
// many companies share ("Dental", "Law", "Accounting") counts little, a rare
// one ("Kowalski", "Bluewater") counts a lot, and pure filler ("Group",
// "Associates", "Services") counts almost nothing. Words are paired one to
// one: exactly, as one word written as several ("Bluewater" / "Blue Water";
// a domain used as a name, "harbordental"), as a typo (one edit, two in long
// words; never the first letter, never digits, never two words that are both
// common: "electric" / "electrical"; "Green" / "Greene" counts less), as an
// abbreviation ("constr" / "construction", "mgmt" / "management"), or as an
// acronym ("ABC" / "Alpha Beta Charlie", weak). The token score is a weighted
// Dice coefficient in which a word left unpaired counts twice (an extra word
// of substance, "Harbor Dental Lab", says more than a typo); character
// trigrams of the joined words add a little.
//
// Caps keep doubtful names below any confirmation threshold: two different
// branches ("- Northside" / "(South)", or a branch against a leftover word
// such as "Tacoma") far below, whatever the domains say; words of substance
// left over on both sides ("Pizza Co Tacoma" / "Pizza Co Bellevue") just
// below, also with a shared domain; a branch named on one side only just
// below, unless a domain only this company carries lifts it (one client's
// second RMM organization, "Harbor Dental - Warehouse").
#pragma once

#include "match/normalize.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace billrecon::match {

// Optimal string alignment distance (insert, delete, substitute, swap of two
// adjacent letters = 1 each). Returns max_distance + 1 when the distance is
// larger, without computing it exactly.
size_t EditDistance(std::string_view a, std::string_view b, size_t max_distance = 3);

enum class TokenMatchKind { kNone, kExact, kTypo, kAbbreviation, kJoined, kAcronym };

// "none", "exact", "typo", "abbreviation", "joined", "acronym".
const char *TokenMatchKindName(TokenMatchKind kind) noexcept;

struct TokenMatch {
	TokenMatchKind kind = TokenMatchKind::kNone;
	double credit = 0; // share of the words' weight that counts as matched
};

// Credits of the ways two words can pair up.
inline constexpr double kTypoCredit = 0.9;          // one edit, 6+ letters
inline constexpr double kShortTypoCredit = 0.85;    // one edit, 5 letters
inline constexpr double kDoubleTypoCredit = 0.75;   // two edits, 9+ letters
inline constexpr double kNameVariantCredit = 0.8;   // one letter more at the end ("green" / "greene")
inline constexpr double kAbbreviationCredit = 0.75; // prefix or consonant skeleton
inline constexpr double kJoinedCredit = 0.95;       // "bluewater" / "blue water"
inline constexpr double kAcronymCredit = 0.5;       // "abc" / "alpha beta charlie"

// How two single words pair up (symmetric): exact, typo or abbreviation.
TokenMatch MatchTokens(std::string_view a, std::string_view b);

// True when `acronym` (2 to 6 letters) is the initials of `words`.
bool IsAcronym(std::string_view acronym, const std::vector<std::string> &words);

// Sorted distinct character trigrams of a string padded as "  text " (so that
// starts weigh more), each packed into 24 bits.
std::vector<uint32_t> Trigrams(std::string_view text);
// Dice coefficient 2|A∩B| / (|A|+|B|) of two trigram sets; 0 when both are empty.
double TrigramDice(const std::vector<uint32_t> &a, const std::vector<uint32_t> &b);
double TrigramSimilarity(std::string_view a, std::string_view b);

// Words of a set of names: ids, rarity weights and the typo / abbreviation
// relations between them. Fill with Intern + CountName for every name of
// both sides, then Finish() once; after that it is read-only.
class TokenStats {
public:
	struct Related {
		uint32_t id;
		TokenMatch match;
	};

	uint32_t Intern(std::string_view token);
	// Counts one name towards the document frequencies (each word once).
	void CountName(const std::vector<uint32_t> &ids);
	// Computes weights and relations.
	void Finish();

	size_t size() const noexcept {
		return texts_.size();
	}
	size_t names() const noexcept {
		return names_;
	}
	const std::string &Text(uint32_t id) const {
		return texts_[id];
	}
	size_t DocumentFrequency(uint32_t id) const {
		return df_[id];
	}
	// In (0, 1]: rare words near 1, words in many names near 0, filler words
	// at most kFillerWeight.
	double Weight(uint32_t id) const {
		return weights_[id];
	}
	// Id of a known word, or UINT32_MAX.
	uint32_t Find(std::string_view token) const;
	// The relation between two different words (kNone when unrelated).
	TokenMatch Relation(uint32_t a, uint32_t b) const;
	// Words related to `id` (typos, abbreviations), sorted by id.
	const std::vector<Related> &RelatedTokens(uint32_t id) const {
		return related_[id];
	}
	// The word and the other spellings normalization maps to it (SpellingsOf).
	const std::vector<std::string> &Spellings(uint32_t id) const {
		return spellings_[id];
	}

	static constexpr double kFillerWeight = 0.03;

	// A typo is a rare form of a word: two words that both occur in many
	// names ("electric" / "electrical", "green" / "greene") are different
	// words. A typo relation needs the rarer of the two in at most
	// kRareVariantNames names, or in at most 1/kVariantRatio as many names as
	// the other; an abbreviation in at most half as many names as its word.
	static constexpr uint32_t kRareVariantNames = 2;
	static constexpr uint32_t kVariantRatio = 5;

private:
	void AddRelation(uint32_t a, uint32_t b, TokenMatch m);
	bool RareVariant(uint32_t a, uint32_t b) const;

	std::unordered_map<std::string, uint32_t> ids_;
	std::vector<std::string> texts_;
	std::vector<uint32_t> df_;
	std::vector<double> weights_;
	std::vector<std::vector<Related>> related_;
	std::vector<std::vector<std::string>> spellings_;
	size_t names_ = 0;
};

// A name ready for comparison: word ids (at most kMaxTokens), which of them
// form the branch qualifier, and the trigrams of the joined words.
struct PreparedName {
	static constexpr size_t kMaxTokens = 16;
	std::vector<uint32_t> ids;
	std::vector<bool> branch;
	std::vector<uint32_t> trigrams;
};

// Interns the name's words into `stats` (call before stats.Finish()).
PreparedName Prepare(const NormalizedName &name, TokenStats &stats);

struct NameScore {
	double score = 0;              // 0..1, branch caps applied
	double token_score = 0;        // weighted share of paired words
	double trigram = 0;            // trigram Dice of the joined words
	bool exact = false;            // same words in the same order
	bool reordered = false;        // same words in another order
	bool branch_conflict = false;  // each side names a branch the other lacks
	bool branch_one_sided = false; // one side names a branch the other lacks
	// Some words pair up, and each side keeps words of substance the other
	// lacks ("Pizza Co Tacoma" / "Pizza Co Bellevue"): two branches or two
	// businesses, whatever else they share.
	bool different_words = false;
	// The names differ only by filler words ("Harbor Dental" / "Harbor Dental
	// Group"): as good as equal, so a company with the exact name is no
	// clear winner over this one.
	bool filler_only = false;
};

// What paired up and what did not, for the human-readable evidence.
struct NameDetails {
	std::vector<std::string> pairs;  // "typo harbr~harbor", "joined bluewater~blue water", ...
	std::vector<std::string> only_a; // words of a that found no partner
	std::vector<std::string> only_b;
	std::vector<std::string> branch_a; // unmatched branch words
	std::vector<std::string> branch_b;
};

// Name scores below these caps can never be confirmed on name evidence alone.
inline constexpr double kBranchConflictCap = 0.35;
inline constexpr double kOneSidedBranchCap = 0.75;
// Also the cap of the whole score (domain evidence included) for such pairs.
inline constexpr double kDifferentWordsCap = 0.8;

NameScore CompareNames(const PreparedName &a, const PreparedName &b, const TokenStats &stats,
                       NameDetails *details = nullptr);

// Convenience for tests and one-off use: compares two raw names; word rarity
// comes from `corpus` plus the two names.
NameScore CompareNames(std::string_view a, std::string_view b, const std::vector<std::string> &corpus = {},
                       NameDetails *details = nullptr);

// "names match after normalization (harbor dental)", "similar names 0.91
// (harbr dental / harbor dental group; typo harbr~harbor; only in one: group)",
// "different branches (north / south)", ...
std::string DescribeNames(const NameScore &score, const NameDetails &details, const std::string &text_a,
                          const std::string &text_b);

} // namespace billrecon::match

#include "core_only.hpp"
