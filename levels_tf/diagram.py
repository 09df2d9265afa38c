"""`levels-tf diagram`: the overview drawn with the AWS icons people know.

`dot_source` is pure: it lays the overview (overview.describe) out with the
`diagrams` package, one cluster per VPC holding its public, application and
database tiers (each labelled with its zones and CIDR blocks), one cluster
per environment for its regional services, edges labelled with protocol and
port, the SSH path dashed. `diagrams` would run Graphviz itself when its
Diagram closes; here it only builds the DOT source (its graphviz.Digraph's
`.source`), and `draw` runs `dot` through process.py.

An SVG names its icons by file path; `draw` puts each PNG icon inside the
SVG as a data URI, so the file stands alone.
"""

from __future__ import annotations

import base64
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import diagrams
from diagrams import Cluster, Diagram, Edge, Node
from diagrams.aws.compute import EC2, EC2AutoScaling, Lambda
from diagrams.aws.database import Aurora, AuroraInstance
from diagrams.aws.integration import SimpleNotificationServiceSns, SimpleQueueServiceSqs
from diagrams.aws.network import ALB, CloudFront, NATGateway
from diagrams.aws.storage import SimpleStorageServiceS3Bucket
from diagrams.onprem.client import Client, Users

from . import overview as ov
from . import process

FORMATS = ("png", "svg")
DOT_TIMEOUT = 120  # seconds; the reference draws in about one
GRAPHVIZ_ADVICE = "install Graphviz, which provides dot (Debian: apt-get install graphviz; macOS: brew install graphviz)"

# The diagram's nodes beyond the overview's parts: a VPC's NAT gateways, its
# database's readers, and each environment's buckets drawn as two nodes
# (those CloudFront serves, and the others) instead of one per bucket.
_SERVED = "buckets/served"
_PRIVATE = "buckets/private"
# Tier titles below their parts: edges come in from above and would cross them.
_TIER = {"labeljust": "l", "labelloc": "b"}


_Add = Callable[[type[Node], str, str], None]
"""Draws a node: its icon class, id and label."""


@dataclass(frozen=True)
class Drawing:
    """A diagram's DOT source and what it shows: node id -> label, and each
    edge as (from id, to id, label, dashed)."""

    source: str
    nodes: dict[str, str]
    edges: tuple[tuple[str, str, str, bool], ...]


def _tier_label(tier: ov.Tier) -> str:
    """A tier cluster's title and one left-aligned line per zone (DOT's \\l)."""
    lines = [f"{tier.title.capitalize()}"] + [f"{zone}  {cidr}" for zone, cidr in tier.subnets]
    return "\\l".join(lines) + "\\l"


def _bucket_node(env: ov.Environment, asset_class: str) -> str:
    served = asset_class in env.cdn_origins
    return f"{env.name}/{_SERVED if served else _PRIVATE}"


def dot_source(view: ov.Overview, env: str | None = None) -> Drawing:
    """The DOT source of the whole platform, or with `env` of that environment
    in its VPC only. Raises KeyError for an unknown `env` (the command checks
    first)."""
    if env is not None:
        environments = [view.environment(env)]
        vpcs = [view.vpc(environments[0].group)]
    else:
        environments = list(view.environments)
        vpcs = list(view.vpcs)
    shown = {e.name for e in environments}
    title = f"{view.project}: {env}" if env else f"{view.project} on AWS ({view.region})"
    drawing = Diagram(
        title,
        filename="architecture",
        direction="LR",
        show=False,
        graph_attr={
            "splines": "spline",
            "pad": "0.5",
            "nodesep": "0.5",
            "ranksep": "1.4",
            "fontsize": "22",
            "labelloc": "t",
            "newrank": "true",
        },
        node_attr={"fontsize": "12"},
        edge_attr={"fontsize": "11", "fontcolor": "#2D3436"},
    )
    labels: dict[str, str] = {}
    made: dict[str, Node] = {}
    previous = diagrams.getdiagram()
    diagrams.setdiagram(drawing)
    try:

        def add(kind: type[Node], node: str, label: str) -> None:
            made[node] = kind(label, nodeid=node)
            labels[node] = label

        if any(link.source == ov.USERS for link in view.links):
            add(Users, ov.USERS, "Users")
        if any(vpc.bastion for vpc in vpcs):
            cidrs = sorted({cidr for vpc in vpcs for cidr in vpc.admin_cidrs})
            add(Client, ov.OPERATORS, "Operators\n" + "\n".join(cidrs))
        for vpc in vpcs:
            # A group's VPC and its environments' services side by side,
            # apart from the other group's.
            with Cluster(
                f"VPC group {vpc.group}", graph_attr={"style": "dashed", "bgcolor": "white"}
            ):
                _vpc_cluster(vpc, view, shown, add)
                for environment in environments:
                    if environment.group == vpc.group:
                        _regional_cluster(environment, add)
        edges = _edges(view, vpcs, environments, made)
        for source, target, label, dashed in edges:
            style = "dashed" if dashed else "solid"
            color = "#C0392B" if dashed else "#34495E"
            made[source] >> Edge(label=label, style=style, color=color) >> made[target]
    finally:
        diagrams.setdiagram(previous)
    return Drawing(drawing.dot.source, labels, tuple(edges))


def _vpc_cluster(vpc: ov.Vpc, view: ov.Overview, shown: set[str], add: _Add) -> None:
    g = vpc.group
    kind = "production" if vpc.production else "non-production"
    with Cluster(f"VPC {vpc.name}  {vpc.cidr}  ({kind}, {len(vpc.zones)} zones)"):
        tiers = {tier.name: tier for tier in vpc.tiers}
        with Cluster(_tier_label(tiers["public"]), graph_attr=_TIER):
            if vpc.load_balancer:
                add(ALB, f"{g}/lb", f"Load balancer\n{vpc.load_balancer}")
            if vpc.bastion:
                add(EC2, f"{g}/bastion", f"Bastion\n{vpc.bastion}")
            count = 1 if vpc.nat_mode == "single" else len(vpc.zones)
            add(NATGateway, f"{g}/nat", f"NAT gateway × {count}")
        with Cluster(_tier_label(tiers["private"]), graph_attr=_TIER):
            fleets = [
                (name, fleet)
                for name in vpc.environments
                if name in shown
                for fleet in view.environment(name).fleets
            ]
            if not fleets:
                _placeholder(f"{g}/fleets/none", "no fleet")
            for name, fleet in fleets:
                add(
                    EC2AutoScaling,
                    f"{name}/fleet/{fleet.service}",
                    f"{fleet.name}\n{fleet.min} to {fleet.max} × {fleet.instance_type}",
                )
        with Cluster(_tier_label(tiers["database"]), graph_attr=_TIER):
            db = vpc.database
            if db:
                add(Aurora, f"{g}/db", f"Aurora writer\n{db.name}\n{db.writer_zone}")
                if db.reader_zones:
                    add(
                        AuroraInstance,
                        f"{g}/db/readers",
                        f"{len(db.reader_zones)} "
                        + ("reader" if len(db.reader_zones) == 1 else "readers")
                        + "\n"
                        + ", ".join(db.reader_zones),
                    )
            else:
                _placeholder(f"{g}/db/none", "no database")


def _placeholder(node: str, text: str) -> None:
    """Words in an otherwise empty tier, which Graphviz would not draw."""
    Node(text, nodeid=node, shape="plaintext", fixedsize="false", width="0", height="0.4")


def _regional_cluster(env: ov.Environment, add: _Add) -> None:
    e = env.name
    with Cluster(f"{e}: regional services"):
        if env.cdn_origins:
            add(CloudFront, f"{e}/cdn", f"CloudFront\n{e}")
        served = [c for c in env.buckets if c in env.cdn_origins]
        private = [c for c in env.buckets if c not in env.cdn_origins]
        if served:
            add(SimpleStorageServiceS3Bucket, f"{e}/{_SERVED}", "S3, served\n" + "\n".join(served))
        if private:
            add(SimpleStorageServiceS3Bucket, f"{e}/{_PRIVATE}", "S3\n" + "\n".join(private))
        for queue in env.queues:
            add(SimpleQueueServiceSqs, f"{e}/queue/{queue}", f"SQS {queue}\n+ dead letters")
        for topic in env.topics:
            add(SimpleNotificationServiceSns, f"{e}/topic/{topic}", f"SNS {topic}")
        for function in env.functions:
            add(Lambda, f"{e}/function/{function.name}", f"Lambda\n{function.name}")


def _edges(
    view: ov.Overview, vpcs: list[ov.Vpc], environments: list[ov.Environment], made: dict[str, Node]
) -> list[tuple[str, str, str, bool]]:
    """The overview's links between the nodes drawn, buckets merged as drawn;
    then each database's replication to its readers."""
    by_env = {env.name: env for env in environments}

    def drawn(part: str) -> str:
        env, _, rest = part.partition("/")
        if rest.startswith("bucket/") and env in by_env:
            return _bucket_node(by_env[env], rest.removeprefix("bucket/"))
        return part

    edges: list[tuple[str, str, str, bool]] = []
    for link in view.links:
        edge = (drawn(link.source), drawn(link.target), link.label, link.ssh)
        if edge[0] in made and edge[1] in made and edge[0] != edge[1] and edge not in edges:
            edges.append(edge)
    for vpc in vpcs:
        if vpc.database and vpc.database.reader_zones:
            edges.append((f"{vpc.group}/db", f"{vpc.group}/db/readers", "replication", False))
    return edges


def draw(source: str, output_format: str) -> bytes:
    """`source` drawn by Graphviz's dot as PNG or SVG bytes (`output_format`).
    An SVG carries its icons as data URIs. Raises process.ToolError when dot
    is missing (saying how to install Graphviz) or fails."""
    if output_format not in FORMATS:
        raise ValueError(f"format {output_format!r}: one of {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="levels-tf-diagram-") as folder:
        dot_file = Path(folder) / "architecture.dot"
        image = Path(folder) / f"architecture.{output_format}"
        dot_file.write_text(source, encoding="utf-8")
        process.run(
            ["dot", f"-T{output_format}", "-o", str(image), str(dot_file)],
            timeout=DOT_TIMEOUT,
            advice=GRAPHVIZ_ADVICE,
        )
        data = image.read_bytes()
    if output_format == "svg":
        return inline_icons(data.decode("utf-8")).encode("utf-8")
    return data


_HREF = re.compile(r'xlink:href="([^"]+\.png)"')


def inline_icons(svg: str) -> str:
    """`svg` with every PNG it links by path replaced by a data: URI of the PNG."""

    def data_uri(match: re.Match[str]) -> str:
        png = Path(match.group(1)).read_bytes()
        return f'xlink:href="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"'

    return _HREF.sub(data_uri, svg)
