//! Annex-B byte streams (start codes before each NAL unit, as RTSP depacketizers, MPEG-TS and raw
//! `.h264` files carry them): splitting into NAL units, the access unit handed from a source to a
//! decoder, and grouping an H.264 stream into access units (one picture each, with any parameter
//! sets and SEI that precede it).

use super::clock::CaptureTime;
use crate::decode::Codec;

/// NAL unit types this module cares about (ITU-T H.264 table 7-1).
pub mod nal_type {
    pub const NON_IDR_SLICE: u8 = 1;
    pub const IDR_SLICE: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

/// Offsets of the NAL units in `data`, without their start codes.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start of start code, start of payload)
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let code_start = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((code_start, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, payload)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|s| s.0).unwrap_or(data.len());
        if end > payload {
            out.push(&data[payload..end]);
        }
    }
    out
}

pub fn kind(nal: &[u8]) -> u8 {
    nal.first().map(|b| b & 0x1f).unwrap_or(0)
}

fn is_slice(t: u8) -> bool {
    t == nal_type::NON_IDR_SLICE || t == nal_type::IDR_SLICE
}

/// A slice whose `first_mb_in_slice` is 0 starts a new picture. That field is the first ue(v) of the
/// slice header; ue(v) of 0 is the single bit 1, so the test is the top bit after the NAL header.
fn starts_picture(nal: &[u8]) -> bool {
    is_slice(kind(nal)) && nal.get(1).is_some_and(|b| b & 0x80 != 0)
}

/// One picture's NAL units, with start codes (the form decoders take).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    pub codec: Codec,
    /// An IDR (H.264) or IRAP (H.265) picture: decoding can start here.
    pub is_keyframe: bool,
    /// Later pictures may refer to this one (H.264: a slice with `nal_ref_idc` ≠ 0; H.265: see
    /// [`super::h265::ReferenceTracker`]): losing it damages every picture up to the next keyframe.
    /// A non-reference picture can be lost, or left undecoded, alone.
    pub is_reference: bool,
    /// When its picture was captured, on the clock the camera's streams share; `None` where the
    /// source does not know yet (RTSP before the first RTCP sender report).
    pub capture: Option<CaptureTime>,
}

impl AccessUnit {
    /// An H.264 access unit of Annex-B data; whether it is a reference is read from its slices.
    pub fn new(data: Vec<u8>, is_keyframe: bool) -> AccessUnit {
        let is_reference = is_reference(&data);
        AccessUnit { data, codec: Codec::H264, is_keyframe, is_reference, capture: None }
    }

    /// An access unit of `codec`, whose reference status the caller has judged.
    pub fn of(codec: Codec, data: Vec<u8>, is_keyframe: bool, is_reference: bool) -> AccessUnit {
        AccessUnit { data, codec, is_keyframe, is_reference, capture: None }
    }

    pub fn captured_at(mut self, capture: Option<CaptureTime>) -> AccessUnit {
        self.capture = capture;
        self
    }
}

/// Whether any H.264 slice of the Annex-B data has `nal_ref_idc` ≠ 0 (data without slices counts as a
/// reference: nothing can be proven safe to lose).
pub fn is_reference(data: &[u8]) -> bool {
    let mut slices = nal_units(data).into_iter().filter(|n| is_slice(kind(n))).peekable();
    if slices.peek().is_none() {
        return true;
    }
    slices.any(|n| n[0] & 0x60 != 0)
}

/// Groups a whole Annex-B H.264 stream into access units. Bytes before the first start code are ignored.
pub fn access_units(data: &[u8]) -> Vec<AccessUnit> {
    group(data).into_iter().map(|(_, unit)| unit).collect()
}

/// The access units of `data`, each with the offset of its first NAL unit's payload in `data`.
fn group(data: &[u8]) -> Vec<(usize, AccessUnit)> {
    let mut out = Vec::new();
    let empty =
        || AccessUnit { data: Vec::new(), codec: Codec::H264, is_keyframe: false, is_reference: false, capture: None };
    let mut current = (0, empty());
    let mut has_slice = false;
    for nal in nal_units(data) {
        let offset = nal.as_ptr() as usize - data.as_ptr() as usize;
        let t = kind(nal);
        // A new picture begins at its first slice, or at a non-slice NAL (AUD, SPS, PPS, SEI) that
        // follows the previous picture's slices.
        let boundary = has_slice
            && (starts_picture(nal) || matches!(t, nal_type::AUD | nal_type::SPS | nal_type::PPS | nal_type::SEI));
        if boundary {
            out.push(std::mem::replace(&mut current, (offset, empty())));
            has_slice = false;
        }
        if current.1.data.is_empty() {
            current.0 = offset;
        }
        current.1.data.extend_from_slice(&[0, 0, 0, 1]);
        current.1.data.extend_from_slice(nal);
        if is_slice(t) {
            has_slice = true;
            current.1.is_keyframe |= t == nal_type::IDR_SLICE;
            current.1.is_reference |= nal[0] & 0x60 != 0;
        }
    }
    if has_slice {
        out.push(current);
    }
    out
}

/// Splits an Annex-B stream that arrives in pieces (read from a file a block at a time) into access
/// units, holding only the unfinished tail: a picture is complete once the next one has begun.
#[derive(Default)]
pub struct AccessUnitSplitter {
    tail: Vec<u8>,
    ready: std::collections::VecDeque<AccessUnit>,
}

impl AccessUnitSplitter {
    /// Adds the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        // Everything before the last start code holds whole NAL units; the last picture among them
        // may go on past it, so it stays in the tail.
        let Some(last) = last_start_code(&self.tail) else { return };
        let mut units = group(&self.tail[..last]);
        let Some((resume, _)) = units.pop() else { return };
        if units.is_empty() {
            return;
        }
        self.ready.extend(units.into_iter().map(|(_, u)| u));
        // From the unfinished unit's first start code (its 3-byte tail is a start code too).
        self.tail.drain(..resume - 3);
    }

    /// The next complete access unit.
    pub fn next_unit(&mut self) -> Option<AccessUnit> {
        self.ready.pop_front()
    }

    /// At the end of the stream: every unit left, the last one included.
    pub fn finish(&mut self) -> Vec<AccessUnit> {
        let mut out: Vec<AccessUnit> = self.ready.drain(..).collect();
        out.extend(access_units(&std::mem::take(&mut self.tail)));
        out
    }

    /// Bytes held while waiting for the rest of a picture.
    pub fn held_bytes(&self) -> usize {
        self.tail.len() + self.ready.iter().map(|u| u.data.len()).sum::<usize>()
    }
}

/// Where the last start code (3 or 4 bytes) of `data` begins.
fn last_start_code(data: &[u8]) -> Option<usize> {
    let i = data.windows(3).rposition(|w| w == [0, 0, 1])?;
    Some(if i > 0 && data[i - 1] == 0 { i - 1 } else { i })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_three_and_four_byte_start_codes() {
        let data = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0x88, 4];
        let n = nal_units(&data);
        assert_eq!(n, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0x88, 4][..]]);
        assert_eq!(kind(n[2]), nal_type::IDR_SLICE);
    }

    #[test]
    fn groups_parameter_sets_with_the_following_picture() {
        // SPS, PPS, IDR (first_mb=0), P (first_mb=0), P slice 2 of that picture (first_mb≠0), P
        let data = [
            0, 0, 0, 1, 0x67, 0xAA, 0, 0, 0, 1, 0x68, 0xBB, 0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x41, 0x9A, 0, 0, 0, 1,
            0x41, 0x40, 0, 0, 0, 1, 0x41, 0x9B,
        ];
        let aus = access_units(&data);
        assert_eq!(aus.len(), 3);
        assert!(aus[0].is_keyframe && !aus[1].is_keyframe);
        assert_eq!(nal_units(&aus[0].data).len(), 3);
        assert_eq!(nal_units(&aus[1].data).len(), 2);
    }

    #[test]
    fn reference_pictures_are_told_from_disposable_ones_by_nal_ref_idc() {
        // IDR (ref_idc 3), P (ref_idc 2), non-reference B (0x01: ref_idc 0, type 1)
        let data = [0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x41, 0x9A, 0, 0, 0, 1, 0x01, 0x9E];
        let aus = access_units(&data);
        assert_eq!(aus.iter().map(|a| a.is_reference).collect::<Vec<_>>(), [true, true, false]);
        assert!(!is_reference(&aus[2].data));
        assert!(is_reference(b"no slices at all"));
    }

    #[test]
    fn a_stream_split_anywhere_gives_the_same_units_as_a_whole() {
        let data = [
            0, 0, 0, 1, 0x67, 0xAA, 0, 0, 0, 1, 0x68, 0xBB, 0, 0, 0, 1, 0x65, 0x88, 7, 7, 0, 0, 0, 1, 0x41, 0x9A, 9, 0,
            0, 0, 1, 0x41, 0x40, 5, 0, 0, 0, 1, 0x41, 0x9B, 0, 0, 1, 0x01, 0x9E, 3,
        ];
        let whole = access_units(&data);
        assert_eq!(whole.len(), 4);
        for piece in [1, 2, 3, 5, 7, 64] {
            let mut s = AccessUnitSplitter::default();
            let mut got = Vec::new();
            for chunk in data.chunks(piece) {
                s.push(chunk);
                while let Some(u) = s.next_unit() {
                    got.push(u);
                }
            }
            got.extend(s.finish());
            assert_eq!(got, whole, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn garbage_without_start_codes_yields_nothing() {
        assert!(access_units(b"random bytes, no start code").is_empty());
        assert!(access_units(&[]).is_empty());
    }
}
