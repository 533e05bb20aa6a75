#include "match/similarity.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <tuple>

namespace billrecon::match {

namespace {

bool HasDigit(std::string_view s) {
	return std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsAlpha(std::string_view s) {
	return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

bool IsVowel(char c) {
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

bool StartsWith(std::string_view s, std::string_view prefix) {
	return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// `s` is a subsequence of `l` with the same first and last letter
// ("mgmt" / "management", "bldg" / "building"; not "cpa" / "chiropractic").
bool IsSkeletonOf(std::string_view s, std::string_view l) {
	if (s.empty() || l.empty() || s[0] != l[0] || s.back() != l.back())
		return false;
	size_t k = 0;
	for (char c : l)
		if (k < s.size() && c == s[k])
			++k;
	return k == s.size();
}

// A consonant skeleton such as "mgmt", "svcs", "acctg": at most one vowel
// after the first letter.
bool LooksLikeSkeleton(std::string_view s) {
	if (s.size() < 3 || s.size() > 6 || !IsAlpha(s))
		return false;
	return std::count_if(s.begin() + 1, s.end(), IsVowel) <= 1;
}

// Typos and abbreviations are looked for in words up to this long (the
// deletion neighbourhoods grow with the square of the length); two typos
// only up to kMaxDoubleTypoLength.
constexpr size_t kMaxRelatedLength = 32;
constexpr size_t kMaxDoubleTypoLength = 20;

// Words that describe a business without naming it.
constexpr std::string_view kFillerWords[] = {
    "group",      "associates", "services",    "service",       "solutions",   "partners", "enterprises",
    "enterprise", "consulting", "consultants", "international", "global",      "ventures", "agency",
    "firm",       "worldwide",  "company",     "incorporated",  "corporation", "limited",
};

bool IsFiller(std::string_view s) {
	for (std::string_view w : kFillerWords)
		if (s == w)
			return true;
	return false;
}

std::string Join(const std::vector<std::string> &words, const char *sep) {
	std::string out;
	for (const std::string &w : words) {
		if (!out.empty())
			out += sep;
		out += w;
	}
	return out;
}

std::string Fixed3(double v) {
	char buf[32];
	std::snprintf(buf, sizeof buf, "%.3f", v);
	return buf;
}

} // namespace

size_t EditDistance(std::string_view a, std::string_view b, size_t max_distance) {
	if (a.size() > b.size())
		std::swap(a, b);
	const size_t n = a.size(), m = b.size();
	if (m - n > max_distance)
		return max_distance + 1;
	if (n == 0)
		return m;
	std::vector<size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
	for (size_t j = 0; j <= m; ++j)
		prev[j] = j;
	for (size_t i = 1; i <= n; ++i) {
		cur[0] = i;
		size_t row_min = cur[0];
		for (size_t j = 1; j <= m; ++j) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t v = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				v = std::min(v, prev2[j - 2] + 1);
			cur[j] = v;
			row_min = std::min(row_min, v);
		}
		if (row_min > max_distance)
			return max_distance + 1;
		std::swap(prev2, prev);
		std::swap(prev, cur);
	}
	return std::min(prev[m], max_distance + 1);
}

const char *TokenMatchKindName(TokenMatchKind kind) noexcept {
	switch (kind) {
	case TokenMatchKind::kNone:
		return "none";
	case TokenMatchKind::kExact:
		return "exact";
	case TokenMatchKind::kTypo:
		return "typo";
	case TokenMatchKind::kAbbreviation:
		return "abbreviation";
	case TokenMatchKind::kJoined:
		return "joined";
	case TokenMatchKind::kAcronym:
		return "acronym";
	}
	return "none";
}

TokenMatch MatchTokens(std::string_view a, std::string_view b) {
	if (a == b)
		return a.empty() ? TokenMatch{} : TokenMatch{TokenMatchKind::kExact, 1.0};
	// Numbers and words with digits match only exactly; typos and
	// abbreviations keep the first letter.
	if (a.empty() || b.empty() || HasDigit(a) || HasDigit(b) || a[0] != b[0])
		return {};
	std::string_view s = a.size() <= b.size() ? a : b; // shorter
	std::string_view l = a.size() <= b.size() ? b : a; // longer
	if (l.size() > kMaxRelatedLength)
		return {};
	if (s.size() >= 4 && l.size() - s.size() <= 2) {
		size_t d = EditDistance(s, l, 2);
		// One letter more at the end is as often another name as a typo
		// ("Green" / "Greene", "Clark" / "Clarke"); a plural "s" is not.
		if (d == 1 && l.size() == s.size() + 1 && StartsWith(l, s) && l.back() != 's')
			return {TokenMatchKind::kTypo, kNameVariantCredit};
		if (d == 1 && l.size() >= 6)
			return {TokenMatchKind::kTypo, kTypoCredit};
		if (d == 1 && l.size() == 5)
			return {TokenMatchKind::kTypo, kShortTypoCredit};
		if (d == 2 && l.size() >= 9 && s.size() >= 8)
			return {TokenMatchKind::kTypo, kDoubleTypoCredit};
	}
	if (s.size() >= 3 && l.size() >= s.size() + 2 && IsAlpha(s)) {
		// A short cut-off word ends before a vowel ("constr", "acad", "med";
		// "ortho" is long enough); "cole" / "coleman" are two names.
		if (StartsWith(l, s) && (!IsVowel(s.back()) || s.size() >= 5))
			return {TokenMatchKind::kAbbreviation, kAbbreviationCredit};
		if (LooksLikeSkeleton(s) && IsSkeletonOf(s, l))
			return {TokenMatchKind::kAbbreviation, kAbbreviationCredit};
	}
	return {};
}

bool IsAcronym(std::string_view acronym, const std::vector<std::string> &words) {
	if (acronym.size() < 2 || acronym.size() > 6 || !IsAlpha(acronym) || words.size() != acronym.size())
		return false;
	for (size_t k = 0; k < words.size(); ++k)
		if (words[k].empty() || words[k][0] != acronym[k])
			return false;
	return true;
}

std::vector<uint32_t> Trigrams(std::string_view text) {
	std::vector<uint32_t> out;
	if (text.empty())
		return out;
	std::string padded = "  ";
	padded.append(text);
	padded += ' ';
	out.reserve(padded.size());
	for (size_t i = 0; i + 3 <= padded.size(); ++i) {
		auto u = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(padded[k])); };
		out.push_back((u(i) << 16) | (u(i + 1) << 8) | u(i + 2));
	}
	std::sort(out.begin(), out.end());
	out.erase(std::unique(out.begin(), out.end()), out.end());
	return out;
}

double TrigramDice(const std::vector<uint32_t> &a, const std::vector<uint32_t> &b) {
	if (a.empty() && b.empty())
		return 0;
	size_t i = 0, j = 0, common = 0;
	while (i < a.size() && j < b.size()) {
		if (a[i] == b[j]) {
			++common;
			++i;
			++j;
		} else if (a[i] < b[j]) {
			++i;
		} else {
			++j;
		}
	}
	return 2.0 * static_cast<double>(common) / static_cast<double>(a.size() + b.size());
}

double TrigramSimilarity(std::string_view a, std::string_view b) {
	return TrigramDice(Trigrams(a), Trigrams(b));
}

// ---- TokenStats -------------------------------------------------------------------

uint32_t TokenStats::Intern(std::string_view token) {
	auto it = ids_.find(std::string(token));
	if (it != ids_.end())
		return it->second;
	uint32_t id = static_cast<uint32_t>(texts_.size());
	ids_.emplace(std::string(token), id);
	texts_.emplace_back(token);
	df_.push_back(0);
	return id;
}

bool TokenStats::RareVariant(uint32_t a, uint32_t b) const {
	uint32_t lo = std::min(df_[a], df_[b]), hi = std::max(df_[a], df_[b]);
	return lo <= std::max<uint32_t>(kRareVariantNames, hi / kVariantRatio);
}

uint32_t TokenStats::Find(std::string_view token) const {
	auto it = ids_.find(std::string(token));
	return it == ids_.end() ? UINT32_MAX : it->second;
}

void TokenStats::CountName(const std::vector<uint32_t> &ids) {
	++names_;
	std::vector<uint32_t> distinct = ids;
	std::sort(distinct.begin(), distinct.end());
	distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
	for (uint32_t id : distinct)
		++df_[id];
}

void TokenStats::AddRelation(uint32_t a, uint32_t b, TokenMatch m) {
	related_[a].push_back({b, m});
	related_[b].push_back({a, m});
}

void TokenStats::Finish() {
	const size_t v = texts_.size();
	// Weights: squared normalized inverse document frequency.
	const double n = static_cast<double>(std::max<size_t>(names_, 1));
	const double top = std::log((n + 1.0) / 1.5);
	weights_.assign(v, 1.0);
	for (size_t id = 0; id < v; ++id) {
		double idf = std::log((n + 1.0) / (static_cast<double>(df_[id]) + 0.5));
		double r = std::clamp(top > 0 ? idf / top : 1.0, 0.05, 1.0);
		double w = r * r;
		if (IsFiller(texts_[id]))
			w = std::min(w, kFillerWeight);
		weights_[id] = w;
	}

	related_.assign(v, {});
	spellings_.assign(v, {});
	for (uint32_t id = 0; id < v; ++id) {
		spellings_[id] = SpellingsOf(texts_[id]);
	}
	// Typos: words sharing a deletion-neighbourhood key (the word itself,
	// minus one letter, minus two letters for long words; never the first).
	// Every spelling of a word takes part ("striet" ~ "street" = "st").
	struct Spelling {
		uint32_t id;
		uint32_t index;
	};
	std::unordered_map<std::string, std::vector<Spelling>> buckets;
	std::vector<std::string> keys;
	for (uint32_t id = 0; id < v; ++id) {
		for (uint32_t si = 0; si < spellings_[id].size(); ++si) {
			const std::string &t = spellings_[id][si];
			if (t.size() < 4 || t.size() > kMaxRelatedLength || HasDigit(t))
				continue;
			keys.clear();
			keys.push_back(t);
			for (size_t i = 1; i < t.size(); ++i) {
				std::string k = t.substr(0, i) + t.substr(i + 1);
				keys.push_back(k);
				if (t.size() >= 9 && t.size() <= kMaxDoubleTypoLength)
					for (size_t j = i; j < k.size(); ++j)
						keys.push_back(k.substr(0, j) + k.substr(j + 1));
			}
			std::sort(keys.begin(), keys.end());
			keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
			for (const std::string &k : keys)
				buckets[k].push_back({id, si});
		}
	}
	struct TypoPair {
		uint32_t a, ai, b, bi;
		bool operator<(const TypoPair &o) const {
			return std::tie(a, ai, b, bi) < std::tie(o.a, o.ai, o.b, o.bi);
		}
		bool operator==(const TypoPair &o) const {
			return a == o.a && ai == o.ai && b == o.b && bi == o.bi;
		}
	};
	std::vector<TypoPair> typo_pairs;
	for (const auto &entry : buckets) {
		const std::vector<Spelling> &list = entry.second;
		if (list.size() < 2 || list.size() > 64)
			continue;
		for (size_t i = 0; i < list.size(); ++i) {
			for (size_t j = i + 1; j < list.size(); ++j) {
				Spelling x = list[i], y = list[j];
				if (x.id == y.id)
					continue;
				if (y.id < x.id)
					std::swap(x, y);
				typo_pairs.push_back({x.id, x.index, y.id, y.index});
			}
		}
	}
	std::sort(typo_pairs.begin(), typo_pairs.end());
	typo_pairs.erase(std::unique(typo_pairs.begin(), typo_pairs.end()), typo_pairs.end());
	for (const TypoPair &p : typo_pairs) {
		if (!RareVariant(p.a, p.b))
			continue;
		TokenMatch m = MatchTokens(spellings_[p.a][p.ai], spellings_[p.b][p.bi]);
		if (m.kind == TokenMatchKind::kTypo)
			AddRelation(p.a, p.b, m);
	}

	// Abbreviations: prefixes ("constr") and consonant skeletons ("mgmt").
	std::vector<uint32_t> sorted(v);
	for (uint32_t id = 0; id < v; ++id)
		sorted[id] = id;
	std::sort(sorted.begin(), sorted.end(), [&](uint32_t x, uint32_t y) { return texts_[x] < texts_[y]; });
	std::array<std::vector<uint32_t>, 26> by_letter;
	for (uint32_t id : sorted)
		if (IsAlpha(texts_[id]))
			by_letter[static_cast<size_t>(texts_[id][0] - 'a')].push_back(id);
	std::vector<std::pair<uint32_t, uint32_t>> abbreviation_pairs;
	for (uint32_t id = 0; id < v; ++id) {
		const std::string &s = texts_[id];
		if (s.size() < 3 || s.size() > 8 || !IsAlpha(s))
			continue; // abbreviations are short; the long words they stand for are capped by MatchTokens
		auto it = std::lower_bound(sorted.begin(), sorted.end(), s,
		                           [&](uint32_t x, const std::string &key) { return texts_[x] < key; });
		for (size_t count = 0; it != sorted.end() && StartsWith(texts_[*it], s) && count < 256; ++it, ++count)
			if (texts_[*it].size() >= s.size() + 2)
				abbreviation_pairs.emplace_back(id, *it);
		if (LooksLikeSkeleton(s))
			for (uint32_t other : by_letter[static_cast<size_t>(s[0] - 'a')])
				if (texts_[other].size() >= s.size() + 2 && IsSkeletonOf(s, texts_[other]))
					abbreviation_pairs.emplace_back(id, other);
	}
	std::sort(abbreviation_pairs.begin(), abbreviation_pairs.end());
	abbreviation_pairs.erase(std::unique(abbreviation_pairs.begin(), abbreviation_pairs.end()),
	                         abbreviation_pairs.end());
	for (const auto &p : abbreviation_pairs) {
		const std::string &s = texts_[p.first], &l = texts_[p.second];
		// "harbordental" is "harbor" + "dental" written together, not an abbreviation of it
		if (StartsWith(l, s) && ids_.count(l.substr(s.size())))
			continue;
		// An abbreviation is written less often than its word, at most half as
		// often ("hunt" / "hunter" are two names).
		if (df_[p.first] > std::max<uint32_t>(kRareVariantNames, df_[p.second] / 2))
			continue;
		TokenMatch m = MatchTokens(s, l);
		if (m.kind == TokenMatchKind::kAbbreviation)
			AddRelation(p.first, p.second, m);
	}

	// Sorted by id, one entry per word (the best relation).
	for (auto &list : related_) {
		std::sort(list.begin(), list.end(), [](const Related &x, const Related &y) {
			return x.id != y.id ? x.id < y.id : x.match.credit > y.match.credit;
		});
		list.erase(
		    std::unique(list.begin(), list.end(), [](const Related &x, const Related &y) { return x.id == y.id; }),
		    list.end());
	}
}

TokenMatch TokenStats::Relation(uint32_t a, uint32_t b) const {
	const std::vector<Related> &list = related_[a];
	auto it = std::lower_bound(list.begin(), list.end(), b, [](const Related &r, uint32_t id) { return r.id < id; });
	if (it != list.end() && it->id == b)
		return it->match;
	return {};
}

// ---- Names --------------------------------------------------------------------------

PreparedName Prepare(const NormalizedName &name, TokenStats &stats) {
	PreparedName out;
	const size_t total = name.tokens.size();
	const size_t branch = std::min(name.branch.size(), total);
	const size_t main = total - branch;
	const size_t keep_main = std::min(main, PreparedName::kMaxTokens - std::min(branch, PreparedName::kMaxTokens / 2));
	std::string compact;
	for (size_t i = 0; i < total; ++i) {
		bool is_branch = i >= main;
		if (!is_branch && i >= keep_main)
			continue;
		if (out.ids.size() >= PreparedName::kMaxTokens)
			break;
		out.ids.push_back(stats.Intern(name.tokens[i]));
		out.branch.push_back(is_branch);
		compact += name.tokens[i];
	}
	out.trigrams = Trigrams(compact);
	return out;
}

NameScore CompareNames(const PreparedName &a, const PreparedName &b, const TokenStats &stats, NameDetails *details) {
	NameScore out;
	const size_t n = a.ids.size(), m = b.ids.size();
	if (n == 0 || m == 0)
		return out;
	out.trigram = TrigramDice(a.trigrams, b.trigrams);
	if (a.ids == b.ids) {
		out.exact = true;
		out.score = out.token_score = 1.0;
		return out;
	}

	constexpr size_t kMax = PreparedName::kMaxTokens;
	struct Side {
		const PreparedName *name;
		size_t size;
		std::array<double, kMax> weight;    // rarity weight
		std::array<double, kMax> effective; // weight counted for the word (its partner's for typos, ...)
		std::array<int, kMax> partner;      // index on the other side, -1 when unpaired
		std::array<TokenMatchKind, kMax> kind;
	};
	Side sa, sb;
	for (Side *side : {&sa, &sb}) {
		const PreparedName &x = side == &sa ? a : b;
		side->name = &x;
		side->size = x.ids.size();
		for (size_t i = 0; i < side->size; ++i)
			side->weight[i] = side->effective[i] = stats.Weight(x.ids[i]);
		side->partner.fill(-1);
		side->kind.fill(TokenMatchKind::kNone);
	}
	double value = 0;
	bool all_exact = true;
	auto note = [&](TokenMatchKind kind, const std::string &left, const std::string &right) {
		all_exact = false;
		if (details)
			details->pairs.push_back(std::string(TokenMatchKindName(kind)) + " " + left + "~" + right);
	};
	auto words_of = [&](const Side &side, size_t from, size_t to) {
		std::string text;
		for (size_t q = from; q < to; ++q) {
			if (!text.empty())
				text += ' ';
			text += stats.Text(side.name->ids[q]);
		}
		return text;
	};
	// Pairs word i of x with words [j, k) of y.
	auto pair_run = [&](Side &x, Side &y, size_t i, size_t j, size_t k, TokenMatchKind kind, double credit) {
		double weight = 0;
		for (size_t q = j; q < k; ++q) {
			weight += y.weight[q];
			y.partner[q] = static_cast<int>(i);
			y.kind[q] = kind;
		}
		x.partner[i] = static_cast<int>(j);
		x.kind[i] = kind;
		x.effective[i] = weight;
		value += credit * 2 * weight;
		const std::string &t = stats.Text(x.name->ids[i]);
		if (&x == &sa)
			note(kind, t, words_of(y, j, k));
		else
			note(kind, words_of(y, j, k), t);
	};
	auto appears_in = [&](uint32_t id, const PreparedName &y) {
		return std::find(y.ids.begin(), y.ids.end(), id) != y.ids.end();
	};

	// 1. One word written as several ("bluewater" / "blue water", "elmstreet" / "elm st").
	for (int dir = 0; dir < 2; ++dir) {
		Side &x = dir == 0 ? sa : sb;
		Side &y = dir == 0 ? sb : sa;
		for (size_t i = 0; i < x.size; ++i) {
			const std::string &t = stats.Text(x.name->ids[i]);
			if (x.partner[i] >= 0 || x.name->branch[i] || t.size() < 4 || appears_in(x.name->ids[i], *y.name))
				continue;
			for (size_t j = 0; j < y.size && x.partner[i] < 0; ++j) {
				if (stats.Text(y.name->ids[j])[0] != t[0]) // every spelling of a word starts with its letter
					continue;
				size_t pos = 0, k = j;
				while (k < y.size && k - j < 5 && pos < t.size() && y.partner[k] < 0 && !y.name->branch[k]) {
					size_t step = 0; // the longest spelling that continues t
					for (const std::string &sp : stats.Spellings(y.name->ids[k]))
						if (sp.size() > step && sp.size() <= t.size() - pos && t.compare(pos, sp.size(), sp) == 0)
							step = sp.size();
					if (step == 0)
						break;
					pos += step;
					++k;
				}
				if (pos == t.size() && k - j >= 2)
					pair_run(x, y, i, j, k, TokenMatchKind::kJoined, kJoinedCredit);
			}
		}
	}

	// 2. Word pairs, best first: exact, typo, abbreviation. Branch words pair only exactly.
	struct Candidate {
		double credit;
		double eff; // weight counted on each side of the pair
		uint8_t i, j;
		TokenMatchKind kind;
	};
	std::array<Candidate, kMax * kMax> cands;
	size_t nc = 0;
	for (size_t i = 0; i < n; ++i) {
		if (sa.partner[i] >= 0)
			continue;
		for (size_t j = 0; j < m; ++j) {
			if (sb.partner[j] >= 0)
				continue;
			if (a.ids[i] == b.ids[j]) {
				cands[nc++] = {1.0, sa.weight[i], static_cast<uint8_t>(i), static_cast<uint8_t>(j),
				               TokenMatchKind::kExact};
			} else if (!a.branch[i] && !b.branch[j]) {
				TokenMatch r = stats.Relation(a.ids[i], b.ids[j]);
				if (r.kind != TokenMatchKind::kNone)
					cands[nc++] = {r.credit, std::min(sa.weight[i], sb.weight[j]), static_cast<uint8_t>(i),
					               static_cast<uint8_t>(j), r.kind};
			}
		}
	}
	std::sort(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(nc),
	          [](const Candidate &x, const Candidate &y) {
		          if (x.credit != y.credit)
			          return x.credit > y.credit;
		          if (x.eff != y.eff)
			          return x.eff > y.eff;
		          return x.i != y.i ? x.i < y.i : x.j < y.j;
	          });
	for (size_t k = 0; k < nc; ++k) {
		const Candidate &c = cands[k];
		if (sa.partner[c.i] >= 0 || sb.partner[c.j] >= 0)
			continue;
		sa.partner[c.i] = c.j;
		sb.partner[c.j] = c.i;
		sa.kind[c.i] = sb.kind[c.j] = c.kind;
		sa.effective[c.i] = sb.effective[c.j] = c.eff;
		value += c.credit * 2 * c.eff;
		if (c.kind != TokenMatchKind::kExact)
			note(c.kind, stats.Text(a.ids[c.i]), stats.Text(b.ids[c.j]));
	}

	// 3. Acronyms among the words left ("abc" / "alpha beta charlie"), weak.
	for (int dir = 0; dir < 2; ++dir) {
		Side &x = dir == 0 ? sa : sb;
		Side &y = dir == 0 ? sb : sa;
		for (size_t i = 0; i < x.size; ++i) {
			const std::string &t = stats.Text(x.name->ids[i]);
			if (x.partner[i] >= 0 || x.name->branch[i] || t.size() < 2 || t.size() > 6 || !IsAlpha(t))
				continue;
			for (size_t j = 0; j + t.size() <= y.size && x.partner[i] < 0; ++j) {
				std::vector<std::string> words;
				for (size_t q = j; q < j + t.size() && y.partner[q] < 0 && !y.name->branch[q]; ++q)
					words.push_back(stats.Text(y.name->ids[q]));
				if (IsAcronym(t, words))
					pair_run(x, y, i, j, j + t.size(), TokenMatchKind::kAcronym, kAcronymCredit);
			}
		}
	}

	// Weighted Dice over the paired words, except that a word left unpaired
	// counts twice: an extra word of substance ("Harbor Dental Lab") says
	// more against a match than a typo does.
	double total = 0;
	bool all_paired = true;
	bool unpaired_real_a = false, unpaired_real_b = false; // an unpaired word that is not filler
	bool unpaired_any = false;
	for (size_t i = 0; i < n; ++i) {
		total += sa.partner[i] < 0 ? 2 * sa.effective[i] : sa.effective[i];
		all_paired = all_paired && sa.partner[i] >= 0;
		unpaired_any = unpaired_any || (sa.partner[i] < 0 && !a.branch[i]);
		unpaired_real_a =
		    unpaired_real_a || (sa.partner[i] < 0 && !a.branch[i] && sa.weight[i] > TokenStats::kFillerWeight);
	}
	for (size_t j = 0; j < m; ++j) {
		total += sb.partner[j] < 0 ? 2 * sb.effective[j] : sb.effective[j];
		all_paired = all_paired && sb.partner[j] >= 0;
		unpaired_any = unpaired_any || (sb.partner[j] < 0 && !b.branch[j]);
		unpaired_real_b =
		    unpaired_real_b || (sb.partner[j] < 0 && !b.branch[j] && sb.weight[j] > TokenStats::kFillerWeight);
	}
	out.token_score = total > 0 ? std::min(1.0, value / total) : 0;
	out.reordered = all_paired && all_exact && n == m;
	if (out.reordered)
		out.score = 0.97;
	else
		out.score = 0.85 * out.token_score + 0.15 * out.trigram;

	// Branches: a branch word must find itself on the other side. A branch on
	// one side against a branch, or any word of substance, left over on the
	// other ("- Midtown" / "Tacoma") are two different branches.
	bool qa = false, qb = false;
	for (size_t i = 0; i < n; ++i) {
		if (a.branch[i] && sa.kind[i] != TokenMatchKind::kExact) {
			qa = true;
			if (details)
				details->branch_a.push_back(stats.Text(a.ids[i]));
		}
	}
	for (size_t j = 0; j < m; ++j) {
		if (b.branch[j] && sb.kind[j] != TokenMatchKind::kExact) {
			qb = true;
			if (details)
				details->branch_b.push_back(stats.Text(b.ids[j]));
		}
	}
	out.branch_conflict = (qa && (qb || unpaired_real_b)) || (qb && unpaired_real_a);
	out.branch_one_sided = (qa || qb) && !out.branch_conflict;
	out.different_words = !out.branch_conflict && out.token_score >= 0.3 && unpaired_real_a && unpaired_real_b;
	out.filler_only = all_exact && value > 0 && unpaired_any && !unpaired_real_a && !unpaired_real_b && !qa && !qb;
	if (out.branch_conflict)
		out.score = std::min(out.score, kBranchConflictCap);
	else if (out.branch_one_sided)
		out.score = std::min(out.score, kOneSidedBranchCap);
	if (out.different_words)
		out.score = std::min(out.score, kDifferentWordsCap);
	out.score = std::clamp(out.score, 0.0, 1.0);

	if (details) {
		for (size_t i = 0; i < n; ++i)
			if (sa.partner[i] < 0 && !a.branch[i])
				details->only_a.push_back(stats.Text(a.ids[i]));
		for (size_t j = 0; j < m; ++j)
			if (sb.partner[j] < 0 && !b.branch[j])
				details->only_b.push_back(stats.Text(b.ids[j]));
		if (out.branch_conflict && (details->branch_a.empty() || details->branch_b.empty())) {
			// the other side's leftover words are its branch
			std::vector<std::string> &empty = details->branch_a.empty() ? details->branch_a : details->branch_b;
			empty = details->branch_a.empty() ? details->only_a : details->only_b;
		}
	}
	return out;
}

NameScore CompareNames(std::string_view a, std::string_view b, const std::vector<std::string> &corpus,
                       NameDetails *details) {
	TokenStats stats;
	NormalizedName na = NormalizeName(a), nb = NormalizeName(b);
	PreparedName pa = Prepare(na, stats), pb = Prepare(nb, stats);
	stats.CountName(pa.ids);
	stats.CountName(pb.ids);
	for (const std::string &name : corpus)
		stats.CountName(Prepare(NormalizeName(name), stats).ids);
	stats.Finish();
	return CompareNames(pa, pb, stats, details);
}

std::string DescribeNames(const NameScore &score, const NameDetails &details, const std::string &text_a,
                          const std::string &text_b) {
	std::string out;
	if (score.exact) {
		out = "names match after normalization (" + text_a + ")";
	} else if (score.reordered) {
		out = "same words in a different order (" + text_a + " / " + text_b + ")";
	} else if (score.token_score >= 0.3) {
		out = "similar names " + Fixed3(score.token_score) + " (" + text_a + " / " + text_b;
		if (!details.pairs.empty())
			out += "; " + Join(details.pairs, ", ");
		std::vector<std::string> unpaired = details.only_a;
		unpaired.insert(unpaired.end(), details.only_b.begin(), details.only_b.end());
		if (!unpaired.empty())
			out += "; unpaired: " + Join(unpaired, " ");
		out += ")";
	} else {
		out = "names differ (" + text_a + " / " + text_b + ")";
	}
	if (score.different_words)
		out += "; different words on each side (" + Join(details.only_a, " ") + " / " + Join(details.only_b, " ") + ")";
	if (score.branch_conflict)
		out += "; different branches (" + Join(details.branch_a, " ") + " / " + Join(details.branch_b, " ") + ")";
	else if (score.branch_one_sided)
		out += "; branch \"" + Join(details.branch_a.empty() ? details.branch_b : details.branch_a, " ") +
		       "\" named on one side only";
	return out;
}

} // namespace billrecon::match
