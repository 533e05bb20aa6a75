"""Microsoft Entra ID (login.microsoftonline.com) token endpoint, shared by
the Microsoft Graph and Partner Center mocks (vendor-apis.md sections 5, 6).

POST /{tenant}/oauth2/v2.0/token  form: client_id, client_secret,
    grant_type=client_credentials, scope=<resource>/.default
POST /{tenant}/oauth2/token       form: ... resource=<resource> (v1)

{tenant} is a tenant id (GUID) or one of its domains. Answers
{token_type: "Bearer", expires_in, ext_expires_in, access_token} (v1 adds
expires_on, not_before, resource). Errors are Entra's: 400 invalid_request
AADSTS90002 (unknown tenant), 400 unauthorized_client AADSTS700016 (app not
in that tenant: wrong client id, or no consent), 401 invalid_client
AADSTS7000215 (wrong secret), 400 invalid_scope AADSTS70011, 400
unsupported_grant_type AADSTS70003. The token remembers its tenant and
audience; the API mocks check both.
"""

import secrets
import time
import uuid

from framework import Response, parse_basic

GRAPH = "https://graph.microsoft.com"
PARTNER_CENTER = "https://api.partnercenter.microsoft.com"
AUDIENCES = (GRAPH, PARTNER_CENTER)


def entra_error(status, error, code, description):
    now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return Response.json({"error": error,
                          "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s"
                                               % (code, description, uuid.uuid4(), uuid.uuid4(), now),
                          "error_codes": [code], "timestamp": now, "trace_id": str(uuid.uuid4()),
                          "correlation_id": str(uuid.uuid4()),
                          "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}, status)


class EntraLoginMixin:
    """Needs self.config keys client_id, client_secret, token_ttl_s,
    unconsented_tenants, and self.tenant_id_of(name) -> tenant id or None."""

    def register_entra_routes(self):
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", lambda r: self.h_entra_token(r, 2), auth=False)
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/token", lambda r: self.h_entra_token(r, 1), auth=False)

    def h_entra_token(self, req, version):
        name = req.vars["tenant"]
        form = req.form()
        if name.lower() in ("common", "organizations", "consumers"):
            return entra_error(400, "invalid_request", 90009,
                               "Application is requesting a token for itself. This scenario is supported only if "
                               "resource is specified using the GUID based App Identifier.")
        tenant = self.tenant_id_of(name)
        if tenant is None:
            return entra_error(400, "invalid_request", 90002,
                               "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are "
                               "signing into the correct cloud." % name)
        if form.get("grant_type") != "client_credentials":
            return entra_error(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type '%s'." % form.get("grant_type"))
        basic = parse_basic(req.header("Authorization"))
        cid = form.get("client_id") or (basic[0] if basic else None)
        secret = form.get("client_secret") or (basic[1] if basic else None)
        unconsented = [t.lower() for t in (self.config.get("unconsented_tenants") or [])]
        if cid != self.config["client_id"] or tenant.lower() in unconsented:
            return entra_error(400, "unauthorized_client", 700016,
                               "Application with identifier '%s' was not found in the directory '%s'. This can "
                               "happen if the application has not been installed by the administrator of the "
                               "tenant or consented to by any user in the tenant." % (cid, tenant))
        if secret != self.config["client_secret"]:
            return entra_error(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request is the "
                               "client secret value, not the client secret ID, for a secret added to app '%s'." % cid)
        if version == 2:
            scope = " ".join((form.get("scope") or "").split())
            audience = scope[:-len("/.default")] if scope.endswith("/.default") else None
            audience = audience.rstrip("/") if audience else None
        else:
            audience = (form.get("resource") or "").rstrip("/") or None
        if audience not in AUDIENCES:
            return entra_error(400, "invalid_scope", 70011,
                               "The provided request must include a 'scope' input parameter. The provided value for "
                               "the input parameter 'scope' is not valid: %r." % (form.get("scope")
                                                                                  or form.get("resource")))
        ttl = int(self.config["token_ttl_s"])
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + self.tokens.issue(ttl, audience, tenant)[5:] + \
            "." + secrets.token_urlsafe(16)
        # The store knows the token under its own name; register the JWT-looking alias.
        self._alias_token(token)
        body = {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token}
        if version == 1:
            now = int(time.time())
            body = {"token_type": "Bearer", "expires_in": str(ttl), "ext_expires_in": str(ttl),
                    "expires_on": str(now + ttl), "not_before": str(now), "resource": audience,
                    "access_token": token}
        return Response.json(body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _alias_token(self, token):
        real = "mock-" + token.split(".")[1]
        with self.tokens.lock:
            self.tokens.tokens[token] = self.tokens.tokens.pop(real)

    def token_problem(self, req, audience):
        """(tenant, None) for a good token of that audience, else (None, reason)."""
        auth = req.header("Authorization") or ""
        parts = auth.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None, "missing"
        token = parts[1].strip()
        problem = self.tokens.check(token)
        if problem:
            return None, problem
        info = self.tokens.info(token)
        if info["scope"] != audience:
            return None, "audience"
        return info["subject"], None
