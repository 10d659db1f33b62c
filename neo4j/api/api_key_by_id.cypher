MATCH (k:ApiKey {id: $id})
RETURN k.hash AS hash, k.subject AS subject, k.role AS role, k.revoked_at AS revoked_at
