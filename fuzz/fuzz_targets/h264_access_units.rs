#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| panoptes_fuzz::h264_access_units(data));
