// Client matching, step 1: names and domains in a comparable form.
//
// A company name becomes a list of lower-case ASCII tokens: accents folded
// ("Müller" -> "muller", "Weiß" -> "weiss"), punctuation gone ("O'Brien" ->
// "obrien", "L.L.C." -> "llc"), common abbreviations spelled one way ("Grp" ->
// "group", "Centre" -> "center"), connectors ("&", "and", "und", "et", "y"),
// "of", a leading "The" and trailing legal suffixes of many countries ("Inc",
// "LLC", "GmbH & Co. KG", "Pty Ltd", "Sp. z o.o.") dropped. A branch or
// location qualifier ("- Northside", "(Downtown)", "Branch 2", a trailing
// "North") is kept as tokens and also reported separately, so that two
// branches of one franchise are told apart (similarity.hpp).
//
// A domain becomes its registrable domain: "https://www.Harbor-Dental.co.uk/x"
// and "info@harbor-dental.co.uk" both give "harbor-dental.co.uk". Free-mail and
// shared-service domains (gmail.com, outlook.com, onmicrosoft.com) are never
// evidence; a Microsoft tenant's initial domain "harbordental.onmicrosoft.com"
// only hints at the name through its label "harbordental".
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::match {

// UTF-8 -> lower-case ASCII where a Latin equivalent exists: diacritics are
// dropped (é -> e, ñ -> n, ł -> l), special letters spelled out (ß -> ss,
// æ -> ae, ø -> o, œ -> oe, þ -> th), combining marks removed, fullwidth forms
// and typographic punctuation (’ “ – … NBSP) mapped to ASCII. Greek and
// Cyrillic capitals are lower-cased; other characters are kept as they are.
// Invalid UTF-8 bytes become spaces. Never throws.
std::string FoldToAscii(std::string_view text);

struct NormalizedName {
	// Every token of the name in order, branch qualifier included.
	std::vector<std::string> tokens;
	// The branch / location qualifier (canonical: "northside" -> "north",
	// "dt" -> "downtown", "branch 2" / "#2" / "location 2" -> "2"); these
	// tokens are also in `tokens`. Empty when the name has none.
	std::vector<std::string> branch;
	// The name was a domain, URL or e-mail address ("harbordental.com"); its
	// registrable domain is then in `domain` and the tokens come from its label.
	bool from_domain = false;
	std::string domain;

	// Tokens joined by single spaces ("harbor dental north").
	std::string Text() const;
	// Tokens joined without spaces ("harbordentalnorth").
	std::string Compact() const;
};

NormalizedName NormalizeName(std::string_view name);

// Shorthand: NormalizeName(name).tokens.
std::vector<std::string> NameTokens(std::string_view name);

// The word rules of NormalizeName (abbreviations, trailing legal suffixes,
// connectors, stop words) applied to words that are already split, such as
// a domain label cut into words. Keeps at least one word.
std::vector<std::string> CleanWords(std::vector<std::string> words);

// Every spelling NormalizeName turns into `token`, the token first:
// "st" -> {"st", "saint", "street"}, "center" -> {"center", "centre", "ctr", "cntr"}.
std::vector<std::string> SpellingsOf(std::string_view token);

// The words the name rules know (legal forms, connectors, stop words,
// abbreviations and what they stand for), for SegmentWords vocabularies.
std::vector<std::string> RuleWords();

// Cuts a run of letters and digits into known words, with as few words as
// possible ("harbordentalgroup" -> {"harbor", "dental", "group"}); {text}
// when it cannot be cut completely. Words have at least two characters.
std::vector<std::string> SegmentWords(std::string_view text, const std::function<bool(std::string_view)> &is_word);

// The host of a URL, e-mail address or bare domain, lower-cased, without
// scheme, user info, port, path, trailing dot and leading "www."; "" when the
// text is not a plausible host name (needs a dot and an alphabetic TLD).
std::string NormalizeHost(std::string_view text);

// The registrable domain of a host: the label left of its public suffix
// ("a.b.example.com" -> "example.com", "shop.example.co.uk" ->
// "example.co.uk"). Knows the common multi-label suffixes (co.uk, com.au,
// co.nz, co.za, com.br, co.jp, ...). "" for "" or a bare suffix.
std::string RegistrableDomain(std::string_view host);

// NormalizeHost + RegistrableDomain: "https://www.x.co.uk/a" -> "x.co.uk".
std::string NormalizeDomain(std::string_view text);

// True for domains that say nothing about whose account it is: free mail and
// ISP mail (gmail.com, outlook.com, hotmail.com, yahoo.com, comcast.net, ...),
// shared-service suffixes (onmicrosoft.com, sharepoint.com), placeholders
// (example.com). Takes a registrable domain.
bool IsGenericDomain(std::string_view registrable_domain);

// The tenant label of a Microsoft initial domain: "harbordental" for
// "harbordental.onmicrosoft.com" or "harbordental.mail.onmicrosoft.com"
// (also when given as a URL or e-mail address); "" otherwise.
std::string OnMicrosoftLabel(std::string_view text);

// The label of a registrable domain without its suffix and hyphens:
// "harbor-dental.co.uk" -> "harbordental".
std::string DomainLabel(std::string_view registrable_domain);

} // namespace billrecon::match

#include "core_only.hpp"
