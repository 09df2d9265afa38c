"""check_endpoint: the one check of --aws-endpoint, a stored endpoint and a rehearsal's --endpoint."""

from __future__ import annotations

import pytest

from levels_tf.aws import Aws
from levels_tf.endpoint import check_endpoint
from levels_tf.errors import UsageError
from levels_tf.options import RenderOptions


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://moto.example.com/", "https://moto.example.com"),
        ("http://[::1]:4566//", "http://[::1]:4566"),
    ],
)
def test_an_http_url_with_a_host_is_taken_without_its_trailing_slash(url, expected):
    assert check_endpoint(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "localhost:5000",  # no scheme: urlparse reads "localhost" as one
        "ftp://127.0.0.1:21",
        "http://:5000",  # a port, no host
        "http://[::1",  # Python cannot parse it: was an internal error
        "http://127.0.0.1:port",  # nor this port: was an internal error
        "",
    ],
)
def test_anything_else_is_a_usage_error_naming_the_option(url):
    with pytest.raises(
        UsageError, match=r"^--aws-endpoint .* is not an http\(s\) URL with a host$"
    ):
        check_endpoint(url)


@pytest.mark.parametrize("url", ["http://10.0.0.5:4566", "http://0.0.0.0:4566", "http://example"])
def test_loopback_refuses_other_hosts(url):
    with pytest.raises(UsageError, match=r"^--endpoint .*loopback \(127.0.0.1, ::1, localhost\)"):
        check_endpoint(url, option="--endpoint", loopback=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1/"])
def test_loopback_takes_this_machine(url):
    assert check_endpoint(url, loopback=True) == url.rstrip("/")


def test_render_options_and_the_aws_clients_spell_the_endpoint_alike():
    # The stored options kept the slash while the clients dropped it; one spelling now.
    assert RenderOptions("http://127.0.0.1:5000/").aws_endpoint == "http://127.0.0.1:5000"
    assert Aws("us-east-1", "http://127.0.0.1:5000/").endpoint == "http://127.0.0.1:5000"
    assert Aws("us-east-1").endpoint is None


def test_an_empty_endpoint_is_refused_not_taken_for_real_aws():
    # Aws took "" for no endpoint at all, i.e. real AWS; RenderOptions refused it.
    with pytest.raises(UsageError):
        Aws("us-east-1", "")
    with pytest.raises(UsageError):
        RenderOptions("")
