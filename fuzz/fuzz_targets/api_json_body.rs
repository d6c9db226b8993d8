#![no_main]

libfuzzer_sys::fuzz_target!(init: panoptes_fuzz::api_json_body_init(), |data: &[u8]| panoptes_fuzz::api_json_body(data));
