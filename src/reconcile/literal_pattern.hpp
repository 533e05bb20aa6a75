// Patterns of rule filters that are plain text: "^kiosk", "server", "-lt$".
//
// Most os_name / device_name / products patterns a billing team writes are a
// word, perhaps anchored. Such a pattern needs no regular-expression engine:
// `value ~* pattern` holds when the value has, at the anchored places, a run
// of characters each of which matches the pattern's character at that
// position. Which characters match a pattern character case-insensitively is
// the database's business (its collation decides: 'I' is not 'i' in Turkish),
// so the caller asks PostgreSQL once per pattern character, for every ASCII
// character, and hands the answer in (SetMatches). Values with a non-ASCII
// byte are not decided here (Match returns kUndecided): the caller asks
// PostgreSQL's regex engine, so the result is always PostgreSQL's own.
//
// Only patterns made of letters, digits and a few characters that are never
// special in PostgreSQL's advanced regular expressions (space - _ / : , @ # %
// = &), with an optional leading ^ and trailing $, are plain text; anything
// else (a dot, a bracket, a backslash, an embedded option, "***") is left to
// the engine.
#pragma once

#include <array>
#include <bitset>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::reconcile {

class LiteralPattern {
public:
	enum class Result { kNoMatch, kMatch, kUndecided };

	// false when the pattern is not plain text (then *out is untouched).
	static bool Parse(std::string_view pattern, LiteralPattern *out);

	// The pattern's distinct characters (each to be given to SetMatches).
	std::string DistinctChars() const;
	// The ASCII characters (1..127) that match the pattern character c
	// under ~* in the database. Until set, only c itself matches.
	void SetMatches(char c, const std::bitset<128> &matches);

	// value ~* pattern for an ASCII value; kUndecided when the value has a
	// byte >= 0x80 (the caller asks the engine).
	Result Match(std::string_view value) const;

	bool anchored_start() const {
		return anchored_start_;
	}
	bool anchored_end() const {
		return anchored_end_;
	}
	const std::string &text() const {
		return text_;
	}

private:
	bool AtMatches(std::string_view value, std::size_t at) const;

	bool anchored_start_ = false;
	bool anchored_end_ = false;
	std::string text_;                      // the characters between the anchors
	std::array<std::bitset<128>, 128> set_; // per pattern character: what matches it
};

} // namespace billrecon::reconcile
