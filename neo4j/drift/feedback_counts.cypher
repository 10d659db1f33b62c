// Feedback on served matches since $since (epoch seconds), by action.
MATCH (:Donor)-[f:FEEDBACK]->(:Nonprofit)
WHERE f.ts >= $since
RETURN f.action AS action, count(f) AS events
