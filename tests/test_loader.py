"""Unit tests of levels_tf.loader: positions, YAML features refused or allowed, file checks."""

from __future__ import annotations

import os
import time

import pytest

from levels_tf import loader
from levels_tf.errors import ConfigError, Problem

FILE = "infra.yaml"


def parse(text: str) -> loader.Document:
    return loader.parse(text, FILE)


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def load_problem(path) -> Problem:
    with pytest.raises(ConfigError) as info:
        loader.load(path)
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


# --- positions -------------------------------------------------------------

POSITIONS_TEXT = """\
# a comment line
project: shop
vpc_groups:
  prod:
    cidr: 10.0.0.0/16
    environments: [production, staging]
    list:
      - one
      -   two
"""


def test_value_positions_are_one_based_line_and_column():
    doc = parse(POSITIONS_TEXT)
    assert doc.data["project"] == "shop"
    assert doc.positions[("project",)] == (2, 10)
    assert doc.positions[("vpc_groups", "prod", "cidr")] == (5, 11)
    assert doc.positions[("vpc_groups", "prod", "environments")] == (6, 19)
    assert doc.positions[("vpc_groups", "prod", "environments", 0)] == (6, 20)
    assert doc.positions[("vpc_groups", "prod", "environments", 1)] == (6, 32)
    assert doc.positions[("vpc_groups", "prod", "list", 0)] == (8, 9)
    assert doc.positions[("vpc_groups", "prod", "list", 1)] == (9, 11)


def test_key_positions_point_at_the_key():
    doc = parse(POSITIONS_TEXT)
    assert doc.key_positions[("project",)] == (2, 1)
    assert doc.key_positions[("vpc_groups",)] == (3, 1)
    assert doc.key_positions[("vpc_groups", "prod")] == (4, 3)
    assert doc.key_positions[("vpc_groups", "prod", "cidr")] == (5, 5)
    # list items have no key
    assert ("vpc_groups", "prod", "list", 0) not in doc.key_positions


def test_where_falls_back_to_the_nearest_ancestor():
    doc = parse(POSITIONS_TEXT)
    # a missing key inside prod: the value position of prod (its first key) ...
    assert doc.where(("vpc_groups", "prod", "azs")) == (5, 5)
    # ... and for key=True the key of prod itself
    assert doc.where(("vpc_groups", "prod", "azs"), key=True) == (4, 3)
    # a list item asked for as a key: its value position
    assert doc.where(("vpc_groups", "prod", "list", 1), key=True) == (9, 11)
    # nothing matches: the start of the top-level mapping (after the comment)
    assert doc.where(("nothing", "here")) == (2, 1)
    assert loader.Document({}, FILE).where(("x",)) == (1, 1)


def test_problem_carries_file_line_column_and_dotted_path():
    doc = parse(POSITIONS_TEXT)
    problem = doc.problem(("vpc_groups", "prod", "environments", 1), "bad")
    assert problem == Problem(6, 32, "vpc_groups.prod.environments[1]", "bad", FILE)
    assert problem.format() == "infra.yaml:6:32: vpc_groups.prod.environments[1]: bad"


def test_dotted_paths():
    assert loader.dotted(()) == ""
    assert loader.dotted(("a", "b", 0, "c", 12)) == "a.b[0].c[12]"
    assert loader.dotted((0,)) == "[0]"


def test_positions_with_crlf_line_endings():
    doc = parse("a: 1\r\nb:\r\n  c: x\r\n")
    assert doc.data == {"a": 1, "b": {"c": "x"}}
    assert doc.positions[("b", "c")] == (3, 6)


# --- duplicate and non-string keys ----------------------------------------


def test_duplicate_key_names_the_first_line():
    problem = only_problem("a: 1\nb: 2\n\na: 3\n")
    assert (problem.line, problem.column, problem.path) == (4, 1, "a")
    assert problem.message == "duplicate key (first defined on line 1)"


def test_duplicate_nested_key():
    problem = only_problem("top:\n  x: 1\n  y: 2\n  x: 3\n")
    assert (problem.line, problem.column, problem.path) == (4, 3, "top.x")
    assert "first defined on line 2" in problem.message


def test_duplicate_key_spelled_differently():
    problem = only_problem("1: a\n'1': b\n")
    assert (problem.line, problem.message) == (2, "duplicate key (first defined on line 1)")


@pytest.mark.parametrize(
    "text, line, column",
    [
        ("? [a, b]\n: 1\n", 1, 3),
        ("ok: 1\n{a: 1}: 2\n", 2, 1),
        ("top:\n  ? {x: 1}\n  : 2\n", 2, 5),
    ],
)
def test_collection_keys_are_refused(text, line, column):
    problem = only_problem(text)
    assert (problem.line, problem.column) == (line, column)
    assert problem.message == "mapping keys must be plain strings"


def test_scalar_keys_keep_their_source_text():
    # YAML 1.1 would read these keys as int, bool and null; they stay text.
    doc = parse("1: a\nyes: b\nnull: c\non: d\n")
    assert list(doc.data) == ["1", "yes", "null", "on"]
    assert all(isinstance(key, str) for key in doc.data)


# --- documents --------------------------------------------------------------


def test_several_documents_are_refused_at_the_second():
    problem = only_problem("a: 1\nb: 2\n---\nc: 3\n")
    assert (problem.line, problem.column) == (3, 1)
    assert problem.message == "several YAML documents; infra.yaml holds exactly one"


def test_several_documents_with_explicit_markers():
    problem = only_problem("---\na: 1\n...\n---\nb: 2\n")
    assert problem.line == 4
    assert "several YAML documents" in problem.message


def test_one_explicit_document_is_fine():
    assert parse("---\na: 1\n...\n").data == {"a": 1}


# --- anchors, aliases, merge keys -----------------------------------------


def test_anchors_and_aliases_are_allowed():
    doc = parse("base: &b {x: 1, y: [1, 2]}\ncopy: *b\n")
    assert doc.data["copy"] == {"x": 1, "y": [1, 2]}
    # the alias is a separate value, not shared with the anchor
    assert doc.data["copy"] is not doc.data["base"]


def test_merge_key_explicit_keys_win():
    doc = parse("base: &b\n  x: 1\n  y: 2\nc:\n  <<: *b\n  y: 3\n")
    assert doc.data["c"] == {"x": 1, "y": 3}


def test_merge_key_list_earlier_sources_win():
    doc = parse("b1: &b1 {x: 1}\nb2: &b2 {x: 2, z: 3}\nc: {<<: [*b1, *b2]}\n")
    assert doc.data["c"] == {"x": 1, "z": 3}


def test_merge_key_keeps_explicit_key_positions():
    doc = parse("base: &b\n  x: 1\n  y: 2\nc:\n  <<: *b\n  y: 3\n")
    # y is written on line 6 in c; the merged-in y of line 3 must not move it
    assert doc.key_positions[("c", "y")] == (6, 3)
    assert doc.positions[("c", "y")] == (6, 6)
    # x only comes from the merge: it points where it was written
    assert doc.key_positions[("c", "x")] == (2, 3)
    assert doc.positions[("c", "x")] == (2, 6)


def test_merge_of_a_list_of_scalars_is_refused():
    problem = only_problem("a: &a [1]\nc: {<<: *a}\n")
    assert (problem.line, problem.path) == (1, "c")
    assert problem.message == "'<<' merges only mappings"


def test_undefined_alias():
    problem = only_problem("a: 1\nb: *nope\n")
    assert (problem.line, problem.column) == (2, 4)
    assert "undefined alias" in problem.message


BILLION_LAUGHS = (
    "\n".join(
        ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        + [
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
            for i in range(8)
        ]
    )
    + "\n"
)


def test_alias_bomb_is_refused_quickly_with_a_line():
    assert len(BILLION_LAUGHS) < 1000
    start = time.process_time()  # this process's CPU: other load does not count
    problem = only_problem(BILLION_LAUGHS)
    assert time.process_time() - start < 10, "expanded the aliases instead of refusing"
    assert "alias bomb" in problem.message
    assert str(loader.MAX_NODES) in problem.message
    assert 1 <= problem.line <= BILLION_LAUGHS.count("\n")


def test_merge_key_bomb_is_refused_quickly():
    # Merging empty mappings adds no values, yet costs 40**5 steps.
    lines = ["e: &e {}"]
    previous = "e"
    for name in "fghij":
        lines.append(f"{name}: &{name} {{<<: [" + ", ".join([f"*{previous}"] * 40) + "]}")
        previous = name
    start = time.process_time()  # this process's CPU: other load does not count
    problem = only_problem("\n".join(lines) + "\n")
    assert time.process_time() - start < 10, "expanded the aliases instead of refusing"
    assert "alias bomb" in problem.message


def test_many_values_within_the_limit_are_fine():
    doc = parse("a: &a [" + ",".join(["1"] * 100) + "]\nb: [" + ",".join(["*a"] * 100) + "]\n")
    assert len(doc.data["b"]) == 100


def test_recursive_alias_in_a_sequence():
    problem = only_problem("x: 1\na: &a [1, *a]\n")
    assert (problem.line, problem.column, problem.path) == (2, 4, "a[1]")
    assert problem.message == "recursive alias"


def test_recursive_alias_in_a_mapping():
    problem = only_problem("a: &a\n  x: 1\n  y: *a\n")
    # points at the anchor of the mapping that contains itself
    assert (problem.line, problem.column, problem.path) == (1, 4, "a.y")
    assert problem.message == "recursive alias"


@pytest.mark.parametrize("text", ["a: &a {<<: *a}\n", "a: &a\n  x: 1\n  <<: *a\n"])
def test_mapping_merging_itself(text):
    problem = only_problem(text)
    assert (problem.line, problem.path) == (1, "a")
    assert problem.message == "recursive alias"


def test_long_chain_of_merges_is_refused_not_a_crash():
    lines = ["m0: &m0 {x: 1}"] + [f"m{i}: &m{i} {{<<: *m{i - 1}}}" for i in range(1, 1200)]
    problem = only_problem("\n".join(lines) + "\n")
    assert "nesting deeper than" in problem.message


# --- nesting ----------------------------------------------------------------


def _flow(depth: int) -> str:
    return "a: " + "[" * depth + "1" + "]" * depth + "\n"


def test_nesting_up_to_the_limit_is_fine():
    doc = parse(_flow(loader.MAX_DEPTH - 1))
    value = doc.data["a"]
    for _ in range(loader.MAX_DEPTH - 1):
        value = value[0]
    assert value == 1


def test_nesting_past_the_limit_is_refused():
    problem = only_problem(_flow(loader.MAX_DEPTH))
    assert problem.line == 1
    assert problem.message.endswith(f"nesting deeper than {loader.MAX_DEPTH} levels")


@pytest.mark.parametrize("depth", [500, 5000, 50_000])
def test_very_deep_flow_nesting_is_refused_not_a_crash(depth):
    problem = only_problem("x: 1\n" + _flow(depth))
    assert problem.line == 2
    assert f"nesting deeper than {loader.MAX_DEPTH} levels" in problem.message


def test_very_deep_block_nesting_is_refused():
    text = "".join("  " * i + f"k{i}:\n" for i in range(400))
    problem = only_problem(text)
    assert "nesting deeper than" in problem.message
    assert problem.line == loader.MAX_DEPTH + 1


# --- scalars and tags -------------------------------------------------------


@pytest.mark.parametrize("tag", ["!!int", "!!float", "!!bool", "!!timestamp"])
def test_impossible_explicit_tag_is_a_problem(tag):
    problem = only_problem(f"ok: 1\nbad: {tag} nonsense\n")
    assert (problem.line, problem.column, problem.path) == (2, 6, "bad")
    assert problem.message.startswith("YAML: ")


def test_impossible_explicit_tag_on_a_key():
    problem = only_problem("ok: 1\n!!int nonsense: 1\n")
    assert (problem.line, problem.column) == (2, 1)


def test_unknown_tag_is_a_problem():
    problem = only_problem("ok: 1\nbad: !python/object:os.system x\n")
    assert (problem.line, problem.path) == (2, "bad")
    assert "constructor" in problem.message


# --- characters and encoding -----------------------------------------------


def test_not_utf8_points_at_the_bad_byte():
    raw = "a: 1\nb: café \xff\n".encode().replace(b"\xc3\xbf", b"\xff")
    with pytest.raises(ConfigError) as info:
        loader.decode(raw, FILE)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (2, 9)
    assert problem.message == "not UTF-8 text (byte 0xff)"


def test_not_utf8_file(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_bytes(b"a: 1\nb: 2\nc: \x80\x81\n")
    problem = load_problem(path)
    assert (problem.file, problem.line, problem.column) == (str(path), 3, 4)
    assert "byte 0x80" in problem.message


def test_utf16_is_not_utf8(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_bytes("a: 1\n".encode("utf-16"))
    problem = load_problem(path)
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message.startswith("not UTF-8 text")


@pytest.mark.parametrize(
    "raw, line, column, code",
    [
        (b"a: 1\nbb: x\x00\n", 2, 6, "U+0000"),
        (b"a: 1\n\nb: \x1b[0m\n", 3, 4, "U+001B"),
        (b"\x7f", 1, 1, "U+007F"),
        (b"a: 'x\x0cy'\n", 1, 6, "U+000C"),
    ],
)
def test_control_characters_are_refused_with_their_position(raw, line, column, code):
    with pytest.raises(ConfigError) as info:
        loader.decode(raw, FILE)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (line, column)
    assert problem.message == f"control character {code} in text"


def test_tab_and_crlf_are_not_control_characters():
    assert loader.decode(b"a: 'x\ty'\r\nb: 2\n", FILE) == "a: 'x\ty'\r\nb: 2\n"


@pytest.mark.parametrize(
    "text, line, column, code",
    [("a: 1\nb: x\u0090\n", 2, 5, "U+0090"), ("a: \ufffe\n", 1, 4, "U+FFFE")],
)
def test_characters_yaml_refuses_get_a_position(text, line, column, code):
    problem = only_problem(text)
    assert (problem.line, problem.column) == (line, column)
    assert code in problem.message


def test_nul_byte_in_a_file(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_bytes(b"project: shop\nregion: us-\x00east-1\n")
    problem = load_problem(path)
    assert (problem.line, problem.column) == (2, 12)
    assert "U+0000" in problem.message


def test_bom_is_removed(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_bytes(b"\xef\xbb\xbfproject: shop\nregion: x\n")
    doc = loader.load(path)
    assert doc.data == {"project": "shop", "region": "x"}
    assert doc.key_positions[("project",)] == (1, 1)
    assert doc.positions[("region",)] == (2, 9)


def test_bom_alone_is_an_empty_file(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_bytes(b"\xef\xbb\xbf")
    problem = load_problem(path)
    assert problem.message == "file is empty: expected a mapping"


# --- empty and wrong top level -------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n   \n", "# only a comment\n", "# one\n# two"])
def test_empty_or_comment_only(text):
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.path) == (1, 1, "")
    assert problem.message == "file is empty: expected a mapping"


def test_only_a_document_marker():
    problem = only_problem("---\n")
    assert problem.message == "expected a mapping at the top, found nothing"


@pytest.mark.parametrize(
    "text, line, found",
    [
        ("# list\n- project: shop\n- region: x\n", 2, "a list"),
        ("just text\n", 1, "a str value"),
        ("\n42\n", 2, "a int value"),
    ],
)
def test_top_level_must_be_a_mapping(text, line, found):
    problem = only_problem(text)
    assert problem.line == line
    assert problem.message == f"expected a mapping at the top, found {found}"


# --- syntax errors ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line",
    [
        ("a:\n  b: 1\n c: 2\n", 3),
        ("a:\n  b: 1\n    c: 2\n", 3),
        ("a: [1, 2\nb: 3\n", 2),
        ("a: {x: 1\n", 2),
        ("a:\n\tb: 1\n", 2),
        ("a: 'unterminated\n", 2),
        ("a: 1\nb: @x\n", 2),
    ],
)
def test_syntax_errors_have_a_line(text, line):
    problem = only_problem(text)
    assert problem.line == line
    assert problem.message.startswith("YAML: ")
    assert "\n" not in problem.message


# --- files ----------------------------------------------------------------------


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_text("project: shop\n", encoding="utf-8")
    doc = loader.load(path)
    assert doc.data == {"project": "shop"}
    assert doc.file == str(path)


def test_directory_instead_of_a_file(tmp_path):
    problem = load_problem(tmp_path)
    assert (problem.file, problem.line, problem.column) == (str(tmp_path), 1, 1)
    assert problem.message == "is a directory, not a file"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    problem = load_problem(path)
    assert (problem.file, problem.line) == (str(path), 1)
    assert problem.message == (
        "no such file; give -c the path of an infra.yaml, or run `levels-tf init DIR` to start one"
    )


def test_a_missing_infra_yaml_says_how_to_start_one(tmp_path, monkeypatch, run):
    monkeypatch.chdir(tmp_path)
    result = run("validate")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "infra.yaml:1:1: no such file; run `levels-tf init` to start one there, "
        "or give -c PATH to read another"
    )
    folder = tmp_path / "my infra"
    result = run("validate", config=folder / "infra.yaml")
    assert result.stderr.strip().endswith(
        f"no such file; run `levels-tf init '{folder}'` to start one there, "
        "or give -c PATH to read another"
    )
    assert result.stdout == "" and not folder.exists()


def test_path_through_a_file(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_text("a: 1\n")
    problem = load_problem(path / "x.yaml")
    assert problem.message.startswith("cannot read")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_a_regular_file(tmp_path):
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    problem = load_problem(path)
    assert problem.message == "is not a regular file"


def test_file_over_one_mib_is_refused_without_parsing(tmp_path):
    path = tmp_path / "infra.yaml"
    # valid YAML would take long to parse; the size check must come first
    path.write_bytes(b"a: [" + b"1," * (loader.MAX_FILE_BYTES // 2) + b"1]\n")
    start = time.process_time()  # this process's CPU: other load does not count
    problem = load_problem(path)
    assert time.process_time() - start < 1
    assert (problem.line, problem.column) == (1, 1)
    assert "over the 1024 KiB limit" in problem.message


def test_file_of_exactly_one_mib_is_read(tmp_path):
    path = tmp_path / "infra.yaml"
    head = b"a: 1\n"
    path.write_bytes(head + b"#" * (loader.MAX_FILE_BYTES - len(head)))
    assert os.path.getsize(path) == loader.MAX_FILE_BYTES
    assert loader.load(path).data == {"a": 1}


def test_one_byte_over_the_limit(tmp_path):
    path = tmp_path / "infra.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * (loader.MAX_FILE_BYTES - 4))
    problem = load_problem(path)
    assert "limit" in problem.message
