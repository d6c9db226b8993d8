//! Camera leases: which engine node analyses which camera when several share one database.
//!
//! Every node calls [`Store::sync_leases`] about once a second. It heartbeats the node, renews the
//! node's leases, and claims free or expired leases up to its share (enabled cameras in proportion
//! to its capacity among the live nodes', rounded up), releasing any excess so a node that joins gets
//! work. A lease is released only once the node no longer runs the camera: the excess is first left
//! out of what the node should run, the node stops it, and the next sync gives the lease up — so the
//! node that claims it next never analyses the camera at the same time. A node that dies stops
//! renewing; its leases expire after the TTL and the others claim them. Claims go through
//! `INSERT … ON CONFLICT … WHERE expires_at < now()`, so two nodes never both win one camera.

use std::time::Duration;

use super::{StorageError, Store};

/// What one synchronisation decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseSync {
    /// Cameras this node should run now (ascending ids): its leases less any excess it still runs
    /// and must stop before the lease is released.
    pub held: Vec<i64>,
    /// Nodes with a recent heartbeat, this one included.
    pub live_nodes: i64,
}

impl Store {
    /// Heartbeats `node`, keeps its leases on `enabled` cameras fresh for `ttl`, and claims or
    /// releases leases to hold its share. `running`: the cameras the node still runs or is stopping,
    /// whose leases it keeps until they have stopped.
    pub async fn sync_leases(
        &self,
        node: &str,
        capacity: f32,
        ttl: Duration,
        enabled: &[i64],
        running: &[i64],
    ) -> Result<LeaseSync, StorageError> {
        let q = |context: &'static str| move |source| StorageError::Query { context, source };
        let ttl_secs = ttl.as_secs_f64().max(1.0);
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin lease sync"))?;
        let capacity = if capacity.is_finite() && capacity > 0.0 { capacity } else { 1.0 };
        tx.execute(
            "INSERT INTO engine_nodes (node_id, capacity) VALUES ($1, $2)
             ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now(), capacity = EXCLUDED.capacity",
            &[&node, &capacity],
        )
        .await
        .map_err(q("heartbeat node"))?;
        let live = tx
            .query_one(
                "SELECT count(*), coalesce(sum(capacity), 0)::float8 FROM engine_nodes
                 WHERE heartbeat_at > now() - make_interval(secs => $1)",
                &[&ttl_secs],
            )
            .await
            .map_err(q("count live nodes"))?;
        let (live_nodes, total_capacity): (i64, f64) = (live.get(0), live.get(1));
        // Leases on cameras that were disabled go once stopped; deleted cameras' leases went with the
        // camera.
        tx.execute(
            "DELETE FROM camera_leases WHERE node_id = $1 AND NOT (camera_id = ANY($2)) AND NOT (camera_id = ANY($3))",
            &[&node, &enabled, &running],
        )
        .await
        .map_err(q("release leases of disabled cameras"))?;
        // Renew only leases past half their life: one write per camera every ttl/2, not every second.
        tx.execute(
            "UPDATE camera_leases SET expires_at = now() + make_interval(secs => $2::float8)
             WHERE node_id = $1 AND expires_at < now() + make_interval(secs => $2::float8 / 2)",
            &[&node, &ttl_secs],
        )
        .await
        .map_err(q("renew leases"))?;
        let mut held: Vec<i64> = tx
            .query("SELECT camera_id FROM camera_leases WHERE node_id = $1 ORDER BY camera_id", &[&node])
            .await
            .map_err(q("read held leases"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let share = capacity_share(enabled.len(), f64::from(capacity), total_capacity);
        if held.len() < share {
            let wanted = (share - held.len()) as i64;
            let claimed = tx
                .query(
                    "INSERT INTO camera_leases (camera_id, node_id, expires_at)
                     SELECT c.id, $1, now() + make_interval(secs => $2)
                     FROM cameras c LEFT JOIN camera_leases l ON l.camera_id = c.id
                     WHERE c.id = ANY($3) AND c.enabled AND (l.camera_id IS NULL OR l.expires_at < now())
                     ORDER BY c.id LIMIT $4
                     ON CONFLICT (camera_id) DO UPDATE
                         SET node_id = EXCLUDED.node_id, expires_at = EXCLUDED.expires_at
                         WHERE camera_leases.expires_at < now()
                     RETURNING camera_id",
                    &[&node, &ttl_secs, &enabled, &wanted],
                )
                .await
                .map_err(q("claim leases"))?;
            held.extend(claimed.iter().map(|r| r.get::<_, i64>(0)));
        } else if held.len() > share {
            // The excess leaves `held` now (the node stops it) and its leases go once it has stopped.
            let stopped: Vec<i64> = held.split_off(share).into_iter().filter(|id| !running.contains(id)).collect();
            tx.execute("DELETE FROM camera_leases WHERE node_id = $1 AND camera_id = ANY($2)", &[&node, &stopped])
                .await
                .map_err(q("release excess leases"))?;
        }
        tx.commit().await.map_err(q("commit lease sync"))?;
        held.sort_unstable();
        Ok(LeaseSync { held, live_nodes })
    }

    /// Gives up every lease of `node` and its heartbeat (graceful shutdown: others take over at once).
    pub async fn release_node(&self, node: &str) -> Result<(), StorageError> {
        let q = |context: &'static str| move |source| StorageError::Query { context, source };
        let c = self.client().await?;
        c.execute("DELETE FROM camera_leases WHERE node_id = $1", &[&node]).await.map_err(q("release leases"))?;
        c.execute("DELETE FROM engine_nodes WHERE node_id = $1", &[&node]).await.map_err(q("remove node"))?;
        Ok(())
    }

    /// (camera id, node id) of every unexpired lease.
    pub async fn lease_owners(&self) -> Result<Vec<(i64, String)>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT camera_id, node_id FROM camera_leases WHERE expires_at > now() ORDER BY camera_id", &[])
            .await
            .map_err(|source| StorageError::Query { context: "read lease owners", source })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// This node's cameras: the enabled cameras in proportion to its capacity among the live nodes',
/// rounded up so that the shares cover every camera (equal capacities: cameras ÷ nodes, rounded up).
pub fn capacity_share(cameras: usize, capacity: f64, total_capacity: f64) -> usize {
    if !(total_capacity > 0.0 && capacity > 0.0) || capacity >= total_capacity {
        return cameras;
    }
    // A hair below the exact product keeps 6 × (1/3) at 2, not 3, despite rounding in the sum.
    let exact = cameras as f64 * capacity / total_capacity;
    ((exact - 1e-6).ceil().max(0.0) as usize).min(cameras)
}

#[cfg(test)]
mod tests {
    use super::capacity_share;

    #[test]
    fn shares_cover_every_camera() {
        // Equal capacities: cameras ÷ nodes, rounded up.
        assert_eq!(capacity_share(0, 1.0, 1.0), 0);
        assert_eq!(capacity_share(5, 1.0, 1.0), 5);
        assert_eq!(capacity_share(5, 1.0, 2.0), 3);
        assert_eq!(capacity_share(4, 1.0, 2.0), 2);
        assert_eq!(capacity_share(6, 2.0, 6.0), 2, "three nodes of 2 cores");
        assert_eq!(capacity_share(4, 1.0, 0.0), 4, "no live node counted yet: take them all");
    }

    #[test]
    fn shares_follow_capacity() {
        // A 4-core node beside a 2-core one: two thirds and one third, covering all 6.
        assert_eq!(capacity_share(6, 4.0, 6.0), 4);
        assert_eq!(capacity_share(6, 2.0, 6.0), 2);
        // A saturated node that advertises half its capacity gives cameras up to an idle one.
        assert_eq!(capacity_share(8, 1.0, 3.0), 3);
        assert_eq!(capacity_share(8, 2.0, 3.0), 6);
        // Rounding up never leaves a camera without a node.
        for (n, a, b) in [(7, 1.0, 2.0), (10, 3.0, 1.0), (1, 1.0, 5.0)] {
            assert!(capacity_share(n, a, a + b) + capacity_share(n, b, a + b) >= n, "{n} {a} {b}");
        }
    }
}
