// RAII owners of libcurl resources (style.md 9): one type per resource, and
// the process-wide curl_global_init done once, lazily.
#pragma once

#include <curl/curl.h>

#include <string>
#include <utility>

namespace billrecon::http::curl {

// curl_global_init(CURL_GLOBAL_DEFAULT) exactly once per process; throws
// HttpError if it fails (a later call tries again).
void EnsureGlobalInit();

// curl_easy_init / curl_easy_cleanup.
class Easy {
public:
	Easy();
	~Easy() {
		if (handle_)
			curl_easy_cleanup(handle_);
	}
	Easy(const Easy &) = delete;
	Easy &operator=(const Easy &) = delete;

	CURL *get() const noexcept {
		return handle_;
	}

private:
	CURL *handle_;
};

// curl_slist_append / curl_slist_free_all.
class Slist {
public:
	Slist() = default;
	~Slist() {
		if (list_)
			curl_slist_free_all(list_);
	}
	Slist(const Slist &) = delete;
	Slist &operator=(const Slist &) = delete;

	// Throws std::bad_alloc when curl cannot allocate.
	void Append(const std::string &line);
	curl_slist *get() const noexcept {
		return list_;
	}

private:
	curl_slist *list_ = nullptr;
};

// curl_multi_init / curl_multi_cleanup. Keeps its connection and DNS caches
// between transfers, so one Multi per transport reuses connections.
class Multi {
public:
	Multi();
	~Multi() {
		if (handle_)
			curl_multi_cleanup(handle_);
	}
	Multi(const Multi &) = delete;
	Multi &operator=(const Multi &) = delete;

	CURLM *get() const noexcept {
		return handle_;
	}

private:
	CURLM *handle_;
};

// An easy handle added to a multi handle for the guard's lifetime
// (curl_multi_add_handle / curl_multi_remove_handle). Must be destroyed
// before both handles.
class Attachment {
public:
	Attachment(Multi &multi, Easy &easy);
	~Attachment() {
		curl_multi_remove_handle(multi_, easy_);
	}
	Attachment(const Attachment &) = delete;
	Attachment &operator=(const Attachment &) = delete;

private:
	CURLM *multi_;
	CURL *easy_;
};

} // namespace billrecon::http::curl

#include "core_only.hpp"
