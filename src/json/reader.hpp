// Reading vendor JSON without surprises.
//
// Parse() builds a small read-only tree (json::Value) through RapidJSON's SAX
// reader with kParseNumbersAsStringsFlag: every number keeps the literal the
// vendor wrote ("19.99" stays "19.99"), so money and quantities never pass
// through double, and a number is still told apart from a string.
//
// json::Object reads one record's fields with a json::Where context, so that
// a wrong-typed or missing field fails with a billrecon::Error whose DETAIL
// names the endpoint, the record id, the field path, what was expected and
// what was found:
//
//   ERROR:  unexpected value in vendor response                       (22P02)
//   DETAIL: GET /company/companies record id 250: field "name" should be a
//           string, found number
//
// Conventions for every accessor: unknown fields are ignored; for optional
// fields null means absent; required fields that are absent fail with 22000,
// wrong types and unparseable values with 22P02.
#pragma once

#include "model/decimal.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billrecon::json {

enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

// "null", "boolean", "number", "string", "array", "object".
const char *TypeName(Type t) noexcept;

// Deepest nesting Parse accepts (vendor pages nest 4 or 5 levels).
inline constexpr size_t kMaxDepth = 256;

class Value {
public:
	Value() = default;

	Type type() const noexcept {
		return type_;
	}
	bool IsNull() const noexcept {
		return type_ == Type::kNull;
	}
	bool IsBool() const noexcept {
		return type_ == Type::kBool;
	}
	bool IsNumber() const noexcept {
		return type_ == Type::kNumber;
	}
	bool IsString() const noexcept {
		return type_ == Type::kString;
	}
	bool IsArray() const noexcept {
		return type_ == Type::kArray;
	}
	bool IsObject() const noexcept {
		return type_ == Type::kObject;
	}

	// The boolean (false unless IsBool()).
	bool GetBool() const noexcept {
		return bool_;
	}
	// A string's content, or a number's literal exactly as written ("1e2",
	// "19.990"); empty for the other types.
	const std::string &text() const noexcept {
		return text_;
	}

	// Arrays: the number of elements; objects: the number of members.
	size_t size() const noexcept {
		return items_.size();
	}
	// Element i of an array, or the value of member i of an object (document
	// order). Throws std::out_of_range past the end.
	const Value &at(size_t i) const {
		return items_.at(i);
	}
	// Name of member i of an object. Throws std::out_of_range past the end.
	const std::string &key(size_t i) const {
		return keys_.at(i);
	}
	// The first member with that name; nullptr when absent or not an object.
	const Value *Find(std::string_view name) const noexcept;

private:
	friend class TreeBuilder;
	Type type_ = Type::kNull;
	bool bool_ = false;
	std::string text_;
	std::vector<Value> items_;
	std::vector<std::string> keys_; // objects only, parallel to items_
};

struct ParseFailure {
	size_t offset = 0;  // byte offset where RapidJSON stopped
	std::string reason; // RapidJSON's English message, or ours
};

// Parses one complete JSON text (UTF-8, validated). Returns false and fills
// `failure` on malformed, truncated, empty or too deeply nested input; never
// throws for bad input.
bool TryParse(std::string_view text, Value &out, ParseFailure &failure);

// Parses a vendor response body. `what` names it for the DETAIL, e.g.
// "GET /company/companies page 2". Throws billrecon::Error 22P02
// "malformed JSON in vendor response" with the offset in DETAIL.
Value ParseResponse(std::string_view body, std::string_view what);

// Parses configuration text (an integration's credentials or options, named
// by `what`) that must be a JSON object. Throws billrecon::Error 22023. Never
// quotes the text itself: credentials are secrets.
Value ParseConfigObject(std::string_view text, std::string_view what);

// What is being read, for error DETAILs.
struct Where {
	std::string endpoint; // "GET /company/companies"
	std::string record;   // "record id 250", "page 2 item 7", or empty
	std::string path;     // JSON path of the object read, from the record ("" = the record itself)

	// "GET /company/companies record id 250"
	std::string Describe() const;
	// The path of a member of this object: "company.id", "name".
	std::string FieldPath(std::string_view field) const;
};

// Throws billrecon::Error 22P02 "unexpected value in vendor response" with
// DETAIL "<where>: field \"<path>\" should be <expected>, found <found>".
// `found` may be nullptr (then "found nothing").
[[noreturn]] void ThrowUnexpected(const Where &where, std::string_view field_path, std::string_view expected,
                                  const Value *found);

// Throws billrecon::Error 22000 "missing field in vendor response" with
// DETAIL "<where>: field \"<path>\" is missing".
[[noreturn]] void ThrowMissing(const Where &where, std::string_view field_path);

// "string", "number 1.5", "string \"abc\"" (values shortened), for messages.
std::string DescribeFound(const Value &v, bool with_value);

// A page body that must be a bare JSON array; throws 22P02 with
// "response should be an array, found object" otherwise.
const Value &ExpectArray(const Value &root, const Where &where);

// Typed access to the fields of one JSON object. Holds a reference: the
// Value must outlive it.
class Object {
public:
	// Throws 22P02 when `value` is not an object.
	Object(const Value &value, Where where);

	// Element i of `array` (a page), named "<record_prefix> item <i+1>"
	// until the caller knows the record's id.
	static Object Item(const Value &array, size_t i, const Where &page);

	const Value &value() const noexcept {
		return *value_;
	}
	const Where &where() const noexcept {
		return where_;
	}
	// From now on errors name the record by its id ("record id 250").
	void SetRecordId(std::string_view id);

	// The member, or nullptr when absent or null (null == absent).
	const Value *Get(std::string_view field) const noexcept;

	// Strings: required (may be empty) or optional.
	std::string RequiredString(std::string_view field) const;
	std::optional<std::string> OptionalString(std::string_view field) const;
	// Optional, and an empty string counts as absent.
	std::optional<std::string> OptionalNonEmptyString(std::string_view field) const;

	// Ids: an integral number (250, 2.5e2) or a non-empty string, as text.
	std::string RequiredId(std::string_view field) const;
	std::optional<std::string> OptionalId(std::string_view field) const;

	// Exact decimals: a JSON number or a numeric string ("42", "19.99", "1e2").
	model::Decimal RequiredDecimal(std::string_view field) const;
	std::optional<model::Decimal> OptionalDecimal(std::string_view field) const;

	// true / false only.
	bool RequiredBool(std::string_view field) const;
	std::optional<bool> OptionalBool(std::string_view field) const;

	// Nested objects ("company": {"id": 1}); errors inside name "company.id".
	Object RequiredObject(std::string_view field) const;
	std::optional<Object> OptionalObject(std::string_view field) const;

	// An array member (nullptr when absent or null).
	const Value *OptionalArray(std::string_view field) const;
	// An array member that must be there (22000 "missing field" otherwise).
	const Value &RequiredArray(std::string_view field) const;

	// ISO 8601 date-time -> canonical UTC text (model::NormalizeTimestamp).
	std::optional<std::string> OptionalTimestamp(std::string_view field) const;
	// ISO 8601 date or date-time -> "YYYY-MM-DD" (model::NormalizeDate).
	std::optional<std::string> OptionalDate(std::string_view field) const;
	// Seconds since the epoch (number or numeric string, fractions allowed) ->
	// canonical UTC text (model::TimestampFromEpochSeconds).
	std::optional<std::string> OptionalEpochSeconds(std::string_view field) const;

	[[noreturn]] void Unexpected(std::string_view field, std::string_view expected, const Value *found) const;
	[[noreturn]] void Missing(std::string_view field) const;

private:
	const Value *value_;
	Where where_;
};

// Appends `s` as a JSON string literal (quotes and escapes) to `out`.
void AppendQuoted(std::string &out, std::string_view s);

} // namespace billrecon::json

#include "core_only.hpp"
