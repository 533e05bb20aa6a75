#include "json/reader.hpp"

#include "json/rapidjson_config.hpp"
#include "model/error.hpp"
#include "model/timestamp.hpp"

#include <cstdio>
#include <cstring>

namespace billrecon::json {

const char *TypeName(Type t) noexcept {
	switch (t) {
	case Type::kNull:
		return "null";
	case Type::kBool:
		return "boolean";
	case Type::kNumber:
		return "number";
	case Type::kString:
		return "string";
	case Type::kArray:
		return "array";
	case Type::kObject:
		return "object";
	}
	return "value";
}

const Value *Value::Find(std::string_view name) const noexcept {
	if (type_ != Type::kObject)
		return nullptr;
	for (size_t i = 0; i < keys_.size(); ++i)
		if (keys_[i] == name)
			return &items_[i];
	return nullptr;
}

// SAX handler that builds the Value tree. Numbers arrive as RawNumber (text)
// because of kParseNumbersAsStringsFlag; Int/Double are never called.
class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
public:
	explicit TreeBuilder(Value &root) : root_(root) {
	}

	// A \u0000 escape decodes to a NUL that PostgreSQL text cannot hold: kept,
	// it would cut the value short where it is stored (an id colliding with
	// another's). Refused like PostgreSQL's own jsonb -> text (22P05).
	bool nul_in_string() const noexcept {
		return nul_in_string_;
	}
	bool too_deep() const noexcept {
		return too_deep_;
	}

	bool Null() {
		return Add(Value()) != nullptr;
	}
	bool Bool(bool b) {
		Value *v = Add(Value());
		v->type_ = Type::kBool;
		v->bool_ = b;
		return true;
	}
	bool RawNumber(const char *str, rapidjson::SizeType len, bool) {
		Value *v = Add(Value());
		v->type_ = Type::kNumber;
		v->text_.assign(str, len);
		return true;
	}
	bool String(const char *str, rapidjson::SizeType len, bool) {
		if (HoldsNul(str, len))
			return false;
		Value *v = Add(Value());
		v->type_ = Type::kString;
		v->text_.assign(str, len);
		return true;
	}
	bool StartObject() {
		return Open(Type::kObject);
	}
	bool Key(const char *str, rapidjson::SizeType len, bool) {
		if (HoldsNul(str, len))
			return false;
		key_.assign(str, len);
		return true;
	}
	bool EndObject(rapidjson::SizeType) {
		open_.pop_back();
		return true;
	}
	bool StartArray() {
		return Open(Type::kArray);
	}
	bool EndArray(rapidjson::SizeType) {
		open_.pop_back();
		return true;
	}
	// Only reached without kParseNumbersAsStringsFlag: refuse, never round.
	bool Default() {
		return false;
	}

private:
	bool Open(Type t) {
		if (open_.size() >= kMaxDepth) {
			too_deep_ = true;
			return false;
		}
		Value *v = Add(Value());
		v->type_ = t;
		open_.push_back(v);
		return true;
	}
	// Appends to the innermost open container. Pointers to the open
	// ancestors stay valid: only the innermost container's vector grows.
	Value *Add(Value &&v) {
		if (open_.empty()) {
			root_ = std::move(v);
			return &root_;
		}
		Value *parent = open_.back();
		if (parent->type_ == Type::kObject)
			parent->keys_.push_back(std::move(key_));
		parent->items_.push_back(std::move(v));
		return &parent->items_.back();
	}

	Value &root_;
	std::vector<Value *> open_;
	std::string key_;
	bool too_deep_ = false;
	bool nul_in_string_ = false;

	bool HoldsNul(const char *str, rapidjson::SizeType len) {
		if (len != 0 && std::memchr(str, '\0', len) != nullptr)
			nul_in_string_ = true;
		return nul_in_string_;
	}
};

bool TryParse(std::string_view text, Value &out, ParseFailure &failure) {
	// RapidJSON's memory stream reads NUL as the end of input; a raw NUL is
	// never valid JSON, so refuse it rather than parse a prefix.
	size_t nul = text.find('\0');
	if (nul != std::string_view::npos) {
		failure = {nul, "Invalid NUL byte in the document."};
		return false;
	}
	out = Value();
	TreeBuilder builder(out);
	rapidjson::MemoryStream stream(text.data(), text.size());
	rapidjson::Reader reader;
	constexpr unsigned kFlags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseIterativeFlag |
	                            rapidjson::kParseValidateEncodingFlag;
	try {
		reader.Parse<kFlags>(stream, builder);
	} catch (const AssertError &e) {
		// Our bug, not the vendor's: report it as such.
		throw Error(sqlstate::kInternal, "internal error while parsing JSON", e.what(),
		            "Report this to the billrecon maintainers.");
	}
	if (!reader.HasParseError())
		return true;
	failure.offset = reader.GetErrorOffset();
	if (builder.nul_in_string())
		failure.reason = "a string holds \\u0000 (NUL), which PostgreSQL text cannot store.";
	else if (builder.too_deep())
		failure.reason = "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels.";
	else
		failure.reason = rapidjson::GetParseError_En(reader.GetParseErrorCode());
	out = Value();
	return false;
}

Value ParseResponse(std::string_view body, std::string_view what) {
	Value v;
	ParseFailure failure;
	if (!TryParse(body, v, failure)) {
		std::string detail = std::string(what) + ": JSON parse error at offset " + std::to_string(failure.offset) +
		                     " of " + std::to_string(body.size()) + " bytes: " + failure.reason;
		throw Error(sqlstate::kInvalidText, "malformed JSON in vendor response", detail,
		            "Check that base_url points at the vendor's API root: an HTML page from a proxy or a login "
		            "portal, or a truncated transfer, looks like this.");
	}
	return v;
}

Value ParseConfigObject(std::string_view text, std::string_view what) {
	Value v;
	ParseFailure failure;
	std::string name(what);
	if (!TryParse(text, v, failure))
		throw Error(sqlstate::kInvalidParameter, "invalid JSON in " + name,
		            "JSON parse error at offset " + std::to_string(failure.offset) + ": " + failure.reason,
		            "Pass " + name + " as a JSON object, for example '{\"key\": \"value\"}'::jsonb.");
	if (!v.IsObject())
		throw Error(sqlstate::kInvalidParameter, name + " must be a JSON object",
		            "The " + name + " value is a JSON " + TypeName(v.type()) + ".",
		            "Pass " + name + " as a JSON object, for example '{\"key\": \"value\"}'::jsonb.");
	return v;
}

// ---- errors ------------------------------------------------------------------

namespace {

constexpr const char *kUnexpectedHint =
    "The vendor's API answered with data in a shape billrecon does not expect. Check that base_url is the API "
    "root of a supported API version; if it is, report this DETAIL to the billrecon maintainers.";

std::string Shorten(std::string_view s) {
	constexpr size_t kMax = 60;
	size_t n = s.size();
	if (n > kMax) {
		n = kMax;
		while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
			--n; // do not cut a UTF-8 sequence
	}
	std::string out;
	AppendQuoted(out, s.substr(0, n));
	if (n < s.size())
		out.insert(out.size() - 1, "...");
	return out;
}

} // namespace

std::string DescribeFound(const Value &v, bool with_value) {
	std::string out = TypeName(v.type());
	if (!with_value)
		return out;
	if (v.IsNumber())
		out += " " + v.text().substr(0, 60); // ASCII: a JSON number literal
	else if (v.IsString())
		out += " " + Shorten(v.text());
	return out;
}

std::string Where::Describe() const {
	std::string out = endpoint;
	if (!record.empty()) {
		if (!out.empty())
			out += " ";
		out += record;
	}
	return out;
}

std::string Where::FieldPath(std::string_view field) const {
	if (path.empty())
		return std::string(field);
	if (!field.empty() && field[0] == '[')
		return path + std::string(field);
	return path + "." + std::string(field);
}

void ThrowUnexpected(const Where &where, std::string_view field_path, std::string_view expected, const Value *found) {
	std::string detail = where.Describe() + ": ";
	if (field_path.empty())
		detail += "response";
	else
		detail += "field \"" + std::string(field_path) + "\"";
	detail += " should be " + std::string(expected) + ", found ";
	if (found == nullptr)
		detail += "nothing";
	else
		// Type mismatches name the type; right type with bad content quotes it.
		detail += DescribeFound(*found, found->IsString() || found->IsNumber());
	throw Error(sqlstate::kInvalidText, "unexpected value in vendor response", detail, kUnexpectedHint);
}

void ThrowMissing(const Where &where, std::string_view field_path) {
	throw Error(sqlstate::kDataException, "missing field in vendor response",
	            where.Describe() + ": field \"" + std::string(field_path) + "\" is missing", kUnexpectedHint);
}

const Value &ExpectArray(const Value &root, const Where &where) {
	if (!root.IsArray()) {
		std::string detail = where.Describe() + ": response should be an array, found " + TypeName(root.type());
		throw Error(sqlstate::kInvalidText, "unexpected value in vendor response", detail, kUnexpectedHint);
	}
	return root;
}

// ---- Object -------------------------------------------------------------------

Object::Object(const Value &value, Where where) : value_(&value), where_(std::move(where)) {
	if (!value.IsObject()) {
		std::string detail = where_.Describe() + ": ";
		if (where_.path.empty())
			detail += "record";
		else
			detail += "field \"" + where_.path + "\"";
		detail += " should be an object, found " + std::string(TypeName(value.type()));
		throw Error(sqlstate::kInvalidText, "unexpected value in vendor response", detail, kUnexpectedHint);
	}
}

Object Object::Item(const Value &array, size_t i, const Where &page) {
	Where w = page;
	w.record = (page.record.empty() ? "" : page.record + " ") + "item " + std::to_string(i + 1);
	w.path.clear();
	return Object(array.at(i), std::move(w));
}

void Object::SetRecordId(std::string_view id) {
	where_.record = "record id " + std::string(id);
}

void Object::Unexpected(std::string_view field, std::string_view expected, const Value *found) const {
	ThrowUnexpected(where_, where_.FieldPath(field), expected, found);
}

void Object::Missing(std::string_view field) const {
	ThrowMissing(where_, where_.FieldPath(field));
}

const Value *Object::Get(std::string_view field) const noexcept {
	const Value *v = value_->Find(field);
	return v == nullptr || v->IsNull() ? nullptr : v;
}

namespace {

// The member for a required field: absent -> 22000, null -> 22P02.
const Value &Need(const Object &o, std::string_view field) {
	const Value *v = o.value().Find(field);
	if (v == nullptr)
		o.Missing(field);
	return *v;
}

} // namespace

std::string Object::RequiredString(std::string_view field) const {
	const Value &v = Need(*this, field);
	if (!v.IsString())
		Unexpected(field, "a string", &v);
	return v.text();
}

std::optional<std::string> Object::OptionalString(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	if (!v->IsString())
		Unexpected(field, "a string", v);
	return v->text();
}

std::optional<std::string> Object::OptionalNonEmptyString(std::string_view field) const {
	std::optional<std::string> s = OptionalString(field);
	if (s && s->empty())
		return std::nullopt;
	return s;
}

namespace {

std::optional<std::string> IdText(const Value &v) {
	if (v.IsString())
		return v.text().empty() ? std::nullopt : std::optional<std::string>(v.text());
	if (v.IsNumber() && model::Decimal::IsValid(v.text())) {
		model::Decimal d = model::Decimal::Parse(v.text());
		if (d.str().find('.') == std::string::npos)
			return d.str();
	}
	return std::nullopt;
}

} // namespace

std::string Object::RequiredId(std::string_view field) const {
	const Value &v = Need(*this, field);
	std::optional<std::string> id = IdText(v);
	if (!id)
		Unexpected(field, "an integer or a non-empty string id", &v);
	return *id;
}

std::optional<std::string> Object::OptionalId(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	std::optional<std::string> id = IdText(*v);
	if (!id)
		Unexpected(field, "an integer or a non-empty string id", v);
	return id;
}

namespace {

model::Decimal ToDecimal(const Object &o, std::string_view field, const Value &v) {
	if ((v.IsNumber() || v.IsString()) && model::Decimal::IsValid(v.text()))
		return model::Decimal::Parse(v.text());
	o.Unexpected(field, "a number", &v);
}

} // namespace

model::Decimal Object::RequiredDecimal(std::string_view field) const {
	return ToDecimal(*this, field, Need(*this, field));
}

std::optional<model::Decimal> Object::OptionalDecimal(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	return ToDecimal(*this, field, *v);
}

bool Object::RequiredBool(std::string_view field) const {
	const Value &v = Need(*this, field);
	if (!v.IsBool())
		Unexpected(field, "a boolean", &v);
	return v.GetBool();
}

std::optional<bool> Object::OptionalBool(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	if (!v->IsBool())
		Unexpected(field, "a boolean", v);
	return v->GetBool();
}

Object Object::RequiredObject(std::string_view field) const {
	const Value &v = Need(*this, field);
	if (!v.IsObject())
		Unexpected(field, "an object", &v);
	Where w = where_;
	w.path = where_.FieldPath(field);
	return Object(v, std::move(w));
}

std::optional<Object> Object::OptionalObject(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	if (!v->IsObject())
		Unexpected(field, "an object", v);
	Where w = where_;
	w.path = where_.FieldPath(field);
	return Object(*v, std::move(w));
}

const Value *Object::OptionalArray(std::string_view field) const {
	const Value *v = Get(field);
	if (v != nullptr && !v->IsArray())
		Unexpected(field, "an array", v);
	return v;
}

const Value &Object::RequiredArray(std::string_view field) const {
	const Value *v = OptionalArray(field);
	if (v == nullptr)
		Missing(field);
	return *v;
}

std::optional<std::string> Object::OptionalTimestamp(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	if (!v->IsString())
		Unexpected(field, "an ISO 8601 timestamp string", v);
	try {
		return model::NormalizeTimestamp(v->text(), true);
	} catch (const Error &) {
		Unexpected(field, "an ISO 8601 timestamp", v);
	}
}

std::optional<std::string> Object::OptionalDate(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	if (!v->IsString())
		Unexpected(field, "an ISO 8601 date string", v);
	try {
		return model::NormalizeDate(v->text());
	} catch (const Error &) {
		Unexpected(field, "an ISO 8601 date", v);
	}
}

std::optional<std::string> Object::OptionalEpochSeconds(std::string_view field) const {
	const Value *v = Get(field);
	if (v == nullptr)
		return std::nullopt;
	if ((v->IsNumber() || v->IsString()) && model::Decimal::IsValid(v->text())) {
		try {
			return model::TimestampFromEpochSeconds(v->text());
		} catch (const Error &) {
		}
	}
	Unexpected(field, "seconds since the epoch", v);
}

// ---- writing --------------------------------------------------------------------

void AppendQuoted(std::string &out, std::string_view s) {
	out.push_back('"');
	for (char c : s) {
		switch (c) {
		case '"':
			out += "\\\"";
			break;
		case '\\':
			out += "\\\\";
			break;
		case '\n':
			out += "\\n";
			break;
		case '\r':
			out += "\\r";
			break;
		case '\t':
			out += "\\t";
			break;
		default:
			if (static_cast<unsigned char>(c) < 0x20) {
				char buf[8];
				std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
				out += buf;
			} else {
				out.push_back(c);
			}
		}
	}
	out.push_back('"');
}

} // namespace billrecon::json
