// Matches served, counted per hour and model version so the drift job can compute the feedback
// rate from the graph. The API adds its in-memory count at most every few seconds per process.
MERGE (s:MatchesServed {hour: $hour, model_version: $model_version})
ON CREATE SET s.count = 0
SET s.count = s.count + $count
RETURN s.count AS count
