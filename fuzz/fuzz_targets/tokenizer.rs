//! Arbitrary bytes through the dictionary pass and back; arbitrary dictionaries parsed.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nnz::fuzzing::tokenizer(data);
});
