// One donation from the API: the check of what the id already holds and the write are one
// statement, so no replay can slip between them. `outcome`:
//   unknown  the donor or the nonprofit does not exist (nothing written);
//   new      the gift was created;
//   replay   the caller's own API gift with this content exists: nothing changes (a replay
//            without a timestamp matches any);
//   differs  the caller's own API gift holds other content: nothing changes (CONFLICT);
//   taken    the id is an imported gift or another principal's: nothing changes, nothing shown.
// Gifts recorded before `recorded_by` existed count as their donor's own.
// The ends carry no labels: with them FalkorDB starts from a scan of every donor, not from
// the donation id's index.
OPTIONAL MATCH (od)-[old:DONATED {id: $id}]->(on)
WITH od, old, on
OPTIONAL MATCH (d:Donor {id: $donor_id})
OPTIONAL MATCH (n:Nonprofit {id: $nonprofit_id})
WITH d, n, CASE
  WHEN d IS NULL OR n IS NULL THEN 'unknown'
  WHEN old IS NULL THEN 'new'
  WHEN coalesce(old.load_id, '') <> $load_id
    OR coalesce(old.recorded_by, 'donor:' + od.id) <> $recorded_by THEN 'taken'
  WHEN od.id = $donor_id AND on.id = $nonprofit_id AND old.amount = $amount
    AND old.ts = coalesce($ts, old.ts) THEN 'replay'
  ELSE 'differs'
END AS outcome
FOREACH (_ IN CASE WHEN outcome = 'new' THEN [1] ELSE [] END |
  CREATE (d)-[:DONATED {id: $id, amount: $amount, ts: coalesce($ts, $now), load_id: $load_id,
    recorded_by: $recorded_by}]->(n)
)
WITH outcome
OPTIONAL MATCH ()-[g:DONATED {id: $id}]->()
RETURN outcome, CASE WHEN outcome IN ['new', 'replay'] THEN g.ts END AS ts
