"""Who the lab's user is, which PoP is near them and which central region serves everyone,
with each path's round trip from the fiber model of `milliwatt.edge.geo`.

The cities' coordinates are those of the public-domain Natural Earth populated places
(the cities corpus); Ashburn, Virginia, the data-centre cluster behind most "us-east"
regions, has under 100,000 people and so is not among them: its coordinates are the town's.
"""

from __future__ import annotations

from dataclasses import dataclass

from milliwatt.edge.geo import Place, great_circle_km, modelled_rtt_ms
from milliwatt.errors import InvalidRequestError

LISBON = Place("Lisbon", 38.72467, -9.14681)
MADRID = Place("Madrid", 40.40197, -3.6853)
JAKARTA = Place("Jakarta", -6.17247, 106.82749)
SINGAPORE = Place("Singapore", 1.29498, 103.85387)
ASHBURN = Place("Ashburn", 39.0438, -77.4874)


@dataclass(frozen=True)
class Scenario:
    """A user, the PoP nearest them (edge) and the one region everyone else uses (central)."""

    name: str
    user: Place
    edge: Place
    central: Place

    def rtt_ms(self, pop: Place) -> float:
        return modelled_rtt_ms(self.user, pop)

    def describe(self) -> str:
        parts = [
            f"{self.user.name} -> {role} {pop.name}: {great_circle_km(self.user, pop):,.0f} km, "
            f"RTT {self.rtt_ms(pop):.1f} ms"
            for role, pop in (("edge", self.edge), ("central", self.central))
        ]
        return f"{self.name}: " + "; ".join(parts)


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("lisbon", LISBON, MADRID, ASHBURN),
        Scenario("jakarta", JAKARTA, SINGAPORE, ASHBURN),
    )
}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise InvalidRequestError(f"unknown scenario {name!r}; known: {known}") from None
