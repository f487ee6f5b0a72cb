"""Entra ID access tokens, verified in the app: whatever the hosting plan does with App Service authentication,
an approval's `Authorization: Bearer` token is checked here, with PyJWT.

- signature: RS256 only (`alg: none` and HS256 signed with the public key are refused before any key is used),
  by the key the token's `kid` names among the tenant's published keys
  (`https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys`, which sign v1 and v2 tokens alike);
- issuer: the tenant's v2 (`https://login.microsoftonline.com/{tenant}/v2.0`) or v1
  (`https://sts.windows.net/{tenant}/`) issuer;
- audience: one of MLOPS_TOKEN_AUDIENCES (the app registration's client id, its App ID URI);
- lifetime: `exp` required, `nbf` and `iat` checked, each with LEEWAY_SECONDS of clock skew.

The keys are fetched on first use and kept KEYS_TTL_SECONDS; a token signed with a key not among them (Entra
rotated its keys) fetches them again once, at most every REFETCH_FLOOR_SECONDS, so tokens with made-up key ids
cannot make the app hammer Entra. A refresh that fails keeps the keys already held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.domain.identity import token_issuers
from shared.ports import TokenKeysUnavailable, TokenRefused

log = logging.getLogger(__name__)

AUTHORITY = "https://login.microsoftonline.com"
LEEWAY_SECONDS = 60
KEYS_TTL_SECONDS = 3600
REFETCH_FLOOR_SECONDS = 60
FETCH_TIMEOUT_SECONDS = 10

Fetch = Callable[[str], Any]  # URL -> the JSON document it serves; raises TokenKeysUnavailable


def fetch_json(url: str) -> Any:
    import requests

    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as error:
        raise TokenKeysUnavailable(
            f"the tenant's signing keys could not be fetched from {url}: {error}"
        ) from None


def keys_url(tenant_id: str) -> str:
    return f"{AUTHORITY}/{tenant_id}/discovery/v2.0/keys"


class EntraTokenVerifier:
    """Verifies the tenant's access tokens for this app; keeps the tenant's keys between requests."""

    def __init__(
        self,
        tenant_id: str,
        audiences: Sequence[str],
        *,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not audiences:
            raise ValueError("a token verifier needs the audiences it accepts")
        self.tenant_id = tenant_id
        self.audiences = tuple(audiences)
        self.issuers = token_issuers(tenant_id)
        self.keys_url = keys_url(tenant_id)
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}  # kid -> jwt.PyJWK
        self._fetched_at: float | None = None  # when the keys held were fetched (or a refresh last failed)

    def verify(self, token: str) -> dict[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise TokenRefused(f"the bearer token is not a JWT ({error})") from None
        algorithm = header.get("alg")
        if algorithm != "RS256":
            raise TokenRefused(f"the token is signed with {str(algorithm)[:20]!r}; only RS256 is accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("the token names no signing key (kid)")
        key = self._key(kid)
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audiences,
                issuer=self.issuers,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("the token is not valid yet (nbf or iat is in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(
                f"the token is for another audience; this app accepts {', '.join(self.audiences)}"
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenRefused(f"the token was not issued by the tenant {self.tenant_id}") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("the token's signature does not verify with the tenant's key") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenRefused(f"the token lacks the {error.claim!r} claim") from None
        except jwt.InvalidTokenError as error:
            raise TokenRefused(f"the token is invalid ({error})") from None

    def _key(self, kid: str) -> Any:
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= KEYS_TTL_SECONDS:
                self._refresh(now)
            elif kid not in self._keys and now - self._fetched_at >= REFETCH_FLOOR_SECONDS:
                self._refresh(now)  # the tenant may have rotated its keys since
            key = self._keys.get(kid)
        if key is None:
            raise TokenRefused(
                f"the token is signed with a key the tenant does not publish (kid {kid[:64]!r})"
            )
        return key

    def _refresh(self, now: float) -> None:
        try:
            self._keys = self._parse(self._fetch(self.keys_url))
        except TokenKeysUnavailable:
            if not self._keys:
                raise
            log.warning("keeping the tenant's signing keys held: they could not be fetched again")
        self._fetched_at = now

    def _parse(self, document: Any) -> dict[str, Any]:
        import jwt

        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise TokenKeysUnavailable(f"{self.keys_url} did not answer a key set (no `keys` list)")
        keys = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry, algorithm="RS256")
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError):
                continue  # a key this app cannot use; the others still count
            if key.key_id:
                keys[key.key_id] = key
        if not keys:
            raise TokenKeysUnavailable(f"{self.keys_url} published no RSA signing key")
        return keys
