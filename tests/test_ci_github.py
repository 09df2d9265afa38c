"""`levels-tf ci github`: the GitHub Actions workflows generated from infra.yaml.

The generated files are compared with golden copies (`--update-golden`
rewrites them), validated against GitHub's published workflow schema by
check-jsonschema run as a program, and read as data: pinned actions, least
permissions, no stored keys, production behind its environment, apply never
planning, and jobs in the waves of the stack graph. One slow test runs the
pull request's plan job for one stack, its very `run:` scripts, against the
emulator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from levels_tf import ci_github, git_changes, names, scheduler
from levels_tf.errors import UsageError
from levels_tf.stacks import stacks
from levels_tf.validation import load_config

from .conftest import REFERENCE, ROOT, copy_reference, require_module, require_tool

GOLDEN = Path(__file__).resolve().parent / "ci_github"
SMALL = ROOT / "tests" / "configs" / "rehearsal-small" / "infra.yaml"
CASES = {"reference": REFERENCE, "rehearsal-small": SMALL}
SHA_PIN = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def _workflows(config: Path) -> dict[str, str]:
    return ci_github.workflows(load_config(config).infra)


def _data(text: str) -> dict:
    """A workflow as data; PyYAML reads the key `on` as True, GitHub as "on"."""
    data = yaml.safe_load(text)
    data["on"] = data.pop(True)
    return data


def _steps(workflow: dict):
    """(job id, job, step) of every step of `workflow`."""
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_workflows_are_the_golden_ones(case, update_golden):
    files = _workflows(CASES[case])
    folder = GOLDEN / case
    if update_golden:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{case}/{name}"


def _check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    require_module("check_jsonschema")
    argv = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run(
        [*argv, *map(str, paths)], capture_output=True, text=True, timeout=120, check=False
    )


def test_every_workflow_is_valid_against_githubs_schema(tmp_path):
    paths = []
    for case, config in CASES.items():
        for name, text in _workflows(config).items():
            path = tmp_path / case / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            paths.append(path)
    result = _check_jsonschema(*paths)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same check refuses a job without a runner.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (tmp_path / "reference" / ci_github.DRIFT).read_text().replace("runs-on: ubuntu-latest", "")
    )
    result = _check_jsonschema(broken)
    assert result.returncode != 0, result.stdout


def test_every_action_is_pinned_to_a_commit_with_its_version_beside_it():
    for action in ci_github.ACTIONS.values():
        assert re.fullmatch(r"[0-9a-f]{40}", action.sha), action
        assert re.fullmatch(r"v\d+\.\d+\.\d+", action.version), action
    pinned = {(a.repository, a.sha, a.version) for a in ci_github.ACTIONS.values()}
    for case, config in CASES.items():
        for name, text in _workflows(config).items():
            lines = [line for line in text.splitlines() if re.match(r"^\s*(- )?uses:", line)]
            assert lines, name
            for line in lines:
                match = SHA_PIN.match(line)
                assert match, f"{case}/{name}: {line}"
                assert match.groups() in pinned, line


def test_every_job_asks_for_the_least_permissions():
    """Nothing at the top; id-token only where a role is assumed; write only where written."""
    allowed = {
        "contents": {"read"},
        "id-token": {"write"},
        "actions": {"read"},
        "pull-requests": {"read", "write"},
        "issues": {"write"},
    }
    for name, text in _workflows(REFERENCE).items():
        workflow = _data(text)
        assert workflow["permissions"] == {}, name
        for job_id, job in workflow["jobs"].items():
            permissions = job["permissions"]
            assert isinstance(permissions, dict), (name, job_id)
            steps = [s.get("uses", "") for s in job["steps"]]
            assumes = any(u.startswith("aws-actions/configure-aws-credentials@") for u in steps)
            assert (permissions.get("id-token") == "write") == assumes, (name, job_id)
            for scope, level in permissions.items():
                if (scope, level) == ("contents", "write"):
                    assert job_id == "bake", (name, job_id)  # it pushes the lock's branch
                    continue
                assert level in allowed[scope], (name, job_id, scope, level)
            if permissions.get("pull-requests") == "write":
                assert job_id in ("comment", "bake"), (name, job_id)
            if "issues" in permissions:
                assert name == ci_github.DRIFT and job_id == "report"


def test_no_stored_aws_keys_and_no_secret_but_the_pull_request_token():
    for case, config in CASES.items():
        for name, text in _workflows(config).items():
            for word in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"):
                assert word not in text, (case, name, word)
            assert set(re.findall(r"secrets\.(\w+)", text)) <= {ci_github.PR_TOKEN_SECRET}
            workflow = _data(text)
            for _job, _, step in _steps(workflow):
                if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
                    assert set(step["with"]) == {
                        "role-to-assume",
                        "aws-region",
                        "role-session-name",
                    }


def test_run_scripts_hold_no_expression():
    """Values reach the scripts through env, never pasted into the shell text."""
    for case, config in CASES.items():
        for name, text in _workflows(config).items():
            for job_id, _, step in _steps(_data(text)):
                assert not EXPRESSION.search(step.get("run", "")), (case, name, job_id)


def _role_jobs(workflow: dict):
    """(job id, job, role ARN) of every job assuming a role."""
    for job_id, job, step in _steps(workflow):
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
            yield job_id, job, step["with"]["role-to-assume"]


def test_plan_jobs_assume_the_plan_role_apply_jobs_the_apply_role():
    """Plan and drift read (tf-plan), apply and bake change (tf-apply); a
    production pull request's plan waits for no environment, its apply does."""
    infra = load_config(REFERENCE).infra
    roles = {names.tf_plan_role_name(infra, g): (g, "plan") for g in infra.vpc_groups} | {
        names.tf_apply_role_name(infra, g): (g, "apply") for g in infra.vpc_groups
    }
    seen: dict[tuple[str, bool], int] = {}
    for name, text in _workflows(REFERENCE).items():
        for job_id, job, arn in _role_jobs(_data(text)):
            prefix = "arn:aws:iam::${{ vars.AWS_ACCOUNT_ID }}:role/"
            assert arn.startswith(prefix), arn
            group, role = roles[arn[len(prefix) :]]
            kind = job_id.split("-", 1)[0]
            assert (
                role == {"plan": "plan", "drift": "plan", "apply": "apply", "bake": "apply"}[kind]
            ), (name, job_id, arn)
            if kind in ("plan", "apply"):
                assert job_id.split("-", 2)[2] == group, (name, job_id)
            production = infra.vpc_groups[group].production
            if production and kind != "plan":
                assert job["environment"] == "production", (name, job_id)
            else:
                assert "environment" not in job, (name, job_id)
            seen[kind, production] = seen.get((kind, production), 0) + 1
    # Plan waves, apply waves and drift of both groups; bake in nonprod.
    assert set(seen) == {
        ("plan", True),
        ("plan", False),
        ("apply", True),
        ("apply", False),
        ("drift", True),
        ("drift", False),
        ("bake", False),
    }


def _jq_sets(job: dict) -> dict[str, list[str]]:
    """Per wave job, the stacks the `select` step lets into its matrix."""
    script = next(s["run"] for s in job["steps"] if s.get("id") == "select")
    return {
        job_id: re.findall(r'"([^"]+)"', inside)
        for job_id, inside in re.findall(r'echo "([\w-]+)=\$\(jq -c .*?IN\(([^)]*)\)', script)
    }


def _ancestors(jobs: dict, job_id: str) -> set[str]:
    needs = jobs[job_id].get("needs", [])
    needs = [needs] if isinstance(needs, str) else needs
    return set(needs).union(*(_ancestors(jobs, n) for n in needs))


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_and_apply_jobs_follow_the_stack_graph(case):
    infra = load_config(CASES[case]).infra
    ordered = stacks(infra)
    files = ci_github.workflows(infra)
    for file, first in ((ci_github.PULL_REQUEST, "affected"), (ci_github.APPLY, "reviewed-plans")):
        jobs = _data(files[file])["jobs"]
        members = _jq_sets(jobs[first])
        owner = {stack: job for job, names_ in members.items() for stack in names_}
        assert sorted(owner) == sorted(s.name for s in ordered), file  # each stack in one job
        assert len(owner) == sum(len(v) for v in members.values())
        for job_id in members:
            assert set(jobs[first]["outputs"]) >= {job_id}
            matrix = jobs[job_id]["strategy"]["matrix"]["stack"]
            assert matrix == f"${{{{ fromJSON(needs.{first}.outputs.{job_id}) }}}}"
        for stack in ordered:
            for dependency in stack.depends_on:
                assert owner[dependency] in _ancestors(jobs, owner[stack.name]), (stack.name, file)
        waves = scheduler.waves(ordered)
        assert {int(job.split("-")[1]) for job in members} == set(range(1, len(waves) + 1))


def test_apply_applies_the_reviewed_plans_and_never_plans():
    workflow = _data(_workflows(REFERENCE)[ci_github.APPLY])
    assert set(workflow["on"]) == {"push"}
    for job_id, job, step in _steps(workflow):
        run = step.get("run", "")
        assert not re.search(r"^\s*(levels-tf (plan|drift)|terraform\b.*\bplan)\b", run, re.M), (
            job_id
        )
        if "levels-tf apply" in run:
            downloads = [
                s
                for s in job["steps"]
                if s.get("uses", "").startswith("actions/download-artifact@")
            ]
            assert [d["with"]["name"] for d in downloads] == ["plan-${{ matrix.stack }}"]
            assert downloads[0]["with"]["run-id"] == "${{ needs.reviewed-plans.outputs.run-id }}"
            assert job["strategy"]["fail-fast"] is False
    pull_request = _data(_workflows(REFERENCE)[ci_github.PULL_REQUEST])
    uploads = [
        step["with"]["name"]
        for _, _, step in _steps(pull_request)
        if step.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert "plan-${{ matrix.stack }}" in uploads and "planned-tree" in uploads


def test_bake_watches_each_images_template_and_scripts():
    infra = load_config(REFERENCE).infra
    workflow = _data(_workflows(REFERENCE)[ci_github.BAKE])
    paths = set(workflow["on"]["push"]["paths"])
    for name, image in infra.images.items():
        assert {f"packer/{name}.pkr.hcl", *image.scripts} <= paths
    script = next(s["run"] for _, _, s in _steps(workflow) if s.get("id") == "changed")
    assert script.count("images+=(") == len(infra.images)


def test_comment_and_drift_reports_stay_within_githubs_limit():
    for file in (ci_github.PULL_REQUEST, ci_github.DRIFT):
        text = _workflows(REFERENCE)[file]
        assert f"const limit = {ci_github.COMMENT_LIMIT};" in text
        assert "body.slice(0, limit - note.length) + note" in text


# The command: writing, --check, and what it never overwrites.


def test_ci_github_writes_then_checks_then_refuses_a_foreign_file(run, reference_copy):
    require_tool("git")
    _git(reference_copy.parent, "init", "-q")
    folder = reference_copy.parent / ".github" / "workflows"
    result = run("ci", "github", config=reference_copy)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(ci_github.FILES)
    assert "warning" not in result.output  # the plan role trusts every pull request
    result = run("ci", "github", "--check", config=reference_copy)
    assert result.exit_code == 0, result.output
    drift = folder / ci_github.DRIFT
    drift.write_text(drift.read_text() + "# edited\n")
    result = run("ci", "github", "--check", config=reference_copy)
    assert (
        result.exit_code == 1 and "+# edited" not in result.output and "-# edited" in result.output
    )
    mine = folder / ci_github.BAKE
    mine.write_text("name: ours\n")
    result = run("ci", "github", config=reference_copy)
    assert result.exit_code == 1 and "was not generated by levels-tf" in result.output
    assert mine.read_text() == "name: ours\n"
    assert drift.read_text().endswith("# edited\n")  # nothing written


COMMIT = "0123456789abcdef0123456789abcdef01234567"
SOURCES = {
    f"git+https://github.com/acme/levels-tf@{COMMIT}": "levels-tf{extras} @ git+https://github.com/acme/levels-tf@"
    + COMMIT,
    "https://pkgs.example.com/py/levels_tf-0.1.0-py3-none-any.whl#sha256="
    + "ab" * 32: "levels-tf{extras} @ "
    "https://pkgs.example.com/py/levels_tf-0.1.0-py3-none-any.whl#sha256=" + "ab" * 32,
}


def _with_source(reference_copy: Path, source: str) -> None:
    text = reference_copy.read_text(encoding="utf-8")
    anchor = "    repository: acme/levels    # OWNER/REPO whose workflows deploy\n"
    assert anchor in text
    reference_copy.write_text(
        text.replace(anchor, anchor + f"    levels_tf: '{source}'\n"), encoding="utf-8"
    )


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_workflows_install_levels_tf_from_the_pinned_source_infra_yaml_names(
    run, reference_copy, source
):
    from packaging.requirements import Requirement

    _with_source(reference_copy, source)
    installs = set()
    for text in ci_github.workflows(load_config(reference_copy).infra).values():
        for _job, _, step in _steps(_data(text)):
            if step.get("name") == "Install levels-tf":
                installs.add(step["run"])
    assert installs == {
        f'python -m pip install "{SOURCES[source].format(extras=extras)}"'
        for extras in ("", "[scan]")
    }
    for extras in ("", "[scan]"):  # what pip reads: the name, the extra, the URL
        parsed = Requirement(SOURCES[source].format(extras=extras))
        assert (parsed.name, parsed.url) == ("levels-tf", source)
        assert parsed.extras == ({"scan"} if extras else set())
    result = run("ci", "github", "--out", str(reference_copy.parent / "wf"), config=reference_copy)
    assert result.exit_code == 0, result.output
    assert "from PyPI" not in result.stderr


def test_without_a_source_the_workflows_install_this_version_from_pypi_and_say_so(
    run, reference_copy
):
    from levels_tf import __version__

    result = run("ci", "github", "--out", str(reference_copy.parent / "wf"), config=reference_copy)
    assert result.exit_code == 0, result.output
    assert f"note: the workflows install levels-tf=={__version__} from PyPI" in result.stderr


@pytest.mark.parametrize(
    "source",
    [
        "git+https://github.com/acme/levels-tf@main",  # a branch moves: not pinned
        "git+https://github.com/acme/levels-tf@" + COMMIT[:12],  # a short commit
        "https://pkgs.example.com/levels_tf-0.1.0-py3-none-any.whl",  # no hash
        "http://pkgs.example.com/levels_tf-0.1.0-py3-none-any.whl#sha256=" + "ab" * 32,
        f'git+https://github.com/acme/levels-tf@{COMMIT}" && curl evil',
        "levels-tf==0.1.0",
    ],
)
def test_a_source_that_is_not_pinned_is_refused_at_its_line(run, reference_copy, source):
    _with_source(reference_copy, source.replace("'", "''"))
    result = run("validate", config=reference_copy)
    assert result.exit_code == 2, result.output
    assert (
        "ci.github.levels_tf: " in result.stderr
        and "not a pinned levels-tf source" in result.stderr
    )
    assert result.stderr.startswith(f"{reference_copy}:117:")


def test_a_branch_name_that_would_break_out_of_the_workflow_is_refused(run, reference_copy):
    for branch in ('main"; curl x', "a..b", "-x", "main]"):
        result = run("ci", "github", "--default-branch", branch, config=reference_copy)
        assert result.exit_code == 2 and "--default-branch" in result.output, branch
    assert not (reference_copy.parent / ".github").exists()
    result = run("ci", "github", "--default-branch", "release/v2", config=reference_copy)
    assert result.exit_code == 0, result.output
    text = (reference_copy.parent / ".github" / "workflows" / ci_github.APPLY).read_text()
    assert _data(text)["on"]["push"]["branches"] == ["release/v2"]


def test_ci_github_on_an_invalid_file_writes_nothing(run, tmp_path):
    config = tmp_path / "infra.yaml"
    config.write_text("project: x\n")
    result = run("ci", "github", config=config)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / ".github").exists()


def _schema_valid(folder: Path) -> None:
    result = _check_jsonschema(*sorted(folder.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def _artifact_paths(workflow: dict) -> list[str]:
    """The `path` of every artifact step of a job that checks the repository out."""
    paths = []
    for _job_id, job, step in _steps(workflow):
        checks_out = any(s.get("uses", "").startswith("actions/checkout@") for s in job["steps"])
        if checks_out and "-artifact@" in step.get("uses", ""):
            paths.append(step["with"]["path"])
    return paths


def test_infra_yaml_in_a_subfolder_gets_workflows_at_the_repository_root(run, tmp_path):
    """GitHub reads .github/workflows at the repository's root only and starts
    each step there: the jobs run in infra.yaml's folder, and the paths GitHub
    reads itself start at the root."""
    require_tool("git")
    repo = tmp_path / "repo"
    config = copy_reference(repo / "infra" / "platform")
    _git(repo, "init", "-q")
    result = run("ci", "github", config=config)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert not (config.parent / ".github").exists()
    folder = repo / ci_github.FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(ci_github.FILES)
    _schema_valid(folder)
    infra = load_config(config).infra
    for name in ci_github.FILES:
        workflow = _data((folder / name).read_text())
        assert workflow["defaults"] == {"run": {"working-directory": "infra/platform"}}, name
        for path in _artifact_paths(workflow):
            assert path.startswith("infra/platform/"), (name, path)
        # The jobs that gather summaries without a checkout read them where they put them.
        for job in workflow["jobs"].values():
            if not any(s.get("uses", "").startswith("actions/checkout@") for s in job["steps"]):
                assert all("run" not in step for step in job["steps"]), name
    bake = _data((folder / ci_github.BAKE).read_text())
    paths = bake["on"]["push"]["paths"]
    assert all(path.startswith("infra/platform/") for path in paths), paths
    for image_name, image in infra.images.items():
        expected = {f"packer/{image_name}.pkr.hcl", *image.scripts}
        assert {f"infra/platform/{path}" for path in expected} <= set(paths)
    # The same text wherever levels-tf runs in the repository, so the
    # pull request's `ci github --check` (run in infra.yaml's folder) agrees.
    result = run("ci", "github", "--check", config=config)
    assert result.exit_code == 0, result.output
    assert ci_github.workflows(infra, folder="infra/platform") == {
        p.name: p.read_text() for p in folder.iterdir()
    }
    # --out still decides where the files go; the jobs still run in infra.yaml's folder.
    elsewhere = tmp_path / "elsewhere"
    assert run("ci", "github", "--out", str(elsewhere), config=config).exit_code == 0
    assert (elsewhere / ci_github.PULL_REQUEST).read_text() == (
        folder / ci_github.PULL_REQUEST
    ).read_text()


def test_a_configuration_not_named_infra_yaml_gets_a_warning(run, reference_copy):
    """The jobs run levels-tf without -c: they would read infra.yaml instead."""
    renamed = reference_copy.rename(reference_copy.parent / "platform.yaml")
    result = run("ci", "github", config=renamed)
    assert result.exit_code == 0, result.output
    assert "warning: platform.yaml: the workflows run levels-tf" in result.stderr


def test_a_folder_name_the_workflows_cannot_carry_is_refused():
    infra = load_config(REFERENCE).infra
    for folder in ("my platform", "a/../b", "x*", 'q"'):
        with pytest.raises(UsageError, match="cannot carry"):
            ci_github.workflows(infra, folder=folder)


def test_infra_yaml_in_no_git_repository_gets_workflows_beside_it_and_a_warning(
    run, reference_copy
):
    if git_changes.repository_root(reference_copy.parent) is not None:
        pytest.skip("the temporary folder is inside a git repository")
    import json

    result = run("ci", "github", "--json", config=reference_copy)
    assert result.exit_code == 0, result.output
    folder = reference_copy.parent / ci_github.FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(ci_github.FILES)
    assert "warning:" in result.stderr and "no git repository" in result.stderr
    document = json.loads(result.stdout)
    assert any("no git repository" in w for w in document["warnings"])
    assert "defaults" not in _data((folder / ci_github.PULL_REQUEST).read_text())


NO_IMAGES = """\
project: demo
region: eu-west-1
vpc_groups:
  lab:
    cidr: 10.9.0.0/16
    azs: 2
    environments: [one]
ci:
  github:
    repository: acme/demo
    subjects:
      lab: {branches: [main]}
"""


def test_a_minimal_configuration_without_images_gets_valid_workflows_and_no_bake(run, tmp_path):
    """Nothing to bake: no bake workflow, and none left behind from before
    (removed, and --check calls it stale); a file of the user's is kept."""
    require_tool("git")
    config = tmp_path / "infra.yaml"
    config.write_text(NO_IMAGES)
    _git(tmp_path, "init", "-q")
    infra = load_config(config).infra
    assert not infra.images
    files = ci_github.workflows(infra)
    assert sorted(files) == sorted(set(ci_github.FILES) - {ci_github.BAKE})
    for folder in ("", "platform"):
        out = tmp_path / "rendered" / (folder or "root")
        out.mkdir(parents=True)
        for name, text in ci_github.workflows(infra, folder=folder).items():
            (out / name).write_text(text)
        _schema_valid(out)

    folder = tmp_path / ci_github.FOLDER
    folder.mkdir(parents=True)
    stale = folder / ci_github.BAKE
    stale.write_text(_workflows(REFERENCE)[ci_github.BAKE])  # generated while it had images
    result = run("ci", "github", "--check", config=config)
    assert result.exit_code == 1 and f"a/{ci_github.BAKE}" in result.output, result.output
    result = run("ci", "github", config=config)
    assert result.exit_code == 0 and f"{ci_github.BAKE}: removed" in result.output, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    assert run("ci", "github", "--check", config=config).exit_code == 0
    stale.write_text("name: ours\n")
    assert run("ci", "github", "--check", config=config).exit_code == 0
    assert run("ci", "github", config=config).exit_code == 0
    assert stale.read_text() == "name: ours\n"


# The plan job's own scripts, run against the emulator.


def _git(folder: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    result = subprocess.run(
        ["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def _working_directory(workflow: dict, job_id: str) -> str:
    """Where GitHub runs the `run:` steps of job `job_id`, relative to the
    checkout: the job's `defaults`, else the workflow's, else the checkout."""
    for defaults in (workflow["jobs"][job_id].get("defaults", {}), workflow.get("defaults", {})):
        if "working-directory" in defaults.get("run", {}):
            return defaults["run"]["working-directory"]
    return "."


def _run_steps(
    workflow: dict, job_id: str, folder: Path, values: dict[str, str], bin_dir: Path
) -> dict[str, str]:
    """Run the `run:` steps of job `job_id` as GitHub does (bash -e, in the
    working directory the workflow states under the checkout `folder`), with
    the job's and step's env, GitHub expressions replaced by `values`;
    returns what the steps wrote to $GITHUB_OUTPUT. The install steps are
    left out: the shim in `bin_dir` is this checkout's levels-tf, as pip would install it."""
    job = workflow["jobs"][job_id]
    cwd = folder / _working_directory(workflow, job_id)
    output, summary = folder / ".github-output", folder / ".github-summary"
    output.write_text("")

    def resolve(value: str) -> str:
        return EXPRESSION.sub(lambda m: values[m.group(0)], str(value))

    for step in job["steps"]:
        if "run" not in step or step["run"].startswith(("python -m pip ", "python -m venv ")):
            continue  # an action (checkout, setup, credentials, artifacts), or an install
        env = dict(os.environ)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        env.update(
            {k: resolve(v) for k, v in {**job.get("env", {}), **step.get("env", {})}.items()}
        )
        env.update(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
        script = folder / ".step.sh"
        script.write_text(step["run"])
        result = subprocess.run(
            ["bash", "-e", str(script)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, f"{step.get('name')}:\n{result.stdout}\n{result.stderr}"
    return dict(line.split("=", 1) for line in output.read_text().splitlines() if line)


@pytest.mark.terraform
@pytest.mark.slow
def test_the_pull_request_plan_job_runs_its_scripts_against_the_emulator(
    tmp_path, run, aws_env, terraform_env, monkeypatch
):
    require_tool("git")
    require_tool("jq")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", terraform_env["TF_CLI_CONFIG_FILE"])
    # infra.yaml in a subfolder of the repository, as in a monorepo.
    folder = tmp_path / "repo"
    platform = folder / "platform"
    shutil.copytree(SMALL.parent, platform)
    config = platform / "infra.yaml"
    _git(folder, "init", "-q", "-b", "main")
    # The jobs run `levels-tf`: this checkout's, as pip would install it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "levels-tf"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m levels_tf "$@"\n')
    shim.chmod(0o755)
    assert (
        run("render", "--aws-endpoint", aws_env, "--backend", "local", config=config).exit_code == 0
    )
    assert run("ci", "github", config=config).exit_code == 0  # committed with the tree
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "base")
    base = _git(folder, "rev-parse", "HEAD")
    # The pull request: a change to the shared stack alone.
    config.write_text(config.read_text().replace("retention_days: 30", "retention_days: 60"))
    assert run("render", config=config).exit_code == 0
    _git(folder, "commit", "-q", "-am", "change")

    workflow = _data((folder / ci_github.FOLDER / ci_github.PULL_REQUEST).read_text())
    jobs = workflow["jobs"]
    values = {"${{ github.event.pull_request.base.sha }}": base}
    _run_steps(workflow, "validate", folder, values, bin_dir)
    selected = _run_steps(workflow, "affected", folder, values, bin_dir)
    assert selected == {"plan-1-main": '["main-shared"]', "plan-2-main": '["staging","preview"]'}
    assert (platform / "planned" / "tree").read_text().strip() == _git(
        folder, "rev-parse", "HEAD^{tree}"
    )

    stack = "main-shared"
    _run_steps(workflow, "plan-1-main", folder, {**values, "${{ matrix.stack }}": stack}, bin_dir)
    # Every path the upload steps name exists: the saved plan (changes on an
    # empty emulator) and the markdown summary the comment combines.
    for step in jobs["plan-1-main"]["steps"]:
        if step.get("uses", "").startswith("actions/upload-artifact@"):
            path = step["with"]["path"].replace("${{ matrix.stack }}", stack)
            assert (folder / path).is_file(), path
    summary = (platform / "summaries" / f"plan-{stack}.md").read_text()
    added = re.search(rf"^\| {stack} \| (\d+) \|", summary, re.M)
    assert added and int(added.group(1)) > 0, summary
    # An environment waits for its shared stack's first apply: no plan to keep, no failure.
    staging = {**values, "${{ matrix.stack }}": "staging"}
    _run_steps(workflow, "plan-2-main", folder, staging, bin_dir)
    assert not (platform / "stacks" / "staging" / "levels-tf.tfplan").exists()


def test_every_run_script_passes_shellcheck(tmp_path):
    """GitHub runs each `run:` with bash -e; shellcheck reads them as bash."""
    shellcheck = require_tool("shellcheck")
    scripts = []
    for case, config in CASES.items():
        for name, text in _workflows(config).items():
            for number, (job_id, _, step) in enumerate(_steps(_data(text))):
                if "run" in step:
                    path = tmp_path / f"{case}-{name}-{job_id}-{number}.sh"
                    path.write_text("#!/bin/bash -e\n" + step["run"])
                    scripts.append(str(path))
    result = subprocess.run(
        [shellcheck, "-s", "bash", *scripts], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


# The github-script steps, run by node as actions/github-script runs them: the
# script is the body of an async function of (github, context, core, require).
HARNESS = """
const fs = require('fs');
const calls = [];
const record = (verb) => async (args) => { calls.push([verb, args]); return {}; };
const github = {
  paginate: async () => JSON.parse(process.env.EXISTING),
  rest: { issues: {
    listComments: 'listComments', listForRepo: 'listForRepo',
    createComment: record('createComment'), updateComment: record('updateComment'),
    create: record('create'), update: record('update'),
  } },
};
const context = { serverUrl: 'https://github.com', repo: { owner: 'o', repo: 'r' }, runId: 7, issue: { number: 5 } };
const core = { setFailed: (message) => calls.push(['setFailed', message]) };
const body = fs.readFileSync(process.argv[2], 'utf8');
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('github', 'context', 'core', 'require', body)(github, context, core, require)
  .then(() => console.log(JSON.stringify(calls)));
"""


def _github_script(job: dict, folder: Path, env: dict[str, str], existing: list) -> list:
    """Run the github-script step of `job` in `folder`; the API calls it made."""
    import json

    node = require_tool("node")
    step = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/github-script@"))
    (folder / "harness.js").write_text(HARNESS)
    (folder / "script.js").write_text(step["with"]["script"])
    step_env = {k: v for k, v in step["env"].items() if "${{" not in v}
    result = subprocess.run(
        [node, "harness.js", "script.js"],
        cwd=folder,
        env={**os.environ, **step_env, **env, "EXISTING": json.dumps(existing)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_pull_request_comment_is_one_updated_comment_within_githubs_limit(tmp_path):
    import json

    job = _data(_workflows(REFERENCE)[ci_github.PULL_REQUEST])["jobs"]["comment"]
    summaries = tmp_path / "summaries"
    summaries.mkdir()
    (summaries / "plan-dev.md").write_text("### dev\n" + "x" * 40000)
    (summaries / "plan-production-shared.md").write_text("### production-shared\n" + "y" * 40000)
    (summaries / "check.md").write_text("### checks\n")
    results = json.dumps({"validate": {"result": "success"}, "check": {"result": "success"}})
    marker = ci_github.COMMENT_MARKER
    ours = {"id": 11, "user": {"type": "Bot"}, "body": f"{marker}\nold"}
    someone = {"id": 12, "user": {"type": "User"}, "body": f"quoting {marker}"}
    calls = _github_script(job, tmp_path, {"RESULTS": results}, [someone, ours])
    assert [verb for verb, _ in calls] == ["updateComment"]
    args = calls[0][1]
    assert args["comment_id"] == 11
    body = args["body"]
    assert len(body) <= ci_github.COMMENT_LIMIT and body.startswith(marker)
    assert "Cut to GitHub's 65536-character comment limit" in body
    # In dependency order, the checks first: production-shared before dev.
    assert body.index("### checks") < body.index("### production-shared") < body.index("### dev")
    assert "y" * 40000 in body and "x" * 30000 not in body  # dev's summary is the one cut
    calls = _github_script(job, tmp_path, {"RESULTS": results}, [someone])
    assert [verb for verb, _ in calls] == ["createComment"]
    assert calls[0][1]["issue_number"] == 5


def test_drift_opens_updates_and_closes_one_issue(tmp_path):
    import json

    job = _data(_workflows(REFERENCE)[ci_github.DRIFT])["jobs"]["report"]
    results = json.dumps({"drift-production": {"result": "success"}})
    marker = ci_github.DRIFT_MARKER
    summaries = tmp_path / "summaries"
    summaries.mkdir()
    (summaries / "drift-production.md").write_text("### drift: production\n")
    (summaries / "drift-production.drifted").write_text("drifted\n")
    calls = _github_script(job, tmp_path, {"RESULTS": results}, [])
    assert [verb for verb, _ in calls] == ["create"]
    assert marker in calls[0][1]["body"] and "### drift: production" in calls[0][1]["body"]
    issue = {"number": 3, "body": f"{marker}\nbefore"}
    calls = _github_script(job, tmp_path, {"RESULTS": results}, [issue])
    assert [(verb, args.get("issue_number")) for verb, args in calls] == [("update", 3)]
    (summaries / "drift-production.drifted").unlink()
    calls = _github_script(job, tmp_path, {"RESULTS": results}, [issue])
    assert [verb for verb, _ in calls] == ["createComment", "update"]
    assert calls[1][1]["state"] == "closed"
