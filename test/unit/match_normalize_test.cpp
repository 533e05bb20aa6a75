// Client matching, step 1: every name and domain normalization rule.
#include "match/normalize.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <unordered_set>
#include <vector>

using namespace billrecon::match;

namespace {

using Words = std::vector<std::string>;

std::string Text(const char *name) {
	return NormalizeName(name).Text();
}

} // namespace

// ---- ASCII folding --------------------------------------------------------------

TEST(MatchFold, CaseAndLatinLetters) {
	EXPECT_EQ(FoldToAscii("HARBOR Dental"), "harbor dental");
	EXPECT_EQ(FoldToAscii("Müller"), "muller");
	EXPECT_EQ(FoldToAscii("Café Dupré Lefèvre"), "cafe dupre lefevre");
	EXPECT_EQ(FoldToAscii("García Muñoz Peña"), "garcia munoz pena");
	EXPECT_EQ(FoldToAscii("Çelik Öztürk"), "celik ozturk");
	EXPECT_EQ(FoldToAscii("Åberg Hämäläinen"), "aberg hamalainen");
	EXPECT_EQ(FoldToAscii("Dvořák Łukasik Wójcik"), "dvorak lukasik wojcik");
	EXPECT_EQ(FoldToAscii("Nguyễn Trần"), "nguyen tran");
	EXPECT_EQ(FoldToAscii("Ștefan Țară"), "stefan tara");
}

TEST(MatchFold, SpecialLettersSpelledOut) {
	EXPECT_EQ(FoldToAscii("Weiß"), "weiss");
	EXPECT_EQ(FoldToAscii("GROẞ"), "gross");
	EXPECT_EQ(FoldToAscii("Søren Jørgensen"), "soren jorgensen");
	EXPECT_EQ(FoldToAscii("Æbeltoft Bækgaard"), "aebeltoft baekgaard");
	EXPECT_EQ(FoldToAscii("Œuvre cœur"), "oeuvre coeur");
	EXPECT_EQ(FoldToAscii("Þór"), "thor");
	EXPECT_EQ(FoldToAscii("Đorđević"), "dordevic");
}

TEST(MatchFold, CombiningMarksAndPunctuation) {
	EXPECT_EQ(FoldToAscii("Cafe\xCC\x81"), "cafe"); // e + U+0301
	EXPECT_EQ(FoldToAscii("O\xE2\x80\x99"
	                      "Brien"),
	          "o'brien"); // right single quote
	EXPECT_EQ(FoldToAscii("A\xE2\x80\x93"
	                      "B\xE2\x80\x94"
	                      "C"),
	          "a-b-c"); // en and em dash
	EXPECT_EQ(FoldToAscii("a\xC2\xA0"
	                      "b"),
	          "a b");                                                      // NBSP
	EXPECT_EQ(FoldToAscii("Acme\xE2\x84\xA2"), "acme ");                   // trademark sign
	EXPECT_EQ(FoldToAscii("\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3"), "abc"); // fullwidth ABC
	EXPECT_EQ(FoldToAscii("tab\there"), "tab here");
}

TEST(MatchFold, OtherScriptsKeptInvalidBytesBlanked) {
	EXPECT_EQ(FoldToAscii("МОСКВА"), "москва");
	EXPECT_EQ(FoldToAscii("ΩMEGA"), "ωmega");
	EXPECT_EQ(FoldToAscii("東京"), "東京");
	EXPECT_EQ(FoldToAscii("a\xFF"
	                      "b"),
	          "a b");
	EXPECT_EQ(FoldToAscii("a\xC3"), "a ");    // truncated sequence
	EXPECT_EQ(FoldToAscii("\xC0\xAF"), "  "); // overlong encoding
	EXPECT_EQ(FoldToAscii(""), "");
}

// ---- Names ----------------------------------------------------------------------

TEST(MatchNormalize, CasePunctuationWhitespace) {
	EXPECT_EQ(Text("  HARBOR   Dental,, Group!! "), "harbor dental group");
	EXPECT_EQ(Text("O'Brien's Bakery"), "obriens bakery");
	EXPECT_EQ(Text("Coca-Cola Bottling"), "coca cola bottling");
	EXPECT_EQ(Text("Harbor/Bay \"Dental\""), "harbor bay dental");
	EXPECT_EQ(NameTokens("Harbor Dental"), (Words{"harbor", "dental"}));
}

TEST(MatchNormalize, DottedInitialsJoin) {
	EXPECT_EQ(Text("Harbor Dental, L.L.C."), "harbor dental");
	EXPECT_EQ(Text("J.P. Harbor"), "jp harbor");
	EXPECT_EQ(Text("St.Mary Parish"), "st mary parish");
	EXPECT_EQ(Text("Smith Co.Builders"), "smith company builders");
}

TEST(MatchNormalize, AccentsFolded) {
	EXPECT_EQ(Text("Müller Bau"), "muller bau");
	EXPECT_EQ(Text("Søren Æbelø"), "soren aebelo");
	EXPECT_EQ(Text("Groß Logistik"), "gross logistik");
	EXPECT_EQ(Text("Café Rossi"), "cafe rossi");
}

TEST(MatchNormalize, LegalSuffixesOfManyCountries) {
	const char *suffixes[] = {
	    "Inc",
	    "Inc.",
	    ", Inc.",
	    "Incorporated",
	    "Corp",
	    "Corp.",
	    "Corporation",
	    "Co",
	    "Co.",
	    "Company",
	    "& Co",
	    "& Company",
	    "LLC",
	    "L.L.C.",
	    "L L C",
	    ", LLC",
	    "LC",
	    "Ltd",
	    "Ltd.",
	    "Limited",
	    "LLP",
	    "L.L.P.",
	    "LP",
	    "PLLC",
	    "P.L.L.C.",
	    "PC",
	    "P.C.",
	    "PA",
	    "P.A.",
	    "PLC",
	    "Pty",
	    "Pty Ltd",
	    "Pty. Ltd.",
	    "(Pty) Ltd",
	    "GmbH",
	    "GmbH & Co. KG",
	    "AG",
	    "KG",
	    "e.K.",
	    "e.V.",
	    "SE",
	    "UG (haftungsbeschränkt)",
	    "SA",
	    "S.A.",
	    "SAS",
	    "S.A.S.",
	    "SARL",
	    "SRL",
	    "S.r.l.",
	    "S.p.A.",
	    "SL",
	    "S.L.",
	    "S.A. de C.V.",
	    "Ltda",
	    "BV",
	    "B.V.",
	    "NV",
	    "N.V.",
	    "Oy",
	    "Oyj",
	    "AB",
	    "AS",
	    "A/S",
	    "ASA",
	    "ApS",
	    "Sp. z o.o.",
	    "s.r.o.",
	    "d.o.o.",
	    "Kft",
	    "K.K.",
	    "Kabushiki Kaisha",
	    "Pte Ltd",
	    "Pvt Ltd",
	    "Sdn Bhd",
	    ", Attorneys at Law",
	    ", DDS, PC",
	    ", CPAs",
	    "ULC",
	    "Ltée",
	    "Chtd",
	    "PSC",
	};
	for (const char *suffix : suffixes) {
		std::string name = std::string("Harbor Dental ") + suffix;
		EXPECT_EQ(NormalizeName(name).Text(), "harbor dental") << name;
	}
}

TEST(MatchNormalize, SuffixesOnlyAtTheEndAndNeverTheWholeName) {
	EXPECT_EQ(Text("Company Store of Harbor"), "company store harbor");
	EXPECT_EQ(Text("AB Plumbing"), "ab plumbing");
	EXPECT_EQ(Text("The Company"), "company");
	EXPECT_EQ(Text("GmbH"), "gmbh");
	EXPECT_EQ(Text("Inc."), "incorporated");
}

TEST(MatchNormalize, MisspelledLongLegalWordAtTheEnd) {
	EXPECT_EQ(Text("Robinson & Cmopany"), "robinson");
	EXPECT_EQ(Text("Hill Manufacturing Compeny Corp"), "hill manufacturing");
	EXPECT_EQ(Text("Acme Incorporatd"), "acme");
	EXPECT_EQ(Text("Acme Limted"), "acme");
	EXPECT_EQ(Text("Acme Compact"), "acme compact"); // two edits away: a word of its own
}

TEST(MatchNormalize, IncVersusIncorporatedAndTheLike) {
	EXPECT_EQ(Text("Harbor Dental Inc."), Text("Harbor Dental Incorporated"));
	EXPECT_EQ(Text("Harbor Dental Corp"), Text("Harbor Dental Corporation"));
	EXPECT_EQ(Text("Harbor Dental Ltd."), Text("Harbor Dental Limited"));
	EXPECT_EQ(Text("Harbor Dental LLC"), Text("Harbor Dental L.L.C."));
}

TEST(MatchNormalize, ConnectorsDropped) {
	EXPECT_EQ(Text("Smith & Jones"), "smith jones");
	EXPECT_EQ(Text("Smith and Jones"), "smith jones");
	EXPECT_EQ(Text("Smith + Jones"), "smith jones");
	EXPECT_EQ(Text("Müller und Söhne"), "muller sohne");
	EXPECT_EQ(Text("Dupont et Fils"), "dupont fils");
	EXPECT_EQ(Text("García y Hijos"), "garcia hijos");
	EXPECT_EQ(Text("&&&"), "");
}

TEST(MatchNormalize, TheAndOfDropped) {
	EXPECT_EQ(Text("The Harbor Group"), "harbor group");
	EXPECT_EQ(Text("Harbor Group, The"), "harbor group");
	EXPECT_EQ(Text("Law Offices of John Smith"), "law offices john smith");
	EXPECT_EQ(Text("The"), "the");
}

TEST(MatchNormalize, Abbreviations) {
	EXPECT_EQ(Text("Smith Assoc"), "smith associates");
	EXPECT_EQ(Text("Smith & Associate"), "smith associates");
	EXPECT_EQ(Text("Smith Grp"), "smith group");
	EXPECT_EQ(Text("Smith Svcs"), "smith services");
	EXPECT_EQ(Text("Smith Mgmt"), "smith management");
	EXPECT_EQ(Text("Smith Intl"), "smith international");
	EXPECT_EQ(Text("Smith Int'l"), "smith international");
	EXPECT_EQ(Text("Smith Bros"), "smith brothers");
	EXPECT_EQ(Text("Smith Dept Store"), "smith department store");
	EXPECT_EQ(Text("Harbor Ctr"), "harbor center");
	EXPECT_EQ(Text("Harbor Centre"), "harbor center");
	EXPECT_EQ(Text("Harbor Mfg"), "harbor manufacturing");
	EXPECT_EQ(Text("Harbor Constr"), "harbor construction");
	EXPECT_EQ(Text("Harbor Acctg"), "harbor accounting");
	EXPECT_EQ(Text("Harbor Med Group"), "harbor medical group");
	EXPECT_EQ(Text("Saint Mary Parish"), Text("St. Mary Parish"));
	EXPECT_EQ(Text("Main Street Deli"), Text("Main St Deli"));
	EXPECT_EQ(Text("Mount Vernon Dental"), Text("Mt. Vernon Dental"));
	EXPECT_EQ(Text("Valley PT"), "valley physical therapy");
	EXPECT_EQ(Text("PT Harbor Indonesia"), "pt harbor indonesia"); // leading PT is a legal form
}

TEST(MatchNormalize, BranchQualifiers) {
	struct Case {
		const char *name;
		const char *text;
		Words branch;
	};
	const Case cases[] = {
	    {"Harbor Dental - Northside", "harbor dental north", {"north"}},
	    {"Harbor Dental \xE2\x80\x93 Northside", "harbor dental north", {"north"}},
	    {"Harbor Dental (Downtown)", "harbor dental downtown", {"downtown"}},
	    {"Harbor Dental DT", "harbor dental downtown", {"downtown"}},
	    {"Harbor Dental North", "harbor dental north", {"north"}},
	    {"Harbor Dental N.", "harbor dental north", {"north"}},
	    {"Harbor Dental (N.)", "harbor dental north", {"north"}},
	    {"Harbor Dental Branch 2", "harbor dental 2", {"2"}},
	    {"Harbor Dental Branch 2, LLC", "harbor dental 2", {"2"}},
	    {"Harbor Dental #2", "harbor dental 2", {"2"}},
	    {"Harbor Dental (Location 3)", "harbor dental 3", {"3"}},
	    {"Harbor Dental - Tacoma", "harbor dental tacoma", {"tacoma"}},
	    {"Harbor Dental | Lab", "harbor dental lab", {"lab"}},
	    {"Harbor Dental (North) LLC", "harbor dental north", {"north"}},
	    {"North Dental", "north dental", {}}, // a location word that is the name
	    {"Summit North", "summit north", {}}, // needs two words before it
	    {"Studio 54", "studio 54", {}},       // a number without '#' or "branch"
	    {"Harbor Dental - Main Office", "harbor dental", {}},
	    {"Harbor Dental (HQ)", "harbor dental", {}},
	    {"Harbor Dental - Headquarters", "harbor dental", {}},
	    {"Harbor Dental Main Office", "harbor dental", {}},
	    {"Harbor Dental (Pty) Ltd", "harbor dental", {}},
	};
	for (const Case &c : cases) {
		NormalizedName n = NormalizeName(c.name);
		EXPECT_EQ(n.Text(), c.text) << c.name;
		EXPECT_EQ(n.branch, c.branch) << c.name;
	}
}

TEST(MatchNormalize, DomainUsedAsName) {
	NormalizedName n = NormalizeName("harbordental.com");
	EXPECT_TRUE(n.from_domain);
	EXPECT_EQ(n.domain, "harbordental.com");
	EXPECT_EQ(n.tokens, (Words{"harbordental"}));

	n = NormalizeName("https://www.Elm-Street-Plumbing.net/contact");
	EXPECT_TRUE(n.from_domain);
	EXPECT_EQ(n.domain, "elm-street-plumbing.net");
	EXPECT_EQ(n.Text(), "elm st plumbing");

	n = NormalizeName("billing@harbordental.co.uk");
	EXPECT_TRUE(n.from_domain);
	EXPECT_EQ(n.domain, "harbordental.co.uk");

	EXPECT_FALSE(NormalizeName("St.Mary").from_domain); // "mary" is no TLD
	EXPECT_FALSE(NormalizeName("Harbor Dental.com LLC").from_domain);
	EXPECT_EQ(NormalizeName("Harbor Dental").Compact(), "harbordental");
}

TEST(MatchNormalize, EmptyAndOddNames) {
	EXPECT_TRUE(NormalizeName("").tokens.empty());
	EXPECT_TRUE(NormalizeName("   \t ").tokens.empty());
	EXPECT_TRUE(NormalizeName("---").tokens.empty());
	EXPECT_TRUE(NormalizeName("()").tokens.empty());
	EXPECT_EQ(Text("(Harbor Dental)"), "harbor dental"); // only a parenthesized part: it is the name
	std::string long_name(5000, 'a');
	EXPECT_EQ(NormalizeName(long_name).tokens.size(), 1u);
	std::string many;
	for (int i = 0; i < 200; ++i)
		many += "w" + std::to_string(i) + " ";
	EXPECT_EQ(NormalizeName(many).tokens.size(), 200u);
}

TEST(MatchNormalize, CleanWordsAndSpellings) {
	EXPECT_EQ(CleanWords({"robinson", "and", "company"}), (Words{"robinson"}));
	EXPECT_EQ(CleanWords({"elm", "street", "grp", "llc"}), (Words{"elm", "st", "group"}));
	EXPECT_EQ(CleanWords({"inc"}), (Words{"incorporated"}));
	Words st = SpellingsOf("st");
	EXPECT_EQ(st.front(), "st");
	EXPECT_NE(std::find(st.begin(), st.end(), "street"), st.end());
	EXPECT_NE(std::find(st.begin(), st.end(), "saint"), st.end());
	EXPECT_EQ(SpellingsOf("harbor"), (Words{"harbor"}));
	Words rule = RuleWords();
	EXPECT_TRUE(std::is_sorted(rule.begin(), rule.end()));
	EXPECT_NE(std::find(rule.begin(), rule.end(), "company"), rule.end());
	EXPECT_NE(std::find(rule.begin(), rule.end(), "and"), rule.end());
}

TEST(MatchNormalize, SegmentWords) {
	std::unordered_set<std::string> vocabulary = {"harbor", "dental", "group", "law",    "offices",  "of",  "john",
	                                              "smith",  "and",    "erson", "jordan", "anderson", "har", "bor"};
	auto is_word = [&](std::string_view w) { return vocabulary.count(std::string(w)) > 0; };
	EXPECT_EQ(SegmentWords("harbordentalgroup", is_word), (Words{"harbor", "dental", "group"}));
	EXPECT_EQ(SegmentWords("lawofficesofjohnsmith", is_word), (Words{"law", "offices", "of", "john", "smith"}));
	EXPECT_EQ(SegmentWords("jordananderson", is_word), (Words{"jordan", "anderson"})); // fewest words
	EXPECT_EQ(SegmentWords("harborx", is_word), (Words{"harborx"}));                   // not completely
	EXPECT_EQ(SegmentWords("har", is_word), (Words{"har"}));                           // too short to cut
}

// ---- Domains --------------------------------------------------------------------

TEST(MatchDomain, HostFromUrlsAndAddresses) {
	EXPECT_EQ(NormalizeHost("harbordental.com"), "harbordental.com");
	EXPECT_EQ(NormalizeHost("www.harbordental.com"), "harbordental.com");
	EXPECT_EQ(NormalizeHost("WWW2.HarborDental.COM."), "harbordental.com");
	EXPECT_EQ(NormalizeHost("https://www.harbordental.com/contact?x=1#top"), "harbordental.com");
	EXPECT_EQ(NormalizeHost("HTTP://mail.harbordental.com:8443/"), "mail.harbordental.com");
	EXPECT_EQ(NormalizeHost("info@harbordental.com"), "harbordental.com");
	EXPECT_EQ(NormalizeHost("Jane Doe <jane@HarborDental.com>"), "harbordental.com");
	EXPECT_EQ(NormalizeHost("https://user:secret@harbordental.com/"), "harbordental.com");
	EXPECT_EQ(NormalizeHost(" harbor-dental.co.uk "), "harbor-dental.co.uk");
}

TEST(MatchDomain, NotAHost) {
	for (const char *text : {"", "harbor dental", "localhost", "http://", "a..b.com", "-a.com", "a-.com", "x.123",
	                         "harbor_dental.com", "@", "www.com"})
		EXPECT_EQ(NormalizeHost(text), "") << text;
}

TEST(MatchDomain, RegistrableDomain) {
	EXPECT_EQ(RegistrableDomain("harbordental.com"), "harbordental.com");
	EXPECT_EQ(RegistrableDomain("a.b.harbordental.com"), "harbordental.com");
	EXPECT_EQ(RegistrableDomain("shop.harbordental.co.uk"), "harbordental.co.uk");
	EXPECT_EQ(RegistrableDomain("harbordental.com.au"), "harbordental.com.au");
	EXPECT_EQ(RegistrableDomain("www.harbordental.co.nz"), "harbordental.co.nz");
	EXPECT_EQ(RegistrableDomain("contoso.onmicrosoft.com"), "contoso.onmicrosoft.com");
	EXPECT_EQ(RegistrableDomain("harbordental.sharepoint.com"), "harbordental.sharepoint.com");
	EXPECT_EQ(RegistrableDomain("co.uk"), "");
	EXPECT_EQ(RegistrableDomain("onmicrosoft.com"), "");
	EXPECT_EQ(RegistrableDomain("com"), "");
	EXPECT_EQ(RegistrableDomain(""), "");
	EXPECT_EQ(NormalizeDomain("https://www.Harbor-Dental.co.uk/contact"), "harbor-dental.co.uk");
	EXPECT_EQ(NormalizeDomain("billing@mail.harbordental.com"), "harbordental.com");
	EXPECT_EQ(NormalizeDomain("not a domain"), "");
}

TEST(MatchDomain, GenericDomainsAreNeverEvidence) {
	for (const char *d :
	     {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "yahoo.com",
	      "aol.com", "icloud.com", "comcast.net", "gmx.de", "web.de", "onmicrosoft.com", "example.com", ""})
		EXPECT_TRUE(IsGenericDomain(d)) << d;
	for (const char *d : {"harbordental.com", "microsoft.com", "harbordental.onmicrosoft.com", "outlook.harbor.com"})
		EXPECT_FALSE(IsGenericDomain(d)) << d;
	EXPECT_TRUE(IsGenericDomain(NormalizeDomain("jane.doe@Gmail.com")));
}

TEST(MatchDomain, OnMicrosoftLabel) {
	EXPECT_EQ(OnMicrosoftLabel("harbordental.onmicrosoft.com"), "harbordental");
	EXPECT_EQ(OnMicrosoftLabel("HarborDental.mail.onmicrosoft.com"), "harbordental");
	EXPECT_EQ(OnMicrosoftLabel("admin@harbordental365.onmicrosoft.com"), "harbordental365");
	EXPECT_EQ(OnMicrosoftLabel("https://harbordental.onmicrosoft.com/"), "harbordental");
	EXPECT_EQ(OnMicrosoftLabel("harbordental.com"), "");
	EXPECT_EQ(OnMicrosoftLabel("onmicrosoft.com"), "");
	EXPECT_EQ(OnMicrosoftLabel("a.b.onmicrosoft.com"), "");
}

TEST(MatchDomain, DomainLabel) {
	EXPECT_EQ(DomainLabel("harbor-dental.co.uk"), "harbordental");
	EXPECT_EQ(DomainLabel("harbordental.com"), "harbordental");
	EXPECT_EQ(DomainLabel(""), "");
}
