#include "http/curl_codes.hpp"

namespace billrecon::http::curl {

TransportFailure FailureFromCode(CURLcode code, bool capped) noexcept {
	switch (code) {
	case CURLE_OK:
		return TransportFailure::kNone;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR: // handshake failed (not a certificate verdict)
		return TransportFailure::kConnect;
	case CURLE_OPERATION_TIMEDOUT:
		return TransportFailure::kTimeout;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return TransportFailure::kReset;
	case CURLE_WRITE_ERROR:
		return capped ? TransportFailure::kTooLarge : TransportFailure::kProtocol;
	case CURLE_FILESIZE_EXCEEDED: // Content-Length above CURLOPT_MAXFILESIZE
	case CURLE_OUT_OF_MEMORY:
		return TransportFailure::kTooLarge;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return TransportFailure::kTls;
	case CURLE_ABORTED_BY_CALLBACK:
		return TransportFailure::kCancelled;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	default:
		return TransportFailure::kProtocol;
	}
}

} // namespace billrecon::http::curl
