"""Hypothesis strategies for infra.yaml documents, valid and broken.

`valid_documents()` draws whole platforms shaped like the reference and the
configurations in tests/configs and tests/golden: 1 to 3 VPC groups with
CIDRs that do not overlap, 2 to 6 zones, environments, images, queues,
topics, services that use them, buckets, a function, a database, a bastion,
tags and per-environment overrides. `broken_documents()` takes a valid one
and breaks it in one way a user could: a required key dropped, a value of
the wrong type, an unknown key, a reference to nothing, overlapping CIDRs, a
number out of range, or a name carrying a payload.

A document is plain data (mappings, lists, scalars) for yaml.safe_dump.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from levels_tf import regions

# Top-level blocks every document carries whatever else is drawn. A block
# infra.yaml comes to require is one more entry here.
REQUIRED_BLOCKS: dict[str, Any] = {
    # The CI role must name who may assume it; a role ARN trusts every group.
    "ci": {"assumed_by": ["arn:aws:iam::123456789012:role/deployer"]},
}

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxldmVscy1hbGljZS1leGFtcGxlLWtleS0tLS0tLS0t"
CERT = "arn:aws:acm:{region}:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
PAYLOADS = [
    "../x",
    "a/b",
    "{{ 7*7 }}",
    "{% raw %}",
    "${x}",
    "%{x}",
    '"',
    "'",
    "a\nb",
    "é",
    "\u202e",
]

GROUPS = ["prod", "stage", "lab"]
ENVIRONMENTS = ["production", "staging", "dev", "test", "qa", "demo"]
IMAGES = ["app", "jobs"]
SERVICES = ["api", "web", "worker"]
QUEUES = ["tasks", "mail"]
BUCKET_CLASSES = ["uploads", "media", "config"]
REGIONS = sorted(regions.ZONES)
BASES = ["ubuntu-22.04", "ubuntu-24.04", "debian-12", "amazon-linux-2023"]


def _subset(items: list, min_size: int = 0, max_size: int | None = None):
    if not items:
        return st.just([])
    return st.lists(
        st.sampled_from(items),
        min_size=min_size,
        max_size=len(items) if max_size is None else max_size,
        unique=True,
    )


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    region = draw(st.sampled_from(REGIONS))
    zones = len(regions.ZONES[region])
    doc: dict[str, Any] = {
        "project": draw(st.sampled_from(["shop", "levels", "acme-web", "x1"])),
        "region": region,
    }
    if draw(st.booleans()):
        doc["tags"] = draw(
            st.dictionaries(
                st.sampled_from(["Owner", "CostCenter", "team:name"]),
                st.sampled_from(["platform", "a b", "x=y/z@q", ""]),
                max_size=2,
            )
        )
    doc["state"] = {"backend": draw(st.sampled_from(["s3", "local"]))}

    # VPC groups: each a distinct /16, /18 or /20 block, environments shared out.
    group_names = draw(_subset(GROUPS, 1, 3))
    environments = draw(_subset(ENVIRONMENTS, len(group_names), len(ENVIRONMENTS)))
    cuts = sorted(
        draw(_subset(list(range(1, len(environments))), len(group_names) - 1, len(group_names) - 1))
    )
    shares = [
        environments[a:b] for a, b in zip([0, *cuts], [*cuts, len(environments)], strict=True)
    ]
    doc["vpc_groups"] = {}
    for i, (name, envs) in enumerate(zip(group_names, shares, strict=True)):
        prefix = draw(st.sampled_from([16, 18, 20]))
        group: dict[str, Any] = {
            "cidr": f"10.{16 * i + draw(st.integers(0, 15))}.0.0/{prefix}",
            "azs": draw(st.integers(2, min(6, zones))),
            "environments": envs,
        }
        if i == 0 and draw(st.booleans()):
            group["production"] = True
        if draw(st.booleans()):
            group["nat"] = draw(st.sampled_from(["per_az", "single", "none"]))
        if draw(st.booleans()):
            group["flow_logs"] = {"retention_days": draw(st.sampled_from([30, 365, 731]))}
        doc["vpc_groups"][name] = group

    images = draw(_subset(IMAGES))
    if images:
        doc["images"] = {name: {"base": draw(st.sampled_from(BASES))} for name in images}
    queues = draw(_subset(QUEUES))
    if queues:
        doc["queues"] = {
            name: {
                "dead_letter_after": draw(st.integers(1, 10)),
                "retention_days": draw(st.integers(1, 14)),
            }
            for name in queues
        }
        if draw(st.booleans()):
            doc["topics"] = {
                "events": {"subscribers": [f"queue.{q}" for q in draw(_subset(queues, 1))]}
            }
    classes = draw(_subset(BUCKET_CLASSES))
    if classes:
        doc["buckets"] = {name: {"cdn": draw(st.booleans())} for name in classes}

    services = draw(_subset(SERVICES)) if images else []
    web = False
    for name in services:
        service: dict[str, Any] = {"image": draw(st.sampled_from(images))}
        if draw(st.booleans()):
            web = True
            service["port"] = draw(st.integers(1024, 65535))
            service["health_check"] = draw(st.sampled_from(["/health", "/status?full=1", "/"]))
            service["routes"] = draw(_subset(["/api/*", "/v1/*", "/static/*"], 0, 2))
        elif queues and draw(st.booleans()):
            service["consumes"] = draw(_subset(queues, 1))
            service["scaling"] = {"min": 0, "max": 3, "queue_backlog_per_instance": 50}
        if "topics" in doc and draw(st.booleans()):
            service["publishes"] = ["events"]
        if classes and draw(st.booleans()):
            service["buckets"] = {"read": draw(_subset(classes)), "write": draw(_subset(classes))}
        if "scaling" not in service:
            low = draw(st.integers(0, 3))
            service["scaling"] = {"min": low, "max": draw(st.integers(max(low, 1), 8))}
        doc.setdefault("services", {})[name] = service
    if web:
        doc["dns"] = {"domain": "shop.example", "zone_id": "Z0SHOPEXAMPLE"}

    if classes and draw(st.booleans()):
        uploads = draw(st.sampled_from(classes))
        doc["functions"] = {"thumbnails": {"on_upload_to": uploads, "sizes": [96, 480]}}
        # the function copies originals into the backup bucket
        doc["buckets"][uploads]["backup"] = draw(st.booleans())
    if draw(st.booleans()):
        doc["database"] = {"replicas": draw(st.integers(0, 2))}
    if draw(st.booleans()):
        doc["bastion"] = {
            "allowed_cidrs": ["203.0.113.0/24"],
            "users": {"alice": f"{KEY} alice@laptop"},
        }
    if any(c for c in classes) and draw(st.booleans()):
        doc["cdn"] = {"price_class": draw(st.sampled_from(["PriceClass_100", "PriceClass_All"]))}

    # Overrides: scaling of a service, or the database, in one environment.
    overrides: dict[str, Any] = {}
    for env in draw(_subset(environments, 0, 2)):
        if services:
            name = draw(st.sampled_from(services))
            low = draw(st.integers(0, 2))
            overrides[env] = {f"services.{name}.scaling": {"min": low, "max": low + 2}}
        elif "database" in doc and not _shares_database(doc, env):
            overrides[env] = {"database.backup_retention_days": draw(st.integers(1, 35))}
    if overrides:
        doc["environments"] = overrides
    doc.update(copy.deepcopy(REQUIRED_BLOCKS))
    return doc


def _shares_database(doc: dict[str, Any], env: str) -> bool:
    return any(
        env in g["environments"] and len(g["environments"]) > 1 for g in doc["vpc_groups"].values()
    )


# --- mutations: each returns a broken copy of a valid document --------------------


def _drop_required(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    group = draw(st.sampled_from(sorted(doc["vpc_groups"])))
    choices = [(doc, "project"), (doc, "region"), (doc, "vpc_groups")]
    choices += [(doc["vpc_groups"][group], "cidr"), (doc["vpc_groups"][group], "environments")]
    choices += [(s, "image") for s in doc.get("services", {}).values()]
    choices += [(f, "on_upload_to") for f in doc.get("functions", {}).values()]
    if "bastion" in doc:
        choices.append((doc["bastion"], "users"))
    node, key = draw(st.sampled_from(choices))
    del node[key]


def _wrong_type(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    group = doc["vpc_groups"][draw(st.sampled_from(sorted(doc["vpc_groups"])))]
    choices = [
        (doc, "project", 42),
        (doc, "region", ["us-east-1"]),
        (group, "azs", "four"),
        (group, "azs", "3"),
        (group, "cidr", 10),
        (group, "environments", "dev"),
        (doc, "vpc_groups", ["prod"]),
    ]
    for service in doc.get("services", {}).values():
        choices += [(service["scaling"], "min", "1"), (service, "image", {"name": "app"})]
    for queue in doc.get("queues", {}).values():
        choices += [(queue, "dead_letter_after", 2.5), (queue, "retention_days", True)]
    node, key, value = draw(st.sampled_from(choices))
    node[key] = value


def _unknown_key(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    nodes = [doc, *doc["vpc_groups"].values(), *doc.get("services", {}).values()]
    nodes += list(doc.get("images", {}).values())
    node = draw(st.sampled_from(nodes))
    node[draw(st.sampled_from(["colour", "enviroments", "cidr_block", "Project"]))] = "x"


def _dangling_reference(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    choices: list[tuple[Any, str, Any]] = [
        (doc, "environments", {"ghost": {"database.replicas": 1}})
    ]
    for service in doc.get("services", {}).values():
        choices += [
            (service, "image", "ghost"),
            (service, "consumes", ["ghost"]),
            (service, "publishes", ["ghost"]),
            (service, "buckets", {"read": ["ghost"]}),
        ]
    for topic in doc.get("topics", {}).values():
        choices.append((topic, "subscribers", ["queue.ghost"]))
    for function in doc.get("functions", {}).values():
        choices.append((function, "on_upload_to", "ghost"))
    node, key, value = draw(st.sampled_from(choices))
    node[key] = value


def _overlapping_cidr(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    groups = doc["vpc_groups"]
    first = groups[sorted(groups)[0]]
    if len(groups) == 1:
        groups["other"] = {"cidr": first["cidr"], "azs": 2, "environments": ["other"]}
        return
    second = groups[sorted(groups)[1]]
    # the same block, or one inside the other
    base = first["cidr"].split("/")[0]
    second["cidr"] = draw(
        st.sampled_from([first["cidr"], f"{base}/{int(first['cidr'].split('/')[1]) + 2}"])
    )


def _out_of_range(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    group = doc["vpc_groups"][draw(st.sampled_from(sorted(doc["vpc_groups"])))]
    choices = [(group, "azs", draw(st.sampled_from([0, 1, 7]))), (group, "cidr", "10.0.0.0/8")]
    choices.append(
        (doc.setdefault("load_balancer", {}), "idle_timeout", draw(st.sampled_from([0, 4001])))
    )
    for service in doc.get("services", {}).values():
        choices += [(service["scaling"], "max", 1001), (service, "port", 70000)]
    for queue in doc.get("queues", {}).values():
        choices.append((queue, "retention_days", 15))
    if "database" in doc:
        choices.append((doc["database"], "replicas", 16))
    node, key, value = draw(st.sampled_from(choices))
    node[key] = value


def _payload_name(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    payload = draw(st.sampled_from(PAYLOADS))
    tables = [
        doc["vpc_groups"],
        *(doc[k] for k in ("services", "queues", "images", "buckets") if k in doc),
    ]
    table = draw(st.sampled_from(tables))
    old = draw(st.sampled_from(sorted(table)))
    table[f"x{payload}"] = table.pop(old)


MUTATIONS = {
    "drop required key": _drop_required,
    "wrong type": _wrong_type,
    "unknown key": _unknown_key,
    "dangling reference": _dangling_reference,
    "overlapping CIDR": _overlapping_cidr,
    "out-of-range number": _out_of_range,
    "payload name": _payload_name,
}


@st.composite
def broken_documents(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid document broken by mutation `kind` (a key of MUTATIONS)."""
    doc = copy.deepcopy(draw(valid_documents()))
    MUTATIONS[kind](draw, doc)
    return doc


def documents(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid documents for kind "valid", else documents broken by that mutation."""
    return valid_documents() if kind == "valid" else broken_documents(kind)
