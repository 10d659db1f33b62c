CREATE (k:ApiKey {id: $id, hash: $hash, subject: $subject, role: $role,
                  created_at: $created_at})
RETURN k.id AS id
