"""The pure parts of the OpenID Connect relying party (``security/oidc.py``): role mapping, issuer rules, audience."""

from __future__ import annotations

import httpx
import pytest

from faceward.security.oidc import (
    Provider,
    ProviderConfig,
    ProviderUnreachable,
    RoleMapping,
    SignInRefused,
    _check_audience,
    _oauth_error,
    check_issuer,
    parse_rules,
)
from faceward.security.permissions import Role


def test_the_first_rule_a_person_matches_gives_the_role() -> None:
    mapping = RoleMapping("groups", parse_rules(["faceward-admins=admin", "faceward-searchers=searcher"]))
    assert mapping.role_for({"groups": ["staff", "faceward-searchers"]}) is Role.SEARCHER
    assert mapping.role_for({"groups": ["faceward-searchers", "faceward-admins"]}) is Role.ADMIN  # rule order, not claim order
    assert mapping.role_for({"groups": "faceward-searchers"}) is Role.SEARCHER  # a single string counts
    for claims in ({"groups": ["staff"]}, {}, {"groups": None}, {"groups": [1, {"x": 2}]}, {"roles": ["faceward-admins"]}):
        assert mapping.role_for(claims) is None


@pytest.mark.parametrize("pair", ["no-equals", "=searcher", "g=superuser"])
def test_a_bad_rule_is_refused_by_name(pair: str) -> None:
    with pytest.raises(SignInRefused):
        parse_rules([pair])


def test_issuers_must_be_https_except_on_loopback() -> None:
    for ok in ("https://login.example.org", "https://login.example.org/realms/x", "http://127.0.0.1:8080",
               "http://localhost:9000", "http://[::1]:1"):
        assert check_issuer(ok) == ok
    for bad in ("http://login.example.org", "ftp://x", "login.example.org", "https://", "http://10.0.0.1",
                "https://\U0006381a"):
        with pytest.raises(SignInRefused):
            check_issuer(bad)


def test_the_audience_must_hold_our_client_and_azp_must_be_us() -> None:
    _check_audience({"aud": "faceward"}, "faceward")
    _check_audience({"aud": ["faceward", "api"], "azp": "faceward"}, "faceward")
    for claims in ({"aud": "other"}, {"aud": ["other"]}, {}, {"aud": ["faceward", "api"]},
                   {"aud": "faceward", "azp": "other"}):
        with pytest.raises(SignInRefused) as refused:
            _check_audience(claims, "faceward")
        assert refused.value.reason == "wrong_audience"


def test_a_connection_round_trips_and_never_prints_its_secret() -> None:
    config = ProviderConfig("https://idp", "faceward", "s3cret", RoleMapping("groups", ((("g"), Role.AUDITOR),)))
    assert ProviderConfig.from_json(config.to_json()) == config
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.public())


@pytest.mark.parametrize(("answer", "why"), [
    (httpx.ConnectError("refused"), "no connection could be made to it"),
    (httpx.ReadTimeout("slow"), "no answer within 10 seconds"),
    (httpx.Response(404), "it answered HTTP 404"),
    (httpx.Response(200, text="<html>"), "its answer is not JSON"),
])
def test_a_provider_that_cannot_be_reached_is_told_in_words(answer: httpx.Response | Exception, why: str) -> None:
    def transport(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    provider = Provider(http=lambda: httpx.Client(transport=httpx.MockTransport(transport)))
    with pytest.raises(ProviderUnreachable) as unreachable:
        provider.endpoints("https://login.example.org")
    assert unreachable.value.message == f"the identity provider could not be reached ({why})"  # never a class name


def test_a_refused_code_names_the_providers_error_code_or_nothing() -> None:
    from authlib.integrations.base_client import OAuthError

    import json

    assert _oauth_error(OAuthError(error="invalid_grant", description="code expired")) == " (invalid_grant)"
    blank = OAuthError()
    blank.error = None
    assert _oauth_error(blank) == ""  # not "(None)"
    try:
        json.loads("<html>")  # a token endpoint that answers HTML
    except ValueError as exc:
        assert _oauth_error(exc) == ""  # not "(JSONDecodeError)"
