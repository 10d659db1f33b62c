// The store's clock (epoch ms), which need writes stamp `need_changed_at` with: API processes
// take when a read of changed needs began from it, so no process's own clock skews the two.
RETURN timestamp() AS now
