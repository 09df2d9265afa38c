"""Cross-field rules: what the schema alone cannot say.

Each rule returns problems rather than raising, so one run reports them all.
`check` runs once on the whole file; `check_environment` on each
environment's effective configuration (after overrides).
"""

from __future__ import annotations

import difflib
import ipaddress

from . import github_oidc, names, regions, subnets, vpc_endpoints
from .errors import Problem
from .loader import Document
from .model import Infra, as_dict

MIN_AZS, MAX_AZS = 2, 6
PRINCIPALS = ("developers", "ci")
RESERVED_BUCKET_CLASSES = ("backup", "logs")
_CALLERS = {"servers": "the servers call", "bastion": "the bastion calls"}
# Override sections that name things (a service, a bucket class...): an
# override changes those the top level defines, and cannot add one.
_NAMED_SECTIONS = {
    "services": "service",
    "buckets": "bucket class",
    "queues": "queue",
    "topics": "topic",
    "functions": "function",
}


def check(infra: Infra, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    problems += _region_and_zones(infra, doc)
    problems += _environments(infra, doc)
    problems += _cidrs(infra, doc)
    problems += _state_buckets(infra, doc)
    problems += _reserved(infra, doc)
    problems += _load_balancer(infra, doc)
    problems += _hostnames(infra, doc)
    problems += _ci_trust(infra, doc)
    problems += _endpoints(infra, doc)
    return problems


# Address blocks no client connects from: RFC 5737's documentation ranges.
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def advisories(infra: Infra, doc: Document) -> list[Problem]:
    """What is valid but almost surely not meant, each at its line, for the
    commands to print as warnings (never to refuse): an SSH range of the
    bastion that is a documentation range (RFC 5737; the starter's
    placeholder, so nobody could log in), or the whole internet."""
    if infra.bastion is None:
        return []
    found = []
    for index, cidr in enumerate(infra.bastion.allowed_cidrs):
        path = ("bastion", "allowed_cidrs", index)
        network = ipaddress.IPv4Network(cidr, strict=False)  # model.Cidr: IPv4 only
        if any(network.subnet_of(doc_range) for doc_range in DOCUMENTATION_RANGES):
            found.append(
                doc.problem(
                    path,
                    f"{cidr} is a documentation range (RFC 5737) no client connects from: "
                    "put your office's or VPN's range here, or nobody can reach the bastion",
                )
            )
        elif network.prefixlen == 0:
            found.append(
                doc.problem(
                    path,
                    f"{cidr} opens the bastion's SSH to the whole internet: "
                    "narrow it to your office's or VPN's range",
                )
            )
    return found


def check_overrides(doc: Document, env: str) -> list[Problem]:
    """What environment `env`'s overrides (`environments.<env>`, dotted keys
    already expanded) cannot mean: a section set to null (an override changes
    values; it cannot remove a section, and the merge would skip it), a name
    in a named section (services, buckets, queues, topics, functions) that
    the top level does not define (a typo would otherwise read as a new,
    incomplete one), or a database override with no database to change.
    Each problem is at the override's own line."""
    overrides = (doc.data.get("environments") or {}).get(env)
    if not isinstance(overrides, dict):
        return []
    problems = []
    for section, value in overrides.items():
        path = ("environments", env, section)
        if value is None:
            problems.append(
                doc.problem(
                    path,
                    f"null cannot remove {section} from one environment: an override only "
                    "changes values; delete this line",
                    key=True,
                )
            )
        elif section == "database" and doc.data.get("database") is None:
            problems.append(
                doc.problem(path, "there is no top-level database: to override", key=True)
            )
        elif section in _NAMED_SECTIONS and isinstance(value, dict):
            defined = doc.data.get(section) or {}
            for name in value:
                if name in defined:
                    continue
                close = difflib.get_close_matches(str(name), [str(n) for n in defined], n=1)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else (
                        f"defined: {', '.join(map(str, defined))}"
                        if defined
                        else f"{section}: defines none"
                    )
                )
                problems.append(
                    doc.problem(
                        (*path, name),
                        f"unknown {_NAMED_SECTIONS[section]} '{name}' ({section}: defines the "
                        f"{_NAMED_SECTIONS[section]}s an override may change); {hint}",
                        key=True,
                    )
                )
    return problems


def check_environment(infra: Infra, env: str, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    problems += _references(infra, doc)
    problems += _scaling(infra, env, doc)
    problems += _asset_buckets(infra, env, doc)
    problems += _shared_database(infra, env, doc)
    problems += _unreachable_services(infra, doc, infra.group_of(env))
    return problems


def _region_and_zones(infra: Infra, doc: Document) -> list[Problem]:
    if infra.region not in regions.ZONES:
        known = ", ".join(sorted(regions.ZONES))
        return [doc.problem(("region",), f"unknown region '{infra.region}'; known: {known}")]
    available = len(regions.ZONES[infra.region])
    problems = []
    for name, group in infra.vpc_groups.items():
        limit = min(MAX_AZS, available)
        if not MIN_AZS <= group.azs <= limit:
            problems.append(
                doc.problem(
                    ("vpc_groups", name, "azs"),
                    f"{group.azs} zones: must be between {MIN_AZS} and {limit} "
                    f"({infra.region} has {available})",
                )
            )
    return problems


def _environments(infra: Infra, doc: Document) -> list[Problem]:
    problems = []
    owner: dict[str, str] = {}
    stack_names = {names.shared_stack(group) for group in infra.vpc_groups}
    for group_name, group in infra.vpc_groups.items():
        for index, env in enumerate(group.environments):
            path = ("vpc_groups", group_name, "environments", index)
            if env in owner:
                problems.append(
                    doc.problem(path, f"environment '{env}' is already in group '{owner[env]}'")
                )
                continue
            owner[env] = group_name
            if env in stack_names:
                problems.append(
                    doc.problem(path, f"'{env}' clashes with the shared stack of that name")
                )
    for env in infra.environments:
        if env not in owner:
            problems.append(
                doc.problem(("environments", env), _unknown("environment", env, owner), key=True)
            )
    return problems


def _cidrs(infra: Infra, doc: Document) -> list[Problem]:
    problems = []
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for name, group in infra.vpc_groups.items():
        network = ipaddress.IPv4Network(group.cidr)
        for other, other_network in seen:
            if network.overlaps(other_network):
                problems.append(
                    doc.problem(
                        ("vpc_groups", name, "cidr"),
                        f"{group.cidr} overlaps {other_network} of group '{other}'",
                    )
                )
        seen.append((name, network))
        try:
            zone_names = (
                regions.zones(infra.region, group.azs) if infra.region in regions.ZONES else []
            )
            subnets.plan(group.cidr, zone_names, as_dict(group.subnets))
        except subnets.PlanError as exc:
            problems.append(
                doc.problem(("vpc_groups", name, "subnets"), f"subnet plan does not fit: {exc}")
            )
    return problems


def _state_buckets(infra: Infra, doc: Document) -> list[Problem]:
    if infra.state.backend != "s3":
        return []
    problems = []
    for group in infra.vpc_groups:
        message = names.bucket_name_problem(names.state_bucket(infra, group))
        if message:
            path = ("state", "bucket_prefix") if infra.state.bucket_prefix else ("project",)
            problems.append(doc.problem(path, f"state bucket for group '{group}': {message}"))
    return problems


def _reserved(infra: Infra, doc: Document) -> list[Problem]:
    problems = []
    for name in infra.buckets:
        if name in RESERVED_BUCKET_CLASSES:
            problems.append(
                doc.problem(
                    ("buckets", name),
                    f"'{name}' is the name of a bucket levels-tf creates itself",
                    key=True,
                )
            )
    for key in infra.tags:
        if key.lower().startswith("aws:"):
            problems.append(
                doc.problem(("tags", key), "tag keys starting with 'aws:' are reserved", key=True)
            )
    return problems


def _load_balancer(infra: Infra, doc: Document) -> list[Problem]:
    problems = []
    lb = infra.load_balancer
    environments = infra.all_environments
    for certified in lb.certificates:
        if certified not in infra.vpc_groups:
            problems.append(
                doc.problem(
                    ("load_balancer", "certificates", certified),
                    _unknown("VPC group", certified, infra.vpc_groups),
                    key=True,
                )
            )
    for env in lb.hostnames:
        if env not in environments:
            problems.append(
                doc.problem(
                    ("load_balancer", "hostnames", env),
                    _unknown("environment", env, environments),
                    key=True,
                )
            )
    if not infra.web_services():
        return problems
    zone = infra.dns.zone_id if infra.dns else None
    for name, group in infra.vpc_groups.items():
        if name not in lb.certificates and not zone:
            problems.append(
                doc.problem(
                    ("vpc_groups", name),
                    f"group '{name}' runs web services but has no certificate: "
                    f"set load_balancer.certificates.{name}, or dns.zone_id to request one",
                    key=True,
                )
            )
        for index, env in enumerate(group.environments):
            hosts = infra.hostnames(env)
            if not hosts and len(group.environments) > 1:
                problems.append(
                    doc.problem(
                        ("vpc_groups", name, "environments", index),
                        f"environments sharing a load balancer are told apart by hostname: "
                        f"set load_balancer.hostnames.{env} or dns.domain",
                    )
                )
    return problems


def _hostnames(infra: Infra, doc: Document) -> list[Problem]:
    """Each hostname names one thing in the whole file: a load balancer's
    (an environment's, given or `<environment>.<dns.domain>`) or a CDN's alias.
    DNS answers a name with one record, every group's records go into the one
    hosted zone (dns.zone_id), and CloudFront serves an alternate domain name
    from one distribution only (CNAMEAlreadyExists otherwise: "Values that
    you specify when you create or update a distribution", CloudFront
    Developer Guide). Reported at the later use, the earlier one named."""
    uses: list[tuple[str, tuple, str]] = []  # (hostname, path, whose)
    if infra.web_services():
        listed: set[str] = set()  # an environment in two groups is its own error
        for group, spec in infra.vpc_groups.items():
            for index, env in enumerate(spec.environments):
                if env in listed:
                    continue
                listed.add(env)
                given = env in infra.load_balancer.hostnames
                for i, host in enumerate(infra.hostnames(env)):
                    path = (
                        ("load_balancer", "hostnames", env, i)
                        if given
                        else ("vpc_groups", group, "environments", index)
                    )
                    uses.append((host, path, f"the load balancer of '{env}'"))
    for env, aliases in infra.cdn.aliases.items():
        for i, host in enumerate(aliases):
            uses.append((host, ("cdn", "aliases", env, i), f"the CDN of '{env}'"))
    problems = []
    first: dict[str, str] = {}
    for host, path, whose in uses:
        if host in first:
            problems.append(doc.problem(path, f"{host} is already a hostname of {first[host]}"))
        else:
            first[host] = whose
    return problems


NO_TRUST = (
    "no one may assume the CI roles: add ci.github (repository, and under subjects the "
    "environment, branches or tags of each VPC group) for GitHub Actions, or ci.assumed_by "
    "with the ARNs of the IAM roles your CI runs as"
)


def _ci_trust(infra: Infra, doc: Document) -> list[Problem]:
    """Each VPC group's CI role trusts someone named: GitHub workflow runs of a
    subject of its own, IAM roles, or both. A production group's subject is
    wildcard-free, so only the runs of one protected environment or of named
    branches or tags get production credentials."""
    ci = infra.ci
    github = ci.github
    if github is None:
        if ci.assumed_by:
            return []
        if "ci" in (doc.data or {}):
            return [doc.problem(("ci",), NO_TRUST, key=True)]
        # No ci block at all: point at the VPC groups, whose roles trust no one.
        line, column = doc.where(("vpc_groups",), key=True)
        return [Problem(line, column, "ci", NO_TRUST, doc.file)]
    problems = []
    base = ("ci", "github", "subjects")
    for written in github.subjects:
        if written not in infra.vpc_groups:
            problems.append(
                doc.problem(
                    base + (written,), _unknown("VPC group", written, infra.vpc_groups), key=True
                )
            )
    for name, group in infra.vpc_groups.items():
        subject = github.subjects.get(name)
        if subject is None and not ci.assumed_by:
            problems.append(
                doc.problem(
                    base,
                    f"VPC group '{name}' has no subject: add ci.github.subjects.{name} with "
                    "the environment, branches or tags whose workflow runs may assume its role",
                    key=True,
                )
            )
        if subject is None or not group.production:
            continue
        named: list[tuple[tuple, str]] = [(("environment",), subject.environment or "")]
        named += [(("branches", i), branch) for i, branch in enumerate(subject.branches)]
        named += [(("tags", i), tag) for i, tag in enumerate(subject.tags)]
        for where, item in named:
            if github_oidc.has_wildcard(item):
                problems.append(
                    doc.problem(
                        base + (name, *where),
                        f"'{item}': group '{name}' is production; name its GitHub "
                        "environment, branches or tags without the wildcards * and ?",
                    )
                )
    return problems


def _references(infra: Infra, doc: Document) -> list[Problem]:
    problems = []

    def ref(path: tuple, kind: str, name: str, known) -> None:
        if name not in known:
            problems.append(doc.problem(path, _unknown(kind, name, known)))

    for name, service in infra.services.items():
        base = ("services", name)
        ref(base + ("image",), "image", service.image, infra.images)
        for i, queue in enumerate(service.consumes):
            ref(base + ("consumes", i), "queue", queue, infra.queues)
        for i, published in enumerate(service.publishes):
            ref(base + ("publishes", i), "topic", published, infra.topics)
        for mode in ("read", "write"):
            for i, bucket in enumerate(getattr(service.buckets, mode)):
                ref(base + ("buckets", mode, i), "bucket", bucket, infra.buckets)
        if service.scaling.queue_backlog_per_instance and not service.consumes:
            problems.append(
                doc.problem(
                    base + ("scaling", "queue_backlog_per_instance"),
                    "scaling on queue backlog needs 'consumes'",
                )
            )
        if service.routes and not service.web:
            problems.append(
                doc.problem(
                    base + ("routes",), "routes need a port: only web services take traffic"
                )
            )
        if service.scaling.requests_per_target and not service.web:
            problems.append(
                doc.problem(
                    base + ("scaling", "requests_per_target"), "requests per target needs a port"
                )
            )
    for name, topic in infra.topics.items():
        for i, subscriber in enumerate(topic.subscribers):
            ref(
                ("topics", name, "subscribers", i),
                "queue",
                subscriber.split(".", 1)[1],
                infra.queues,
            )
    watched = {function.on_upload_to for function in infra.functions.values()}
    for name, bucket in infra.buckets.items():
        if bucket.backup and name not in watched:
            problems.append(
                doc.problem(
                    ("buckets", name, "backup"),
                    f"originals are copied to the backup bucket by a function: add one with on_upload_to: {name}",
                )
            )
    for name, function in infra.functions.items():
        ref(("functions", name, "on_upload_to"), "bucket", function.on_upload_to, infra.buckets)
        if function.variants_bucket is not None:
            ref(
                ("functions", name, "variants_bucket"),
                "bucket",
                function.variants_bucket,
                infra.buckets,
            )
    principals = list(infra.services) + list(PRINCIPALS)
    for name, prefix in infra.secrets.prefixes.items():
        for mode in ("read", "write"):
            for i, who in enumerate(getattr(prefix, mode)):
                ref(("secrets", "prefixes", name, mode, i), "service or principal", who, principals)
    environments = infra.all_environments
    if any(infra.cdn.aliases.values()) and not infra.cdn.certificate_arn:
        problems.append(
            doc.problem(
                ("cdn", "aliases"),
                "aliases need cdn.certificate_arn, an ACM certificate in us-east-1 covering them",
            )
        )
    for env in infra.cdn.aliases:
        if env not in environments:
            problems.append(
                doc.problem(
                    ("cdn", "aliases", env), _unknown("environment", env, environments), key=True
                )
            )
    return problems


def _scaling(infra: Infra, env: str, doc: Document) -> list[Problem]:
    problems = []
    overrides = (doc.data.get("environments") or {}).get(env) or {}
    for name, service in infra.services.items():
        scaling = service.scaling
        desired = scaling.min if scaling.desired is None else scaling.desired
        path = ("services", name, "scaling")
        # Blame a value this environment's override wrote, so the error points
        # at the override's line rather than at the untouched default.
        written = _dig(overrides, path)
        written = written if isinstance(written, dict) else {}
        if scaling.min > scaling.max:
            field = next((f for f in ("min", "max") if f in written), "min")
            problems.append(
                doc.problem(path + (field,), f"min {scaling.min} is above max {scaling.max}")
            )
        elif not scaling.min <= desired <= scaling.max:
            field = next((f for f in ("desired", "min", "max") if f in written), "desired")
            problems.append(
                doc.problem(
                    path + (field,),
                    f"desired {desired} is outside min {scaling.min} .. max {scaling.max}",
                )
            )
    return problems


def _dig(data, path: tuple):
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _asset_buckets(infra: Infra, env: str, doc: Document) -> list[Problem]:
    problems = []
    classes = list(infra.buckets) + list(RESERVED_BUCKET_CLASSES)
    for asset_class in classes:
        name = names.asset_bucket(infra, env, asset_class)
        message = names.bucket_name_problem(name)
        if message:
            path: tuple[str, ...]
            if asset_class in infra.buckets:
                path = ("buckets", asset_class)
            else:
                path = ("bucket_prefix",) if infra.bucket_prefix else ("project",)
            problems.append(
                doc.problem(path, f"bucket '{name}' for environment '{env}': {message}")
            )
    return problems


def _shared_database(infra: Infra, env: str, doc: Document) -> list[Problem]:
    group = infra.vpc_groups[infra.group_of(env)]
    overrides = (doc.data.get("environments") or {}).get(env) or {}
    if len(group.environments) > 1 and overrides.get("database") is not None:
        sharing = ", ".join(group.environments)
        return [
            doc.problem(
                ("environments", env, "database"),
                f"the database is shared by {sharing}; it cannot differ per environment",
                key=True,
            )
        ]
    return []


def _endpoints(infra: Infra, doc: Document) -> list[Problem]:
    """Each group's interface endpoints in no more zones than the group
    spans, and every AWS API its servers and bastion call reachable, through
    an endpoint or through the internet (`internet_https`). (A service listed
    twice is refused when the file loads, as every repeated list item is.)"""
    problems = []
    for name, group in infra.vpc_groups.items():
        path = ("vpc_groups", name, "endpoints")
        zones = group.endpoints.zones
        if zones is not None and zones > group.azs:
            problems.append(
                doc.problem(
                    (*path, "zones"),
                    f"{zones} zones, but group '{name}' spans {group.azs} (azs)",
                )
            )
        problems += _unreachable_services(infra, doc, name)
    return problems


def _unreachable_services(infra: Infra, doc: Document, group: str) -> list[Problem]:
    """A client of `group` kept off the internet that calls a service the
    group has no interface endpoint for. Run on the whole file, then on each
    environment's effective configuration, whose overrides may call more."""
    spec = infra.vpc_groups[group]
    problems = []
    for client in vpc_endpoints.CLIENTS:
        missing = vpc_endpoints.uncovered(infra, group, client)
        if missing and client not in spec.internet_https:
            problems.append(
                doc.problem(
                    ("vpc_groups", group, "internet_https"),
                    f"{_CALLERS[client]} {', '.join(missing)}, which group '{group}' has no "
                    f"interface endpoint for: add them to vpc_groups.{group}.endpoints.interface, "
                    f"or '{client}' to internet_https",
                )
            )
    return problems


def _unknown(kind: str, name: str, known) -> str:
    known = list(known)
    message = f"unknown {kind} '{name}'"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return message + f"; did you mean '{close[0]}'?"
    if known:
        return message + "; defined: " + ", ".join(sorted(known))
    return message + "; none is defined"
