//! The anchor's task library (`../shared/compat/ops-manifests`) parses and
//! round-trips through the typed model without losing a field.

use std::path::PathBuf;

use ops_model::Kind;
use ops_model::manifest::load_path;

fn corpus() -> PathBuf {
    std::env::var_os("OPS_COMPAT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/ops-manifests"),
        PathBuf::from,
    )
}

#[test]
fn every_corpus_file_parses_and_round_trips() {
    let dir = corpus();
    assert!(dir.is_dir(), "compat corpus missing at {}", dir.display());
    let report = load_path(&dir);
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert!(
        errors.is_empty(),
        "corpus files rejected:\n{}",
        errors.join("\n")
    );

    let mut per_kind = std::collections::BTreeMap::<Kind, usize>::new();
    for file in &report.files {
        let text = std::fs::read_to_string(&file.path).unwrap();
        let originals: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(serde::Deserialize::deserialize)
            .collect::<Result<Vec<serde_yaml::Value>, _>>()
            .unwrap()
            .into_iter()
            .filter(|v| !v.is_null())
            .collect();
        assert_eq!(
            originals.len(),
            file.documents.len(),
            "{}",
            file.path.display()
        );
        for (doc, original) in file.documents.iter().zip(originals) {
            *per_kind.entry(doc.object.kind()).or_default() += 1;
            let written = serde_yaml::to_string(&doc.object).unwrap();
            let back: serde_yaml::Value = serde_yaml::from_str(&written).unwrap();
            assert_eq!(
                back,
                original,
                "{} document {} changed in round trip:\n{written}",
                file.path.display(),
                doc.index
            );
        }
    }
    let total: usize = per_kind.values().sum();
    println!(
        "compat corpus: {} files, {total} objects: {per_kind:?}",
        report.files.len()
    );
    assert!(total >= 180, "expected the whole corpus, got {total}");
}
