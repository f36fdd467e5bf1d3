"""Seed 004's scenario through openstacksdk, against Palisade (credentials from OS_*).

Prints one JSON line with what it observed; the Rust test asserts on it.
"""
import json

import openstack
from openstack import exceptions

conn = openstack.connect()
net = conn.network

web = net.create_security_group(name="web", description="Allows Web traffic anywhere on the Internet.")
for port in (80, 443):
    net.create_security_group_rule(
        security_group_id=web.id, direction="ingress", protocol="tcp",
        port_range_min=port, port_range_max=port, remote_ip_prefix="0.0.0.0/0")
db = net.create_security_group(name="database")
r3306 = net.create_security_group_rule(
    security_group_id=db.id, direction="ingress", protocol="tcp",
    port_range_min=3306, port_range_max=3306, remote_group_id=web.id)

duplicate_status = None
try:
    net.create_security_group_rule(
        security_group_id=web.id, direction="ingress", protocol="6",
        port_range_min=80, port_range_max=80, remote_ip_prefix="0.0.0.0/0")
except exceptions.ConflictException as e:
    duplicate_status = e.status_code

web_rules = len(list(net.security_group_rules(security_group_id=web.id)))
filtered = [g.name for g in net.security_groups(name="web")]

n = net.create_network(name="net1")
p = net.create_port(network_id=n.id, security_group_ids=[web.id], fixed_ips=[{"ip_address": "198.18.0.10"}])
port_groups = [x.security_group_ids for x in net.ports(security_groups=[web.id])][0]

in_use_status = None
try:
    net.delete_security_group(web, ignore_missing=False)
except exceptions.ConflictException as e:
    in_use_status = e.status_code

net.delete_port(p)
net.delete_security_group(db)
net.delete_security_group(web)
groups_after = sorted(g.name for g in net.security_groups())

print(json.dumps({
    "web_id": web.id,
    "web_rules": web_rules,
    "filtered_names": filtered,
    "database_remote": r3306.remote_group_id,
    "port_groups": port_groups,
    "duplicate_status": duplicate_status,
    "in_use_status": in_use_status,
    "groups_after": groups_after,
}))
