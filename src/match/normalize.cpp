#include "match/normalize.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace billrecon::match {

namespace {

// ---- ASCII folding ----------------------------------------------------------

struct FoldRange {
	uint32_t first;
	uint32_t last;
	const char *ascii;
};

// Latin letters with diacritics and special Latin letters -> ASCII. Sorted by
// code point; each range maps every code point in it to `ascii`.
constexpr FoldRange kFoldRanges[] = {
    {0x00C0, 0x00C5, "a"},  {0x00C6, 0x00C6, "ae"}, {0x00C7, 0x00C7, "c"},  {0x00C8, 0x00CB, "e"},
    {0x00CC, 0x00CF, "i"},  {0x00D0, 0x00D0, "d"},  {0x00D1, 0x00D1, "n"},  {0x00D2, 0x00D6, "o"},
    {0x00D7, 0x00D7, " "},  {0x00D8, 0x00D8, "o"},  {0x00D9, 0x00DC, "u"},  {0x00DD, 0x00DD, "y"},
    {0x00DE, 0x00DE, "th"}, {0x00DF, 0x00DF, "ss"}, {0x00E0, 0x00E5, "a"},  {0x00E6, 0x00E6, "ae"},
    {0x00E7, 0x00E7, "c"},  {0x00E8, 0x00EB, "e"},  {0x00EC, 0x00EF, "i"},  {0x00F0, 0x00F0, "d"},
    {0x00F1, 0x00F1, "n"},  {0x00F2, 0x00F6, "o"},  {0x00F7, 0x00F7, " "},  {0x00F8, 0x00F8, "o"},
    {0x00F9, 0x00FC, "u"},  {0x00FD, 0x00FD, "y"},  {0x00FE, 0x00FE, "th"}, {0x00FF, 0x00FF, "y"},
    {0x0100, 0x0105, "a"},  {0x0106, 0x010D, "c"},  {0x010E, 0x0111, "d"},  {0x0112, 0x011B, "e"},
    {0x011C, 0x0123, "g"},  {0x0124, 0x0127, "h"},  {0x0128, 0x0131, "i"},  {0x0132, 0x0133, "ij"},
    {0x0134, 0x0135, "j"},  {0x0136, 0x0138, "k"},  {0x0139, 0x0142, "l"},  {0x0143, 0x014B, "n"},
    {0x014C, 0x0151, "o"},  {0x0152, 0x0153, "oe"}, {0x0154, 0x0159, "r"},  {0x015A, 0x0161, "s"},
    {0x0162, 0x0167, "t"},  {0x0168, 0x0173, "u"},  {0x0174, 0x0175, "w"},  {0x0176, 0x0178, "y"},
    {0x0179, 0x017E, "z"},  {0x017F, 0x017F, "s"},  {0x0180, 0x0180, "b"},  {0x0192, 0x0192, "f"},
    {0x01A0, 0x01A1, "o"},  {0x01AF, 0x01B0, "u"},  {0x01CD, 0x01CE, "a"},  {0x01CF, 0x01D0, "i"},
    {0x01D1, 0x01D2, "o"},  {0x01D3, 0x01DC, "u"},  {0x0218, 0x0219, "s"},  {0x021A, 0x021B, "t"},
    {0x0259, 0x0259, "e"},  {0x1E9E, 0x1E9E, "ss"}, {0x1EA0, 0x1EB7, "a"},  {0x1EB8, 0x1EC7, "e"},
    {0x1EC8, 0x1ECB, "i"},  {0x1ECC, 0x1EE3, "o"},  {0x1EE4, 0x1EF1, "u"},  {0x1EF2, 0x1EF9, "y"},
};

const char *FoldCodePoint(uint32_t cp) {
	size_t lo = 0, hi = sizeof(kFoldRanges) / sizeof(kFoldRanges[0]);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp < kFoldRanges[mid].first)
			hi = mid;
		else if (cp > kFoldRanges[mid].last)
			lo = mid + 1;
		else
			return kFoldRanges[mid].ascii;
	}
	return nullptr;
}

void AppendUtf8(std::string &out, uint32_t cp) {
	if (cp < 0x80) {
		out += static_cast<char>(cp);
	} else if (cp < 0x800) {
		out += static_cast<char>(0xC0 | (cp >> 6));
		out += static_cast<char>(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		out += static_cast<char>(0xE0 | (cp >> 12));
		out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
		out += static_cast<char>(0x80 | (cp & 0x3F));
	} else {
		out += static_cast<char>(0xF0 | (cp >> 18));
		out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
		out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
		out += static_cast<char>(0x80 | (cp & 0x3F));
	}
}

// Decodes one UTF-8 sequence at text[i]; returns its length, 0 when invalid.
size_t DecodeUtf8(std::string_view text, size_t i, uint32_t &cp) {
	auto b = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
	unsigned char c = b(i);
	size_t len;
	if (c < 0x80) {
		cp = c;
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		len = 2;
		cp = c & 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3;
		cp = c & 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (i + len > text.size())
		return 0;
	for (size_t k = 1; k < len; ++k) {
		if ((b(i + k) & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (b(i + k) & 0x3F);
	}
	static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

// ---- Name rules --------------------------------------------------------------

struct Pair {
	std::string_view from;
	std::string_view to;
};

// One spelling for common abbreviations and variants (token -> token).
constexpr Pair kAbbreviations[] = {
    {"acctg", "accounting"},
    {"acctng", "accounting"},
    {"assn", "association"},
    {"asso", "associates"},
    {"assoc", "associates"},
    {"assocs", "associates"},
    {"associate", "associates"},
    {"atty", "attorneys"},
    {"attys", "attorneys"},
    {"attorney", "attorneys"},
    {"ave", "avenue"},
    {"bldg", "building"},
    {"bldrs", "builders"},
    {"bros", "brothers"},
    {"centre", "center"},
    {"cntr", "center"},
    {"co", "company"},
    {"constr", "construction"},
    {"corp", "corporation"},
    {"cpas", "cpa"},
    {"ctr", "center"},
    {"dept", "department"},
    {"eng", "engineering"},
    {"engr", "engineering"},
    {"engrg", "engineering"},
    {"fdn", "foundation"},
    {"fort", "ft"},
    {"grp", "group"},
    {"hldg", "holdings"},
    {"hldgs", "holdings"},
    {"hosp", "hospital"},
    {"inc", "incorporated"},
    {"ins", "insurance"},
    {"inst", "institute"},
    {"intl", "international"},
    {"ltd", "limited"},
    {"med", "medical"},
    {"mfg", "manufacturing"},
    {"mgmt", "management"},
    {"mgmnt", "management"},
    {"mgt", "management"},
    {"mngt", "management"},
    {"mount", "mt"},
    {"mtn", "mountain"},
    {"natl", "national"},
    {"saint", "st"},
    {"srvcs", "services"},
    {"street", "st"},
    {"svc", "service"},
    {"svcs", "services"},
    {"sys", "systems"},
    {"twp", "township"},
    {"univ", "university"},
};

// Abbreviations of several words, expanded when not the first word
// ("Valley PT" -> "valley physical therapy"; a leading "PT" is an Indonesian legal form).
constexpr Pair kExpansions[] = {{"pt", "physical therapy"}};

// Long legal words also recognized with one typo at the end of a name ("Compnay").
constexpr std::string_view kLongLegalWords[] = {"company", "corporation", "incorporated", "limited"};

// Words that join names and prove nothing ("Smith & Jones", "Müller und Söhne").
constexpr std::string_view kConnectors[] = {"&", "and", "und", "et", "y"};
constexpr std::string_view kStopwords[] = {"of", "the"};

// Legal forms and professional designations stripped from the end of a name,
// as token sequences (dots are gone: "L.L.C." -> "llc", "S. A." -> "s a").
constexpr std::string_view kLegalSuffixes[] = {
    // English-speaking countries
    "incorporated",
    "corporation",
    "company",
    "limited",
    "llc",
    "lc",
    "llp",
    "lllp",
    "lp",
    "pllc",
    "plc",
    "pc",
    "pa",
    "psc",
    "apc",
    "chtd",
    "pty",
    "ulc",
    "ltee",
    "limitee",
    "l l c",
    "l l p",
    "p l l c",
    "p l c",
    "p c",
    "p a",
    "l p",
    "pvt",
    "private limited",
    "pte",
    "sdn bhd",
    "bhd",
    "attorneys at law",
    "at law",
    "dds",
    "dmd",
    "md",
    "cpa",
    "esq",
    // German-speaking countries
    "gmbh",
    "mbh",
    "ggmbh",
    "gesmbh",
    "ag",
    "kg",
    "kgaa",
    "ek",
    "ohg",
    "ug",
    "gbr",
    "ev",
    "se",
    "haftungsbeschrankt",
    "a g",
    "e k",
    "e v",
    "k g",
    "s e",
    // French, Spanish, Italian, Portuguese
    "sa",
    "sas",
    "sasu",
    "sarl",
    "eurl",
    "sci",
    "snc",
    "srl",
    "spa",
    "sl",
    "slu",
    "sll",
    "ltda",
    "sa de cv",
    "s a de c v",
    "de cv",
    "s a",
    "s a s",
    "s l",
    "s r l",
    "s p a",
    // Benelux, Nordics
    "bv",
    "nv",
    "vof",
    "cv",
    "oy",
    "oyj",
    "ab",
    "as",
    "asa",
    "aps",
    "b v",
    "n v",
    "a s",
    "a b",
    "i s",
    // Central and Eastern Europe
    "sp z oo",
    "sp z o o",
    "spolka z oo",
    "sro",
    "s r o",
    "spol s r o",
    "doo",
    "d o o",
    "kft",
    "zrt",
    "nyrt",
    "ooo",
    "zao",
    "oao",
    "pjsc",
    "jsc",
    // Asia
    "kk",
    "k k",
    "yk",
    "gk",
    "kabushiki kaisha",
};

// Qualifier words that name no particular branch: "- Main Office", "(HQ)".
constexpr std::string_view kNeutralQualifiers[] = {"main",      "office",  "hq",      "headquarters", "head",
                                                   "corporate", "primary", "offices", "home"};

// Location words that make a trailing qualifier a branch ("Harbor Dental North").
constexpr Pair kLocationWords[] = {
    {"north", "north"},         {"south", "south"},         {"east", "east"},           {"west", "west"},
    {"northside", "north"},     {"southside", "south"},     {"eastside", "east"},       {"westside", "west"},
    {"northeast", "northeast"}, {"northwest", "northwest"}, {"southeast", "southeast"}, {"southwest", "southwest"},
    {"downtown", "downtown"},   {"dt", "downtown"},         {"dtwn", "downtown"},       {"uptown", "uptown"},
    {"midtown", "midtown"},
};
// One-letter compass points, only inside a qualifier segment ("(N.)").
constexpr Pair kCompassLetters[] = {{"n", "north"}, {"s", "south"}, {"e", "east"}, {"w", "west"}};
// Words before a branch number: "Branch 2", "Location 3", "Store 12".
constexpr std::string_view kBranchNumberWords[] = {"branch", "location", "site",   "store",
                                                   "unit",   "no",       "number", "loc"};

template <size_t N>
bool InList(const std::string_view (&list)[N], std::string_view word) {
	for (std::string_view w : list)
		if (word == w)
			return true;
	return false;
}

// The entry for `word`, or nullptr.
template <size_t N>
const Pair *LookUp(const Pair (&list)[N], std::string_view word) {
	for (const Pair &p : list)
		if (word == p.from)
			return &p;
	return nullptr;
}

bool IsDigits(std::string_view s) {
	return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsWordByte(unsigned char c) {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

std::vector<std::string> SplitSpaces(std::string_view s) {
	std::vector<std::string> out;
	size_t i = 0;
	while (i < s.size()) {
		while (i < s.size() && s[i] == ' ')
			++i;
		size_t j = i;
		while (j < s.size() && s[j] != ' ')
			++j;
		if (j > i)
			out.emplace_back(s.substr(i, j - i));
		i = j;
	}
	return out;
}

// Length in tokens of the legal suffix at the end of `tokens` (0 when none);
// the longest listed form wins ("s a de c v" before "c v").
size_t TrailingLegalSuffix(const std::vector<std::string> &tokens) {
	constexpr size_t kLongestForm = 5; // tokens
	std::string tail;                  // the last tokens, space separated
	for (size_t i = tokens.size() > kLongestForm ? tokens.size() - kLongestForm : 0; i < tokens.size(); ++i) {
		if (!tail.empty())
			tail += ' ';
		tail += tokens[i];
	}
	size_t best = 0;
	for (std::string_view f : kLegalSuffixes) {
		if (f.size() > tail.size() || tail.compare(tail.size() - f.size(), f.size(), f) != 0)
			continue;
		if (f.size() < tail.size() && tail[tail.size() - f.size() - 1] != ' ')
			continue; // whole tokens only: "sa" is not the end of "mesa"
		size_t words = 1 + static_cast<size_t>(std::count(f.begin(), f.end(), ' '));
		best = std::max(best, words);
	}
	return best;
}

struct RawToken {
	std::string text;
	bool hash = false; // written "#2"
};

struct Segment {
	std::vector<RawToken> tokens;
	bool main = false;
};

// Splits folded text into segments: the main name, parenthesized parts, and
// parts after a spaced dash, pipe, colon or semicolon.
std::vector<Segment> Tokenize(const std::string &folded) {
	std::vector<Segment> segments(1);
	segments[0].main = true;
	size_t current = 0; // segment receiving tokens
	size_t outside = 0; // segment to return to after ')'
	int depth = 0;
	std::string word;
	bool hash_pending = false;

	auto emit = [&](std::string text) {
		if (text.empty())
			return;
		segments[current].tokens.push_back({std::move(text), hash_pending});
		hash_pending = false;
	};
	auto flush = [&]() {
		if (word.empty())
			return;
		// Dots: "l.l.c" -> "llc" (every part one letter), otherwise separators.
		std::vector<std::string> parts;
		std::string part;
		for (char c : word) {
			if (c == '.') {
				if (!part.empty())
					parts.push_back(std::move(part));
				part.clear();
			} else if (c != '\'') {
				part += c;
			}
		}
		if (!part.empty())
			parts.push_back(std::move(part));
		bool initials = parts.size() > 1 &&
		                std::all_of(parts.begin(), parts.end(), [](const std::string &p) { return p.size() == 1; });
		if (initials) {
			std::string joined;
			for (const std::string &p : parts)
				joined += p;
			emit(std::move(joined));
		} else {
			for (std::string &p : parts)
				emit(std::move(p));
		}
		word.clear();
	};
	auto new_segment = [&]() {
		segments.emplace_back();
		current = segments.size() - 1;
	};

	for (size_t i = 0; i < folded.size(); ++i) {
		unsigned char c = static_cast<unsigned char>(folded[i]);
		if (IsWordByte(c) || ((c == '.' || c == '\'') && !word.empty())) {
			word += static_cast<char>(c);
			continue;
		}
		flush();
		switch (c) {
		case '(':
		case '[':
		case '{':
			if (depth++ == 0)
				outside = current;
			new_segment();
			break;
		case ')':
		case ']':
		case '}':
			if (depth > 0 && --depth == 0)
				current = outside;
			break;
		case '-': {
			bool spaced_before = i == 0 || folded[i - 1] == ' ';
			bool spaced_after = i + 1 >= folded.size() || folded[i + 1] == ' ' || folded[i + 1] == '-';
			if ((spaced_before || spaced_after) && depth == 0 && !segments[current].tokens.empty())
				new_segment();
			break;
		}
		case '|':
		case ':':
		case ';':
			if (depth == 0 && !segments[current].tokens.empty())
				new_segment();
			break;
		case '&':
		case '+':
			emit("&");
			break;
		case '#':
			hash_pending = true;
			break;
		default:
			break;
		}
	}
	flush();
	return segments;
}

// At most one insertion, deletion, substitution or swap of neighbours apart.
bool WithinOneEdit(std::string_view a, std::string_view b) {
	if (a.size() > b.size())
		std::swap(a, b);
	if (b.size() - a.size() > 1)
		return false;
	size_t i = 0;
	while (i < a.size() && a[i] == b[i])
		++i;
	if (i == a.size())
		return true; // equal, or one letter appended
	if (a.size() == b.size()) {
		if (a.substr(i + 1) == b.substr(i + 1))
			return true; // substitution
		return i + 1 < a.size() && a[i] == b[i + 1] && a[i + 1] == b[i] && a.substr(i + 2) == b.substr(i + 2);
	}
	return a.substr(i) == b.substr(i + 1); // insertion
}

bool IsMisspelledLegalWord(std::string_view t) {
	if (t.size() < 6)
		return false;
	for (std::string_view w : kLongLegalWords)
		if (WithinOneEdit(t, w))
			return true;
	return false;
}

// Cleans one segment's tokens: abbreviations, trailing legal suffixes,
// connectors and stop words. keep_one: never strip the last token.
std::vector<std::string> CleanSegment(std::vector<std::string> in, bool keep_one) {
	std::vector<std::string> tokens;
	tokens.reserve(in.size());
	for (size_t i = 0; i < in.size(); ++i) {
		if (const Pair *abbreviation = LookUp(kAbbreviations, in[i])) {
			tokens.emplace_back(abbreviation->to);
		} else if (const Pair *expansion = i > 0 ? LookUp(kExpansions, in[i]) : nullptr) {
			for (std::string &w : SplitSpaces(expansion->to))
				tokens.push_back(std::move(w));
		} else {
			tokens.push_back(std::move(in[i]));
		}
	}
	// Trailing legal forms, connectors and "the", repeatedly ("GmbH & Co. KG").
	for (;;) {
		size_t n = TrailingLegalSuffix(tokens);
		if (n == 0 && !tokens.empty() && IsMisspelledLegalWord(tokens.back()))
			n = 1;
		if (n == 0 && !tokens.empty() && (InList(kConnectors, tokens.back()) || tokens.back() == "the"))
			n = 1;
		if (n == 0 || (keep_one && n >= tokens.size()))
			break;
		tokens.resize(tokens.size() - n);
	}
	std::vector<std::string> out;
	for (std::string &t : tokens) {
		if (InList(kConnectors, t) || InList(kStopwords, t))
			continue;
		out.push_back(std::move(t));
	}
	if (out.empty() && keep_one && !tokens.empty() && !InList(kConnectors, tokens.back()))
		out.push_back(tokens.back()); // a name that is only "The"
	return out;
}

// The branch a qualifier segment names, canonical; empty when neutral.
std::vector<std::string> QualifierBranch(const std::vector<RawToken> &raw) {
	std::vector<std::string> tokens;
	for (const RawToken &t : raw)
		tokens.push_back(t.text);
	tokens = CleanSegment(std::move(tokens), false);
	if (std::all_of(tokens.begin(), tokens.end(), [](const std::string &t) { return InList(kNeutralQualifiers, t); }))
		return {};
	std::vector<std::string> out;
	for (size_t i = 0; i < tokens.size(); ++i) {
		const std::string &t = tokens[i];
		if (InList(kBranchNumberWords, t) && i + 1 < tokens.size() && IsDigits(tokens[i + 1]))
			continue; // "branch 2" -> "2"
		if (const Pair *location = LookUp(kLocationWords, t))
			out.emplace_back(location->to);
		else if (const Pair *letter = tokens.size() == 1 ? LookUp(kCompassLetters, t) : nullptr)
			out.emplace_back(letter->to);
		else
			out.push_back(t);
	}
	return out;
}

// Known top-level domains, for telling "harbordental.com" (a domain used as a
// name) from "St.Mary" (a name with a dot).
constexpr std::string_view kNameTlds[] = {
    "com",    "net",       "org",      "biz",        "info",  "us",     "co",     "io",   "ai",     "app",   "dev",
    "uk",     "au",        "nz",       "ca",         "de",    "fr",     "nl",     "be",   "es",     "it",    "se",
    "dk",     "no",        "fi",       "pl",         "eu",    "ch",     "at",     "ie",   "pt",     "cz",    "sk",
    "hu",     "ro",        "gr",       "mx",         "br",    "ar",     "cl",     "in",   "jp",     "cn",    "hk",
    "sg",     "my",        "za",       "ae",         "law",   "dental", "health", "care", "agency", "group", "tech",
    "online", "site",      "store",    "shop",       "email", "cloud",  "pro",    "mobi", "tv",     "me",    "xyz",
    "global", "solutions", "services", "consulting", "legal", "clinic", "church",
};

bool LooksLikeDomainName(const std::string &folded) {
	std::string_view s = folded;
	while (!s.empty() && s.front() == ' ')
		s.remove_prefix(1);
	while (!s.empty() && s.back() == ' ')
		s.remove_suffix(1);
	if (s.empty() || s.find(' ') != std::string_view::npos)
		return false;
	if (s.find('@') != std::string_view::npos || s.find("://") != std::string_view::npos || s.rfind("www.", 0) == 0)
		return !NormalizeHost(s).empty();
	std::string host = NormalizeHost(s);
	if (host.empty())
		return false;
	std::string_view tld = std::string_view(host).substr(host.rfind('.') + 1);
	return InList(kNameTlds, tld);
}

// ---- Domains -------------------------------------------------------------------

// Multi-label public suffixes under which registrations sit one level deeper.
constexpr std::string_view kMultiLabelSuffixes[] = {
    "co.uk",     "org.uk", "ac.uk",  "gov.uk", "ltd.uk", "plc.uk", "me.uk",  "net.uk", "nhs.uk", "sch.uk",  "com.au",
    "net.au",    "org.au", "edu.au", "gov.au", "asn.au", "id.au",  "co.nz",  "org.nz", "net.nz", "govt.nz", "ac.nz",
    "school.nz", "co.za",  "org.za", "net.za", "com.br", "net.br", "org.br", "com.mx", "org.mx", "gob.mx",  "com.ar",
    "com.co",    "com.pe", "com.ec", "com.uy", "co.jp",  "or.jp",  "ne.jp",  "ac.jp",  "co.kr",  "or.kr",   "com.cn",
    "net.cn",    "org.cn", "com.hk", "org.hk", "com.sg", "org.sg", "com.my", "co.in",  "net.in", "org.in",  "firm.in",
    "co.il",     "org.il", "com.tr", "com.pl", "co.at",  "or.at",  "com.ph", "com.tw", "co.id",  "com.vn",  "com.sa",
    "com.eg",    "co.ke",  "com.ng", "com.pk", "co.th",  "com.es", "com.pt", "com.gr", "com.cy", "com.mt",  "qc.ca",
    "on.ca",     "bc.ca",  "ab.ca",  "gc.ca",
};

// Hosting suffixes under which each customer owns one label (like the
// private section of the Public Suffix List).
constexpr std::string_view kSharedHostSuffixes[] = {
    "onmicrosoft.com", "mail.onmicrosoft.com", "sharepoint.com", "azurewebsites.net", "wixsite.com", "godaddysites.com",
    "squarespace.com", "business.site",        "wordpress.com",  "blogspot.com",      "github.io",   "myshopify.com",
    "weebly.com",      "webflow.io",           "netlify.app",    "herokuapp.com",
};

constexpr std::string_view kGenericDomains[] = {
    // free mail
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.ca",
    "yahoo.com.au",
    "yahoo.fr",
    "yahoo.de",
    "ymail.com",
    "rocketmail.com",
    "outlook.com",
    "outlook.de",
    "outlook.fr",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "hotmail.de",
    "hotmail.it",
    "hotmail.es",
    "live.com",
    "live.co.uk",
    "live.ca",
    "msn.com",
    "passport.com",
    "aol.com",
    "aim.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "protonmail.com",
    "protonmail.ch",
    "proton.me",
    "pm.me",
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "gmx.at",
    "gmx.ch",
    "web.de",
    "t-online.de",
    "freenet.de",
    "mail.com",
    "email.com",
    "zoho.com",
    "zohomail.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "fastmail.com",
    "fastmail.fm",
    "hey.com",
    "tutanota.com",
    "tuta.io",
    "hushmail.com",
    "inbox.com",
    "lycos.com",
    "rediffmail.com",
    "seznam.cz",
    "wp.pl",
    "o2.pl",
    "interia.pl",
    "libero.it",
    "virgilio.it",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "wanadoo.fr",
    "sfr.fr",
    "btinternet.com",
    "sky.com",
    "virginmedia.com",
    "ntlworld.com",
    "talktalk.net",
    "bigpond.com",
    "bigpond.net.au",
    "optusnet.com.au",
    "xtra.co.nz",
    "shaw.ca",
    "rogers.com",
    "sympatico.ca",
    "telus.net",
    "videotron.ca",
    // ISP mail (US)
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "bellsouth.net",
    "cox.net",
    "charter.net",
    "earthlink.net",
    "optonline.net",
    "frontier.com",
    "frontiernet.net",
    "windstream.net",
    "centurylink.net",
    "embarqmail.com",
    "juno.com",
    "netzero.net",
    "roadrunner.com",
    "rr.com",
    "twc.com",
    "spectrum.net",
    "suddenlink.net",
    "mediacombb.net",
    "q.com",
    "ptd.net",
    // shared services and placeholders
    "onmicrosoft.com",
    "sharepoint.com",
    "microsoftonline.com",
    "office365.com",
    "example.com",
    "example.org",
    "example.net",
    "test.com",
    "invalid",
    "localhost",
    "local",
    "noemail.com",
    "none.com",
    "na.com",
};

template <size_t N>
bool EndsWithSuffix(std::string_view host, const std::string_view (&list)[N], std::string_view &found) {
	for (std::string_view suffix : list) {
		if (host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix &&
		    host[host.size() - suffix.size() - 1] == '.') {
			if (suffix.size() > found.size())
				found = suffix;
		}
	}
	return !found.empty();
}

} // namespace

std::string FoldToAscii(std::string_view text) {
	std::string out;
	out.reserve(text.size());
	size_t i = 0;
	while (i < text.size()) {
		uint32_t cp = 0;
		size_t len = DecodeUtf8(text, i, cp);
		if (len == 0) {
			out += ' ';
			++i;
			continue;
		}
		i += len;
		if (cp < 0x80) {
			char c = static_cast<char>(cp);
			if (c >= 'A' && c <= 'Z')
				c = static_cast<char>(c - 'A' + 'a');
			else if (c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '`')
				c = c == '`' ? '\'' : ' ';
			else if (cp < 0x20 || cp == 0x7F)
				c = ' ';
			out += c;
		} else if (const char *ascii = FoldCodePoint(cp)) {
			out += ascii;
		} else if (cp >= 0x0300 && cp <= 0x036F) {
			// combining diacritical mark: dropped
		} else if (cp == 0x00AD || cp == 0x200B || cp == 0x200C || cp == 0x200D || cp == 0xFEFF) {
			// soft hyphen, zero-width characters, BOM: dropped
		} else if (cp >= 0x0080 && cp <= 0x00BF) {
			out += ' '; // NBSP and Latin-1 punctuation and symbols
		} else if (cp >= 0x2010 && cp <= 0x2015) {
			out += '-';
		} else if (cp >= 0x2018 && cp <= 0x201B) {
			out += '\'';
		} else if (cp >= 0x2000 && cp <= 0x206F) {
			out += cp == 0x2026 ? '.' : ' ';
		} else if (cp >= 0xFF01 && cp <= 0xFF5E) {
			char c = static_cast<char>(cp - 0xFEE0);
			if (c >= 'A' && c <= 'Z')
				c = static_cast<char>(c - 'A' + 'a');
			out += c;
		} else if (cp == 0x3000) {
			out += ' ';
		} else if ((cp >= 0x2100 && cp <= 0x21FF) || (cp >= 0x2190 && cp <= 0x2BFF)) {
			out += ' '; // letterlike symbols (™), arrows, shapes
		} else if (cp >= 0x0410 && cp <= 0x042F) {
			AppendUtf8(out, cp + 0x20);
		} else if (cp >= 0x0400 && cp <= 0x040F) {
			AppendUtf8(out, cp + 0x50);
		} else if (cp >= 0x0391 && cp <= 0x03A9 && cp != 0x03A2) {
			AppendUtf8(out, cp + 0x20);
		} else {
			AppendUtf8(out, cp);
		}
	}
	return out;
}

std::string NormalizedName::Text() const {
	std::string out;
	for (const std::string &t : tokens) {
		if (!out.empty())
			out += ' ';
		out += t;
	}
	return out;
}

std::string NormalizedName::Compact() const {
	std::string out;
	for (const std::string &t : tokens)
		out += t;
	return out;
}

NormalizedName NormalizeName(std::string_view name) {
	NormalizedName result;
	std::string folded = FoldToAscii(name);

	if (LooksLikeDomainName(folded)) {
		std::string host = NormalizeHost(folded);
		std::string label = OnMicrosoftLabel(host);
		std::string registrable = RegistrableDomain(host);
		if (label.empty()) {
			std::string_view reg = registrable;
			label = std::string(reg.substr(0, reg.find('.')));
		}
		result.from_domain = true;
		result.domain = registrable;
		std::vector<std::string> parts;
		std::string part;
		for (char c : label) {
			if (c == '-') {
				if (!part.empty())
					parts.push_back(std::move(part));
				part.clear();
			} else {
				part += c;
			}
		}
		if (!part.empty())
			parts.push_back(std::move(part));
		result.tokens = CleanSegment(std::move(parts), true);
		return result;
	}

	std::vector<Segment> segments = Tokenize(folded);
	// A name that starts with a qualifier: the first non-empty segment is the name.
	if (segments[0].tokens.empty()) {
		for (size_t i = 1; i < segments.size(); ++i) {
			if (!segments[i].tokens.empty()) {
				std::swap(segments[0].tokens, segments[i].tokens);
				break;
			}
		}
	}

	// Main segment. A number written "#2" keeps its '#' until branch detection.
	std::vector<std::string> main;
	for (const RawToken &t : segments[0].tokens)
		main.push_back(t.hash && IsDigits(t.text) ? "#" + t.text : t.text);
	if (main.size() > 1 && main.front() == "the")
		main.erase(main.begin());
	main = CleanSegment(std::move(main), true);
	// Trailing branch number: "... Branch 2", "... #2", "... Location 12".
	std::vector<std::string> branch;
	if (main.size() >= 2) {
		const std::string &last = main.back();
		bool hashed = last.size() > 1 && last[0] == '#';
		bool keyword = main.size() >= 3 && IsDigits(last) && InList(kBranchNumberWords, main[main.size() - 2]);
		if (hashed || keyword) {
			branch.push_back(hashed ? last.substr(1) : last);
			main.pop_back();
			if (keyword)
				main.pop_back();
		}
	}
	for (std::string &t : main)
		if (t.size() > 1 && t[0] == '#')
			t.erase(0, 1);
	// Trailing neutral qualifier: "Harbor Dental Main Office", "... HQ".
	while (main.size() >= 3 &&
	       (main.back() == "hq" || main.back() == "headquarters" ||
	        (main.back() == "office" && (main[main.size() - 2] == "main" || main[main.size() - 2] == "head")))) {
		main.pop_back();
		if (main.back() == "main" || main.back() == "head")
			main.pop_back();
	}
	// Trailing location word: "Harbor Dental North", "... N." (needs two words before it).
	if (branch.empty() && main.size() >= 3) {
		const Pair *location = LookUp(kLocationWords, main.back());
		if (!location)
			location = LookUp(kCompassLetters, main.back());
		if (location) {
			main.pop_back();
			branch.emplace_back(location->to);
		}
	}
	result.tokens = std::move(main);

	// Qualifier segments.
	for (size_t i = 1; i < segments.size(); ++i) {
		std::vector<std::string> b = QualifierBranch(segments[i].tokens);
		for (std::string &t : b)
			branch.push_back(std::move(t));
	}
	for (const std::string &t : branch)
		result.tokens.push_back(t);
	result.branch = std::move(branch);
	return result;
}

std::vector<std::string> NameTokens(std::string_view name) {
	return NormalizeName(name).tokens;
}

std::vector<std::string> CleanWords(std::vector<std::string> words) {
	return CleanSegment(std::move(words), true);
}

std::vector<std::string> SpellingsOf(std::string_view token) {
	std::vector<std::string> out{std::string(token)};
	for (const Pair &p : kAbbreviations)
		if (token == p.to)
			out.emplace_back(p.from);
	return out;
}

std::vector<std::string> RuleWords() {
	std::vector<std::string> out;
	for (const Pair &p : kAbbreviations) {
		out.emplace_back(p.from);
		out.emplace_back(p.to);
	}
	for (std::string_view w : kConnectors)
		out.emplace_back(w);
	for (std::string_view w : kStopwords)
		out.emplace_back(w);
	for (std::string_view form : kLegalSuffixes)
		for (std::string &w : SplitSpaces(form))
			out.push_back(std::move(w));
	for (std::string_view w : kLongLegalWords)
		out.emplace_back(w);
	out.erase(std::remove_if(out.begin(), out.end(), [](const std::string &w) { return w.size() < 2; }), out.end());
	std::sort(out.begin(), out.end());
	out.erase(std::unique(out.begin(), out.end()), out.end());
	return out;
}

std::vector<std::string> SegmentWords(std::string_view text, const std::function<bool(std::string_view)> &is_word) {
	const size_t n = text.size();
	if (n < 4 || n > 128)
		return {std::string(text)};
	// best[i]: fewest words for text[i..]; next[i]: where the first of them ends.
	constexpr size_t kNone = SIZE_MAX;
	std::vector<size_t> best(n + 1, kNone), next(n + 1, kNone);
	best[n] = 0;
	for (size_t i = n; i-- > 0;) {
		for (size_t j = n; j >= i + 2; --j) { // longest first word wins ties
			if (best[j] == kNone || best[j] + 1 >= best[i])
				continue;
			if (is_word(text.substr(i, j - i))) {
				best[i] = best[j] + 1;
				next[i] = j;
			}
		}
	}
	if (best[0] == kNone)
		return {std::string(text)};
	std::vector<std::string> out;
	for (size_t i = 0; i < n; i = next[i])
		out.emplace_back(text.substr(i, next[i] - i));
	return out;
}

std::string NormalizeHost(std::string_view text) {
	std::string s = FoldToAscii(text);
	// e-mail address (possibly "Name <a@b.com>"): the part after the last '@'
	size_t at = s.rfind('@');
	if (at != std::string::npos) {
		s = s.substr(at + 1);
	} else {
		size_t scheme = s.find("://");
		if (scheme != std::string::npos)
			s = s.substr(scheme + 3);
	}
	// trim
	size_t b = 0;
	while (b < s.size() && (s[b] == ' ' || s[b] == '<' || s[b] == '"'))
		++b;
	s = s.substr(b);
	size_t end = 0;
	while (end < s.size() && (IsWordByte(static_cast<unsigned char>(s[end])) || s[end] == '.' || s[end] == '-'))
		++end;
	// what ends the host must be a path, query, fragment, port, '>' or the end
	if (end < s.size() && std::strchr("/?#:> \"", s[end]) == nullptr)
		return {};
	s.resize(end);
	while (!s.empty() && s.back() == '.')
		s.pop_back();
	// leading "www.", "www2.", "ww3."
	if (s.rfind("ww", 0) == 0) {
		size_t k = 2;
		if (k < s.size() && s[k] == 'w')
			++k;
		while (k < s.size() && s[k] >= '0' && s[k] <= '9')
			++k;
		if (k < s.size() && s[k] == '.')
			s = s.substr(k + 1);
	}
	// validate: labels of [a-z0-9-], not empty, not starting or ending with '-'; alphabetic TLD
	if (s.empty() || s.find('.') == std::string::npos)
		return {};
	size_t start = 0;
	while (start <= s.size()) {
		size_t dot = s.find('.', start);
		if (dot == std::string::npos)
			dot = s.size();
		std::string_view label = std::string_view(s).substr(start, dot - start);
		if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
			return {};
		for (char c : label)
			if (static_cast<unsigned char>(c) >= 0x80)
				return {};
		start = dot + 1;
	}
	std::string_view tld = std::string_view(s).substr(s.rfind('.') + 1);
	if (tld.size() < 2 || !std::all_of(tld.begin(), tld.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
		return {};
	return s;
}

std::string RegistrableDomain(std::string_view host) {
	for (std::string_view bare : kMultiLabelSuffixes)
		if (host == bare)
			return {};
	for (std::string_view bare : kSharedHostSuffixes)
		if (host == bare)
			return {};
	std::string_view suffix;
	if (!EndsWithSuffix(host, kSharedHostSuffixes, suffix) && !EndsWithSuffix(host, kMultiLabelSuffixes, suffix)) {
		size_t dot = host.rfind('.');
		if (dot == std::string_view::npos)
			return {};
		suffix = host.substr(dot + 1);
	}
	if (host.size() < suffix.size() + 2)
		return {}; // a bare suffix
	size_t dot_before_suffix = host.size() - suffix.size() - 1;
	size_t prev = host.rfind('.', dot_before_suffix - 1);
	size_t start = prev == std::string_view::npos ? 0 : prev + 1;
	if (start >= dot_before_suffix)
		return {}; // empty label
	return std::string(host.substr(start));
}

std::string NormalizeDomain(std::string_view text) {
	return RegistrableDomain(NormalizeHost(text));
}

bool IsGenericDomain(std::string_view registrable_domain) {
	if (registrable_domain.empty())
		return true;
	for (std::string_view d : kGenericDomains)
		if (registrable_domain == d)
			return true;
	return false;
}

std::string OnMicrosoftLabel(std::string_view text) {
	std::string host = NormalizeHost(text);
	for (std::string_view suffix : {std::string_view(".mail.onmicrosoft.com"), std::string_view(".onmicrosoft.com")}) {
		if (host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0) {
			std::string label = host.substr(0, host.size() - suffix.size());
			return label.find('.') == std::string::npos ? label : std::string();
		}
	}
	return {};
}

std::string DomainLabel(std::string_view registrable_domain) {
	std::string_view label = registrable_domain.substr(0, registrable_domain.find('.'));
	std::string out;
	for (char c : label)
		if (c != '-')
			out += c;
	return out;
}

} // namespace billrecon::match
