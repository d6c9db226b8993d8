//! H.264/H.265 as MP4, MOV and most MKV files store it: each NAL unit prefixed by its length, the
//! parameter sets apart in the stream's decoder configuration record (`avcC`, ISO/IEC 14496-15 5.3.3;
//! `hvcC`, 8.3.3). The decoders take Annex-B with the parameter sets in-band, so each sample is
//! rewritten with start codes and a keyframe gets the parameter sets in front of it.

use crate::decode::Codec;

/// Rewrites length-prefixed samples of one stream as Annex-B.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthPrefixed {
    /// Bytes of each NAL unit's length field (1, 2 or 4).
    length_size: usize,
    /// The record's parameter sets (VPS, SPS, PPS), Annex-B.
    parameter_sets: Vec<u8>,
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

impl LengthPrefixed {
    /// From a stream's extradata. `Ok(None)`: the stream is Annex-B already (the extradata is empty or
    /// itself Annex-B, as in MPEG-TS and raw files).
    pub fn from_extradata(codec: Codec, extradata: &[u8]) -> Result<Option<LengthPrefixed>, String> {
        if extradata.is_empty() || extradata.starts_with(&[0, 0, 1]) || extradata.starts_with(&START_CODE) {
            return Ok(None);
        }
        if extradata[0] != 1 {
            return Err(format!("decoder configuration record version {} (expected 1)", extradata[0]));
        }
        let mut r = Reader { data: extradata, at: 0 };
        let mut parameter_sets = Vec::new();
        let mut take = |r: &mut Reader<'_>| -> Result<(), String> {
            let len = r.u16()? as usize;
            parameter_sets.extend_from_slice(&START_CODE);
            parameter_sets.extend_from_slice(r.bytes(len)?);
            Ok(())
        };
        let length_size = match codec {
            Codec::H264 => {
                r.skip(4)?; // version, profile, compatibility, level
                let length_size = (r.u8()? & 3) as usize + 1;
                let sps = r.u8()? & 0x1f;
                for _ in 0..sps {
                    take(&mut r)?;
                }
                let pps = r.u8()?;
                for _ in 0..pps {
                    take(&mut r)?;
                }
                length_size
            }
            Codec::H265 => {
                r.skip(21)?; // version, profile, tier, level, chroma, bit depths, frame rate
                let length_size = (r.u8()? & 3) as usize + 1;
                let arrays = r.u8()?;
                for _ in 0..arrays {
                    r.skip(1)?; // completeness, NAL unit type
                    let count = r.u16()?;
                    for _ in 0..count {
                        take(&mut r)?;
                    }
                }
                length_size
            }
        };
        if length_size == 3 {
            return Err("NAL length fields of 3 bytes are not allowed".into());
        }
        Ok(Some(LengthPrefixed { length_size, parameter_sets }))
    }

    /// One sample as an Annex-B access unit; a keyframe is preceded by the parameter sets.
    pub fn to_annexb(&self, sample: &[u8], keyframe: bool) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(sample.len() + 16 + if keyframe { self.parameter_sets.len() } else { 0 });
        if keyframe {
            out.extend_from_slice(&self.parameter_sets);
        }
        let mut r = Reader { data: sample, at: 0 };
        while r.at < sample.len() {
            let len = match self.length_size {
                1 => r.u8()? as usize,
                2 => r.u16()? as usize,
                _ => r.u32()? as usize,
            };
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(r.bytes(len)?);
        }
        Ok(out)
    }
}

/// Bounds-checked big-endian reads; running out is an error naming where.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            format!("a length of {n} at byte {} runs past the end ({} bytes)", self.at, self.data.len())
        })?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.bytes(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avcc_record_and_sample_become_annexb_with_parameter_sets_before_keyframes() {
        let sps = [0x67, 0x42, 0xC0, 0x1E];
        let pps = [0x68, 0xCE, 0x3C, 0x80];
        let mut record = vec![1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4];
        record.extend_from_slice(&sps);
        record.extend_from_slice(&[1, 0, 4]);
        record.extend_from_slice(&pps);
        let lp = LengthPrefixed::from_extradata(Codec::H264, &record).unwrap().unwrap();
        // Two NAL units, 4-byte lengths.
        let sample = [0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 3, 0x65, 0x11, 0x22];
        let key = lp.to_annexb(&sample, true).unwrap();
        let mut expected = vec![0, 0, 0, 1];
        expected.extend_from_slice(&sps);
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(&pps);
        expected.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x65, 0x11, 0x22]);
        assert_eq!(key, expected);
        assert_eq!(lp.to_annexb(&sample, false).unwrap(), expected[16..]);
    }

    #[test]
    fn an_hvcc_record_yields_its_parameter_sets() {
        let mut record = vec![1];
        record.extend_from_slice(&[0; 20]);
        record.push(0xF0 | 3); // 4-byte lengths
        record.push(2); // two arrays
        record.extend_from_slice(&[0x20, 0, 1, 0, 2, 0x40, 0x01]); // VPS
        record.extend_from_slice(&[0x21, 0, 1, 0, 2, 0x42, 0x01]); // SPS
        let lp = LengthPrefixed::from_extradata(Codec::H265, &record).unwrap().unwrap();
        let out = lp.to_annexb(&[0, 0, 0, 2, 0x26, 0x01], true).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x40, 0x01, 0, 0, 0, 1, 0x42, 0x01, 0, 0, 0, 1, 0x26, 0x01]);
    }

    #[test]
    fn annexb_extradata_means_no_rewriting_and_damage_is_an_error() {
        assert_eq!(LengthPrefixed::from_extradata(Codec::H264, &[]).unwrap(), None);
        assert_eq!(LengthPrefixed::from_extradata(Codec::H264, &[0, 0, 0, 1, 0x67]).unwrap(), None);
        assert!(LengthPrefixed::from_extradata(Codec::H264, &[2, 1, 2]).is_err());
        assert!(LengthPrefixed::from_extradata(Codec::H264, &[1, 0x42, 0, 0x1E, 0xFF, 0xE1, 0, 9, 1]).is_err());
        let lp = LengthPrefixed { length_size: 4, parameter_sets: Vec::new() };
        let err = lp.to_annexb(&[0, 0, 1, 0, 0x65], false).unwrap_err();
        assert!(err.contains("runs past the end"), "{err}");
    }
}
