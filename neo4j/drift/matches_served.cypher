// Matches the API served since $since (epoch seconds, rounded down to the hour).
MATCH (s:MatchesServed)
WHERE s.hour >= $since
RETURN coalesce(sum(s.count), 0) AS served
