// Create or replace an initiative of nonprofit $nonprofit_id with its causes. `load_id` names the
// writer, as ETL loads do; `posted_ts` keeps the first time the initiative was written ($now,
// epoch seconds). The nonprofit's need changes with its initiatives': stamped by the store's
// clock (see api/set_funding_need).
// The ownership check is part of the write: MERGE on the unique id first (Neo4j holds the id's
// lock from there; FalkorDB runs writes one at a time), then an initiative another nonprofit
// owns is left as it is, and `written` is 0.
MATCH (n:Nonprofit {id: $nonprofit_id})
MERGE (i:Initiative {id: $id})
WITH n, i
OPTIONAL MATCH (i)-[:INITIATIVE_OF]->(owner:Nonprofit)
WITH n, i, collect(owner.id) AS owners
WHERE all(owner_id IN owners WHERE owner_id = $nonprofit_id)
SET n.need_changed_at = timestamp()
SET i.name = $title, i.description = $description, i.funding_goal = $funding_goal,
    i.funding_need = $funding_need, i.posted_ts = coalesce(i.posted_ts, $now),
    i.load_id = $load_id
MERGE (i)-[:INITIATIVE_OF]->(n)
WITH i
OPTIONAL MATCH (i)-[old:WORKS_ON]->(:Cause)
DELETE old
WITH DISTINCT i
UNWIND $cause_ids AS cause_id
MATCH (c:Cause {id: cause_id})
MERGE (i)-[:WORKS_ON]->(c)
RETURN count(DISTINCT i) AS written, count(c) AS linked
