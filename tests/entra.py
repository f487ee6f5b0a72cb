"""A stand-in Entra ID tenant for tests: RSA key pairs made here, the key set it publishes, and access tokens
shaped as Entra issues them (v2 for a person, v1 or v2 for an application's own token)."""

from __future__ import annotations

import base64
import functools
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.adapters.azure.entra_tokens import EntraTokenVerifier, keys_url

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0c5e2d1a-1111-4222-8333-944455556666"
AUDIENCES = (CLIENT_ID, f"api://{CLIENT_ID}")
ISSUER_V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"
ISSUER_V1 = f"https://sts.windows.net/{TENANT}/"
APPROVER = "MLOps.Approver"


@functools.cache
def private_key(kid: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key(kid).public_key()))
    return {**public, "kid": kid, "use": "sig", "x5t": kid}  # no "alg": Entra's keys carry none


class Tenant:
    """What the tenant publishes at its keys URL; counts the fetches the app makes."""

    def __init__(self, *kids: str) -> None:
        self.kids = list(kids or ["key-1"])
        self.fetches = 0
        self.down = False

    def fetch(self, url: str) -> Any:
        from shared.ports import TokenKeysUnavailable

        assert url == keys_url(TENANT)
        self.fetches += 1
        if self.down:
            raise TokenKeysUnavailable(
                f"the tenant's signing keys could not be fetched from {url}: timed out"
            )
        return {"keys": [jwk(kid) for kid in self.kids]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(tenant: Tenant, clock: Clock | None = None) -> EntraTokenVerifier:
    return EntraTokenVerifier(TENANT, AUDIENCES, fetch=tenant.fetch, clock=clock or Clock())


def person_claims(name: str = "alice@contoso.com", roles: tuple[str, ...] = (APPROVER,)) -> dict[str, Any]:
    now = int(time.time())
    return {
        "aud": CLIENT_ID,
        "iss": ISSUER_V2,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "ver": "2.0",
        "tid": TENANT,
        "oid": "5f1e7c3a-0000-4000-8000-00000000a11c",
        "sub": "pairwise-subject",
        "preferred_username": name,
        "scp": "access_as_user",
        "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "roles": list(roles),
    }


def app_claims(client_id: str = "9a9a9a9a-0000-4000-8000-000000000c1d", roles: tuple[str, ...] = ()) -> dict:
    """An application's own v1 token, as `az account get-access-token` gets it for a service principal."""
    now = int(time.time())
    return {
        "aud": f"api://{CLIENT_ID}",
        "iss": ISSUER_V1,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "ver": "1.0",
        "tid": TENANT,
        "oid": "sp-object-id",
        "sub": "sp-object-id",
        "appid": client_id,
        "appidacr": "2",
        "idtyp": "app",
        "roles": list(roles),
    }


def token(claims: dict[str, Any], kid: str = "key-1", signer: str | None = None) -> str:
    """`claims` signed RS256 by `signer`'s key (default: the key `kid` names)."""
    return jwt.encode(claims, private_key(signer or kid), algorithm="RS256", headers={"kid": kid})


def unsigned(claims: dict[str, Any], kid: str = "key-1") -> str:
    """`alg: none`, no signature."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims)}."


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}
