"""Marketing attribution: five sources, identity, journeys, attribution models and the monthly report."""
