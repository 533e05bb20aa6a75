#include "connectors/paging.hpp"

#include "connectors/connector_util.hpp"
#include "model/error.hpp"

#include <utility>

namespace billrecon::connectors {

void ThrowPaginationLoop(std::string_view endpoint, std::string_view detail) {
	throw Error(sqlstate::kDataException, "pagination loop in vendor response",
	            std::string(endpoint) + ": " + std::string(detail),
	            "The vendor's API keeps returning pages already read; retry later, and report it to the vendor if "
	            "it persists.");
}

void ThrowTooManyPages(std::string_view endpoint) {
	throw Error(sqlstate::kProgramLimit, "too many pages in vendor response",
	            std::string(endpoint) + ": more than " + std::to_string(kMaxPagesPerEndpoint) + " pages",
	            "Raise the page_size option, or report the endpoint to the billrecon maintainers.");
}

void ThrowForeignLink(std::string_view where, std::string_view link_name, std::string_view link,
                      std::string_view origin, std::string_view hint) {
	throw Error(sqlstate::kDataException, "unexpected pagination link in vendor response",
	            std::string(where) + ": " + std::string(link_name) + " is \"" + UrlForMessage(link) +
	                "\", which is not on " + std::string(origin),
	            std::string(hint));
}

NextPageLinks::NextPageLinks(std::string endpoint, std::string first_url, std::string origin, std::string link_name,
                             long max_pages, std::string hint)
    : endpoint_(std::move(endpoint)), url_(std::move(first_url)), origin_(std::move(origin)),
      link_name_(std::move(link_name)), hint_(std::move(hint)), max_pages_(max_pages) {
	visited_.insert(url_);
}

std::string NextPageLinks::Resolve(const http::Response &response, std::string_view link,
                                   std::string_view page) const {
	std::string resolved = ResolveUrl(response.url.empty() ? url_ : response.url, link);
	if (resolved.empty() || UrlOrigin(resolved) != origin_)
		ThrowForeignLink(endpoint_ + " " + std::string(page), link_name_, link, origin_, hint_);
	return resolved;
}

void NextPageLinks::MoveTo(std::string next, std::string_view page) {
	if (!visited_.insert(next).second)
		ThrowPaginationLoop(endpoint_, std::string(page) + " links back to \"" + UrlForMessage(next) +
		                                   "\", which was already read");
	if (pages_ >= max_pages_)
		ThrowTooManyPages(endpoint_);
	url_ = std::move(next);
	++pages_;
}

} // namespace billrecon::connectors
