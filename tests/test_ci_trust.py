"""Who may assume each VPC group's CI role: the configuration's rules, the parsed
Terraform of every configuration, and the trust policy Terraform itself resolves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from levels_tf import github_oidc, writer
from levels_tf.context import github_trust
from levels_tf.github_oidc import REPOSITORY_PLACEHOLDER
from levels_tf.model import GithubSubject
from levels_tf.render import render
from levels_tf.validation import load_config

from .conftest import REFERENCE, emulator_provider
from .planned import terraform
from .test_model_rules import DELETE, line_of, make, only, problems, validate
from .test_security_invariants import module_calls, parse

TESTS = Path(__file__).resolve().parent
CONFIGS = (
    {"reference": REFERENCE}
    | {p.parent.name: p for p in sorted(TESTS.glob("golden/*/infra.yaml"))}
    | {p.parent.name: p for p in sorted(TESTS.glob("configs/*/infra.yaml"))}
)
PRODUCTION = {"vpc_groups.prod.production": True}


# --- the subjects -------------------------------------------------------------------


def test_subjects_follow_githubs_default_formats():
    repository = "acme/shop"
    assert github_oidc.subjects(repository, GithubSubject(environment="production")) == [
        "repo:acme/shop:environment:production"
    ]
    assert github_oidc.subjects(repository, GithubSubject(branches=["main", "release/2.x"])) == [
        "repo:acme/shop:ref:refs/heads/main",
        "repo:acme/shop:ref:refs/heads/release/2.x",
    ]
    assert github_oidc.subjects(repository, GithubSubject(tags=["v1.0.0"])) == [
        "repo:acme/shop:ref:refs/tags/v1.0.0"
    ]


# --- the rules ----------------------------------------------------------------------


def test_a_configuration_without_ci_is_refused_at_its_vpc_groups_with_the_fix():
    text = make({"ci": DELETE})
    problem = only(text)
    assert (problem.line, problem.path) == (line_of(text, "vpc_groups:"), "ci")
    assert "no one may assume the CI roles" in problem.message
    assert "add ci.github" in problem.message and "ci.assumed_by" in problem.message


def test_a_ci_block_that_trusts_no_one_is_refused_at_its_key():
    text = make({"ci": {"assumed_by": []}})
    problem = only(text)
    assert (problem.line, problem.column) == (line_of(text, "ci:"), 1)
    assert "add ci.github" in problem.message


def test_an_account_root_is_refused_and_role_arns_are_enough():
    text = make({"ci": {"assumed_by": ["arn:aws:iam::123456789012:root"]}})
    problem = only(text)
    assert problem.path == "ci.assumed_by[0]"
    assert "account root" in problem.message and "use ci.github" in problem.message
    roles = validate(make({"ci": {"assumed_by": ["arn:aws:iam::123456789012:role/ci/runner"]}}))
    assert roles.infra.ci.github is None
    user = only(make({"ci": {"assumed_by": ["arn:aws:iam::123456789012:user/bob"]}}))
    assert "not an IAM role ARN" in user.message


def test_every_group_needs_a_subject_unless_roles_are_trusted():
    text = make({"ci.github.subjects": {"prod": {"environment": "production"}}})
    problem = only(text)
    assert problem.path == "ci.github.subjects"
    assert problem.line == line_of(text, "subjects:")
    assert "add ci.github.subjects.nonprod" in problem.message
    both = make(
        {
            "ci.github.subjects": {"prod": {"environment": "production"}},
            "ci.assumed_by": ["arn:aws:iam::123456789012:role/runner"],
        }
    )
    assert validate(both).infra.ci.github is not None


ROLES = {"ci.assumed_by": ["arn:aws:iam::123456789012:role/runner"]}


@pytest.mark.parametrize("roles", [{}, ROLES], ids=["alone", "beside role ARNs"])
@pytest.mark.parametrize("subjects", [DELETE, {}], ids=["missing", "empty"])
def test_a_github_trust_without_subjects_is_refused_never_dropped(subjects, roles):
    """A ci.github naming no subject would trust no workflow run: refused at
    its place, even when role ARNs make the roles trust someone anyway."""
    text = make({"ci.github.subjects": subjects, **roles})
    problem = only(text)
    assert problem.path == "ci.github.subjects"
    if subjects is DELETE:
        assert (problem.line, problem.message) == (
            line_of(text, "github:"),
            "required key is missing",
        )
    else:
        assert problem.line == line_of(text, "subjects:")
        assert problem.message.startswith("no subject: name, per VPC group, the GitHub environment")


def test_every_github_trust_rendered_has_a_sub_condition():
    """Whatever validates, each group's rendered GitHub trust names subjects:
    a ci.github never becomes a trust without a `sub` condition, nor vanishes."""
    for text in (make(), make(ROLES), make({"ci.github.subjects.nonprod": DELETE, **ROLES})):
        infra = validate(text).infra
        trusts = {group: github_trust(infra, group) for group in infra.vpc_groups}
        assert any(trusts.values()), "ci.github given, yet no group trusts GitHub"
        for group, trust in trusts.items():
            if trust is not None:
                assert trust["subjects"], group
                assert all(s.startswith("repo:acme/shop:") for s in trust["subjects"])


@pytest.mark.parametrize(
    "repository",
    [REPOSITORY_PLACEHOLDER, "<org>/infra", "acme/<repo>", "OWNER/REPO", "owner/repository"],
)
def test_a_placeholder_repository_is_refused_with_what_to_write(repository):
    text = make({"ci.github.repository": repository})
    problem = only(text)
    assert (problem.path, problem.line) == ("ci.github.repository", line_of(text, "repository:"))
    assert problem.message == (
        f"{repository!r} is a placeholder: write the GitHub repository whose workflows deploy, "
        "as OWNER/REPO (its CI runs may then assume the CI roles)"
    )


@pytest.mark.parametrize(
    "subject, bad",
    [
        ({"branches": ["main", "release/*"]}, "release/*"),
        ({"tags": ["v?"]}, "v?"),
        ({"environment": "prod*"}, "prod*"),
    ],
)
def test_a_production_subject_has_no_wildcard(subject, bad):
    text = make({**PRODUCTION, "ci.github.subjects.prod": subject})
    problem = only(text)
    assert problem.path.startswith("ci.github.subjects.prod.")
    assert f"'{bad}': group 'prod' is production" in problem.message
    assert problem.line == line_of(text, bad)
    # The same subject is fine outside production.
    assert validate(make({"ci.github.subjects.prod": subject}))


def test_a_subject_names_exactly_one_kind():
    for subject in ({}, {"environment": "production", "branches": ["main"]}):
        problem = only(make({"ci.github.subjects.prod": subject}))
        assert problem.message == "give exactly one of environment, branches or tags"


def test_subjects_of_unknown_groups_are_refused():
    text = make({"ci.github.subjects.prdo": {"branches": ["main"]}})
    problem = only(text)
    assert problem.path == "ci.github.subjects.prdo"
    assert "unknown VPC group 'prdo'; did you mean 'prod'?" in problem.message


@pytest.mark.parametrize(
    "field, value",
    [
        ("ci.github.subjects.nonprod", {"branches": ["refs/heads/main"]}),
        ("ci.github.subjects.nonprod", {"branches": ['main" ']}),
        ("ci.github.subjects.nonprod", {"branches": ["a:b"]}),
        ("ci.github.subjects.nonprod", {"environment": "${x}"}),
        ("ci.github.repository", "acme/shop:ref:refs/heads/*"),
        ("ci.github.repository", "acme"),
        ("ci.github.provider_arn", "arn:aws:iam::123456789012:oidc-provider/gitlab.com"),
    ],
)
def test_names_that_would_change_the_claim_are_refused(field, value):
    found = problems(make({field: value}))
    assert [p.path.startswith(field) for p in found] == [True], found


# --- the parsed Terraform of every configuration -----------------------------------


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def rendered(request):
    config = load_config(CONFIGS[request.param])
    files = render(config)
    # The role's module and each shared stack's call of it: parsing the whole tree takes long.
    ours = {
        p: t for p, t in files.items() if p.startswith("modules/ci-role/") or p.endswith("/ci.tf")
    }
    return config, parse(ours)


def _assume_statements(parsed) -> list[dict]:
    (main,) = [body for path, body in parsed.items() if path == "modules/ci-role/main.tf"]
    (documents,) = [
        block["aws_iam_policy_document"]
        for block in main.get("data", [])
        if "aws_iam_policy_document" in block and "assume" in block["aws_iam_policy_document"]
    ]
    return documents["assume"]["dynamic"]


def test_the_role_trusts_named_roles_and_pinned_github_runs_never_the_account(rendered):
    _, parsed = rendered
    statements = {
        d["statement"]["content"][0]["sid"]: d["statement"] for d in _assume_statements(parsed)
    }
    assert set(statements) == {"TrustedRoles", "GitHubActions"}
    roles = statements["TrustedRoles"]["content"][0]
    assert roles["actions"] == ["sts:AssumeRole"]
    assert roles["principals"] == [{"type": "AWS", "identifiers": "${statement.value}"}]
    github = statements["GitHubActions"]["content"][0]
    assert github["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert github["principals"] == [
        {"type": "Federated", "identifiers": ["${local.github_provider}"]}
    ]
    conditions = {c["variable"]: c for c in github["condition"]}
    assert conditions["token.actions.githubusercontent.com:aud"] == {
        "test": "StringEquals",
        "variable": "token.actions.githubusercontent.com:aud",
        "values": ["sts.amazonaws.com"],
    }
    sub = conditions["token.actions.githubusercontent.com:sub"]
    assert sub["values"] == "${statement.value.subjects}"
    module_text = json.dumps({p: b for p, b in parsed.items() if p.startswith("modules/ci-role/")})
    assert ":root" not in module_text
    assert '"identifiers": ["*"]' not in module_text


def test_each_group_passes_only_its_own_subjects_and_role_arns(rendered):
    config, parsed = rendered
    infra = config.infra
    github = infra.ci.github
    for name, group in infra.vpc_groups.items():
        (call,) = [
            args for label, args in module_calls(parsed, f"{name}-shared") if label == "ci_role"
        ]
        assert call["trusted_role_arns"] == list(infra.ci.assumed_by)
        for arn in call["trusted_role_arns"]:
            assert ":role/" in arn and not arn.endswith(":root") and "*" not in arn
        subject = github.subjects.get(name) if github else None
        if subject is None:
            assert call["github"] is None
            assert call["trusted_role_arns"], f"{name}: its role would trust no one"
            continue
        assert github is not None
        trust = call["github"]
        assert trust["provider_arn"] == github.provider_arn
        assert trust["subjects"] == github_oidc.subjects(github.repository, subject)
        for claim in trust["subjects"]:
            assert claim.startswith(f"repo:{github.repository}:")
            assert claim.split(":", 2)[2].split(":", 1)[0] in ("environment", "ref")
            if group.production:
                assert not github_oidc.has_wildcard(claim), f"{name}: {claim}"


# --- the trust Terraform resolves -------------------------------------------------------

PLANNED = ("two-groups", "heavy-overrides", "six-az")


def _plan_trusts(names: tuple[str, ...], folder: Path, endpoint: str, env: dict) -> dict:
    """Every group's ci-role module call of the configurations `names`, as their
    shared stacks make it, planned against moto in one root (one init, one plan):
    {(configuration, group): the planned role's trust policy}."""
    root = folder / "root"
    calls, labels = [], {}
    for name in names:
        config = load_config(CONFIGS[name])
        files = render(config)
        if not (root / "modules").exists():  # the same module for every configuration
            writer.write(root, {p: t for p, t in files.items() if p.startswith("modules/ci-role/")})
        for group in config.infra.vpc_groups:
            label = f"{name}_{group}"
            labels[label] = (name, group)
            text = files[f"stacks/{group}-shared/ci.tf"]
            calls.append(
                text.replace('module "ci_role"', f'module "{label}"').replace(
                    "../../modules/ci-role", "./modules/ci-role"
                )
            )
    (root / "main.tf").write_text(
        emulator_provider(endpoint, ("iam", "sts")) + "\n".join(calls), encoding="utf-8"
    )
    for command in (
        ("init", "-input=false"),
        ("plan", "-input=false", "-out", "trust.tfplan"),
        ("show", "-json", "trust.tfplan"),
    ):
        done = terraform(env, root, *command)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trusts = {}
    for change in json.loads(done.stdout)["resource_changes"]:
        if change["type"] == "aws_iam_role":
            label = change["module_address"].removeprefix("module.")
            trusts[labels[label]] = json.loads(change["change"]["after"]["assume_role_policy"])
    return trusts


@pytest.mark.terraform
@pytest.mark.slow
def test_the_planned_trust_of_each_group_names_only_its_own_subjects(
    tmp_path, aws_env, terraform_env
):
    trusts = _plan_trusts(PLANNED, tmp_path, aws_env, terraform_env)
    for name in PLANNED:
        infra = load_config(CONFIGS[name]).infra
        github = infra.ci.github
        assert github is not None
        provider = github.provider_arn or github_oidc.provider_arn("aws", "123456789012")
        for group_name, group in infra.vpc_groups.items():
            where = f"{name}: {group_name}"
            statements = trusts[(name, group_name)]["Statement"]
            text = json.dumps(statements)
            assert ":root" not in text and '"*"' not in text, where
            by_sid = {s["Sid"]: s for s in statements}
            roles = list(infra.ci.assumed_by)
            if roles:
                trusted = by_sid.pop("TrustedRoles")
                assert trusted["Action"] == "sts:AssumeRole"
                identifiers = trusted["Principal"]["AWS"]
                listed = [identifiers] if isinstance(identifiers, str) else identifiers
                assert sorted(listed) == sorted(roles), where
            subject = github.subjects.get(group_name)
            if subject is None:
                assert not by_sid, where
                continue
            web = by_sid.pop("GitHubActions")
            assert not by_sid, where
            assert web["Action"] == "sts:AssumeRoleWithWebIdentity"
            assert web["Principal"] == {"Federated": provider}
            wanted = github_oidc.subjects(github.repository, subject)
            wildcard = any(github_oidc.has_wildcard(claim) for claim in wanted)
            assert not (wildcard and group.production), where
            condition = web["Condition"]
            audience = condition["StringEquals"]["token.actions.githubusercontent.com:aud"]
            assert audience == "sts.amazonaws.com", where
            claims = condition["StringLike" if wildcard else "StringEquals"][
                "token.actions.githubusercontent.com:sub"
            ]
            claims = [claims] if isinstance(claims, str) else claims
            assert sorted(claims) == sorted(wanted), where
