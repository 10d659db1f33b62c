"""Names of the node sets, edge sets and features of the donation graph (TF-free)."""

from __future__ import annotations

DONOR = "donor"
NONPROFIT = "nonprofit"
CAUSE = "cause"
REGION = "region"
NODE_SETS = (DONOR, NONPROFIT, CAUSE, REGION)

# Each edge set is stored once, source -> target. Message passing reads it in both directions via
# the convolution's receiver_tag, so no reverse edge sets are materialised.
DONATED = "donated"  # training donations, one edge per distinct pair
DONOR_CAUSE = "donor_cause"  # stated interests
NONPROFIT_CAUSE = "nonprofit_cause"
DONOR_REGION = "donor_region"
NONPROFIT_REGION = "nonprofit_region"
EDGE_SETS: dict[str, tuple[str, str]] = {
    DONATED: (DONOR, NONPROFIT),
    DONOR_CAUSE: (DONOR, CAUSE),
    NONPROFIT_CAUSE: (NONPROFIT, CAUSE),
    DONOR_REGION: (DONOR, REGION),
    NONPROFIT_REGION: (NONPROFIT, REGION),
}

INDEX = "index"  # node feature: position of the node in the snapshot's sorted ids
