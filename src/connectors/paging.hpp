// Guards every connector's paging loop passes through (internal to
// src/connectors): a vendor that pages forever, links back to a page already
// read, or sends the credentials to another server fails the sync instead.
#pragma once

#include "http/types.hpp"

#include <string>
#include <string_view>
#include <unordered_set>

namespace billrecon::connectors {

// Hard cap on pages fetched from one endpoint (per agreement for additions):
// a vendor that never stops paging fails the sync instead of looping.
inline constexpr long kMaxPagesPerEndpoint = 100000;

// The HINT of an "unexpected pagination link" when the kind has nothing to add.
inline constexpr const char *kForeignLinkHint =
    "billrecon only follows pagination links to the server in base_url; check base_url and any proxy in front of "
    "the API.";

// Throws billrecon::Error 22000 "pagination loop in vendor response".
[[noreturn]] void ThrowPaginationLoop(std::string_view endpoint, std::string_view detail);

// Throws billrecon::Error 54000 when an endpoint passes kMaxPagesPerEndpoint.
[[noreturn]] void ThrowTooManyPages(std::string_view endpoint);

// Throws billrecon::Error 22000 "unexpected pagination link in vendor
// response", DETAIL "<where>: <link_name> is "<link>", which is not on <origin>".
[[noreturn]] void ThrowForeignLink(std::string_view where, std::string_view link_name, std::string_view link,
                                   std::string_view origin, std::string_view hint = kForeignLinkHint);

// Walks a list by the next-page links its pages carry (Link rel="next",
// pageDetails.nextPageUrl, @odata.nextLink), from `first_url` on. Refuses a
// link off `origin` (the credentials travel with every request), a page
// already read, and more than `max_pages` pages.
class NextPageLinks {
public:
	// `link_name` and `hint` are for the "unexpected pagination link" error.
	NextPageLinks(std::string endpoint, std::string first_url, std::string origin, std::string link_name,
	              long max_pages, std::string hint = kForeignLinkHint);

	const std::string &endpoint() const noexcept {
		return endpoint_;
	}
	// The URL of the page to read now.
	const std::string &url() const noexcept {
		return url_;
	}
	// Pages read so far, the current one included (1 on the first page).
	long pages() const noexcept {
		return pages_;
	}

	// `link`, found on the current page (`page` in errors, e.g. "page 2"),
	// resolved against the URL that answered it; throws ThrowForeignLink
	// when it is not on the origin.
	std::string Resolve(const http::Response &response, std::string_view link, std::string_view page) const;
	// Makes `next` (from Resolve) the current page; throws ThrowPaginationLoop
	// (naming `page`, the page that linked to it) when it was read before, and
	// ThrowTooManyPages when max_pages pages have been read.
	void MoveTo(std::string next, std::string_view page);
	// Both, with the same page name.
	void Follow(const http::Response &response, std::string_view link, std::string_view page) {
		MoveTo(Resolve(response, link, page), page);
	}

private:
	std::string endpoint_;
	std::string url_;
	std::string origin_;
	std::string link_name_;
	std::string hint_;
	long max_pages_;
	long pages_ = 1;
	std::unordered_set<std::string> visited_;
};

} // namespace billrecon::connectors

#include "core_only.hpp"
