//! The byte model (`--model bytes`, `--model bytectx`) and the automatic choice of model.

use super::*;

/// The first `n` bytes of a corpus file.
fn prefix(rel: &str, n: usize) -> Vec<u8> {
    let mut data = std::fs::read(corpus().join(rel)).unwrap();
    data.truncate(n);
    data
}

/// Compresses with `args`, checks the round trip, returns the compressed file.
fn roundtrip(data: &[u8], args: &[&str]) -> Vec<u8> {
    let mut all = vec!["compress", "-q"];
    all.extend_from_slice(args);
    let packed = run(&all, data);
    assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
    let back = run(&["decompress", "-q"], &packed.stdout);
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    assert!(back.stdout == data, "round trip differs ({} bytes, {args:?})", data.len());
    packed.stdout
}

/// What `nnz info` says of a compressed file.
fn info(packed: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.nnz");
    std::fs::write(&path, packed).unwrap();
    let out = nnz().arg("info").arg(&path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

const BINARIES: [&str; 6] =
    ["calgary/geo", "calgary/obj2", "calgary/pic", "canterbury/kennedy.xls", "canterbury/ptt5", "canterbury/sum"];

#[test]
fn byte_models_roundtrip_binary_corpus_files() {
    for rel in BINARIES {
        let data = prefix(rel, 12_000);
        for model in ["bytes", "bytectx"] {
            let packed = roundtrip(&data, &["-p", "tiny", "--model", model]);
            assert!(packed.len() < data.len(), "{rel} does not compress with {model}");
            assert!(info(&packed).contains(&format!("model:             {model}")), "{}", info(&packed));
        }
    }
    // Edge cases: nothing, one byte, every byte value.
    let all: Vec<u8> = (0..=255).collect();
    for data in [vec![], vec![7u8], all] {
        roundtrip(&data, &["-p", "tiny", "--model", "bytes"]);
    }
}

#[test]
fn the_automatic_choice_is_the_byte_model() {
    // Text and binary: the byte model measured better on both at every size (src/choose.rs).
    for rel in ["canterbury/alice29.txt", "canterbury/kennedy.xls"] {
        let data = prefix(rel, 6_000);
        let auto = roundtrip(&data, &["-p", "tiny"]);
        assert!(info(&auto).contains("model:             bytes"), "{rel}: {}", info(&auto));
        // `--model auto` is the default, and it writes what `--model bytes` writes.
        assert_eq!(roundtrip(&data, &["-p", "tiny", "--model", "auto"]), auto);
        assert_eq!(roundtrip(&data, &["-p", "tiny", "--model", "bytes"]), auto);
    }
}

/// Bits-per-byte ceiling on a real binary: the context model must keep its strength.
#[test]
fn byte_context_model_compresses_a_spreadsheet() {
    let data = prefix("canterbury/kennedy.xls", 60_000);
    let packed = roundtrip(&data, &["-p", "tiny", "--model", "bytectx"]);
    let bpb = 8.0 * packed.len() as f64 / data.len() as f64;
    // 2026-11-26: 0.680 bpb with the tiny tables (-p fast: 0.517; xz -9 on the same 60 kB: 0.608).
    assert!(bpb < 0.75, "{bpb:.3} bits per byte");
}

#[test]
fn byte_model_writes_the_same_bits_on_every_kernel_path() {
    assert_same_bits_on_every_kernel_path(&["-p", "tiny", "--model", "bytes"], &prefix("calgary/obj2", 8_000));
}

/// Pins the byte context model's bits (the network-free byte model, so that swapping the
/// neural part of `--model bytes` leaves it valid), on a binary file and a text (primed).
/// Regenerate (only with a format or numerics version bump, or a deliberate change of the
/// byte context model) with:
/// `./target/release/nnz compress -f -p tiny --model bytectx data/obj2.8k data/golden/obj2.8k.bytectx-gen7.tiny.v2.nnz`
/// `./target/release/nnz compress -f -p tiny --model bytectx data/enwik4 data/golden/enwik4.bytectx-gen7.tiny.v2.nnz`
/// The files the same commands wrote before must still decode: data/golden/obj2.8k.bytectx.tiny.nnz
/// (format 1), data/golden/obj2.8k.bytectx.tiny.v2.nnz (format 2, the byte model coded as
/// 256-way distributions, its versions 3 and 4), data/golden/obj2.8k.bytectx-bits.tiny.v2.nnz
/// and data/golden/enwik4.bytectx-bits.tiny.v2.nnz (bit by bit, generation 1: versions 5
/// and 6), data/golden/obj2.8k.bytectx-gen2.tiny.v2.nnz and
/// data/golden/enwik4.bytectx-gen2.tiny.v2.nnz (generation 2: versions 7 and 8),
/// data/golden/obj2.8k.bytectx-gen3.tiny.v2.nnz and
/// data/golden/enwik4.bytectx-gen3.tiny.v2.nnz (generation 3: versions 9 and 10),
/// data/golden/obj2.8k.bytectx-gen4.tiny.v2.nnz and
/// data/golden/enwik4.bytectx-gen4.tiny.v2.nnz (generation 4: versions 11 and 12),
/// data/golden/obj2.8k.bytectx-gen5.tiny.v2.nnz and
/// data/golden/enwik4.bytectx-gen5.tiny.v2.nnz (generation 5: versions 13 and 14),
/// data/golden/obj2.8k.bytectx-gen6.tiny.v2.nnz and
/// data/golden/enwik4.bytectx-gen6.tiny.v2.nnz (generation 6: versions 15 and 16).
#[test]
fn byte_context_golden_file_is_reproduced_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(root.join("data/obj2.8k")).unwrap();
    let text = std::fs::read(root.join("data/enwik4")).unwrap();
    let decodes = |name: &str, want: &[u8], what: &str| {
        let file = std::fs::read(root.join("data/golden").join(name)).unwrap();
        assert_eq!(run(&["decompress", "-q"], &file).stdout, want, "the {what} golden file {name} no longer decodes");
        file
    };
    decodes("obj2.8k.bytectx.tiny.nnz", &data, "format-1");
    decodes("obj2.8k.bytectx.tiny.v2.nnz", &data, "distribution-path");
    decodes("obj2.8k.bytectx-bits.tiny.v2.nnz", &data, "generation-1 (version 5)");
    decodes("enwik4.bytectx-bits.tiny.v2.nnz", &text, "generation-1 primed (version 6)");
    decodes("obj2.8k.bytectx-gen2.tiny.v2.nnz", &data, "generation-2 (version 7)");
    decodes("enwik4.bytectx-gen2.tiny.v2.nnz", &text, "generation-2 primed (version 8)");
    decodes("obj2.8k.bytectx-gen3.tiny.v2.nnz", &data, "generation-3 (version 9)");
    decodes("enwik4.bytectx-gen3.tiny.v2.nnz", &text, "generation-3 primed (version 10)");
    decodes("obj2.8k.bytectx-gen4.tiny.v2.nnz", &data, "generation-4 (version 11)");
    decodes("enwik4.bytectx-gen4.tiny.v2.nnz", &text, "generation-4 primed (version 12)");
    decodes("obj2.8k.bytectx-gen5.tiny.v2.nnz", &data, "generation-5 (version 13)");
    decodes("enwik4.bytectx-gen5.tiny.v2.nnz", &text, "generation-5 primed (version 14)");
    decodes("obj2.8k.bytectx-gen6.tiny.v2.nnz", &data, "generation-6 (version 15)");
    decodes("enwik4.bytectx-gen6.tiny.v2.nnz", &text, "generation-6 primed (version 16)");
    for (name, input) in [("obj2.8k.bytectx-gen7.tiny.v2.nnz", &data), ("enwik4.bytectx-gen7.tiny.v2.nnz", &text)] {
        let golden = decodes(name, input, "current");
        let now = run(&["compress", "-q", "-p", "tiny", "--model", "bytectx"], input).stdout;
        assert!(now == golden, "compressing with -p tiny --model bytectx no longer gives data/golden/{name}");
    }
}

/// Synthetic x86-like code: calls and jumps from many places to a few targets, between
/// other instructions, ending in a call cut short (a partial operand).
fn x86_like(n: usize) -> Vec<u8> {
    let mut code = Vec::new();
    let mut i = 0u32;
    while code.len() < n {
        let here = code.len() as u32 + 5;
        let target = 0x400 * (i % 11) + 0x10;
        code.push(if i.is_multiple_of(5) { 0xe9 } else { 0xe8 });
        code.extend_from_slice(&target.wrapping_sub(here).to_le_bytes());
        code.extend_from_slice(&[0x8b, 0x45, (i % 13) as u8 * 4, 0x89, 0xc1 + (i % 3) as u8]);
        i += 1;
    }
    code.truncate(n);
    code.extend_from_slice(&[0xe8, 0x10, 0x00]);
    code
}

/// The filter byte of a byte model's frame (the byte context model's parameters follow
/// the byte model's version byte; the filter is their last byte).
fn filter_of(packed: &[u8]) -> u8 {
    let frames = nnz::engine::list_frames(packed).unwrap();
    let p = &frames[0].model_params;
    p[nnz::model::bytectx::ByteCtxConfig::BYTES]
}

#[test]
fn filters_are_chosen_recorded_and_undone() {
    let code = x86_like(20_000);
    let with = roundtrip(&code, &["-p", "tiny", "--model", "bytes"]);
    assert_eq!(filter_of(&with), nnz::filter::Filter::X86.to_byte());
    assert!(info(&with).contains("filter:            x86"), "{}", info(&with));
    // The byte context model alone filters too (its parameters are the config itself).
    let alone = roundtrip(&code, &["-p", "tiny", "--model", "bytectx"]);
    let frames = nnz::engine::list_frames(&alone).unwrap();
    assert_eq!(frames[0].model_params[nnz::model::bytectx::ByteCtxConfig::BYTES - 1], 1);
    // Text: the capitals filter, which changes the length (the frame codes more
    // symbols than the text has bytes).
    let text = prefix("canterbury/alice29.txt", 8_000);
    let cased = roundtrip(&text, &["-p", "tiny", "--model", "bytes"]);
    assert_eq!(filter_of(&cased), nnz::filter::Filter::Case.to_byte());
    assert!(info(&cased).contains("filter:            case"), "{}", info(&cased));
    let frame = &nnz::engine::list_frames(&cased).unwrap()[0];
    assert!(frame.symbols > text.len() as u64, "{} symbols", frame.symbols);
    // Lower-case text: nothing to do, no filter.
    let lower = text.to_ascii_lowercase();
    let plain = roundtrip(&lower, &["-p", "tiny", "--model", "bytes"]);
    assert_eq!(filter_of(&plain), 0);
    assert!(!info(&plain).contains("filter:"), "{}", info(&plain));
}

#[test]
fn a_byte_model_file_of_an_older_version_is_refused_with_a_message() {
    let packed = roundtrip(&prefix("calgary/obj2", 3_000), &["-p", "tiny", "--model", "bytes"]);
    let (mut header, len) = nnz::format::Header::read(&packed).unwrap();
    // Version 1: before the filter; version 2: the network entered the mixers once.
    for version in [1u8, 2] {
        header.model_params[0] = version;
        let mut old = Vec::new();
        header.write(&mut old);
        old.extend_from_slice(&packed[len..]);
        let out = run(&["decompress", "-q"], &old);
        assert!(!out.status.success());
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(msg.contains(&format!("byte model version {version} (this nnz reads version 3)")), "{msg}");
    }
}

/// The byte context model's version byte and, with a primer (version 18, generation 7;
/// 16, 14, 12, 10, 8, 6 and 4 before), its length.
fn primer_of(packed: &[u8]) -> (u8, Option<u32>) {
    let frames = nnz::engine::list_frames(packed).unwrap();
    let p = &frames[0].model_params[1..];
    let primer =
        matches!(p[0], 4 | 6 | 8 | 10 | 12 | 14 | 16 | 18).then(|| u32::from_le_bytes([p[12], p[13], p[14], p[15]]));
    (p[0], primer)
}

#[test]
fn text_frames_are_primed_and_binary_frames_are_not() {
    // Text, with and without the LSTM: the tiny preset's 4 KiB of the primer.
    let text = prefix("canterbury/alice29.txt", 3_000);
    let primed = roundtrip(&text, &["-p", "tiny", "--model", "bytes"]);
    assert_eq!(primer_of(&primed), (18, Some(4096)));
    assert!(info(&primed).contains("primer:            4096 bytes"), "{}", info(&primed));
    let alone = roundtrip(&text, &["-p", "tiny", "--model", "bytectx"]);
    let frames = nnz::engine::list_frames(&alone).unwrap();
    assert_eq!(frames[0].model_params[0], 18);
    // Binary: none, and the version-17 layout.
    let code = prefix("calgary/obj2", 3_000);
    let plain = roundtrip(&code, &["-p", "tiny", "--model", "bytes"]);
    assert_eq!(primer_of(&plain), (17, None));
    assert!(!info(&plain).contains("primer:"), "{}", info(&plain));
}
