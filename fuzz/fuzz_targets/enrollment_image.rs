#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| panoptes_fuzz::enrollment_image(data));
