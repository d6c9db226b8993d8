//! H.265 (HEVC) NAL units, as far as the engine reads them: keyframes (IRAP pictures), pictures no
//! later picture refers to, and the stream's temporal sub-layers (from its SPS), which decide when
//! such a picture may be left undecoded.

use super::annexb::nal_units;

/// NAL unit types this module cares about (ITU-T H.265 table 7-1).
pub mod nal_type {
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
}

/// The type of a NAL unit (6 bits after the forbidden bit).
pub fn kind(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// TemporalId: `nuh_temporal_id_plus1` − 1, in the low 3 bits of the header's second byte.
pub fn temporal_id(nal: &[u8]) -> u8 {
    nal.get(1).map_or(0, |b| (b & 7).saturating_sub(1))
}

/// Slices of a picture (VCL NAL units).
pub fn is_slice(t: u8) -> bool {
    t < 32
}

/// Intra random access point (BLA, IDR, CRA): decoding can start here.
pub fn is_irap(t: u8) -> bool {
    (16..=23).contains(&t)
}

/// TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N and the reserved N types: a sub-layer non-reference
/// picture, which no later picture *of the same or a lower temporal sub-layer* refers to.
pub fn is_sub_layer_non_reference(t: u8) -> bool {
    t <= 14 && t.is_multiple_of(2)
}

/// `sps_max_sub_layers_minus1`: the 3 bits after `sps_video_parameter_set_id` in an SPS NAL unit.
pub fn max_sub_layers_minus1(sps: &[u8]) -> Option<u8> {
    (kind(sps) == nal_type::SPS).then(|| sps.get(2).map(|b| (b >> 1) & 7)).flatten()
}

/// Whether any slice of the Annex-B data is an IRAP picture.
pub fn is_keyframe(data: &[u8]) -> bool {
    nal_units(data).into_iter().any(|n| is_irap(kind(n)))
}

/// Tells, picture by picture, whether a later picture may refer to one. A sub-layer non-reference
/// picture is safe to leave undecoded only in the stream's highest sub-layer: a lower one may still be
/// referred to from above. Until an SPS has said how many sub-layers there are, every picture counts
/// as a reference.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceTracker {
    top_sub_layer: Option<u8>,
}

impl ReferenceTracker {
    /// Reads the access unit's SPS, if it carries one, then judges its pictures. Data without a slice
    /// counts as a reference (nothing can be proven safe to lose).
    pub fn is_reference(&mut self, data: &[u8]) -> bool {
        let nals = nal_units(data);
        if let Some(top) = nals.iter().find_map(|n| max_sub_layers_minus1(n)) {
            self.top_sub_layer = Some(top);
        }
        let mut slices = nals.into_iter().filter(|n| n.len() >= 2 && is_slice(kind(n))).peekable();
        if slices.peek().is_none() {
            return true;
        }
        let top = self.top_sub_layer;
        slices.any(|n| !is_sub_layer_non_reference(kind(n)) || top.is_none_or(|top| temporal_id(n) < top))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NAL unit header: type, TemporalId.
    fn nal(t: u8, tid: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, t << 1, tid + 1];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn headers_name_types_layers_and_keyframes() {
        let idr = nal(19, 0, &[0xAF]);
        assert_eq!(kind(&idr[4..]), 19);
        assert!(is_irap(19) && is_irap(21) && !is_irap(1));
        assert!(is_keyframe(&idr) && !is_keyframe(&nal(1, 0, &[0x80])));
        assert_eq!(temporal_id(&nal(0, 2, &[])[4..]), 2);
        // SPS: vps id 0, max_sub_layers_minus1 = 2, nesting flag 1 → 0b0000_0101.
        assert_eq!(max_sub_layers_minus1(&nal(33, 0, &[0x05])[4..]), Some(2));
        assert_eq!(max_sub_layers_minus1(&nal(34, 0, &[0x05])[4..]), None);
    }

    #[test]
    fn a_non_reference_picture_is_disposable_only_in_the_top_sub_layer() {
        let mut single = ReferenceTracker::default();
        // Before any SPS nothing is disposable.
        assert!(single.is_reference(&nal(0, 0, &[0x80])));
        // One sub-layer: TRAIL_N is disposable, TRAIL_R is not.
        let mut keyframe = nal(33, 0, &[0x01]);
        keyframe.extend(nal(19, 0, &[0x80]));
        assert!(single.is_reference(&keyframe));
        assert!(!single.is_reference(&nal(0, 0, &[0x80])));
        assert!(single.is_reference(&nal(1, 0, &[0x80])));

        // Three sub-layers: a TRAIL_N of layer 0 or 1 may be referred to from above; of layer 2 not.
        let mut layered = ReferenceTracker::default();
        let mut keyframe = nal(33, 0, &[0x05]);
        keyframe.extend(nal(19, 0, &[0x80]));
        layered.is_reference(&keyframe);
        assert!(layered.is_reference(&nal(0, 0, &[0x80])));
        assert!(layered.is_reference(&nal(2, 1, &[0x80])));
        assert!(!layered.is_reference(&nal(0, 2, &[0x80])));
        // Parameter sets alone are not a picture: kept.
        assert!(layered.is_reference(&nal(34, 0, &[0x80])));
    }
}
