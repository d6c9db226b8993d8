//! Load-shedding decisions, kept pure so the policy is tested on its own: given one worker's recent
//! load and its cameras' rates, which camera's analysis rate changes, and to what.
//!
//! Overloaded (p95 latency above 80 % of the budget, or busy more than 95 % of the time): the camera
//! analysed most often drops to 70 % of its rate, never below the floor. Relaxed (p95 under 40 % of
//! the budget and busy under 70 %): the most-shed camera rises by 25 %, never above its target.
//! Between the two nothing changes, which keeps the rates from oscillating.

use crate::load::LoadFigures;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraRate {
    pub camera_id: i64,
    /// The analysis rate in force.
    pub fps: f32,
    /// The configured analysis rate.
    pub target_fps: f32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateChange {
    Shed { camera_id: i64, fps: f32 },
    Restore { camera_id: i64, fps: f32 },
}

pub fn decide(load: &LoadFigures, budget_ms: f64, cameras: &[CameraRate], min_fps: f32) -> Option<RateChange> {
    if load.frames == 0 {
        return None;
    }
    let overloaded = load.latency_p95_ms > 0.8 * budget_ms || load.utilization > 0.95;
    let relaxed = load.latency_p95_ms < 0.4 * budget_ms && load.utilization < 0.7;
    if overloaded {
        cameras
            .iter()
            .filter(|c| c.fps > min_fps)
            .max_by(|a, b| a.fps.total_cmp(&b.fps))
            .map(|c| RateChange::Shed { camera_id: c.camera_id, fps: (c.fps * 0.7).max(min_fps) })
    } else if relaxed {
        let ratio = |c: &CameraRate| c.fps / c.target_fps;
        cameras
            .iter()
            .filter(|c| c.fps < c.target_fps)
            .min_by(|a, b| ratio(a).total_cmp(&ratio(b)))
            .map(|c| RateChange::Restore { camera_id: c.camera_id, fps: (c.fps * 1.25).min(c.target_fps) })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(p95: f64, utilization: f64) -> LoadFigures {
        LoadFigures { frames: 50, latency_p50_ms: p95 / 2.0, latency_p95_ms: p95, utilization, seconds_per_frame: 0.04 }
    }

    fn cams() -> Vec<CameraRate> {
        vec![
            CameraRate { camera_id: 1, fps: 5.0, target_fps: 5.0 },
            CameraRate { camera_id: 2, fps: 10.0, target_fps: 10.0 },
            CameraRate { camera_id: 3, fps: 1.0, target_fps: 5.0 },
        ]
    }

    #[test]
    fn overload_sheds_the_busiest_camera() {
        assert_eq!(decide(&load(450.0, 0.5), 500.0, &cams(), 0.5), Some(RateChange::Shed { camera_id: 2, fps: 7.0 }));
        // A worker busy all the time is overloaded even before latency shows it.
        assert!(matches!(decide(&load(50.0, 0.99), 500.0, &cams(), 0.5), Some(RateChange::Shed { camera_id: 2, .. })));
    }

    #[test]
    fn shedding_stops_at_the_floor() {
        let floor = [CameraRate { camera_id: 9, fps: 0.6, target_fps: 5.0 }];
        assert_eq!(decide(&load(900.0, 1.0), 500.0, &floor, 0.5), Some(RateChange::Shed { camera_id: 9, fps: 0.5 }));
        let at_floor = [CameraRate { camera_id: 9, fps: 0.5, target_fps: 5.0 }];
        assert_eq!(decide(&load(900.0, 1.0), 500.0, &at_floor, 0.5), None);
    }

    #[test]
    fn calm_restores_the_most_shed_camera_up_to_its_target() {
        assert_eq!(
            decide(&load(100.0, 0.3), 500.0, &cams(), 0.5),
            Some(RateChange::Restore { camera_id: 3, fps: 1.25 })
        );
        let nearly = [CameraRate { camera_id: 4, fps: 4.5, target_fps: 5.0 }];
        assert_eq!(
            decide(&load(100.0, 0.3), 500.0, &nearly, 0.5),
            Some(RateChange::Restore { camera_id: 4, fps: 5.0 })
        );
    }

    #[test]
    fn the_band_between_changes_nothing() {
        assert_eq!(decide(&load(300.0, 0.6), 500.0, &cams(), 0.5), None);
        assert_eq!(decide(&LoadFigures::default(), 500.0, &cams(), 0.5), None);
    }
}
