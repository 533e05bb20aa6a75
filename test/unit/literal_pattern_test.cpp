// Plain-text patterns decided without the regex engine
// (src/reconcile/literal_pattern.hpp): which patterns qualify, the anchors,
// case classes handed in by the database, and the non-ASCII fallback.
#include "reconcile/literal_pattern.hpp"

#include <gtest/gtest.h>

#include <cctype>

using billrecon::reconcile::LiteralPattern;
using R = LiteralPattern::Result;

namespace {

// The case classes of a database whose collation folds ASCII the usual way.
LiteralPattern Ascii(const char *pattern) {
	LiteralPattern p;
	EXPECT_TRUE(LiteralPattern::Parse(pattern, &p)) << pattern;
	for (char c : p.DistinctChars()) {
		std::bitset<128> s;
		s.set(static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c))));
		s.set(static_cast<unsigned char>(std::toupper(static_cast<unsigned char>(c))));
		p.SetMatches(c, s);
	}
	return p;
}

} // namespace

TEST(LiteralPattern, OnlyPlainTextQualifies) {
	LiteralPattern p;
	for (const char *ok : {"kiosk", "^kiosk", "-lt$", "^srv-01$", "windows server", "a_b/c:d,e@f#g%h=i&j", "", "^",
	                       "$", "^$"})
		EXPECT_TRUE(LiteralPattern::Parse(ok, &p)) << ok;
	for (const char *no : {"win.*", "^(a|b)", "a+", "[a]", "a\\d", "***=a", "(?i)a", "a?", "a{2}", "x^y", "a$b",
	                       "caf\xc3\xa9", "a.b", "a|b", "a)", "a}"})
		EXPECT_FALSE(LiteralPattern::Parse(no, &p)) << no;
}

TEST(LiteralPattern, AnchorsAndPositions) {
	EXPECT_EQ(Ascii("^kiosk").Match("KIOSK-07"), R::kMatch);
	EXPECT_EQ(Ascii("^kiosk").Match("old-kiosk"), R::kNoMatch);
	EXPECT_EQ(Ascii("kiosk").Match("old-Kiosk-2"), R::kMatch);
	EXPECT_EQ(Ascii("-lt$").Match("ACME-LT"), R::kMatch);
	EXPECT_EQ(Ascii("-lt$").Match("ACME-LT1"), R::kNoMatch);
	EXPECT_EQ(Ascii("^srv$").Match("SRV"), R::kMatch);
	EXPECT_EQ(Ascii("^srv$").Match("SRV2"), R::kNoMatch);
	EXPECT_EQ(Ascii("^srv$").Match("sr"), R::kNoMatch);
	EXPECT_EQ(Ascii("windows server").Match("Microsoft Windows Server 2022"), R::kMatch);
	EXPECT_EQ(Ascii("windows server").Match("Windows 11"), R::kNoMatch);
	EXPECT_EQ(Ascii("ababc").Match("abababc"), R::kMatch); // a restart inside a partial match
	EXPECT_EQ(Ascii("").Match("anything"), R::kMatch);
	EXPECT_EQ(Ascii("").Match(""), R::kMatch);
	EXPECT_EQ(Ascii("^$").Match(""), R::kMatch);
	EXPECT_EQ(Ascii("^$").Match("x"), R::kNoMatch);
	EXPECT_EQ(Ascii("x").Match(""), R::kNoMatch);
}

TEST(LiteralPattern, NonAsciiValuesAreLeftToTheEngine) {
	EXPECT_EQ(Ascii("kiosk").Match("K\xe2\x84\xaaiosk"), R::kUndecided); // KELVIN SIGN: the collation decides
	EXPECT_EQ(Ascii("^kiosk").Match("kiosk-caf\xc3\xa9"), R::kUndecided);
}

TEST(LiteralPattern, TheDatabaseDecidesCase) {
	// A Turkish collation: 'I' is not the capital of 'i'.
	LiteralPattern p;
	ASSERT_TRUE(LiteralPattern::Parse("win", &p));
	std::bitset<128> i_class;
	i_class.set('i');
	p.SetMatches('i', i_class);
	std::bitset<128> w_class, n_class;
	w_class.set('w').set('W');
	n_class.set('n').set('N');
	p.SetMatches('w', w_class);
	p.SetMatches('n', n_class);
	EXPECT_EQ(p.Match("Windows"), R::kMatch);
	EXPECT_EQ(p.Match("WINDOWS"), R::kNoMatch);
	// Unset characters match only themselves.
	LiteralPattern q;
	ASSERT_TRUE(LiteralPattern::Parse("Ab", &q));
	EXPECT_EQ(q.Match("xAb"), R::kMatch);
	EXPECT_EQ(q.Match("xab"), R::kNoMatch);
	EXPECT_EQ(q.DistinctChars(), "Ab");
}
