#include "reconcile/literal_pattern.hpp"

namespace billrecon::reconcile {
namespace {

bool IsPlain(unsigned char c) {
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case ' ':
	case '-':
	case '_':
	case '/':
	case ':':
	case ',':
	case '@':
	case '#':
	case '%':
	case '=':
	case '&':
		return true;
	default:
		return false;
	}
}

} // namespace

bool LiteralPattern::Parse(std::string_view pattern, LiteralPattern *out) {
	LiteralPattern p;
	std::string_view body = pattern;
	if (!body.empty() && body.front() == '^') {
		p.anchored_start_ = true;
		body.remove_prefix(1);
	}
	if (!body.empty() && body.back() == '$') {
		p.anchored_end_ = true;
		body.remove_suffix(1);
	}
	for (char c : body)
		if (!IsPlain(static_cast<unsigned char>(c)))
			return false;
	p.text_.assign(body);
	for (unsigned c = 1; c < 128; ++c)
		p.set_[c].set(c);
	*out = std::move(p);
	return true;
}

std::string LiteralPattern::DistinctChars() const {
	std::bitset<128> seen;
	std::string out;
	for (char c : text_) {
		auto u = static_cast<unsigned char>(c);
		if (!seen.test(u)) {
			seen.set(u);
			out.push_back(c);
		}
	}
	return out;
}

void LiteralPattern::SetMatches(char c, const std::bitset<128> &matches) {
	auto u = static_cast<unsigned char>(c);
	if (u < 128)
		set_[u] = matches;
}

bool LiteralPattern::AtMatches(std::string_view value, std::size_t at) const {
	for (std::size_t i = 0; i < text_.size(); ++i)
		if (!set_[static_cast<unsigned char>(text_[i])].test(static_cast<unsigned char>(value[at + i])))
			return false;
	return true;
}

LiteralPattern::Result LiteralPattern::Match(std::string_view value) const {
	for (char c : value)
		if (static_cast<unsigned char>(c) >= 0x80)
			return Result::kUndecided;
	if (value.size() < text_.size())
		return Result::kNoMatch;
	const std::size_t last = value.size() - text_.size();
	if (anchored_start_ && anchored_end_)
		return last == 0 && AtMatches(value, 0) ? Result::kMatch : Result::kNoMatch;
	if (anchored_start_)
		return AtMatches(value, 0) ? Result::kMatch : Result::kNoMatch;
	if (anchored_end_)
		return AtMatches(value, last) ? Result::kMatch : Result::kNoMatch;
	for (std::size_t at = 0; at <= last; ++at)
		if (AtMatches(value, at))
			return Result::kMatch;
	return Result::kNoMatch;
}

} // namespace billrecon::reconcile
