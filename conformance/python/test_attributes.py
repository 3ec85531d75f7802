"""Agent attributes (--attributes) as frameworks and tools see them.

Sources (apache/mesos): docs/attributes-resources.md — `name:value;...`,
a value is SCALAR if it parses as a number, RANGES if `[a-b]`, SET if
`{a,b}`, TEXT otherwise; offers carry them as Attribute protobufs, and
/master/state writes them as an object (json(Attributes) in
src/common/http.cpp: numbers for scalars, strings otherwise).
"""

import pando_harness as h


def test_attributes_in_offers_and_state(cluster_factory):
    cluster = cluster_factory(agents=1, agent_flags={"attributes": "rack:r1;zone:eu-1;level:3"})
    s = h.RawScheduler(cluster.port, name="attribute-reader")
    try:
        offer = s.next_offers()[0]
        attrs = {a["name"]: a for a in offer.get("attributes", [])}
        assert attrs["rack"]["type"] == "TEXT" and attrs["rack"]["text"]["value"] == "r1"
        assert attrs["zone"]["type"] == "TEXT" and attrs["zone"]["text"]["value"] == "eu-1"
        assert attrs["level"]["type"] == "SCALAR" and attrs["level"]["scalar"]["value"] == 3
        [slave] = cluster.master.state()["slaves"]
        assert slave["attributes"] == {"rack": "r1", "zone": "eu-1", "level": 3}
    finally:
        s.close()
