#include "http/curl_handles.hpp"

#include "http/client.hpp"

#include <mutex>
#include <new>

namespace billrecon::http::curl {

void EnsureGlobalInit() {
	static std::once_flag once;
	std::call_once(once, [] {
		const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
		if (rc != CURLE_OK)
			throw HttpError(sqlstate::kUnableToConnect, "could not initialize libcurl",
			                std::string("curl_global_init failed: ") + curl_easy_strerror(rc),
			                "check the server's libcurl and TLS library installation", 0);
	});
}

Easy::Easy() : handle_(curl_easy_init()) {
	if (!handle_)
		throw std::bad_alloc();
}

void Slist::Append(const std::string &line) {
	curl_slist *next = curl_slist_append(list_, line.c_str());
	if (!next)
		throw std::bad_alloc();
	list_ = next;
}

Multi::Multi() : handle_(curl_multi_init()) {
	if (!handle_)
		throw std::bad_alloc();
}

Attachment::Attachment(Multi &multi, Easy &easy) : multi_(multi.get()), easy_(easy.get()) {
	const CURLMcode rc = curl_multi_add_handle(multi_, easy_);
	if (rc != CURLM_OK)
		throw HttpError(sqlstate::kInternal, "could not start an HTTP transfer",
		                std::string("curl_multi_add_handle failed: ") + curl_multi_strerror(rc),
		                "this is a bug in billrecon; please report it", 0);
}

} // namespace billrecon::http::curl
