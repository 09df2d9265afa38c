"""levels_tf.hcl: Python values -> HCL text, laid out exactly as `terraform fmt` would.

The unit tests pin the exact text; the terraform tests prove, with the real
binary, that the text is fmt-clean as written and means the values it came from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from levels_tf import hcl

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")


# --- strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\dir\\file", r'"C:\\dir\\file"'),
        ("line1\nline2", r'"line1\nline2"'),
        ("tab\there\r", r'"tab\there\r"'),
        ("${var.x}", '"$${var.x}"'),
        ("%{ if true }yes%{ endif }", '"%%{ if true }yes%%{ endif }"'),
        ("${a} and %{b}", '"$${a} and %%{b}"'),
        ("already $${escaped}", '"already $$${escaped}"'),
        ("lone $ and % and { }", '"lone $ and % and { }"'),
        ("trailing $", '"trailing $"'),
        ("back\\${x}", r'"back\\$${x}"'),
        # HCL has no \b or \f escape: they must become \uNNNN.
        ("bell\b form\f", r'"bell\u0008 form\u000c"'),
        ("\x01\x1f", r'"\u0001\u001f"'),
        # A literal backslash followed by b/f is not a control character.
        ("\\b\\f", r'"\\b\\f"'),
        ("\\\b", r'"\\\u0008"'),
        ("café 日本 👍", '"café 日本 👍"'),
    ],
)
def test_string_escapes(text, expected):
    assert hcl.string(text) == expected


def test_value_of_a_string_is_the_quoted_string():
    assert hcl.value("${x}") == hcl.string("${x}") == '"$${x}"'


# --- keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "name", "_private", "snake_case", "kebab-case", "A1", "x-1_y", "if", "in"]
)
def test_identifier_keys_stay_bare(name):
    assert hcl.key(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("with space", '"with space"'),
        ("1st", '"1st"'),
        ("-lead", '"-lead"'),
        ("a.b", '"a.b"'),
        ("a/b", '"a/b"'),
        ("", '""'),
        ("café", '"café"'),
        ("true", '"true"'),
        ("false", '"false"'),
        ("null", '"null"'),
        # A bare `for` first in an object is read as a for expression.
        ("for", '"for"'),
        ("${x}", '"$${x}"'),
        ('q"uote', r'"q\"uote"'),
    ],
)
def test_other_keys_are_quoted(name, expected):
    assert hcl.key(name) == expected


# --- scalars -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-3, "-3"),
        (12345678901234567890, "12345678901234567890"),
        (1.5, "1.5"),
        (1e20, "1e+20"),
        (2.5e-7, "2.5e-07"),
    ],
)
def test_scalars(obj, expected):
    assert hcl.value(obj) == expected


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_are_refused(number):
    # `inf` or `nan` in HCL would be a reference to an undefined variable.
    with pytest.raises(ValueError, match="no HCL form"):
        hcl.value(number)


@pytest.mark.parametrize("obj", [object(), {1, 2}, b"bytes"])
def test_values_without_an_hcl_form_are_refused(obj):
    with pytest.raises(TypeError, match="no HCL form"):
        hcl.value(obj)


# --- lists ---------------------------------------------------------------------


def test_empty_list():
    assert hcl.value([]) == "[]"
    assert hcl.value(()) == "[]"


def test_short_lists_are_inline():
    assert hcl.value([1, "a", None, True]) == '[1, "a", null, true]'
    assert hcl.value([[1, 2], [], ["x"]]) == '[[1, 2], [], ["x"]]'
    assert hcl.value([{}]) == "[{}]"


def test_inline_list_width_limit_is_100_characters():
    at_limit = ["x" * 96]  # ["xxx..."] is 96 + 4 = 100 characters
    assert hcl.value(at_limit) == '["' + "x" * 96 + '"]'
    over = ["x" * 97]
    assert hcl.value(over) == '[\n  "' + "x" * 97 + '",\n]'


def test_long_lists_are_one_item_a_line_with_trailing_commas():
    items = [f"item-{n:02d}-{'x' * 20}" for n in range(5)]
    expected = "[\n" + "".join(f'  "{item}",\n' for item in items) + "]"
    assert hcl.value(items) == expected


def test_multi_line_list_is_indented_for_its_level():
    items = [f"item-{n:02d}-{'x' * 20}" for n in range(5)]
    expected = "[\n" + "".join(f'      "{item}",\n' for item in items) + "    ]"
    assert hcl.value(items, 2) == expected


def test_a_list_with_a_multi_line_item_is_multi_line():
    assert hcl.value([1, {"a": 1}]) == "[\n  1,\n  {\n    a = 1\n  },\n]"


def test_nested_multi_line_lists():
    inner = ["y" * 60, "z" * 60]
    assert hcl.value([inner, 1]) == (f'[\n  [\n    "{"y" * 60}",\n    "{"z" * 60}",\n  ],\n  1,\n]')


# --- objects -------------------------------------------------------------------


def test_empty_object():
    assert hcl.value({}) == "{}"


def test_object_keys_are_aligned():
    assert hcl.value({"a": 1, "long_key": "v", "with space": None}) == (
        '{\n  a            = 1\n  long_key     = "v"\n  "with space" = null\n}'
    )


def test_nested_objects():
    obj = {"outer": {"inner": {"leaf": True}, "n": 2}, "after": [1]}
    assert hcl.value(obj) == (
        "{\n  outer = {\n    inner = {\n      leaf = true\n    }\n    n = 2\n  }\n  after = [1]\n}"
    )


def test_nested_object_is_indented_for_its_level():
    assert hcl.value({"a": {"b": 1}}, 1) == "{\n    a = {\n      b = 1\n    }\n  }"


def test_object_keys_keep_their_order():
    assert hcl.value({"b": 1, "a": 2}) == "{\n  b = 1\n  a = 2\n}"


def test_non_string_keys_are_rendered_as_strings():
    assert (
        hcl.value({1: "one", 2.5: "x", "k": "v"})
        == '{\n  "1"   = "one"\n  "2.5" = "x"\n  k     = "v"\n}'
    )


# --- attributes() alignment ----------------------------------------------------


def test_attributes_align_a_run_of_single_line_values():
    assert hcl.attributes({"a": 1, "bbb": 2, "cc": 3}) == "  a   = 1\n  bbb = 2\n  cc  = 3\n"


def test_attributes_at_a_deeper_level():
    assert hcl.attributes({"a": 1, "bb": 2}, 3) == "      a  = 1\n      bb = 2\n"


def test_attributes_of_nothing_is_empty():
    assert hcl.attributes({}) == ""
    assert hcl.attributes({}, 3) == ""


def test_multi_line_value_stands_alone_and_ends_the_group():
    obj = {
        "a": 1,
        "long_name": 2,
        "block": {"x": 1},
        "b": 3,
        "cc": 4,
    }
    assert hcl.attributes(obj) == (
        "  a         = 1\n  long_name = 2\n  block = {\n    x = 1\n  }\n  b  = 3\n  cc = 4\n"
    )


def test_multi_line_list_also_ends_the_group():
    long = [f"{'v' * 40}-{n}" for n in range(3)]
    text = hcl.attributes({"short": 1, "longer_key": long, "k": 2})
    assert text.startswith("  short = 1\n  longer_key = [\n")
    assert text.endswith("  ]\n  k = 2\n")


def test_single_line_empty_and_inline_values_join_the_group():
    assert hcl.attributes({"a": {}, "list": [], "xyz": [1, 2]}) == (
        "  a    = {}\n  list = []\n  xyz  = [1, 2]\n"
    )


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("café", 4),
        (unicodedata.normalize("NFD", "café"), 4),  # e + combining acute
        ("日本", 2),
        ("👩\u200d💻", 1),  # emoji ZWJ sequence
        ("🇫🇷", 1),  # flag: two regional indicators
        (unicodedata.normalize("NFD", "한국"), 2),  # decomposed Hangul
    ],
)
def test_alignment_counts_what_fmt_counts(name, columns):
    # fmt counts grapheme clusters; "z" must be padded to the key's width.
    text = hcl.attributes({name: 1, "z": 2})
    quoted = columns + 2
    assert text.splitlines()[1] == "  z" + " " * (quoted - 1) + " = 2"


# --- the real terraform ----------------------------------------------------------


@pytest.fixture
def tf_env(tmp_path):
    config = tmp_path / "empty.tfrc"
    config.write_text("")
    env = dict(os.environ)
    env.update(
        {"TF_CLI_CONFIG_FILE": str(config), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    )
    env.pop("TF_CLI_ARGS", None)
    env.pop("TF_CLI_ARGS_fmt", None)
    return env


def _terraform(
    args: list[str], env: dict, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess:
    assert TERRAFORM is not None  # the callers are marked needs_terraform
    return subprocess.run(
        [TERRAFORM, *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=cwd,
        timeout=60,
    )


NESTED = {
    "a": 1,
    "long_name": 'text with "quotes", \\backslashes\\ and\na newline',
    "b-c": True,
    "nothing": None,
    "templates": "${not.interpolated} %{ if nope }x%{ endif } $${kept}",
    "controls": "\b\f\x01\t\r",
    "float": 2.5,
    "big": 1e20,
    "negative": -7,
    "inline": [1, "two", None, [3, [4]], {}],
    "long_list": [f"subnet-{n:02d}-0123456789abcdef" for n in range(8)],
    "nested": {
        "x": 1,
        "yy": [1, 2, 3],
        "for": "first key named for",
        "deep": {
            "k": "v",
            "list": [{"a": 1, "bbb": [{"c": None}]}, {}],
            "empty": [],
            "with space": {"1": 1, "true": False, "café": "x"},
        },
        "after": 2.5,
        "tail_a": "a",
        "tail_bbbb": "b",
    },
    "mixed": [
        1,
        {"five": 5, "six_six": [6]},
        ["y" * 60, "z" * 60],
    ],
    "unicode_keys": {
        "日本語": 1,
        unicodedata.normalize("NFD", "résumé"): 2,
        "👩\u200d💻": 3,
        "🇫🇷": 4,
        unicodedata.normalize("NFD", "한국어"): 5,
        "plain": 6,
    },
    "tail_x": "x",
    "tail_xyz": "xyz",
}


def _document() -> str:
    """A small Terraform file that uses every filter the templates use."""
    return (
        "locals {\n"
        + hcl.attributes(NESTED, 1)
        + "}\n"
        + "\n"
        + 'resource "null_resource" "x" {\n'
        + "  triggers = "
        + hcl.value({"name": "n", "long_key_name": "v", "more": {"k": [1, 2]}}, 1)
        + "\n"
        + "\n"
        + "  lifecycle {\n"
        + hcl.attributes({"create_before_destroy": True, "prevent_destroy": False}, 2)
        + "  }\n"
        + "}\n"
        + "\n"
        + 'output "o" {\n'
        + "  value = "
        + hcl.value(NESTED["nested"], 1)
        + "\n"
        + "}\n"
    )


@needs_terraform
def test_rendered_hcl_is_fmt_clean_exactly_from_stdin(tf_env, tmp_path):
    text = _document()
    result = _terraform(["fmt", "-"], tf_env, tmp_path, stdin=text)
    assert result.returncode == 0, result.stderr
    # fmt prints what it would write: it must be our text, byte for byte.
    assert result.stdout == text


@needs_terraform
def test_rendered_hcl_is_fmt_clean_as_a_file(tf_env, tmp_path):
    path = tmp_path / "values.tf"
    path.write_text(_document(), encoding="utf-8")
    result = _terraform(["fmt", "-check", "-diff", str(path)], tf_env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@needs_terraform
def test_fmt_check_catches_misalignment(tf_env, tmp_path):
    """The fmt test above can fail: misaligned text is reported."""
    path = tmp_path / "bad.tf"
    path.write_text("locals {\n  a = 1\n  bbb = 2\n}\n", encoding="utf-8")
    result = _terraform(["fmt", "-check", str(path)], tf_env, tmp_path)
    assert result.returncode != 0


@needs_terraform
def test_rendered_values_mean_what_they_came_from(tf_env, tmp_path):
    """terraform reads the rendered text back to the same values: escapes hold, `${` stays literal."""
    values = dict(NESTED.items())
    (tmp_path / "main.tf").write_text(
        "locals {\n" + hcl.attributes({"v": values}, 1) + "}\n", encoding="utf-8"
    )
    result = _terraform(["console"], tf_env, tmp_path, stdin="jsonencode(local.v)\n")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith('"'), printed
    # HCL reads every string literal as NFC; that is the only change allowed.
    expected = json.loads(unicodedata.normalize("NFC", json.dumps(values, ensure_ascii=False)))
    assert json.loads(json.loads(printed)) == expected


@needs_terraform
def test_reference_render_is_fmt_clean(run, reference_copy, tf_env, tmp_path):
    out = tmp_path / "out"
    result = run("render", "--out", str(out), config=reference_copy)
    assert result.exit_code == 0, result.output
    assert list(out.rglob("*.tf"))
    check = _terraform(["fmt", "-check", "-recursive", "-diff", str(out)], tf_env, tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
