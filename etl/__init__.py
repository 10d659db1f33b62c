"""Getting data into the graph and training snapshots out of it."""
