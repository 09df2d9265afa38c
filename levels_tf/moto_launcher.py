"""moto's server, as `python -m moto.server` runs it, but answering each
request on a connection of its own (HTTP/1.0, no keep-alive).

Under the concurrent requests of several Terraform runs, moto's threaded
server on kept-alive connections now and then answered a create that the
client then sent again, and the second answer was "already exists"; one
connection per request leaves nothing to resend. Loopback only: the
rehearsal passes 127.0.0.1.

It also answers the one read moto lacks that a destroy needs:
ListRecoveryPointsByBackupVault, which the aws provider calls before it
deletes a vault with force_destroy. moto runs no backup jobs, so a vault on
it holds no recovery points, and an empty list is the true answer.

It also serves one request at a time: moto's backends are plain Python
objects that no lock guards, and two Terraform runs at once could have a
request fail halfway (a 500 the provider then retries against a change
already made: "already exists"). moto's work per request is short and
holds the interpreter lock anyway, so little is lost.

And it answers a DeleteNetworkAclEntry of an entry that is not there as EC2
does, with InvalidNetworkAclEntry.NotFound (a client error, which the aws
provider takes as "already deleted"). moto fails such a call with a 500: a
delete the provider repeats under load, after the first one went through,
then fails until the rehearsal's watchdog stops the destroy.

And it reads a security group rule's description back whatever the rule
points to. moto keeps the description of a rule to a CIDR range only; a rule
to a prefix list or to another security group lost it, so every plan after
an apply changed it again.

And it answers a revoke of a security group rule ID the group does not have
as EC2 does, with InvalidSecurityGroupRuleId.NotFound, which the aws
provider takes as "already deleted" when it deletes a rule. moto answers
InvalidPermission.NotFound, so a revoke the provider repeated after the
first went through failed the destroy.

    python -m levels_tf.moto_launcher HOST PORT
"""

from __future__ import annotations

import json
import re
import sys
import threading

RECOVERY_POINTS = re.compile(r"^/backup-vaults/[^/]+/recovery-points/?$")


def with_recovery_points(app):
    """`app`, answering GET /backup-vaults/NAME/recovery-points/ with no recovery points."""

    def wrapped(environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and RECOVERY_POINTS.match(
            environ.get("PATH_INFO", "")
        ):
            body = json.dumps({"RecoveryPoints": []}).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    return wrapped


def one_at_a_time(app):
    """`app`, running one request at a time (the response is read out inside
    the lock too, as a WSGI body may still be computed while it is read)."""
    lock = threading.Lock()

    def wrapped(environ, start_response):
        with lock:
            response = app(environ, start_response)
            try:
                return list(response)
            finally:
                if hasattr(response, "close"):
                    response.close()

    return wrapped


def answer_missing_network_acl_entries() -> None:
    """Make moto's DeleteNetworkAclEntry of a missing entry a client error
    (InvalidNetworkAclEntry.NotFound, as EC2 answers it) instead of a 500."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.network_acls import NetworkAclBackend

    delete = NetworkAclBackend.delete_network_acl_entry

    def delete_or_not_found(self, network_acl_id: str, rule_number: int, egress: bool):
        entries = self.get_network_acl(network_acl_id).network_acl_entries
        if not any(e.egress == egress and e.rule_number == rule_number for e in entries):
            raise EC2ClientError(
                "InvalidNetworkAclEntry.NotFound",
                f"The network acl entry identified by {rule_number} does not exist.",
            )
        return delete(self, network_acl_id, rule_number, egress)

    NetworkAclBackend.delete_network_acl_entry = delete_or_not_found  # type: ignore[method-assign]


def keep_security_group_rule_descriptions() -> None:
    """Make moto read back the description of a security group rule to a
    prefix list or to another group, as EC2 does, not only of a rule to a CIDR."""
    from moto.ec2.models.security_groups import SecurityGroupRule

    create = SecurityGroupRule.__init__

    def create_keeping_description(self, *args, **kwargs) -> None:
        create(self, *args, **kwargs)
        target = self.ip_range or self.source_group or kwargs.get("prefix_list_id") or {}
        if not target and len(args) >= 8:  # prefix_list_id given by position
            target = args[7] or {}
        self.kept_description = target.get("Description")

    SecurityGroupRule.__init__ = create_keeping_description  # type: ignore[method-assign]
    SecurityGroupRule.description = property(  # type: ignore[assignment,method-assign]
        lambda self: getattr(self, "kept_description", None) or self.ip_range.get("Description")
    )


def answer_missing_security_group_rule_ids() -> None:
    """Make moto's RevokeSecurityGroupIngress/Egress by SecurityGroupRuleIds
    answer a rule ID the group does not have with
    InvalidSecurityGroupRuleId.NotFound, EC2's code (the one the aws
    provider's rule delete takes as already deleted), not
    InvalidPermission.NotFound."""
    from moto.ec2.exceptions import InvalidSecurityGroupRuleIdNotFoundError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    def by_id_or_not_found(revoke, rules_of):
        def revoke_or_not_found(self, group_name_or_id, *args, **kwargs):
            rule_ids = kwargs.get("security_rule_ids") or []
            group = self.get_security_group_by_name_or_id(group_name_or_id, kwargs.get("vpc_id"))
            if group is not None:
                present = {rule.id for rule in rules_of(group)}
                for rule_id in rule_ids:
                    if rule_id not in present:
                        raise InvalidSecurityGroupRuleIdNotFoundError(rule_id)
            return revoke(self, group_name_or_id, *args, **kwargs)

        return revoke_or_not_found

    backend = SecurityGroupBackend
    backend.revoke_security_group_ingress = by_id_or_not_found(  # type: ignore[method-assign]
        backend.revoke_security_group_ingress, lambda group: group.ingress_rules
    )
    backend.revoke_security_group_egress = by_id_or_not_found(  # type: ignore[method-assign]
        backend.revoke_security_group_egress, lambda group: group.egress_rules
    )


def main(argv: list[str]) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, run_simple

    host, port = argv[0], int(argv[1])
    answer_missing_network_acl_entries()
    keep_security_group_rule_descriptions()
    answer_missing_security_group_rule_ids()

    class OneRequestPerConnection(WSGIRequestHandler):
        protocol_version = "HTTP/1.0"

    app = one_at_a_time(with_recovery_points(DomainDispatcherApplication(create_backend_app)))
    run_simple(host, port, app, threaded=True, request_handler=OneRequestPerConnection)


if __name__ == "__main__":
    main(sys.argv[1:])
