"""The topology lab: users and points of presence in network namespaces, joined by veth
pairs, with each path's one-way delay added by a user-space proxy (`delay_proxy`), so that
an agent's loop can be timed against a near PoP and a far one on one machine."""
