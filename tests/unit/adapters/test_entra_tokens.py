"""Entra ID access tokens verified in the app: issuer, audience, RS256 signature by the tenant's keys, lifetime;
the keys fetched once, kept, and fetched again once when the tenant rotates them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from shared.adapters.azure.entra_tokens import KEYS_TTL_SECONDS, REFETCH_FLOOR_SECONDS
from shared.ports import TokenKeysUnavailable, TokenRefused
from tests.entra import (
    AUDIENCES,
    CLIENT_ID,
    ISSUER_V1,
    Clock,
    Tenant,
    app_claims,
    person_claims,
    private_key,
    token,
    unsigned,
    verifier,
)


def refused(verify, value: str) -> str:
    with pytest.raises(TokenRefused) as caught:
        verify.verify(value)
    return str(caught.value)


def test_a_valid_token_gives_its_claims() -> None:
    claims = verifier(Tenant()).verify(token(person_claims()))
    assert claims["preferred_username"] == "alice@contoso.com" and claims["roles"] == ["MLOps.Approver"]


def test_v1_tokens_of_the_tenant_for_the_app_id_uri_are_accepted() -> None:
    claims = verifier(Tenant()).verify(token(app_claims()))
    assert claims["iss"] == ISSUER_V1 and claims["aud"] == f"api://{CLIENT_ID}"
    assert set(AUDIENCES) == {CLIENT_ID, f"api://{CLIENT_ID}"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"exp": -120}, "the token has expired"),  # times: seconds from now, when the test runs
        ({"nbf": 600}, "not valid yet"),
        ({"iat": 600}, "not valid yet"),
        (
            {"iss": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"},
            "not issued",
        ),
        ({"iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47"}, "not issued"),  # no slash
        ({"aud": "api://someone-else"}, "another audience"),
        ({"aud": "00000003-0000-0000-c000-000000000000"}, "another audience"),  # a Microsoft Graph token
        ({"exp": None}, "lacks the 'exp' claim"),
        ({"aud": None}, "lacks the 'aud' claim"),
        ({"iss": None}, "lacks the 'iss' claim"),
    ],
)
def test_a_token_wrong_in_one_claim_is_refused_saying_which(change: dict, reason: str) -> None:
    now = int(time.time())
    change = {k: now + v if k in ("exp", "nbf", "iat") and v is not None else v for k, v in change.items()}
    claims = {k: v for k, v in {**person_claims(), **change}.items() if v is not None}
    assert reason in refused(verifier(Tenant()), token(claims))


def test_a_small_clock_skew_is_tolerated() -> None:
    now = int(time.time())
    assert verifier(Tenant()).verify(token({**person_claims(), "exp": now - 20, "nbf": now + 20}))


def test_a_token_signed_by_another_key_is_refused() -> None:
    forged = token(person_claims(), kid="key-1", signer="attacker")
    assert "signature does not verify" in refused(verifier(Tenant("key-1")), forged)


def test_alg_none_is_refused() -> None:
    assert "only RS256" in refused(verifier(Tenant()), unsigned(person_claims()))


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    public = (
        private_key("key-1")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def part(value: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": "key-1"}) + b"." + part(person_claims())
    signature = base64.urlsafe_b64encode(hmac.new(public, signing_input, hashlib.sha256).digest()).rstrip(
        b"="
    )
    assert "only RS256" in refused(verifier(Tenant()), (signing_input + b"." + signature).decode())


@pytest.mark.parametrize("value", ["not-a-jwt", "a.b.c", "e30.e30.", ""])
def test_what_is_not_a_jwt_is_refused(value: str) -> None:
    assert refused(verifier(Tenant()), value)


def test_a_token_without_a_key_id_is_refused() -> None:
    import jwt

    no_kid = jwt.encode(person_claims(), private_key("key-1"), algorithm="RS256")
    assert "names no signing key" in refused(verifier(Tenant()), no_kid)


def test_the_keys_are_fetched_once_and_kept() -> None:
    tenant, clock = Tenant(), Clock()
    verify = verifier(tenant, clock)
    for _ in range(5):
        verify.verify(token(person_claims()))
    clock.now += KEYS_TTL_SECONDS - 1
    verify.verify(token(person_claims()))
    assert tenant.fetches == 1
    clock.now += 1
    verify.verify(token(person_claims()))
    assert tenant.fetches == 2  # kept for KEYS_TTL_SECONDS, then fetched again


def test_a_rotated_key_is_fetched_once_and_made_up_key_ids_do_not_flood_the_tenant() -> None:
    tenant, clock = Tenant("key-1"), Clock()
    verify = verifier(tenant, clock)
    verify.verify(token(person_claims(), kid="key-1"))
    clock.now += REFETCH_FLOOR_SECONDS
    tenant.kids.append("key-2")  # Entra rotates: a new key is published and used

    assert verify.verify(token(person_claims(), kid="key-2"))["preferred_username"] == "alice@contoso.com"
    assert tenant.fetches == 2
    for n in range(20):
        made_up = token(person_claims(), kid=f"made-up-{n}", signer="attacker")
        assert "does not publish" in refused(verify, made_up)
    assert tenant.fetches == 2  # at most one fetch every REFETCH_FLOOR_SECONDS
    clock.now += REFETCH_FLOOR_SECONDS
    assert "does not publish" in refused(verify, token(person_claims(), kid="made-up-x", signer="attacker"))
    assert tenant.fetches == 3


def test_keys_that_cannot_be_fetched_are_unavailable_until_they_can() -> None:
    tenant, clock = Tenant(), Clock()
    tenant.down = True
    verify = verifier(tenant, clock)
    with pytest.raises(TokenKeysUnavailable):
        verify.verify(token(person_claims()))
    tenant.down = False
    assert verify.verify(token(person_claims()))
    tenant.down = True
    clock.now += KEYS_TTL_SECONDS
    assert verify.verify(token(person_claims()))  # a failed refresh keeps the keys held
    assert tenant.fetches == 3


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"keys": "x"},
        {"keys": []},
        {"keys": [{"kty": "EC", "kid": "k"}]},
        {"keys": [{"kty": "RSA", "kid": "k"}]},
    ],
)
def test_a_key_set_without_a_usable_key_is_unavailable(document: object) -> None:
    from shared.adapters.azure.entra_tokens import EntraTokenVerifier
    from tests.entra import TENANT

    verify = EntraTokenVerifier(TENANT, AUDIENCES, fetch=lambda url: document)
    with pytest.raises(TokenKeysUnavailable):
        verify.verify(token(person_claims()))


def test_the_keys_are_fetched_over_https_as_json_and_a_failure_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import http.server
    import threading

    from shared.adapters.azure import entra_tokens

    class Keys(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = {"/keys": json.dumps({"keys": []}).encode(), "/html": b"<html>"}.get(self.path)
            self.send_response(200 if body else 500)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert entra_tokens.fetch_json(f"{base}/keys") == {"keys": []}
        for path in ("/html", "/missing"):
            with pytest.raises(TokenKeysUnavailable, match="could not be fetched"):
                entra_tokens.fetch_json(f"{base}{path}")
        monkeypatch.setattr(entra_tokens, "FETCH_TIMEOUT_SECONDS", 0.5)
        with pytest.raises(TokenKeysUnavailable):
            entra_tokens.fetch_json("http://127.0.0.1:9/keys")  # nothing listens
    finally:
        server.shutdown()
        server.server_close()


def test_the_composition_root_builds_a_verifier_only_for_a_tenant() -> None:
    from shared import bootstrap
    from shared.adapters.azure.entra_tokens import EntraTokenVerifier, keys_url
    from shared.config import Settings
    from tests.entra import TENANT

    assert bootstrap._tokens(Settings.from_env({})) is None
    built = bootstrap._tokens(
        Settings.from_env({"MLOPS_TOKEN_TENANT_ID": TENANT, "MLOPS_TOKEN_AUDIENCES": ",".join(AUDIENCES)})
    )
    assert isinstance(built, EntraTokenVerifier) and built.audiences == AUDIENCES
    assert (
        built.keys_url
        == keys_url(TENANT)
        == f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
    )
